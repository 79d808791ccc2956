"""``reports/experiments.md``: the experiment grid's summary JSON, tables with seeds and bootstrap CIs, plots.

Reads ``<metrics_root>/<task>/<run>/scores.json`` and ``sentences.json.gz``
(``results.py``) as written by ``runs.experiments.train_and_evaluate``; runs are named ``<variant>[_l<layer>]_s<seed>``.
"""
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional, Tuple

from wasabi import msg

from ..runs.experiments import VARIANTS, parse_run_name
from ..runs.results import RUN_META, load_counts, load_metrics, load_run_meta
from ..statistics import paired_bootstrap, stack_seeds
from ..tasks import TASKS
from . import generated_by, linked_notes, mean_std
from .plots import layer_heatmap, layer_sweep


def _runs(task_dir: Path) -> List[dict]:
    runs = []
    for run_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
        scores = {lang: 100.0 * data[TASKS[task_dir.name].score_key] for lang, data in load_metrics(run_dir).items()}
        if scores:
            runs.append({**parse_run_name(run_dir.name), "dir": run_dir, "scores": scores})
    return runs


def summarize(metrics_root: Path) -> dict:
    """``{task: {variant: {"layer", "seeds": {seed: {lang: score}}, "mean": {lang: score}, "_dirs"}}}``.
    The headline DLFA and the ablations are at the chosen layer; every sweep
    run also appears as ``dlfa_l<k>``."""
    summary: dict = {}
    for task in TASKS:
        task_dir = metrics_root / task
        if not task_dir.is_dir():
            continue
        selection = json.loads((task_dir / "selection.json").read_text()) if (task_dir / "selection.json").exists() else {}
        chosen = selection.get("chosen_layer")
        groups: Dict[str, dict] = defaultdict(lambda: {"layer": None, "seeds": {}, "_dirs": {}})
        for run in _runs(task_dir):
            names = [f"dlfa_l{run['layer']}"] if run["variant"] == "dlfa" else []
            if run["layer"] is None or run["layer"] == chosen or chosen is None and run["variant"] != "dlfa":
                names.append(run["variant"])
            for name in names:
                groups[name]["layer"] = run["layer"]
                groups[name]["seeds"][str(run["seed"])] = run["scores"]
                groups[name]["_dirs"][str(run["seed"])] = run["dir"]
        for group in groups.values():
            group["mean"] = _seed_mean(group["seeds"])
        summary[task] = dict(groups)
    return summary


def _seed_mean(seeds: Dict[str, Dict[str, float]]) -> Dict[str, float]:
    """{lang: mean over seeds} for the languages every seed has."""
    langs = set.intersection(*(set(s) for s in seeds.values()))
    return {lang: mean(s[lang] for s in seeds.values()) for lang in sorted(langs)}


def _on_seeds(group: dict, seeds: List[str]) -> dict:
    """A group restricted to some of its seeds."""
    kept = {seed: group["seeds"][seed] for seed in seeds}
    return {"layer": group["layer"], "seeds": kept, "_dirs": {seed: group["_dirs"][seed] for seed in seeds}, "mean": _seed_mean(kept)}


def _counts(task: str, group: dict) -> Dict[str, object]:
    """{lang: (seeds, sentences, k) counts} of a group's runs, read once per group."""
    if "_counts" not in group:
        per_seed = [load_counts(run_dir) for run_dir in group["_dirs"].values()]
        group["_counts"] = {lang: stack_seeds([counts[lang] for counts in per_seed], TASKS[task].count_key) for lang in group["mean"]}
    return group["_counts"]


def _table(task: str, groups: dict) -> List[str]:
    source = TASKS[task].source_language
    variants = [v for v in VARIANTS if v in groups]
    langs = sorted(set.intersection(*(set(groups[v]["mean"]) for v in variants)), key=lambda lang: (lang != source, lang))
    targets = [lang for lang in langs if lang != source]

    def cell(variant: str, lang: str) -> str:
        return mean_std([s[lang] for s in groups[variant]["seeds"].values()])

    def header(variant: str) -> str:
        n = len(groups[variant]["seeds"])
        layer = "" if groups[variant]["layer"] is None else f"layer {groups[variant]['layer']}, "
        return f"{variant} ({layer}{n} seed{'s' if n > 1 else ''})"

    head = [header(v) for v in variants]
    lines = [f"| {TASKS[task].metric} | " + " | ".join(head) + " |", "|---|" + "---:|" * len(variants)]
    lines += [f"| {lang} | " + " | ".join(cell(v, lang) for v in variants) + " |" for lang in langs]
    lines.append(f"| **average of {len(targets)} targets** | " + " | ".join(f"**{mean(groups[v]['mean'][lang] for lang in targets):.1f}**" for v in variants) + " |")
    return lines


def _seed_list(group: dict) -> str:
    return ",".join(sorted(group["seeds"], key=int))


def _deltas(task: str, groups: dict, reference: str = "baseline") -> List[str]:
    if reference not in groups:
        return []
    source = TASKS[task].source_language
    base_counts = _counts(task, groups[reference])
    lines = [f"| variant | delta vs {reference}, average of targets | 95% CI (paired bootstrap over sentences) | delta on English | seeds (variant / {reference}) |",
             "|---|---:|---|---:|---|"]
    for variant, group in groups.items():
        if variant in ("baseline", reference) or variant != "dlfa" and "dlfa" in groups and group["_dirs"] == groups["dlfa"]["_dirs"]:
            continue
        counts = _counts(task, group)
        targets = {lang: base_counts[lang] for lang in counts if lang != source and lang in base_counts}
        delta, low, high = paired_bootstrap(TASKS[task].measure, targets, {lang: counts[lang] for lang in targets})
        english = group["mean"].get(source, float("nan")) - groups[reference]["mean"].get(source, float("nan"))
        seeds = f"{_seed_list(group)} / {_seed_list(groups[reference])}"
        lines.append(f"| {variant} | {delta:+.2f} | [{low:+.2f}, {high:+.2f}] | {english:+.2f} | {seeds} |")
    return lines if len(lines) > 2 else []


CONTROL = "aif_last"  # the fair reference for what the lower layer adds
CONTROL_NOTE = (
    "`aif_last` is the AIF module on the last layer alone (`fusion_layer = -1`): its output is the layer-normalised "
    "last layer, so the deltas against it isolate what the lower layer adds. See `reports/dlfa_investigation.md`."
)


def _sweep(groups: dict) -> Tuple[Optional[str], Dict[int, dict]]:
    """The sweep's seed (the first one every swept layer has) and each layer's scores with that seed,
    so that a layer also run with more seeds is not compared on a different footing."""
    swept = dict(sorted((g["layer"], g) for name, g in groups.items() if name.startswith("dlfa_l")))
    shared = set.intersection(*(set(g["seeds"]) for g in swept.values())) if swept else set()
    if not shared:
        return None, {}
    seed = min(shared, key=int)
    return seed, {layer: g["seeds"][seed] for layer, g in swept.items()}


def _sweep_section(task: str, groups: dict, selection: dict, output_dir: Path) -> List[str]:
    """Layer-sweep plot and language x layer heatmap; [] with fewer than two swept layers."""
    seed, sweep = _sweep(groups)
    if len(sweep) < 2:
        return []
    source = TASKS[task].source_language
    langs = sorted(set.intersection(*(set(scores) for scores in sweep.values())), key=lambda lang: (lang != source, lang))
    targets = [lang for lang in langs if lang != source]
    layers = list(sweep)
    average = [mean(sweep[k][lang] for lang in targets) for k in layers]
    dev = selection.get("dev_scores", {})
    lines = [(average, "o-", f"average of {len(targets)} targets (test)"), ([sweep[k][source] for k in layers], "s-", f"{source} (test)")]
    if dev:
        lines.append(([dev.get(str(k), dev.get(k, float("nan"))) for k in layers], "^--", f"{source} dev (selection)"))
    references = [(mean(groups[name]["mean"][lang] for lang in targets), style, f"{name}, average of targets")
                  for name, style in (("baseline", ":"), (CONTROL, "--")) if name in groups]
    chosen = selection.get("chosen_layer") if "dev_scores" in selection else None
    layer_sweep(layers, lines, references, chosen, TASKS[task].metric, output_dir / f"{task}_layer_sweep.png")

    against = CONTROL if CONTROL in groups else "baseline"
    reference = groups.get(against, {}).get("mean")
    values = [[sweep[k][lang] - (reference[lang] if reference else 0.0) for k in layers] for lang in langs]
    title = f"{TASKS[task].title}: " + (f"DLFA minus {against}" if reference else TASKS[task].metric)
    layer_heatmap(values, layers, langs, bool(reference), title, output_dir / f"{task}_layer_heatmap.png")
    rows = " | ".join(f"{k}: {a:.1f}" for k, a in zip(layers, average))
    return [
        f"### Layer sweep (seed {seed})",
        "",
        f"Average of targets by fused layer: {rows}. "
        + (f"English dev scores used for the choice: {', '.join(f'{k}: {float(v):.2f}' for k, v in dev.items())}; chosen layer {selection.get('chosen_layer')}." if dev else "The layer is not yet chosen by the sweep."),
        "",
        f"![layer sweep]({task}_layer_sweep.png) ![language x layer: DLFA minus {against}]({task}_layer_heatmap.png)",
        "",
    ]


def _public(task: str, group: dict) -> dict:
    """The summary schema: English as ``en`` (POS: the source treebank), no private keys."""
    source = TASKS[task].source_language
    rename = lambda scores: {"en" if lang == source else lang: score for lang, score in scores.items()}  # noqa: E731
    return {"layer": group["layer"], "seeds": {seed: rename(s) for seed, s in group["seeds"].items()}, "mean": rename(group["mean"])}


def _timings(task: str, metrics_root: Path) -> List[str]:
    lines = ["| run | English dev | train (min) | evaluate (min) | torch threads |", "|---|---:|---:|---:|---:|"]
    minutes = lambda seconds: "n/a" if seconds is None else f"{seconds / 60:.1f}"  # noqa: E731
    for run_dir in sorted(p for p in (metrics_root / task).iterdir() if (p / RUN_META).exists()):
        meta = load_run_meta(run_dir)
        lines.append(f"| {run_dir.name} | {meta['dev_score']:.1f} | {minutes(meta.get('train_seconds'))} | {minutes(meta.get('evaluate_seconds'))} | {meta.get('torch_threads', 'n/a')} |")
    return lines if len(lines) > 2 else []


NOTES = "experiments_notes.md"  # hand-written, beside the report: how to rerun a cell, the speed benchmark


POOLING = "first_token_pooling"
POOLING_NOTE = (
    "`first_token_pooling` is DLFA at the same layer with the textcat reducing the pair to its first word's vector "
    "(pooled from that word's wordpieces; the listener does not pass on the `[CLS]`/`<s>` vector) instead of the mean "
    "over the pair's tokens; compared with mean-pooled DLFA on the seeds both ran."
)


def _pooling(task: str, groups: dict) -> List[str]:
    if POOLING not in groups or "dlfa" not in groups:
        return []
    shared = sorted(set(groups[POOLING]["seeds"]) & set(groups["dlfa"]["seeds"]), key=int)
    if not shared:
        return []
    pair = {"dlfa": _on_seeds(groups["dlfa"], shared), POOLING: _on_seeds(groups[POOLING], shared)}
    return [*_deltas(task, pair, reference="dlfa"), "", POOLING_NOTE, ""]


NO_CONTROL_NOTE = (
    "No `aif_last` control for this task yet: the delta against the stock baseline mixes what the lower layer adds "
    "with what normalising the last layer does (on NER the latter was the whole gain; see `reports/dlfa_investigation.md`)."
)


def write_experiments_report(metrics_root: Path, output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(metrics_root)
    public = {task: {v: _public(task, g) for v, g in groups.items()} for task, groups in summary.items()}
    (output_dir / "zero_shot_summary.json").write_text(json.dumps(public, indent=1, sort_keys=True), encoding="utf8")
    sections = ["# Zero-shot experiments: DLFA vs the last-layer baseline", "",
                generated_by(f"python -m spacy_dlfa report grid {metrics_root} {output_dir}"), "",
                *linked_notes(output_dir, NOTES, "How to rerun a cell, and the speed benchmark (written by hand)")]
    for task, groups in summary.items():
        selection_file = metrics_root / task / "selection.json"
        selection = json.loads(selection_file.read_text()) if selection_file.exists() else {}
        sections += [f"## {TASKS[task].title}", "", *_table(task, groups), "", *_deltas(task, groups), ""]
        against_control = _deltas(task, groups, reference=CONTROL)
        if against_control:
            sections += [*against_control, "", CONTROL_NOTE, ""]
        elif "dlfa" in groups and "baseline" in groups:
            sections += [NO_CONTROL_NOTE, ""]
        sections += _pooling(task, groups)
        sections += _sweep_section(task, groups, selection, output_dir)
        timings = _timings(task, metrics_root)
        sections += ["### Runs", "", *timings, ""] if timings else []
        if TASKS[task].paper_gain is not None:
            stand_in = " and, offline, a slice of English dev stands in for the full English training set" if TASKS[task].is_pair else ""
            sections += [f"The paper reports +{TASKS[task].paper_gain} for this task over mBERT; our backbone is the embedded e5-small (see README){stand_in}.", ""]
        counts = ", ".join(f"{v} {len(g['seeds'])}" for v, g in groups.items() if not v.startswith("dlfa_l"))
        sections += [f"Seeds per variant: {counts}. The interval resamples test sentences (each seed's score on the same resample), "
                     "so it does not cover the variance between training runs; the ± columns (std over seeds) show that spread.", ""]
    report = output_dir / "experiments.md"
    report.write_text("\n".join(sections), encoding="utf8")
    msg.good(f"wrote {report} and {output_dir / 'zero_shot_summary.json'}")
    return report
