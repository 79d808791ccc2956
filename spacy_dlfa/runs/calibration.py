"""Calibration for ``quantize = "int8-smooth"``: run a trained pipeline in fp32 on
text, record the largest absolute input of each smoothed linear layer per channel
(``layers.quantize.record_input_absmax``) and save them in the transformer model's
attrs, so that the pipeline loads in "int8-smooth" anywhere, its wheel included.
The fp32 weights and predictions do not change.

    python -m spacy_dlfa calibrate training/ner_dlfa/model-best corpus/ner/train.spacy --output OUT

Rule of thumb from SmoothQuant: a few hundred sentences of the training language;
we use the English training set, never a target language.
"""
import contextlib
import shutil
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from wasabi import msg

from ..checkpoints.folders import check_output_dir, move_into_place, temp_sibling
from ..corpora.common import bare
from ..layers.quantize import is_quantized, record_input_absmax, smoothed_layer_names
from ..layers.transformer import CALIBRATION_SETTING, QUANTIZE_SETTING, FusableTransformerModel

CALIBRATED_SCHEME = "int8-smooth"


def transformer_models(nlp: Language) -> List[Tuple[str, FusableTransformerModel]]:
    """The pipeline's components whose model is ours (``spacy-dlfa.TransformerModel.v1``)."""
    return [(name, pipe.model) for name, pipe in nlp.pipeline if isinstance(getattr(pipe, "model", None), FusableTransformerModel)]


def drop_calibration(nlp: Language) -> None:
    """Forget the saved input ranges of every transformer of ``nlp`` (after its weights were replaced: the
    ranges belong to the weights they were recorded with)."""
    for _, model in transformer_models(nlp):
        model.attrs[CALIBRATION_SETTING] = None


def calibrate_pipeline(nlp: Language, docs: Iterable[Doc], batch_size: Optional[int] = None) -> Dict[str, int]:
    """Run ``nlp`` (fp32) over ``docs`` and store every transformer's input ranges; returns the
    number of layers calibrated per component."""
    models = transformer_models(nlp)
    if not models:
        raise ValueError("no component of this pipeline has a spacy-dlfa.TransformerModel.v1 to calibrate")
    for name, model in models:
        if is_quantized(model.transformer):
            raise ValueError(f"component {name!r} is already quantized ({QUANTIZE_SETTING} = "
                             f"{model.attrs.get(QUANTIZE_SETTING)!r}): calibrate the pipeline loaded in fp32")
    names = {component: smoothed_layer_names(model.transformer, CALIBRATED_SCHEME) for component, model in models}
    with contextlib.ExitStack() as stack:
        found = {component: stack.enter_context(record_input_absmax(model.transformer, names[component]))
                 for component, model in models}
        texts = sum(1 for _ in nlp.pipe(docs, batch_size=batch_size))
    if texts == 0:
        raise ValueError("no text to calibrate on: the corpus is empty")
    for component, model in models:
        model.attrs[CALIBRATION_SETTING] = {layer: found[component][layer].tolist() for layer in names[component]}
    return {component: len(layers) for component, layers in names.items()}


def calibrate(model_path: Path, corpus_path: Path, output: Optional[Path] = None, sentences: int = 512,
              overwrite: bool = False) -> Path:
    """Calibrate the pipeline at ``model_path`` on the first ``sentences`` docs of a ``.spacy`` file
    (their tokens, as in training) and write it to ``output`` (default: in place), atomically: a
    temporary sibling renamed into place, so an interruption leaves the old folder whole. Another
    non-empty ``output`` is replaced only with ``overwrite``."""
    output = Path(output or model_path)
    in_place = output.resolve() == Path(model_path).resolve()
    check_output_dir(output, overwrite=overwrite or in_place)
    nlp = spacy.load(model_path)
    docs = list(DocBin().from_disk(corpus_path).get_docs(nlp.vocab))[:sentences]
    counts = calibrate_pipeline(nlp, (bare(doc, nlp.vocab) for doc in docs))
    temporary = temp_sibling(output, "calibrate")
    try:
        nlp.to_disk(temporary)
        move_into_place(temporary, output)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    layers = ", ".join(f"{component}: {count} layers" for component, count in counts.items())
    msg.good(f"{output}: input ranges of {layers} from {len(docs)} docs of {corpus_path}; "
             f'load with {{"components": {{"transformer": {{"model": {{"quantize": "{CALIBRATED_SCHEME}"}}}}}}}}')
    return output
