"""Markdown tables and PNG charts from the metrics JSON of `spacy evaluate`.

Layout read: ``<metrics_dir>/<task>_<variant>/<lang>.json``, e.g.
``metrics/ner_dlfa/de.json``. The average is over the target languages only
(the source language, English, is shown but not averaged).
"""
from pathlib import Path
from statistics import mean
from typing import Dict, List, Tuple

from wasabi import msg

from .evaluation import load_metrics
from .tasks import TASKS

METRIC = {
    "ner": ("ents_f", "NER F1"),
    "pos": ("tag_acc", "UPOS accuracy"),
    "xnli": ("cats_micro_f", "XNLI accuracy"),
    "pawsx": ("cats_micro_f", "PAWS-X accuracy"),
}
Table = Dict[str, Dict[str, float]]  # variant -> lang -> score in percent


def collect(metrics_dir: Path, task: str) -> Table:
    key = METRIC[task][0]
    table: Table = {}
    for run_dir in sorted(metrics_dir.glob(f"{task}_*")):
        scores = {lang: 100.0 * data[key] for lang, data in load_metrics(run_dir).items() if data.get(key) is not None}
        if scores:
            table[run_dir.name[len(task) + 1 :]] = scores
    return table


def _languages(table: Table, source: str) -> Tuple[List[str], List[str]]:
    langs = sorted({lang for scores in table.values() for lang in scores})
    return ([source] if source in langs else []), [lang for lang in langs if lang != source]


def markdown_table(task: str, table: Table) -> str:
    source = TASKS[task].source_language
    head, targets = _languages(table, source)
    variants = list(table)
    lines = [f"| {METRIC[task][1]} | " + " | ".join(variants) + " |", "|---|" + "---:|" * len(variants)]
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
    ax.set_ylabel(METRIC[task][1])
    ax.set_ylim(0, 100)
    ax.set_title(f"{TASKS[task].title}: trained on {TASKS[task].source_language}, zero-shot on the others")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(output, dpi=120)
    plt.close(fig)


def write_report(metrics_dir: Path, output_dir: Path, title: str = "Zero-shot results") -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    sections = [f"# {title}", "", f"Scores in percent from `spacy evaluate` (gold tokenization); metrics in `{metrics_dir}`.", ""]
    for task in METRIC:
        table = collect(metrics_dir, task)
        if not table:
            msg.warn(f"no {task} metrics under {metrics_dir}")
            continue
        chart = output_dir / f"{task}_zero_shot.png"
        plot(task, table, chart)
        sections += [f"## {TASKS[task].title}", "", markdown_table(task, table), "", f"![{task} chart]({chart.name})", ""]
    report = output_dir / "zero_shot.md"
    report.write_text("\n".join(sections), encoding="utf8")
    msg.good(f"wrote {report}")
    return report
