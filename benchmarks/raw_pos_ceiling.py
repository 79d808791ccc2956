"""How much of the raw-text POS gap the tokenizer alone explains, from committed results.

    python benchmarks/raw_pos_ceiling.py metrics/combo/pos/aif_last_s0 metrics/combo/pos/aif_last_s1

spaCy scores ``tag_acc`` on raw text as the F-score of (gold token, tag) pairs: a
predicted token counts only where it lies inside one gold token, so a gold token
that no predicted token fits in (French ``du`` for UD's ``de le``, Arabic
clitics) is a miss whatever the tagger does. With t the share of such
"taggable" gold tokens (``benchmarks/results/raw_tokenization.md``, the tagger's
``MultilingualTokenizer.v1``) and the tagger as accurate (a) on them as on gold
tokens, precision stays a and recall falls to t·a, so the raw score is
a · 2t / (1 + t): the gap a tagger cannot close without a tokenizer that splits
syntactic words. Printed per run and target beside the measured gap.
"""
import json
from pathlib import Path
from typing import Dict, List

import typer

RESULTS = Path(__file__).resolve().parent / "results" / "raw_tokenization.md"


def taggable_shares(table: Path = RESULTS, column: str = "multilingual taggable") -> Dict[str, float]:
    """Per UD treebank, the share of taggable gold tokens for one tokenizer column of the table."""
    lines = [line for line in table.read_text(encoding="utf8").splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    index = header.index(column)
    shares = {}
    for line in lines[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        corpus, name = cells[0].split()[:2]
        if corpus == "ud":
            shares[name] = float(cells[index]) / 100
    return shares


def ceiling_gap(gold: float, taggable: float) -> float:
    """Gold-token accuracy minus the raw-text F-score a tagger that is as accurate on taggable tokens reaches."""
    return gold - gold * 2 * taggable / (1 + taggable)


def main(runs: List[Path] = typer.Argument(..., help="Metrics folders of POS runs evaluated on raw text (scores.json)")) -> None:
    shares = taggable_shares()
    print(f"{'run':>24} {'target':>8} {'gold':>6} {'raw':>6} {'gap':>6} {'taggable':>9} {'tokenizer gap':>14}")
    for run in runs:
        scores = json.loads((run / "scores.json").read_text(encoding="utf8"))
        for target in sorted(name for name in scores if f"{name}.raw" in scores and name in shares):
            gold, raw = 100 * scores[target]["tag_acc"], 100 * scores[f"{target}.raw"]["tag_acc"]
            print(f"{run.name:>24} {target:>8} {gold:6.2f} {raw:6.2f} {gold - raw:6.2f} {100 * shares[target]:9.1f} "
                  f"{ceiling_gap(gold, shares[target]):14.2f}")


if __name__ == "__main__":
    typer.run(main)
