"""Markdown tables and PNG charts from the metrics JSON of `spacy evaluate`.

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

from .results import load_metrics, load_raw_metrics
from .tasks import TASKS

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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    head, targets = _languages(table, TASKS[task].source_language)
    langs = head + targets
    width = 0.8 / max(1, len(table))
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(langs)), 3.5))
    for i, (variant, scores) in enumerate(table.items()):
        ax.bar([x + i * width for x in range(len(langs))], [scores.get(lang, 0.0) for lang in langs], width, label=variant)
    ax.set_xticks([x + width * (len(table) - 1) / 2 for x in range(len(langs))], langs)
    ax.set_ylabel(TASKS[task].metric)
    ax.set_ylim(0, 100)
    ax.set_title(f"{TASKS[task].title}: trained on {TASKS[task].source_language}, zero-shot on the others")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def write_report(metrics_dir: Path, output_dir: Path, title: str = "Zero-shot results") -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"# {title}", "", f"Scores in percent from `spacy evaluate`; metrics in `{metrics_dir}`. NER and POS: "
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
