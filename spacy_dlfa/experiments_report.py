"""Report of the experiment grid: summary JSON, tables with seeds and bootstrap CIs, plots.

Reads ``<metrics_root>/<task>/<run>/<lang>.json`` and ``<lang>.sentences.json``
as written by ``experiments.evaluate``; runs are named ``<variant>[_l<layer>]_s<seed>``.
"""
import json
from collections import defaultdict
from pathlib import Path
from statistics import mean, stdev
from typing import Dict, List

from wasabi import msg

from .evaluation import load_metrics
from .experiments import VARIANTS, parse_run_name
from .report import METRIC
from .statistics import COUNT_KEY, paired_bootstrap, stack_seeds
from .tasks import TASKS

PAPER_DELTA = {"ner": 1.2, "pos": 1.5}


def _runs(task_dir: Path) -> List[dict]:
    runs = []
    for run_dir in sorted(p for p in task_dir.iterdir() if p.is_dir()):
        scores = {lang: 100.0 * data[METRIC[task_dir.name][0]] for lang, data in load_metrics(run_dir).items()}
        if scores:
            runs.append({**parse_run_name(run_dir.name), "dir": run_dir, "scores": scores})
    return runs


def summarize(metrics_root: Path) -> dict:
    """``{task: {variant: {"layer", "seeds": {seed: {lang: score}}, "mean": {lang: score}, "_dirs"}}}``.
    The headline DLFA and the ablations are at the chosen layer; every sweep
    run also appears as ``dlfa_l<k>``."""
    summary: dict = {}
    for task in METRIC:
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
            langs = set.intersection(*(set(s) for s in group["seeds"].values()))
            group["mean"] = {lang: mean(s[lang] for s in group["seeds"].values()) for lang in sorted(langs)}
        summary[task] = dict(groups)
    return summary


def _counts(task: str, group: dict) -> Dict[str, object]:
    """{lang: (seeds, sentences, k) counts} of a group's runs."""
    return {
        lang: stack_seeds([json.loads((run_dir / f"{lang}.sentences.json").read_text()) for run_dir in group["_dirs"].values()], COUNT_KEY[task])
        for lang in group["mean"]
    }


def _table(task: str, groups: dict) -> List[str]:
    source = TASKS[task].source_language
    variants = [v for v in VARIANTS if v in groups]
    langs = sorted(set.intersection(*(set(groups[v]["mean"]) for v in variants)), key=lambda l: (l != source, l))
    targets = [lang for lang in langs if lang != source]

    def cell(variant: str, lang: str) -> str:
        values = [s[lang] for s in groups[variant]["seeds"].values()]
        return f"{mean(values):.1f} ± {stdev(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"

    def header(variant: str) -> str:
        n = len(groups[variant]["seeds"])
        layer = "" if groups[variant]["layer"] is None else f"layer {groups[variant]['layer']}, "
        return f"{variant} ({layer}{n} seed{'s' if n > 1 else ''})"

    head = [header(v) for v in variants]
    lines = [f"| {METRIC[task][1]} | " + " | ".join(head) + " |", "|---|" + "---:|" * len(variants)]
    lines += [f"| {lang} | " + " | ".join(cell(v, lang) for v in variants) + " |" for lang in langs]
    lines.append(f"| **average of {len(targets)} targets** | " + " | ".join(f"**{mean(groups[v]['mean'][l] for l in targets):.1f}**" for v in variants) + " |")
    return lines


def _deltas(task: str, groups: dict) -> List[str]:
    if "baseline" not in groups:
        return []
    source = TASKS[task].source_language
    base_counts = _counts(task, groups["baseline"])
    lines = ["| variant | delta vs baseline, average of targets | 95% CI (paired bootstrap over sentences) | delta on English |", "|---|---:|---|---:|"]
    for variant, group in groups.items():
        if variant == "baseline" or variant != "dlfa" and "dlfa" in groups and group["_dirs"] == groups["dlfa"]["_dirs"]:
            continue
        counts = _counts(task, group)
        targets = {l: base_counts[l] for l in counts if l != source and l in base_counts}
        delta, low, high = paired_bootstrap(task, targets, {l: counts[l] for l in targets})
        english = group["mean"].get(source, float("nan")) - groups["baseline"]["mean"].get(source, float("nan"))
        lines.append(f"| {variant} | {delta:+.2f} | [{low:+.2f}, {high:+.2f}] | {english:+.2f} |")
    return lines


def write_experiments_report(metrics_root: Path, output_dir: Path) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    summary = summarize(metrics_root)
    public = {task: {v: {k: x for k, x in g.items() if not k.startswith("_")} for v, g in groups.items()} for task, groups in summary.items()}
    (output_dir / "zero_shot_summary.json").write_text(json.dumps(public, indent=1, sort_keys=True), encoding="utf8")
    sections = ["# Zero-shot experiments: DLFA vs the last-layer baseline", ""]
    for task, groups in summary.items():
        sections += [f"## {task.upper()}", "", *_table(task, groups), "", *_deltas(task, groups), ""]
        sections += [f"The paper reports +{PAPER_DELTA[task]} for this task over mBERT; our backbone is the embedded e5-small (see README).", ""]
        seeds = min(len(g["seeds"]) for g in groups.values())
        if seeds < 3:
            sections += [f"Only {seeds} seed{'s' if seeds > 1 else ''} per variant so far: the interval covers the sampling of test sentences, not the variance between training runs.", ""]
    report = output_dir / "experiments.md"
    report.write_text("\n".join(sections), encoding="utf8")
    msg.good(f"wrote {report} and {output_dir / 'zero_shot_summary.json'}")
    return report
