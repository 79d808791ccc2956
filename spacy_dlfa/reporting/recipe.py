"""``reports/recipe_results.md``: issue #21's shipped recipe against the base, what each step added, the goals.

A hand-written spec (``reports/recipe_results.json``) names the run folders: per task the ``shipped`` runs,
the ``base`` runs, the ``steps`` (each a set of runs and the runs it is compared against), the target
languages, the ``goals`` and an optional ``reference`` row (another system's published scores). Runs are a
glob or a list of globs relative to the spec's ``root`` (itself relative to the spec's folder); a folder
``..._s<seed>`` is that seed's run, any other folder counts under its own name. Scores and per-sentence
counts come from ``results.py``, the intervals from ``statistics.paired_bootstrap``; every number in the
report, the goals' verdicts included, is computed here from the metrics.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Dict, List, Optional, Tuple

import numpy
from wasabi import msg

from ..runs.results import RUN_META, load_counts, load_metrics, load_raw_metrics, load_run_meta
from ..statistics import paired_bootstrap, stack_seeds
from ..tasks import TASKS
from . import generated_by, linked_notes, mean_std

NOTES = "recipe_notes.md"  # hand-written, beside the report; the generator never writes it
GOALS = {  # kind: what is measured on the shipped runs
    "average": "average of the targets (mean over seeds)",
    "every_seed": "average of the targets, lowest seed",
    "target": "score on one target (mean over seeds)",
    "seed_std": "std over seeds of the average of the targets",
    "raw_gap": "largest gold-token minus raw-text gap over the targets (means over seeds)",
}
UNMEASURED = {"seed_std": "one seed", "raw_gap": "no raw-text scores"}  # why a goal has no value
TASK_KEYS = ("targets", "shipped", "base", "steps", "goals")
_SEED = re.compile(r"_s(\d+)$")


class RecipeSpecError(ValueError):
    """A report spec that cannot be used, naming the spec file and the key."""

    def __init__(self, path: Path, key: str, message: str):
        super().__init__(f"{path}: {key}: {message}")
        self.path, self.key = path, key


@dataclass
class Runs:
    """One side of a comparison: the run folders by seed, their scores (percent) and English dev scores."""

    pattern: str
    dirs: Dict[str, Path]
    gold: Dict[str, Dict[str, float]]  # seed -> lang -> score
    raw: Dict[str, Dict[str, float]]
    dev: Dict[str, Optional[float]]
    _counts: Dict[str, dict] = field(default_factory=dict)

    @property
    def seeds(self) -> List[str]:
        return list(self.dirs)

    def on_seeds(self, seeds: List[str]) -> "Runs":
        return Runs(self.pattern, {s: self.dirs[s] for s in seeds}, {s: self.gold[s] for s in seeds},
                    {s: self.raw[s] for s in seeds if s in self.raw}, {s: self.dev[s] for s in seeds}, self._counts)

    def counts(self, task: str, name: str) -> numpy.ndarray:
        """(seeds, sentences, k) counts of the set `name` (``<lang>`` or ``<lang>.raw``)."""
        for seed, run_dir in self.dirs.items():
            if seed not in self._counts:
                self._counts[seed] = load_counts(run_dir)
            if name not in self._counts[seed]:
                raise ValueError(f"{run_dir}: no per-sentence counts for {name!r} in sentences.json.gz")
        return stack_seeds([self._counts[seed][name] for seed in self.dirs], TASKS[task].count_key)


def seed_label(seeds: List[str]) -> str:
    return ", ".join(seeds)


def _fail(path: Path, key: str, message: str) -> None:
    raise RecipeSpecError(path, key, message)


def _patterns(path: Path, key: str, value: object) -> List[str]:
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p for p in patterns):
        _fail(path, key, f"expected a glob or a list of globs of run folders, got {value!r}")
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            _fail(path, key, f"{pattern!r}: run paths are relative to the spec's root, without '..'")
    return patterns


def load_spec(path: Path) -> dict:
    """The spec, checked: :class:`RecipeSpecError` names the file and the key of anything it cannot use."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf8"))
    except json.JSONDecodeError as err:
        raise RecipeSpecError(path, "(file)", f"not JSON (line {err.lineno}: {err.msg})") from None
    if not isinstance(spec, dict):
        _fail(path, "(file)", "expected an object of tasks")
    if not isinstance(spec.get("root"), str) or Path(spec["root"]).is_absolute():
        _fail(path, "root", f"expected the folder the run paths start from, relative to the spec's folder, got {spec.get('root')!r}")
    tasks = [key for key in spec if key != "root"]
    for task in tasks:
        if task not in TASKS:
            _fail(path, task, f"unknown task (expected one of {', '.join(TASKS)}, or root)")
        entry = spec[task]
        missing = [key for key in TASK_KEYS if not isinstance(entry, dict) or key not in entry]
        if missing:
            _fail(path, task, f"missing {', '.join(missing)} (expected {', '.join(TASK_KEYS)}; optional: reference)")
        targets = entry["targets"]
        if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
            _fail(path, f"{task}.targets", f"expected a list of target languages, got {targets!r}")
        for key in ("shipped", "base"):
            _patterns(path, f"{task}.{key}", entry[key])
        if not isinstance(entry["steps"], list):
            _fail(path, f"{task}.steps", "expected a list of {label, runs, against}")
        for i, step in enumerate(entry["steps"]):
            if not isinstance(step, dict) or not isinstance(step.get("label"), str):
                _fail(path, f"{task}.steps[{i}]", f"expected an object with label, runs and against, got {step!r}")
            for key in ("runs", "against"):
                _patterns(path, f"{task}.steps[{i}].{key}", step.get(key))
        _check_goals(path, task, entry["goals"], targets)
        reference = entry.get("reference")
        if reference is not None and (not isinstance(reference, dict) or not isinstance(reference.get("label"), str)
                                      or not isinstance(reference.get("scores"), dict)
                                      or not all(isinstance(v, (int, float)) for v in reference["scores"].values())):
            _fail(path, f"{task}.reference", "expected {\"label\": text, \"scores\": {lang: number}}")
    return spec


def _check_goals(path: Path, task: str, goals: object, targets: List[str]) -> None:
    if not isinstance(goals, list):
        _fail(path, f"{task}.goals", "expected a list of {kind, at_least or at_most}")
    for i, goal in enumerate(goals):
        key = f"{task}.goals[{i}]"
        if not isinstance(goal, dict) or goal.get("kind") not in GOALS:
            _fail(path, f"{key}.kind", f"expected one of {', '.join(GOALS)}, got {goal.get('kind') if isinstance(goal, dict) else goal!r}")
        bounds = [b for b in ("at_least", "at_most") if isinstance(goal.get(b), (int, float))]
        if len(bounds) != 1:
            _fail(path, key, "expected exactly one number at_least or at_most")
        if goal["kind"] == "target" and goal.get("lang") not in targets:
            _fail(path, f"{key}.lang", f"expected one of the targets ({', '.join(targets)}), got {goal.get('lang')!r}")


def load_runs(spec_path: Path, root: Path, key: str, task: str, value: object, langs: List[str]) -> Runs:
    """The run folders that `value`'s globs match under `root`, each with scores for every language of `langs`."""
    dirs: Dict[str, Path] = {}
    for pattern in _patterns(spec_path, key, value):
        matched = sorted(p for p in root.glob(pattern) if p.is_dir())
        if not matched:
            _fail(spec_path, key, f"no run folder matches {pattern!r} under {root}")
        for run_dir in matched:
            match = _SEED.search(run_dir.name)
            dirs[match.group(1) if match else run_dir.name] = run_dir
    dirs = dict(sorted(dirs.items(), key=lambda item: (not item[0].isdigit(), int(item[0]) if item[0].isdigit() else 0, item[0])))
    spec_task = TASKS[task]
    gold, raw, dev = {}, {}, {}
    for seed, run_dir in dirs.items():
        gold[seed] = {lang: 100.0 * data[spec_task.score_key] for lang, data in load_metrics(run_dir).items()}
        missing = [lang for lang in langs if lang not in gold[seed]]
        if missing:
            _fail(spec_path, key, f"{run_dir} has no scores for {', '.join(missing)} (scores.json)")
        raw_scores = load_raw_metrics(run_dir)
        if raw_scores and spec_task.raw_score_key:
            raw[seed] = {lang: 100.0 * data[spec_task.raw_score_key] for lang, data in raw_scores.items()}
        dev[seed] = load_run_meta(run_dir).get("dev_score") if (run_dir / RUN_META).exists() else None
    return Runs(" + ".join(_patterns(spec_path, key, value)), dirs, gold, raw, dev)


def target_averages(runs: Runs, targets: List[str], raw: bool = False) -> Dict[str, float]:
    """{seed: average of the targets} (raw text: the seeds that have every target's raw score)."""
    scores = runs.raw if raw else runs.gold
    return {seed: mean(s[lang] for lang in targets) for seed, s in scores.items() if all(lang in s for lang in targets)}


def lang_values(runs: Runs, lang: str, raw: bool = False) -> List[float]:
    """The seeds' scores on `lang`; [] unless every seed has one."""
    scores = runs.raw if raw else runs.gold
    values = [scores[seed][lang] for seed in runs.seeds if lang in scores.get(seed, {})]
    return values if len(values) == len(runs.seeds) else []


def with_raw(runs: Runs) -> Runs:
    """The runs restricted to the seeds that were also scored on raw text."""
    return runs.on_seeds([seed for seed in runs.seeds if seed in runs.raw])


def paired(a: Runs, b: Runs) -> Tuple[Runs, Runs]:
    """Both sides on the seeds they share (none shared: every run of each side)."""
    shared = [seed for seed in a.seeds if seed in b.seeds]
    return (a.on_seeds(shared), b.on_seeds(shared)) if shared else (a, b)


def delta(task: str, runs: Runs, against: Runs, langs: List[str], raw: bool = False) -> Tuple[float, float, float]:
    """Delta (runs - against) of the average over `langs` with the 95% paired bootstrap interval over sentences."""
    suffix = ".raw" if raw else ""
    return paired_bootstrap(TASKS[task].measure, {lang: against.counts(task, lang + suffix) for lang in langs},
                            {lang: runs.counts(task, lang + suffix) for lang in langs})


def _dev(runs: Runs) -> str:
    values = [v for v in runs.dev.values() if v is not None]
    return f"{mean(values):.2f}" if len(values) == len(runs.dev) else "n/a"


def _scores_table(task: str, shipped: Runs, base: Runs, targets: List[str], reference: Optional[dict]) -> List[str]:
    source = TASKS[task].source_language
    raw_sides = [(name, with_raw(runs), runs.seeds) for name, runs in (("shipped", shipped), ("base", base)) if runs.raw]
    ref = reference["scores"] if reference else {}
    head = [f"shipped ({len(shipped.seeds)} seed{'s' * (len(shipped.seeds) > 1)})", *(f"seed {s}" for s in shipped.seeds),
            f"base ({len(base.seeds)} seed{'s' * (len(base.seeds) > 1)})",
            *(f"{name}, raw text" + ("" if runs.seeds == seeds else f" (seeds {seed_label(runs.seeds)})") for name, runs, seeds in raw_sides)]
    head += [reference["label"]] if reference else []
    lines = [f"| {TASKS[task].metric} | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for lang in [source, *targets]:
        cells = [mean_std(lang_values(shipped, lang)), *(f"{shipped.gold[s][lang]:.1f}" for s in shipped.seeds), mean_std(lang_values(base, lang))]
        cells += [mean_std(lang_values(runs, lang, raw=True)) if lang_values(runs, lang, raw=True) else "" for _, runs, _ in raw_sides]
        cells += [f"{ref[lang]:.1f}" if lang in ref else ""] if reference else []
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    averages = target_averages(shipped, targets)
    cells = [mean_std(list(averages.values()), 2), *(f"{averages[s]:.2f}" for s in shipped.seeds), mean_std(list(target_averages(base, targets).values()), 2)]
    for _, runs, _ in raw_sides:
        raw_averages = target_averages(runs, targets, raw=True)
        cells.append(mean_std(list(raw_averages.values()), 2) if len(raw_averages) == len(runs.seeds) else "")
    cells += [f"{mean(ref[lang] for lang in targets):.2f}" if all(lang in ref for lang in targets) else ""] if reference else []
    lines.append(f"| **average of {len(targets)} targets** | " + " | ".join(f"**{c}**" if c else "" for c in cells) + " |")
    return lines


def _versus_table(task: str, shipped: Runs, base: Runs, targets: List[str]) -> List[str]:
    runs, against = paired(shipped, base)
    both_raw = [lang for lang in targets if lang_values(runs, lang, raw=True) and lang_values(against, lang, raw=True)]
    head = ["shipped", "base", "delta", "95% CI", *(["delta, raw text", "95% CI, raw text"] if both_raw else [])]
    lines = [f"Seeds: shipped {seed_label(runs.seeds)} against base {seed_label(against.seeds)}.", "",
             f"| {TASKS[task].metric} | " + " | ".join(head) + " |", "|---|" + "---:|" * 3 + "---|" + ("---:|---|" if both_raw else "")]

    def row(name: str, langs: List[str], a: float, b: float) -> str:
        d, low, high = delta(task, runs, against, langs)
        cells = [f"{a:.2f}", f"{b:.2f}", f"{d:+.2f}", f"[{low:+.2f}, {high:+.2f}]"]
        if both_raw:
            raw = delta(task, runs, against, langs, raw=True) if all(lang in both_raw for lang in langs) else None
            cells += [f"{raw[0]:+.2f}", f"[{raw[1]:+.2f}, {raw[2]:+.2f}]"] if raw else ["", ""]
        return f"| {name} | " + " | ".join(cells) + " |"

    lines += [row(lang, [lang], mean(lang_values(runs, lang)), mean(lang_values(against, lang))) for lang in targets]
    lines.append(row(f"**average of {len(targets)} targets**", targets, mean(target_averages(runs, targets).values()),
                     mean(target_averages(against, targets).values())))
    return lines


def _steps_table(task: str, steps: List[Tuple[str, Runs, Runs]], targets: List[str]) -> List[str]:
    source = TASKS[task].source_language
    lines = ["| step | runs | against | seeds (runs / against) | delta, average of targets | 95% CI | delta on English (test) | English dev (runs / against) |",
             "|---|---|---|---|---:|---|---:|---|"]
    for label, runs, against in steps:
        runs, against = paired(runs, against)
        d, low, high = delta(task, runs, against, targets)
        english = mean(lang_values(runs, source)) - mean(lang_values(against, source))
        lines.append(f"| {label} | `{runs.pattern}` | `{against.pattern}` | {seed_label(runs.seeds)} / {seed_label(against.seeds)} "
                     f"| {d:+.2f} | [{low:+.2f}, {high:+.2f}] | {english:+.2f} | {_dev(runs)} / {_dev(against)} |")
    return lines


def goal_value(goal: dict, shipped: Runs, targets: List[str]) -> Optional[float]:
    """What `goal` measures on the shipped runs; None where it cannot be measured (one seed, no raw text)."""
    averages = list(target_averages(shipped, targets).values())
    kind = goal["kind"]
    if kind == "average":
        return mean(averages)
    if kind == "every_seed":
        return min(averages)
    if kind == "target":
        return mean(lang_values(shipped, goal["lang"]))
    if kind == "seed_std":
        return stdev(averages) if len(averages) > 1 else None
    scored = with_raw(shipped)  # gold and raw text on the same seeds
    gaps = [mean(lang_values(scored, lang)) - mean(lang_values(scored, lang, raw=True)) for lang in targets
            if scored.seeds and lang_values(scored, lang, raw=True)]
    return max(gaps) if len(gaps) == len(targets) else None


def goal_verdict(goal: dict, value: Optional[float]) -> str:
    if value is None:
        return "not measured"
    return "met" if (value >= goal["at_least"] if "at_least" in goal else value <= goal["at_most"]) else "not met"


def _goals_table(task: str, goals: List[dict], shipped: Runs, base: Runs, targets: List[str]) -> List[str]:
    lines = [f"| goal | shipped (seeds {seed_label(shipped.seeds)}) | verdict | base (seeds {seed_label(base.seeds)}) |", "|---|---:|---|---:|"]
    for goal in goals:
        bound = f"≥ {goal['at_least']}" if "at_least" in goal else f"≤ {goal['at_most']}"
        what = GOALS[goal["kind"]].replace("one target", goal.get("lang", "")).replace("the targets", f"{len(targets)} targets")
        why = f" ({goal['why']})" if goal.get("why") else ""
        value, on_base = goal_value(goal, shipped, targets), goal_value(goal, base, targets)
        shown = [f"n/a ({UNMEASURED[goal['kind']]})" if v is None else f"{v:.2f}" for v in (value, on_base)]
        if goal["kind"] == "raw_gap":  # measured on the seeds scored on raw text
            raw_seeds = [with_raw(runs).seeds for runs in (shipped, base)]
            shown = [f"{text} (seeds {seed_label(seeds)})" if v is not None and seeds != runs.seeds else text
                     for text, v, seeds, runs in zip(shown, (value, on_base), raw_seeds, (shipped, base))]
        lines.append(f"| {what} {bound}{why} | {shown[0]} | {goal_verdict(goal, value)} | {shown[1]} |")
    return lines


def write_recipe_report(spec_path: Path, output_dir: Path) -> Path:
    spec = load_spec(spec_path)
    root = Path(spec_path).parent / spec["root"]
    output_dir.mkdir(parents=True, exist_ok=True)
    sections = ["# Issue #21: the shipped recipe against the base, step by step", "",
                generated_by(f"python -m spacy_dlfa report recipe {spec_path} {output_dir}"), "",
                *linked_notes(output_dir, NOTES, "What the numbers say, and the limits (written by hand)"),
                f"Which runs are which: `{spec_path}`. Scores on gold tokens unless a column says raw text.", ""]
    for task in (key for key in spec if key != "root"):
        entry, source = spec[task], TASKS[task].source_language
        langs = [source, *entry["targets"]]

        shipped = load_runs(spec_path, root, f"{task}.shipped", task, entry["shipped"], langs)
        base = load_runs(spec_path, root, f"{task}.base", task, entry["base"], langs)
        steps = [(step["label"], *(load_runs(spec_path, root, f"{task}.steps[{i}].{key}", task, step[key], langs) for key in ("runs", "against")))
                 for i, step in enumerate(entry["steps"])]
        sections += [f"## {TASKS[task].title}", "",
                     f"Shipped: `{shipped.pattern}` (seeds {seed_label(shipped.seeds)}); base: `{base.pattern}` (seeds {seed_label(base.seeds)}).", "",
                     "### Per language", "", *_scores_table(task, shipped, base, entry["targets"], entry.get("reference")), "",
                     "### The shipped recipe against the base", "", *_versus_table(task, shipped, base, entry["targets"]), ""]
        if steps:
            sections += ["### What each step added", "", *_steps_table(task, steps, entry["targets"]), ""]
        sections += ["### Goals", "", *_goals_table(task, entry["goals"], shipped, base, entry["targets"]), "",
                     f"Seeds: shipped {len(shipped.seeds)} ({seed_label(shipped.seeds)}), base {len(base.seeds)} ({seed_label(base.seeds)}). "
                     "Deltas pair the seeds both sides have (each side's all runs where they share none). The intervals resample test "
                     "sentences (each seed's score on the same resample), so they do not cover the variance between training runs; "
                     "the ± (std over seeds) shows that spread. English dev: the mean of the runs' `dev_score` (run.meta.json).", ""]
    report = output_dir / "recipe_results.md"
    report.write_text("\n".join(sections), encoding="utf8")
    msg.good(f"wrote {report}")
    return report
