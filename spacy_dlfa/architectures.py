"""Every registered builder of spacy-dlfa.

The names are declared as ``spacy_architectures`` entry points in setup.cfg,
so configs resolve them without importing spacy_dlfa by hand.
"""
from pathlib import Path
from typing import Callable, Dict, List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from spacy_transformers.data_classes import FullTransformerBatch
from spacy_transformers.layers import TransformerListener
from thinc.api import Model, chain
from thinc.optimizers import FloatOrSeq
from thinc.types import Floats2d, Ragged

from .corpora.interleaved import InterleavedCorpus
from .layers.fusion import AIFModule, ConcatFusionModule, FusionT, MeanFusionModule, wrap_fusion_module
from .layers.listener import fused_trfs2arrays
from .layers.transformer import FusableTransformerModel
from .optimizers import UniformAveragingOptimizer


@registry.architectures("spacy-dlfa.TransformerModel.v1")
def build_transformer_model(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    freeze_embeddings: bool = False,
    keep_hidden_layers: Optional[List[int]] = None,
    words_as_input: bool = False,
    spaces_as_written: bool = False,
    freeze_layers: int = 0,
    quantize: Optional[str] = None,
) -> Model[List[Doc], FullTransformerBatch]:
    """spacy-transformers' TransformerModel with ``output_hidden_states`` on,
    whose backward pass also routes gradients into the hidden layers that
    fusion listeners used. Use it in the ``transformer`` component.

    name (str): Hugging Face model name or local folder, e.g.
        ``bert-base-multilingual-cased`` or a folder written by
        ``python -m spacy_dlfa data model``.
    get_spans (Callable[[List[Doc]], List[List[Span]]]): Splits docs into
        spans that fit the model's window, e.g. ``spacy-transformers.strided_spans.v1``.
    tokenizer_config (dict): Settings for ``AutoTokenizer.from_pretrained``.
    transformer_config (dict): Settings for ``AutoConfig.from_pretrained``;
        ``output_hidden_states`` is always set to true.
    mixed_precision (bool): Autocast the transformer's forward pass, in
        prediction and training. On GPU: thinc's CUDA autocast (float16)
        with its gradient scaler. On CPU: bfloat16 autocast (matmuls in
        bf16, layer norms and softmax in fp32, outputs handed on in fp32)
        when the CPU computes bf16 natively (AVX512-BF16 / AMX-BF16 on x86,
        BF16 on ARM, as ``torch.cpu.get_capabilities()`` reports), without a
        gradient scaler; elsewhere fp32 with a warning, since emulated bf16
        is slower. Applied when the transformer is initialised or loaded,
        so ``spacy.load(path, config={"components": {"transformer":
        {"model": {"mixed_precision": True}}}})`` turns it on for a saved
        pipeline; weights stay fp32. Cannot be combined with ``quantize``
        (an error). False (default): fp32.
    grad_scaler_config (dict): PyTorch gradient-scaler settings.
    freeze_embeddings (bool): Keep the word-embedding matrix fixed in
        training. On the multilingual models it holds most parameters (96M of
        118M for e5-small); freezing makes CPU training several times faster.
    keep_hidden_layers (Optional[List[int]]): Hidden layers that each doc's
        ``doc._.trf_data`` keeps (0 = embedding output, negative = from the
        top); the others are dropped to save memory. Set it to the listeners'
        fusion layers, e.g. ``[${components.ner.model.tok2vec.fusion_layer}]``;
        ``[]`` for stock listeners only; None (default) keeps all. A listener
        whose layer was dropped raises an error naming this setting.
    words_as_input (bool): Give the tokenizer each span's tokens as words
        (``is_split_into_words``, alignment from ``word_ids()``) instead of
        the span's text, so that every token gets wordpieces of its own even
        with no space before it (CJK text as written, UD contractions such as
        ``de le``); whitespace tokens get none. Needs a fast tokenizer. False
        (default, what pipelines trained before this setting do) tokenizes
        the text and aligns by characters, as spacy-transformers; the shipped
        configs set true. Saved with the model's attrs: a saved pipeline
        reads its input as it was trained to.
    spaces_as_written (bool): With ``words_as_input``, a word gets the
        tokenizer's space marker (SentencePiece ``▁``) only where whitespace
        precedes it in the text or it starts a span, as when the text itself
        is tokenized: ``▁Hello ,`` and ``▁北 京`` rather than ``▁Hello ▁ ,`` and
        ``▁ 北 ▁ 京``. No effect on WordPiece tokenizers, which mark no spaces.
        False (default, what pipelines trained before this setting do) marks
        every word. Saved with the model's attrs, like ``words_as_input``; an
        error without it.
    freeze_layers (int): Do not train the embeddings and the first
        ``freeze_layers`` transformer layers (Wu & Dredze 2019, arXiv
        1904.09077); autograd records nothing below the first trained layer,
        so each step is cheaper. 0 (default) trains them all. A fused lower
        layer inside the frozen part still feeds the fusion; it just sends no
        gradient. Must be below the model's number of layers.
    quantize (Optional[str]): ``"int8"``: run the encoder's linear layers
        in int8 (torch dynamic quantization, per-channel weights; the
        feed-forward output projections stay fp32) for faster CPU inference;
        ``"int8-all"``: those too (faster, further from fp32; a warning on a
        CPU without int8 dot products, where activations get 7 bits);
        ``"int8-smooth"``: all of them, the feed-forward outputs' inputs
        smoothed per channel (SmoothQuant) by the activation ranges that
        ``python -m spacy_dlfa calibrate`` saved with the pipeline (an error
        without them).
        Applied when the transformer is initialised or loaded, so
        ``spacy.load(path, config={"components": {"transformer": {"model":
        {"quantize": "int8"}}}})`` turns it on for a saved pipeline, whose
        weights stay fp32 on disk. Ignored with a warning on GPU; training
        with it set is an error; with ``mixed_precision`` true an error (set
        it false in the same override). None (default): fp32.
    """
    return FusableTransformerModel(
        name,
        get_spans,
        tokenizer_config=tokenizer_config,
        transformer_config=transformer_config,
        mixed_precision=mixed_precision,
        grad_scaler_config=grad_scaler_config,
        freeze_embeddings=freeze_embeddings,
        keep_hidden_layers=keep_hidden_layers,
        words_as_input=words_as_input,
        spaces_as_written=spaces_as_written,
        freeze_layers=freeze_layers,
        quantize=quantize,
    )


@registry.architectures("spacy-dlfa.FusionListener.v1")
def build_fusion_listener(
    fusion: FusionT,
    pooling: Model[Ragged, Floats2d],
    fusion_layer: int = 6,
    fuse_at: str = "token",
    grad_factor: float = 1.0,
    upstream: str = "*",
) -> Model[List[Doc], List[Floats2d]]:
    """A listener for a downstream component (``tagger``, ``ner``, ...) that
    fuses the transformer's last layer with layer ``fusion_layer``.

    fusion (Model[Tuple[Ragged, Ragged], Ragged]): The fusion layer, e.g.
        ``spacy-dlfa.AIF.v1``. Its width must equal the transformer's hidden size.
    pooling (Model[Ragged, Floats2d]): Reduces a token's wordpiece vectors to
        one vector, e.g. ``reduce_mean.v1``.
    fusion_layer (int): Index into the hidden states: 0 is the embedding
        output, 1..L the transformer layers (L = last). Negative values count
        from the top as in Python (-1 = L, -2 = L-1). Out of range is an error.
    fuse_at (str): ``"token"``: pool both layers to tokens, then fuse.
        ``"wordpiece"``: fuse the doc's aligned wordpieces, then pool.
    grad_factor (float): Multiplies the gradients sent to the transformer
        (0 freezes the transformer with respect to this component).
    upstream (str): Name of the Transformer component to listen to, or ``"*"``.
    """
    listener = TransformerListener(upstream_name=upstream)
    model: Model = chain(listener, fused_trfs2arrays(fusion, pooling, fusion_layer, fuse_at, grad_factor))
    model.set_ref("listener", listener)
    return model


@registry.architectures("spacy-dlfa.AIF.v1")
def build_aif(
    width: int,
    reduction: int = 4,
    dropout: float = 0.0,
    gate_init: Optional[float] = None,
    normalize_inputs: bool = False,
    lr_scale: float = 1.0,
) -> FusionT:
    """Attentional information fusion: ``w * last + (1 - w) * lower`` with
    ``w = sigmoid(local(s) + global(mean_doc(s)))`` and ``s = last + lower``;
    each branch is Linear(E, E/r) -> LayerNorm -> ReLU -> Linear(E/r, E).

    width (int): Hidden size E of the transformer.
    reduction (int): Bottleneck ratio r.
    dropout (float): Dropout on the fused output.
    gate_init (Optional[float]): None: default initialisation of every
        weight. A value p in (0, 1): the gate starts at w = p everywhere
        (p near 1 starts from the last layer alone).
    normalize_inputs (bool): Layer-normalise both inputs (no learned scale)
        before the gate and the mix, so neither dominates by its scale.
    lr_scale (float): Learning rate of the fusion parameters relative to the
        optimizer's learning rate.
    """
    if gate_init is not None and not 0.0 < gate_init < 1.0:
        raise ValueError(f"gate_init = {gate_init} must lie strictly between 0 and 1, or be null.")
    if reduction < 1 or reduction > width:
        raise ValueError(f"reduction = {reduction} must lie in 1..{width} (the width).")
    module = AIFModule(width, reduction, dropout, gate_init, normalize_inputs)
    return wrap_fusion_module("aif", module, width, lr_scale)


@registry.architectures("spacy-dlfa.MeanFusion.v1")
def build_mean_fusion(width: int, normalize_inputs: bool = False) -> FusionT:
    """Ablation: the fixed mean ``0.5 * last + 0.5 * lower``.

    width (int): Hidden size E of the transformer.
    normalize_inputs (bool): Layer-normalise both inputs before the mean.
    """
    return wrap_fusion_module("mean-fusion", MeanFusionModule(normalize_inputs), width)


@registry.architectures("spacy-dlfa.ConcatFusion.v1")
def build_concat_fusion(
    width: int,
    dropout: float = 0.0,
    normalize_inputs: bool = False,
    init_to_last: bool = False,
    lr_scale: float = 1.0,
) -> FusionT:
    """Ablation: ``Linear([last; lower])`` from 2E to E.

    width (int): Hidden size E of the transformer.
    dropout (float): Dropout on the fused output.
    normalize_inputs (bool): Layer-normalise both inputs before concatenating.
    init_to_last (bool): Start as the identity on the last layer.
    lr_scale (float): Learning rate of the projection relative to the optimizer's.
    """
    module = ConcatFusionModule(width, dropout, normalize_inputs, init_to_last)
    return wrap_fusion_module("concat-fusion", module, width, lr_scale)


@registry.optimizers("spacy-dlfa.UniformAveragingAdam.v1")
def build_uniform_averaging_adam(
    learn_rate: FloatOrSeq = 0.001,
    *,
    L2: FloatOrSeq = 0.0,
    L2_is_weight_decay: bool = True,
    beta1: FloatOrSeq = 0.9,
    beta2: FloatOrSeq = 0.999,
    eps: FloatOrSeq = 1e-8,
    grad_clip: FloatOrSeq = 1.0,
    use_averages: bool = True,
    average_start: int = 0,
) -> UniformAveragingOptimizer:
    """thinc's ``Adam.v1`` (same settings and defaults; averages always kept)
    whose ``optimizer.averages``, which spaCy's training loop evaluates and
    saves, are the uniform mean of the weights after every update past
    ``average_start``, instead of thinc's moving average (weight ~ s^8 on
    update s). Put it under ``[training.optimizer]``.

    learn_rate (FloatOrSeq): Learning rate or schedule, as for Adam.v1.
    L2 (FloatOrSeq): L2 penalty or weight decay.
    L2_is_weight_decay (bool): Decoupled weight decay (AdamW) instead of an L2 gradient term.
    beta1 (FloatOrSeq): First-moment decay.
    beta2 (FloatOrSeq): Second-moment decay.
    eps (FloatOrSeq): Adam's epsilon.
    grad_clip (FloatOrSeq): Gradient norm clip.
    use_averages (bool): Must be true; accepted so that a config written for
        Adam.v1 switches by overriding ``@optimizers`` and ``average_start`` only.
    average_start (int): Updates before averaging starts; until then the
        averages are the current weights. E.g. half of ``training.max_steps``
        averages the second half of training; 0 averages every update.
    """
    if not use_averages:
        raise ValueError("use_averages = false: spacy-dlfa.UniformAveragingAdam.v1 always averages; use Adam.v1 for no averages")
    return UniformAveragingOptimizer(learn_rate, L2=L2, L2_is_weight_decay=L2_is_weight_decay, beta1=beta1, beta2=beta2,
                                     eps=eps, grad_clip=grad_clip, average_start=average_start)


@registry.readers("spacy-dlfa.InterleavedCorpus.v1")
def build_interleaved_corpus(
    paths: Dict[str, Path],
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
) -> InterleavedCorpus:
    """The examples of several tasks' ``.spacy`` files, interleaved (one of
    each file in turn, then the rest of the longer ones), for training one
    pipeline on several tasks. Each example keeps its own file's annotation;
    what it lacks (a UD doc's entities, a WikiANN doc's tags) stays missing,
    so the other task's component learns nothing from it. Put it under
    ``[corpora.train]`` / ``[corpora.dev]``, the files in a sub-section
    ``[corpora.train.paths]``.

    paths (Dict[str, Path]): Name -> ``.spacy`` file (or folder of them), read
        in this order, e.g. ``ner = ${paths.ner_train}``, ``pos =
        ${paths.pos_train}``; the names appear in errors. A missing file is an error.
    gold_preproc (bool): As ``spacy.Corpus.v1``: one example per sentence, on
        the gold tokens.
    max_length (int): As ``spacy.Corpus.v1``: skip (or, with gold_preproc,
        split) longer docs; 0 keeps all.
    limit (int): The first ``limit`` docs of each file; 0 reads all.
    augmenter (Optional[Callable]): As ``spacy.Corpus.v1``'s, applied to every file.
    """
    return InterleavedCorpus(paths, gold_preproc=gold_preproc, max_length=max_length, limit=limit, augmenter=augmenter)
