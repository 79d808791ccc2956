"""What the AIF gate does: the weight ``w`` it gives the last layer (``1 - w``
goes to the lower layer), per language, on a trained pipeline."""
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from wasabi import msg

from ..layers.fusion import AIFModule


def aif_modules(nlp: Language) -> List[AIFModule]:
    modules = [shim._model for _, pipe in nlp.pipeline if hasattr(pipe, "model") for node in pipe.model.walk() for shim in node.shims if isinstance(getattr(shim, "_model", None), AIFModule)]
    if not modules:
        raise ValueError("the pipeline has no spacy-dlfa.AIF.v1 fusion layer")
    return modules


@contextmanager
def recorded_gates(modules: Sequence[AIFModule]) -> Iterator[List[numpy.ndarray]]:
    """Collect every gate tensor (tokens x width) the modules compute."""
    gates: List[numpy.ndarray] = []
    originals = [module.gate for module in modules]

    def recording(original):
        def gate(*args, **kwargs):
            weight = original(*args, **kwargs)
            gates.append(weight.detach().cpu().numpy())
            return weight

        return gate

    for module, original in zip(modules, originals):
        module.gate = recording(original)
    try:
        yield gates
    finally:
        for module in modules:
            del module.gate  # back to the class method


def gate_statistics(model: Path, corpus_dir: Path, languages: Sequence[str], limit: int = 500, output: Optional[Path] = None) -> Dict[str, Dict[str, float]]:
    """Mean, spread and percentiles of the last-layer weight ``w`` over all
    tokens and dimensions of ``test-<lang>.spacy`` (first ``limit`` docs)."""
    nlp = spacy.load(model)
    modules = aif_modules(nlp)
    results = {}
    for lang in languages:
        docs = list(DocBin().from_disk(corpus_dir / f"test-{lang}.spacy").get_docs(nlp.vocab))[:limit]
        with recorded_gates(modules) as gates:
            list(nlp.pipe(docs))
        weights = numpy.concatenate([g.ravel() for g in gates])
        per_token = numpy.concatenate([g.mean(axis=1) for g in gates])
        results[lang] = {
            "mean": float(weights.mean()),
            "std": float(weights.std()),
            "p10": float(numpy.percentile(weights, 10)),
            "p90": float(numpy.percentile(weights, 90)),
            "token_mean_std": float(per_token.std()),
            "docs": len(docs),
        }
        msg.text(f"{lang}: w (last layer) mean {results[lang]['mean']:.3f}, std {results[lang]['std']:.3f}, p10-p90 {results[lang]['p10']:.3f}-{results[lang]['p90']:.3f}")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=1), encoding="utf8")
    return results
