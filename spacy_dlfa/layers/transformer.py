"""spacy-transformers' TransformerModel whose backward reaches the hidden layers.

The stock model hands only ``last_hidden_state`` to ``torch.autograd.backward``.
Here the forward pass attaches a :class:`HiddenGradients` sink to every doc's
``TransformerData``; fusion listeners add their lower-layer gradients to it,
and the backward pass pairs each layer that received a gradient with its
tensor. The last-layer gradient keeps the stock route, so stock listeners can
share the transformer with fusion listeners.

Sentence pairs (``spacy_dlfa.pairs``) get segment ids as ``tokenizer(a, b)``
would give them: 1 for the second text with BERT-style tokenizers.

With ``keep_hidden_layers`` set, each doc's ``TransformerData`` holds only
those hidden layers; the others become empty arrays, so indices (and the
errors of listeners asking for a dropped layer) stay the same.

Its shim is ``AveragedParamsHFShim`` (``shims.py``): ``nlp.use_params(optimizer.averages)``
puts the optimizer's averages into the transformer, which spacy-transformers' HFShim does not.

With ``words_as_input`` set, the tokenizer gets each span's tokens as words
instead of its text (``words.py``); the rest of the pass is the same.

With ``freeze_layers`` = k, the embeddings and the first k transformer layers
are not trained: their parameters do not require gradients, so autograd records
nothing below layer k+1 and the backward pass stops there.

With ``quantize`` = "int8", the encoder's linear layers run in int8 on CPU
(``quantize.py``), applied after initialisation and after every load, so the
config decides also for a saved pipeline; the saved weights stay fp32. On a
GPU the setting is ignored with a warning; training with it is refused.
"int8-smooth" reads the activation ranges that ``python -m spacy_dlfa calibrate``
saved in the model's attrs (``CALIBRATION_SETTING``).

With ``mixed_precision`` on CPU, the forward pass (prediction and training)
runs under bfloat16 autocast when the CPU computes bf16 natively
(``precision.py``), else in fp32 with a warning; applied, like ``quantize``,
after initialisation and after every load. On GPU it is thinc's CUDA autocast.
It cannot be combined with ``quantize``.
"""
import contextlib
import json
import os
import warnings
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from safetensors import safe_open
from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from spacy_transformers.layers import TransformerModel as StockTransformerModel
from spacy_transformers.layers.transformer_model import _convert_transformer_inputs
from spacy_transformers.layers.transformer_model import forward as stock_forward
from spacy_transformers.layers.transformer_model import init as stock_init
from thinc.api import ArgsKwargs, Model, get_array_module, xp2torch
from thinc.types import Floats3d
from transformers.file_utils import ModelOutput

from ..pairs import pair_segment_separator_id
from .precision import cpu_has_native_bf16
from .quantize import check_quantize, is_quantized, quantize_model
from .shims import AveragedParamsHFShim
from .words import SPACES_SETTING, WORDS_SETTING, words_forward

# torch's OpenMP pool does not survive fork: a worker forked after the parent ran
# torch on several threads hangs in its first parallel op (nlp.pipe(n_process=2)).
os.register_at_fork(after_in_child=lambda: torch.set_num_threads(1))

HIDDEN_GRADIENTS_KEY = "dlfa_hidden_gradients"
KEEP_SETTING = "keep_hidden_layers"
SEGMENT_SEPARATOR = "segment_separator_id"
FREEZE_SETTING = "freeze_layers"
QUANTIZE_SETTING = "quantize"
MIXED_PRECISION_SETTING = "mixed_precision"
CALIBRATION_SETTING = "int8_input_absmax"  # linear layer name -> largest |input| per channel


class HiddenGradients:
    """Gradients for hidden layers of one batch, allocated only for the layers used."""

    def __init__(self, shape: Tuple[int, ...], xp):
        self.shape = shape
        self.xp = xp
        self.by_layer: Dict[int, Floats3d] = {}

    def add(self, layer: int, rows: slice, gradient: Floats3d) -> None:
        if layer not in self.by_layer:
            self.by_layer[layer] = self.xp.zeros(self.shape, dtype="f")
        self.by_layer[layer][rows] += gradient


@dataclass
class FusableTransformerData(TransformerData):
    """A doc's TransformerData plus where to send hidden-layer gradients."""

    hidden_gradients: Optional[HiddenGradients] = None
    rows: slice = field(default_factory=lambda: slice(0, 0))


@dataclass
class FusableTransformerBatch(FullTransformerBatch):
    hidden_gradients: Optional[HiddenGradients] = None
    keep_hidden_layers: Optional[Sequence[int]] = None

    def split_by_doc(self) -> List[TransformerData]:
        doc_data = super().split_by_doc()
        start = 0
        fusable: List[TransformerData] = []
        for doc_spans, data in zip(self.spans, doc_data):
            if len(doc_spans) == 0 or len(doc_spans[0]) == 0:
                fusable.append(data)
                continue
            if self.keep_hidden_layers is not None:
                data.model_output = _keep_layers(data.model_output, self.keep_hidden_layers)
            if self.hidden_gradients is None:
                fusable.append(data)
                continue
            rows = slice(start, start + len(doc_spans))
            start += len(doc_spans)
            fusable.append(
                FusableTransformerData(
                    wordpieces=data.wordpieces,
                    model_output=data.model_output,
                    align=data.align,
                    hidden_gradients=self.hidden_gradients,
                    rows=rows,
                )
            )
        return fusable


class FusableTransformerModel(StockTransformerModel):
    """Stock TransformerModel with hidden states on and hidden-layer gradients."""

    def __init__(
        self,
        name: str,
        get_spans: Callable,
        tokenizer_config: dict = {},
        transformer_config: dict = {},
        mixed_precision: bool = False,
        grad_scaler_config: dict = {},
        freeze_embeddings: bool = False,
        keep_hidden_layers: Optional[Sequence[int]] = None,
        words_as_input: bool = False,
        spaces_as_written: bool = False,
        freeze_layers: int = 0,
        quantize: Optional[str] = None,
    ):
        check_quantize(quantize)
        if quantize is not None and mixed_precision:
            raise ValueError(
                f"quantize = {quantize!r} and mixed_precision = true: choose one (int8 layers take float32 inputs, "
                "not bfloat16); to load a pipeline saved with mixed_precision in int8, override both: "
                f'{{"quantize": {quantize!r}, "mixed_precision": False}}')
        if spaces_as_written and not words_as_input:
            raise ValueError(f"{SPACES_SETTING} = true needs {WORDS_SETTING} = true (the text's own tokenization "
                             "already marks the spaces as written)")
        if freeze_layers < 0:
            raise ValueError(f"freeze_layers = {freeze_layers}: expected 0 (train all layers) or more")
        super().__init__(
            name,
            get_spans,
            tokenizer_config=tokenizer_config,
            transformer_config={**transformer_config, "output_hidden_states": True},
            mixed_precision=mixed_precision,
            grad_scaler_config=dict(grad_scaler_config),  # HFShim writes "enabled" into it: not into the shared default
        )
        self.replace_callbacks(forward, init=init)
        hf_wrapper = self.layers[0]
        hf_wrapper.attrs["convert_inputs"] = _convert_inputs
        hf_wrapper.attrs["convert_outputs"] = _convert_outputs
        hf_wrapper.attrs["freeze_embeddings"] = freeze_embeddings
        hf_wrapper.attrs[FREEZE_SETTING] = freeze_layers
        # Same state, one method more: nlp.use_params(optimizer.averages) reaches the transformer (shims.py).
        hf_wrapper.shims[0].__class__ = AveragedParamsHFShim
        self.attrs[KEEP_SETTING] = None if keep_hidden_layers is None else list(keep_hidden_layers)
        self.attrs[WORDS_SETTING] = words_as_input
        self.attrs[SPACES_SETTING] = spaces_as_written
        self.attrs[QUANTIZE_SETTING] = quantize
        self.attrs[MIXED_PRECISION_SETTING] = mixed_precision
        self.attrs[CALIBRATION_SETTING] = None

    def copy(self) -> "FusableTransformerModel":
        copied = super().copy()
        copied.__class__ = FusableTransformerModel
        copied.replace_callbacks(forward, init=init)
        for setting in (KEEP_SETTING, WORDS_SETTING, SPACES_SETTING, QUANTIZE_SETTING, MIXED_PRECISION_SETTING,
                        CALIBRATION_SETTING):
            copied.attrs[setting] = self.attrs.get(setting)
        return copied

    def from_bytes(self, bytes_data: bytes) -> "FusableTransformerModel":
        # The config's inference settings decide, not the ones saved with the model's attrs, so a config override
        # (or an edited config.cfg) changes them for a saved pipeline.
        settings = {setting: self.attrs.get(setting) for setting in (KEEP_SETTING, QUANTIZE_SETTING, MIXED_PRECISION_SETTING)}
        super().from_bytes(bytes_data)
        self.attrs.update(settings)
        apply_quantize(self)
        apply_mixed_precision(self)
        return self


def _torch_devices(transformer: torch.nn.Module) -> List[str]:
    return sorted({parameter.device.type for parameter in transformer.parameters()})


def apply_quantize(model: Model) -> None:
    """Quantize the loaded transformer as ``quantize`` says, on CPU only (once)."""
    scheme = model.attrs.get(QUANTIZE_SETTING)
    transformer = model.transformer if model.attrs.get("has_transformer") else None
    if scheme is None or transformer is None or is_quantized(transformer):
        return
    devices = _torch_devices(transformer)
    if model.ops.device_type != "cpu" or devices != ["cpu"]:
        warnings.warn(f"spacy-dlfa.TransformerModel.v1: quantize = {scheme!r} ignored: int8 runs on CPU only, "
                      f"this transformer runs on {type(model.ops).__name__} ({', '.join(devices)}); it stays fp32", stacklevel=2)
        return
    quantize_model(transformer, scheme, model.attrs.get(CALIBRATION_SETTING))


def apply_mixed_precision(model: Model) -> None:
    """``mixed_precision`` on CPU: bfloat16 autocast where the CPU computes bf16 natively,
    else fp32 with a warning. Off CPU the shim keeps thinc's CUDA autocast and grad scaler.
    Before the transformer is loaded, the ops decide (it is loaded to their device)."""
    if not model.attrs.get(MIXED_PRECISION_SETTING) or model.ops.device_type != "cpu":
        return
    transformer = model.transformer if model.attrs.get("has_transformer") else None
    if transformer is not None and _torch_devices(transformer) != ["cpu"]:
        return
    if cpu_has_native_bf16():
        model.layers[0].shims[0].set_cpu_precision("bf16")
        return
    warnings.warn("spacy-dlfa.TransformerModel.v1: mixed_precision = true runs in fp32 on this CPU: it has no native "
                  "bfloat16 (AVX512-BF16, AMX-BF16 or ARM BF16), and emulated bf16 is slower than fp32", stacklevel=2)
    model.layers[0].shims[0].set_cpu_precision("fp32")


def init(model: Model, X=None, Y=None) -> None:
    if not model.attrs["has_transformer"] and Path(model.attrs["name"]).is_dir():
        check_model_folder(Path(model.attrs["name"]))
    apply_mixed_precision(model)  # before stock init's first forward pass
    with only_transformers_errors():  # a task-less checkpoint's unused pooler is "newly initialized"
        stock_init(model, X, Y)
    apply_quantize(model)


@contextlib.contextmanager
def only_transformers_errors() -> Iterator[None]:
    """transformers' logging at error level inside the block (its loading warnings name
    weights that no spaCy component uses), put back afterwards."""
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


def check_model_folder(folder: Path) -> None:
    """Fail on an unreadable JSON or safetensors file in a local model folder,
    naming it (Hugging Face's own errors often do not)."""
    for path in sorted(folder.glob("*.json")):
        try:
            json.loads(path.read_text(encoding="utf8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON (truncated or corrupt?): {error}") from None
    for path in sorted(folder.glob("*.safetensors")):
        try:
            with safe_open(str(path), "pt") as weights:
                weights.keys()
        except Exception as error:
            raise ValueError(f"{path}: unreadable weights (truncated or corrupt?): {error}") from None


def forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[FullTransformerBatch, Callable]:
    if is_train and model.attrs.get(QUANTIZE_SETTING) is not None:
        raise ValueError(f"spacy-dlfa.TransformerModel.v1: quantize = {model.attrs[QUANTIZE_SETTING]!r} is for inference "
                         "only; train with components.transformer.model.quantize = null and quantize when loading")
    if model.tokenizer is not None:
        model.layers[0].attrs[SEGMENT_SEPARATOR] = _segment_separator(model.tokenizer)
    run = words_forward if model.attrs.get(WORDS_SETTING) else stock_forward
    batch, backprop_stock = run(model, docs, is_train)
    if "last_hidden_state" not in batch.model_output:  # no tokens in any doc (words_forward)
        return batch, backprop_stock
    last = batch.model_output.last_hidden_state
    sink = HiddenGradients(tuple(last.shape), model.ops.xp) if is_train else None
    fusable = FusableTransformerBatch(
        spans=batch.spans,
        wordpieces=batch.wordpieces,
        model_output=batch.model_output,
        align=batch.align,
        hidden_gradients=sink,
        keep_hidden_layers=model.attrs.get(KEEP_SETTING),
    )
    if not is_train:
        return fusable, backprop_stock

    def backprop(d_batch: FullTransformerBatch) -> List[Doc]:
        d_output = ModelOutput(**d_batch.model_output)
        for layer, gradient in sink.by_layer.items():
            d_output[f"{HIDDEN_GRADIENTS_KEY}_{layer}"] = xp2torch(gradient, device=last.device)
        d_batch.model_output = d_output
        return backprop_stock(d_batch)

    return fusable, backprop


_SEGMENT_SEPARATORS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _segment_separator(tokenizer) -> Optional[int]:
    """pair_segment_separator_id, once per tokenizer rather than on every forward pass."""
    if tokenizer not in _SEGMENT_SEPARATORS:
        _SEGMENT_SEPARATORS[tokenizer] = pair_segment_separator_id(tokenizer)
    return _SEGMENT_SEPARATORS[tokenizer]


def _keep_layers(model_output: ModelOutput, keep: Sequence[int]) -> ModelOutput:
    hidden_states = model_output.get("hidden_states")
    if not hidden_states:
        return model_output
    # Layers the model lacks are skipped: a listener asking for one names its own fusion_layer.
    n = len(hidden_states)
    kept = {layer % n for layer in keep if -n <= layer < n}
    pruned = ModelOutput(**model_output)
    # a new array, not a view: a view would keep the dropped layer's batch buffer alive
    empty = get_array_module(hidden_states[0]).zeros((0, 0, 0), dtype=hidden_states[0].dtype)
    pruned["hidden_states"] = [h if i in kept else empty for i, h in enumerate(hidden_states)]
    return pruned


_FROZEN: "weakref.WeakSet" = weakref.WeakSet()


def _freeze_once(model: Model) -> None:
    """Apply freeze_embeddings and freeze_layers to the loaded torch module, once per module
    (init and from_bytes load a new one), not on every training step."""
    transformer = model.shims[0]._model
    if transformer in _FROZEN:
        return
    if model.attrs.get("freeze_embeddings", False):
        transformer.get_input_embeddings().weight.requires_grad_(False)
    if model.attrs.get(FREEZE_SETTING, 0):
        freeze_bottom_layers(transformer, model.attrs[FREEZE_SETTING])
    _FROZEN.add(transformer)


def _convert_inputs(model: Model, wordpieces, is_train: bool):
    if is_train:
        _freeze_once(model)
    inputs, backprop = _convert_transformer_inputs(model, wordpieces, is_train)
    separator = model.attrs.get(SEGMENT_SEPARATOR)
    if separator is not None and "token_type_ids" in inputs.kwargs:
        types = inputs.kwargs["token_type_ids"]
        inputs.kwargs["token_type_ids"] = pair_token_types(inputs.kwargs["input_ids"], separator).to(types.dtype)
    return inputs, backprop


def freeze_bottom_layers(transformer: torch.nn.Module, n_layers: int) -> None:
    """Stop training the embeddings and the first ``n_layers`` encoder layers
    (Wu & Dredze 2019, arXiv 1904.09077); the layers above stay trainable."""
    base = transformer.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or not hasattr(base, "embeddings"):
        raise ValueError(f"freeze_layers: {type(base).__name__} has no embeddings and encoder.layer to freeze (BERT-style models only)")
    if n_layers >= len(layers):
        raise ValueError(
            f"freeze_layers = {n_layers} freezes all {len(layers)} layers of the transformer: "
            "to keep the whole transformer fixed set grad_factor = 0 in the listeners")
    for module in (base.embeddings, *layers[:n_layers]):
        module.requires_grad_(False)


def pair_token_types(input_ids: torch.Tensor, separator: int) -> torch.Tensor:
    """1 from after the first separator up to the last one (BERT's segment B), else 0.
    Rows with fewer than two separators (single texts) stay all 0."""
    is_sep = (input_ids == separator).long()
    before = is_sep.cumsum(dim=1) - is_sep
    return ((before >= 1) & (before < is_sep.sum(dim=1, keepdim=True))).long()


def _convert_outputs(model: Model, inputs_outputs, is_train: bool):
    _, model_output = inputs_outputs

    def backprop(d_model_output: ModelOutput) -> ArgsKwargs:
        tensors: List[torch.Tensor] = []
        gradients: List[torch.Tensor] = []
        for key, gradient in d_model_output.items():
            if key.startswith(HIDDEN_GRADIENTS_KEY):
                layer = int(key.rsplit("_", 1)[1])
                tensors.append(model_output.hidden_states[layer])
            elif key == "output_0":
                # Listeners send last_hidden_state only; unsplit_by_doc names it output_0.
                tensors.append(model_output.last_hidden_state)
            else:
                raise ValueError(f"Unexpected transformer gradient '{key}': listeners may only send last_hidden_state.")
            gradients.append(gradient)
        # A fused layer at or below freeze_layers has no graph: nothing to send it.
        trainable = [(t, g) for t, g in zip(tensors, gradients) if t.requires_grad]
        tensors, gradients = [t for t, _ in trainable], [g for _, g in trainable]
        return ArgsKwargs(args=(tensors,), kwargs={"grad_tensors": gradients})

    return model_output, backprop
