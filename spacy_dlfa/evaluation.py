"""Zero-shot evaluation of one trained pipeline on many languages with `spacy evaluate`."""
import importlib
import json
import time
from pathlib import Path
from typing import Dict, Sequence

from wasabi import msg

# The module, not the function that spacy.cli re-exports under the same name.
spacy_evaluate = importlib.import_module("spacy.cli.evaluate").evaluate


def evaluate_languages(model: Path, corpus_dir: Path, languages: Sequence[str], output_dir: Path, gpu_id: int = -1) -> Dict[str, dict]:
    """Run `spacy evaluate` (gold tokenization) on ``corpus_dir/test-<lang>.spacy``
    for every language and write ``output_dir/<lang>.json``."""
    missing = [str(corpus_dir / f"test-{lang}.spacy") for lang in languages if not (corpus_dir / f"test-{lang}.spacy").exists()]
    if missing:
        raise FileNotFoundError(f"evaluation data missing: {', '.join(missing)}")
    output_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for number, lang in enumerate(languages, 1):
        start = time.perf_counter()
        output = output_dir / f"{lang}.json"
        results[lang] = spacy_evaluate(str(model), corpus_dir / f"test-{lang}.spacy", output=output, use_gpu=gpu_id, gold_preproc=True)
        scores = ", ".join(f"{key} {value:.3f}" for key, value in results[lang].items() if key in ("ents_f", "tag_acc", "pos_acc", "cats_macro_f"))
        msg.text(f"[{number}/{len(languages)}] {lang}: {scores} ({time.perf_counter() - start:.0f} s) -> {output}")
    return results


def load_metrics(metrics_dir: Path) -> Dict[str, dict]:
    """``{lang: scores}`` from the JSON files that evaluate_languages wrote."""
    return {path.stem: json.loads(path.read_text(encoding="utf8")) for path in sorted(metrics_dir.glob("*.json"))}
