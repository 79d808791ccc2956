"""``reports/zero_shot.md``: markdown tables and PNG charts from the main job's ``spacy evaluate`` scores.

Layout read: ``<metrics_dir>/<task>_<variant>/scores.json`` (``results.py``), e.g.
``metrics/ner_dlfa/scores.json``. The average is over the target languages only
(the source language, English, is shown but not averaged). For NER and POS
each variant has two columns: the gold tokens (``<lang>``) and the raw
text tokenized by the pipeline (``<lang>.raw``; NER F1 by character span,
``ents_char_f``, the gold column's measure; "–" where there is no raw-text score).
"""
from pathlib import Path
from statistics import mean
from typing import Dict, List, Tuple

from wasabi import msg

from ..runs.results import load_metrics, load_raw_metrics
from ..tasks import TASKS
from . import generated_by
from .plots import zero_shot_bars

Table = Dict[str, Dict[str, float]]  # variant -> lang -> score in percent


def collect(metrics_dir: Path, task: str, raw: bool = False) -> Table:
    """Scores of every ``<task>_<variant>`` folder: gold tokens, or with ``raw`` the raw-text files."""
    spec = TASKS[task]  # raw text: NER by character span, what the gold column measures
    key = spec.raw_score_key if raw else spec.score_key
    if key is None:
        return {}
    table: Table = {}
    for run_dir in sorted(metrics_dir.glob(f"{task}_*")):
        metrics = load_raw_metrics(run_dir) if raw else load_metrics(run_dir)
        scores = {lang: 100.0 * data[key] for lang, data in metrics.items() if data.get(key) is not None}
        if scores:
            table[run_dir.name[len(task) + 1 :]] = scores
    return table


def with_raw_text(task: str, gold: Table, raw: Table) -> Table:
    """Columns ``<variant>: gold tokens`` and ``<variant>: raw text`` side by side (token tasks only)."""
    if TASKS[task].raw_score_key is None:
        return gold
    table: Table = {}
    for variant, scores in gold.items():
        table[f"{variant}: gold tokens"] = scores
        table[f"{variant}: raw text"] = raw.get(variant, {})
    return table


def _languages(table: Table, source: str) -> Tuple[List[str], List[str]]:
    langs = sorted({lang for scores in table.values() for lang in scores})
    return ([source] if source in langs else []), [lang for lang in langs if lang != source]


def markdown_table(task: str, table: Table) -> str:
    source = TASKS[task].source_language
    head, targets = _languages(table, source)
    variants = list(table)
    lines = [f"| {TASKS[task].metric} | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
    for lang in head + targets:
        lines.append(f"| {lang} | " + " | ".join(_cell(table[v].get(lang)) for v in variants) + " |")
    averages = [mean(table[v][lang] for lang in targets) if all(lang in table[v] for lang in targets) and targets else None for v in variants]
    lines.append(f"| **average of {len(targets)} targets** | " + " | ".join(_cell(a, bold=True) for a in averages) + " |")
    return "\n".join(lines)


def _cell(value, bold: bool = False) -> str:
    if value is None:
        return "–"
    return f"**{value:.1f}**" if bold else f"{value:.1f}"


def plot(task: str, table: Table, output: Path) -> None:
    """Bar chart of the table's variants per language (source first)."""
    head, targets = _languages(table, TASKS[task].source_language)
    spec = TASKS[task]
    zero_shot_bars(table, head + targets, spec.metric, f"{spec.title}: trained on {spec.source_language}, zero-shot on the others", output)


def write_report(metrics_dir: Path, output_dir: Path, title: str = "Zero-shot results") -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"# {title}", "", generated_by(f"python -m spacy_dlfa report zero-shot {metrics_dir} {output_dir}"), "", f"Scores in percent from `spacy evaluate`; metrics in `{metrics_dir}`. NER and POS: "
                "*gold tokens* as `spacy evaluate --gold-preproc` (`<lang>` in each run's `scores.json`), *raw text* tokenized by the pipeline and "
                "aligned to the gold tokens as `spacy evaluate` (`<lang>.raw`; NER F1 by character span), "
                "– where not evaluated.", ""]
    for task in TASKS:
        table = collect(metrics_dir, task)
        if not table:
            msg.warn(f"no {task} metrics under {metrics_dir}")
            continue
        chart = output_dir / f"{task}_zero_shot.png"
        plot(task, table, chart)
        shown = with_raw_text(task, table, collect(metrics_dir, task, raw=True))
        sections += [f"## {TASKS[task].title}", "", markdown_table(task, shown), "", f"![{task} chart]({chart.name})", ""]
    report = output_dir / "zero_shot.md"
    report.write_text("\n".join(sections), encoding="utf8")
    msg.good(f"wrote {report}")
    return report
