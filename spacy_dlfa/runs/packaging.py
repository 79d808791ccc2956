"""meta.json for `spacy package`: name, version and the measured zero-shot scores."""
from pathlib import Path

import srsly
from wasabi import msg

from ..tasks import TASKS
from .results import load_metrics

# every task's TaskSpec.package_keys, in task order
PACKAGE_KEYS = tuple(dict.fromkeys(key for spec in TASKS.values() for key in spec.package_keys))


def write_package_meta(model_dir: Path, metrics_dir: Path, output: Path, name: str, version: str) -> Path:
    meta = srsly.read_json(model_dir / "meta.json")
    metrics = load_metrics(metrics_dir)
    if not metrics:
        raise FileNotFoundError(f"no metrics JSON in {metrics_dir}: run the evaluate command first")
    meta.update(
        name=name,
        version=version,
        description=(
            "Trained on English only and evaluated zero-shot on the languages under 'zero_shot' "
            "(scores from spacy evaluate, gold tokenization). The transformer's last layer is "
            "fused with one lower layer (spacy-dlfa, DLFA/AIF)."
        ),
        zero_shot={lang: {key: scores[key] for key in PACKAGE_KEYS if scores.get(key) is not None} for lang, scores in metrics.items()},
    )
    srsly.write_json(output, meta)
    msg.good(f"wrote {output} with zero-shot scores for {len(metrics)} languages")
    return output
