"""Every PNG of the reports, on one matplotlib set-up (the Agg backend, 120 dpi, tight layout).

Each function takes what it draws (scores already collected, labels already
worded) and the file to write; none reads metrics.
"""
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

DPI = 120


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display); imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, output: Path) -> None:
    """Tight layout, write `output`, free the figure."""
    fig.tight_layout()
    fig.savefig(output, dpi=DPI)
    pyplot().close(fig)


def zero_shot_bars(table: Mapping[str, Mapping[str, float]], langs: Sequence[str], ylabel: str, title: str, output: Path) -> None:
    """One group of bars per language, one bar per variant (scores in percent, a missing score drawn as 0)."""
    width = 0.8 / max(1, len(table))
    fig, ax = pyplot().subplots(figsize=(max(6, 0.7 * len(langs)), 3.5))
    for i, (variant, scores) in enumerate(table.items()):
        ax.bar([x + i * width for x in range(len(langs))], [scores.get(lang, 0.0) for lang in langs], width, label=variant)
    ax.set_xticks([x + width * (len(table) - 1) / 2 for x in range(len(langs))], langs)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(loc="lower right")
    save(fig, output)


def layer_sweep(layers: Sequence[int], lines: Sequence[Tuple[List[float], str, str]], references: Sequence[Tuple[float, str, str]],
                chosen: Optional[int], ylabel: str, output: Path) -> None:
    """Score by fused layer: `lines` (values per layer, style, label), `references` (horizontal lines: value, style,
    label) and, with `chosen`, the layer chosen on English dev."""
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    for values, style, label in lines:
        ax.plot(layers, values, style, label=label)
    for value, style, label in references:
        ax.axhline(value, color="grey", ls=style, label=label)
    if chosen is not None:
        ax.axvline(chosen, color="red", alpha=0.3, label="chosen on English dev")
    ax.set_xlabel("fused lower layer")
    ax.set_ylabel(ylabel)
    ax.set_xticks(layers)
    ax.legend(fontsize=7)
    save(fig, output)


def layer_heatmap(values: List[List[float]], layers: Sequence[int], langs: Sequence[str], differences: bool, title: str,
                  output: Path) -> None:
    """Language x layer grid of `values`: differences (signed, diverging colours centred on 0) or plain scores."""
    fig, ax = pyplot().subplots(figsize=(1 + 0.8 * len(layers), 0.4 * len(langs) + 1.2))
    span = max(abs(v) for row in values for v in row) or 1.0
    image = ax.imshow(values, cmap="RdBu" if differences else "viridis", vmin=-span if differences else None,
                      vmax=span if differences else None, aspect="auto")
    ax.set_xticks(range(len(layers)), [str(k) for k in layers])
    ax.set_yticks(range(len(langs)), langs)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:+.1f}" if differences else f"{v:.1f}", ha="center", va="center", fontsize=7)
    ax.set_xlabel("fused lower layer")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax)
    save(fig, output)


def robustness_by_size(points: Dict[str, List[Tuple[float, float, str]]], ylabel: str, title: str, output: Path) -> None:
    """Per variant a line of (parameters in millions, attacked/clean ratio, model name) points, each point labelled."""
    fig, ax = pyplot().subplots(figsize=(6.5, 4))
    for variant, line in points.items():
        ax.plot([p[0] for p in line], [p[1] for p in line], marker="o", label=variant)
        for x, y, name in line:
            ax.annotate(name, (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend()
    save(fig, output)
