"""Token vectors that fuse the last transformer layer with one lower layer.

For each doc: align the wordpieces of the last layer and of layer
``fusion_layer`` to the doc's tokens, then either pool each to tokens and fuse
(``fuse_at="token"``) or fuse the aligned wordpiece rows and pool the result
(``fuse_at="wordpiece"``). Gradients go back to both layers: the last layer's
through the stock route, the lower layer's into the batch's HiddenGradients.
"""
from typing import Callable, List, Optional, Tuple

from spacy_transformers.align import apply_alignment
from spacy_transformers.data_classes import TransformerData
from thinc.api import Model
from thinc.types import Floats2d, Floats3d, Ragged
from transformers.file_utils import ModelOutput

from .fusion import FusionT
from .transformer import KEEP_SETTING, FusableTransformerData

InT = List[TransformerData]
OutT = List[Floats2d]
FUSE_AT = ("token", "wordpiece")


def fused_trfs2arrays(
    fusion: FusionT,
    pooling: Model[Ragged, Floats2d],
    fusion_layer: int,
    fuse_at: str = "token",
    grad_factor: float = 1.0,
) -> Model[InT, OutT]:
    if fuse_at not in FUSE_AT:
        raise ValueError(f"fuse_at = {fuse_at!r} is not supported: use one of {', '.join(FUSE_AT)}.")
    return Model(
        "fused-trfs2arrays",
        forward,
        layers=[fusion, pooling],
        attrs={"fusion_layer": fusion_layer, "fuse_at": fuse_at, "grad_factor": grad_factor},
        dims={"nO": fusion.get_dim("nO")},
    )


def resolve_fusion_layer(fusion_layer: int, n_hidden_states: int) -> int:
    """Index into ``hidden_states`` (0 = embedding output, L = last layer).

    Negative values count from the top as in Python: -1 is the last layer.
    """
    depth = n_hidden_states - 1
    if not -n_hidden_states <= fusion_layer <= depth:
        raise ValueError(
            f"fusion_layer = {fusion_layer} is out of range for a transformer with "
            f"{depth} layers: use 0..{depth} (0 = embedding output, {depth} = last layer) "
            f"or -{n_hidden_states}..-1 counting from the top."
        )
    return fusion_layer % n_hidden_states


def forward(model: Model[InT, OutT], trf_datas: InT, is_train: bool) -> Tuple[OutT, Callable]:
    fusion, pooling = model.layers
    grad_factor = model.attrs["grad_factor"]
    by_token = model.attrs["fuse_at"] == "token"
    present = [i for i, data in enumerate(trf_datas) if _has_tokens(data)]
    outputs: List[Floats2d] = [model.ops.alloc2f(0, model.get_dim("nO")) for _ in trf_datas]
    if not present:
        return outputs, lambda d_outputs: []
    layer = _check_inputs(model, trf_datas[present[0]])
    last_rows, lower_rows, get_d_srcs = [], [], []
    for i in present:
        data = trf_datas[i]
        last, get_d_last = _align(model, data, data.model_output.last_hidden_state)
        lower, get_d_lower = _align(model, data, _lower_layer(data, layer))
        aligned_lengths = last.lengths
        if by_token:
            last, bp_pool_last = pooling(last, is_train)
            lower, bp_pool_lower = pooling(lower, is_train)
            get_d_last = _compose(get_d_last, bp_pool_last)
            get_d_lower = _compose(get_d_lower, bp_pool_lower)
            last_rows.append(last)
            lower_rows.append(lower)
        else:
            last_rows.append(last.dataXd)
            lower_rows.append(lower.dataXd)
        get_d_srcs.append((aligned_lengths, get_d_last, get_d_lower))
    lengths = model.ops.asarray1i([len(rows) for rows in last_rows])
    fused, bp_fusion = fusion((Ragged(model.ops.flatten(last_rows), lengths), Ragged(model.ops.flatten(lower_rows), lengths)), is_train)
    bp_pools = []
    for i, fused_rows, (aligned_lengths, _, _) in zip(present, model.ops.unflatten(fused.dataXd, lengths), get_d_srcs):
        if by_token:
            outputs[i] = fused_rows
        else:
            outputs[i], bp_pool = pooling(Ragged(fused_rows, aligned_lengths), is_train)
            bp_pools.append(bp_pool)

    def backprop(d_outputs: OutT) -> List[TransformerData]:
        if by_token:
            d_fused = [d_outputs[i] for i in present]
        else:
            d_fused = [bp_pool(d_outputs[i]).dataXd for i, bp_pool in zip(present, bp_pools)]
        d_last_all, d_lower_all = bp_fusion(Ragged(model.ops.flatten(d_fused), lengths))
        d_lasts = model.ops.unflatten(d_last_all.dataXd, lengths)
        d_lowers = model.ops.unflatten(d_lower_all.dataXd, lengths)
        d_trf_datas: List[TransformerData] = []
        for i, (aligned_lengths, get_d_last, get_d_lower), d_last, d_lower in zip(present, get_d_srcs, d_lasts, d_lowers):
            data = trf_datas[i]
            shape = data.model_output.last_hidden_state.shape
            if not by_token:
                d_last, d_lower = Ragged(d_last, aligned_lengths), Ragged(d_lower, aligned_lengths)
            d_src_last = get_d_last(d_last).reshape(shape) * grad_factor
            d_src_lower = get_d_lower(d_lower).reshape(shape) * grad_factor
            if isinstance(data, FusableTransformerData) and data.hidden_gradients is not None:
                data.hidden_gradients.add(layer, data.rows, d_src_lower)
            d_trf_datas.append(
                TransformerData(
                    model_output=ModelOutput(last_hidden_state=d_src_last),
                    wordpieces=data.wordpieces,
                    align=data.align,
                )
            )
        return d_trf_datas

    return outputs, backprop


def _has_tokens(data: TransformerData) -> bool:
    return "last_hidden_state" in data.model_output and data.model_output.last_hidden_state.size > 0


def _lower_layer(data: TransformerData, layer: int) -> Floats3d:
    if "hidden_states" in data.model_output:
        hidden = data.model_output.hidden_states[layer]
        if hidden.size == 0:
            raise ValueError(
                f"The fusion listener needs hidden layer {layer}, but the transformer dropped it: "
                f"add {layer} to {KEEP_SETTING} in the transformer's model block."
            )
        return hidden
    # TransformerListener's stand-in for docs the transformer did not process
    # (e.g. during nlp.initialize) is all zeros and has no hidden states.
    return data.model_output.last_hidden_state


def _align(model: Model, data: TransformerData, tensor: Floats3d) -> Tuple[Ragged, Callable]:
    return apply_alignment(model.ops, data.align, model.ops.reshape2f(tensor, -1, tensor.shape[-1]))


def _compose(get_d_src: Callable, bp_pool: Callable) -> Callable:
    return lambda d_pooled: get_d_src(bp_pool(d_pooled))


def _check_inputs(model: Model, data: TransformerData) -> int:
    last = data.model_output.last_hidden_state
    hidden_states: Optional[list] = data.model_output.get("hidden_states")
    if not hidden_states and (isinstance(data, FusableTransformerData) or model.ops.xp.any(last)):
        raise ValueError(
            "The fusion listener needs the transformer's hidden states, but "
            "doc._.trf_data has none: use the spacy-dlfa.TransformerModel.v1 "
            "architecture, or set transformer_config = {\"output_hidden_states\": true} "
            "in the transformer's model block."
        )
    width = last.shape[-1]
    fusion_width = model.get_dim("nO")
    if fusion_width != width:
        raise ValueError(
            f"The fusion layer's width = {fusion_width} does not match the transformer's "
            f"hidden size {width}: set width = {width} in the listener's fusion block."
        )
    if not hidden_states:
        return model.attrs["fusion_layer"]
    return resolve_fusion_layer(model.attrs["fusion_layer"], len(hidden_states))
