"""One pipeline for two tasks: the components of two single-task pipelines on one shared transformer.

Two pipelines trained with the same transformer settings (e.g. ``ner`` and ``tagger``, both fine-tuned
from the same e5-small) are assembled into one: the first pipeline's config and components, plus the
second pipeline's task components, whose listeners now read the first pipeline's transformer. Each
task keeps its own listener (its fused layer and fusion module) and head; ``keep_hidden_layers``
holds the fused layers of both. The shared transformer's weights are chosen by ``transformer``:

- ``average``: the elementwise mean of the two fine-tuned transformers ("model merging"; they start
  from the same pretrained weights, so their mean is a model of its own, as in :mod:`.averaging`),
- ``first`` / ``second``: one pipeline's transformer as it is (the other task then reads a
  transformer it was not trained with).

A user who needs both tasks then pays one transformer forward pass instead of two.
"""
import copy
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
import torch
from spacy.language import Language
from spacy.util import load_model_from_config
from thinc.api import Config

from ..layers.transformer import KEEP_SETTING
from .averaging import average_arrays, config_differences, pipeline_config, weight_slots
from .calibration import drop_calibration

TRANSFORMER_CHOICES = ("average", "first", "second")
TRANSFORMER_FACTORY = "transformer"
META_KEY = "spacy_dlfa_shared"
SHOWN_DIFFERENCES = 5


def transformer_name(config: Dict[str, Any], path: Path) -> str:
    """The one component of the pipeline made by the ``transformer`` factory."""
    names = [name for name in config["nlp"]["pipeline"] if config["components"].get(name, {}).get("factory") == TRANSFORMER_FACTORY]
    if len(names) != 1:
        raise ValueError(f"{path}: expected one component with factory = \"{TRANSFORMER_FACTORY}\" in [nlp] pipeline, found {names or 'none'}")
    return names[0]


def shared_settings(config: Dict[str, Any], name: str) -> Dict[str, Any]:
    """The settings two pipelines must agree on to share their transformer: the transformer component
    (but the hidden layers its listeners keep), the transformer path and the language. The raw-text tokenizer
    is not one of them: the shared pipeline has the first pipeline's (the shipped NER configs cut hyphenated words
    as WikiANN does, the tagger configs as UD does)."""
    component = copy.deepcopy(dict(config["components"][name]))
    component.get("model", {}).pop(KEEP_SETTING, None)
    return {"transformer": component, "paths": {"transformer": config.get("paths", {}).get("transformer")},
            "nlp": {"lang": config["nlp"]["lang"]}}


def check_shareable(configs: Sequence[Dict[str, Any]], paths: Sequence[Path]) -> Tuple[str, List[str]]:
    """(the transformer's component name, the second pipeline's task components); a clear error naming the
    differing settings when the two pipelines were not built on the same transformer settings."""
    names = [transformer_name(config, path) for config, path in zip(configs, paths)]
    if names[0] != names[1]:
        raise ValueError(f"The transformer components are named differently: {paths[0]} {names[0]!r}, {paths[1]} {names[1]!r}")
    differences = config_differences([shared_settings(config, names[0]) for config in configs])
    if differences:
        listed = "; ".join(f"{path}: {paths[0]} = {values[0]!r}, {paths[1]} = {values[1]!r}"
                           for path, values in list(differences.items())[:SHOWN_DIFFERENCES])
        if len(differences) > SHOWN_DIFFERENCES:
            listed += f"; and {len(differences) - SHOWN_DIFFERENCES} more"
        raise ValueError(f"The two pipelines do not share a transformer architecture ({listed}); only pipelines built on "
                         "the same transformer settings can share one")
    added = [name for name in configs[1]["nlp"]["pipeline"] if name != names[0]]
    clashes = [name for name in added if name in configs[0]["nlp"]["pipeline"]]
    if clashes:
        raise ValueError(f"Both pipelines have a component named {', '.join(map(repr, clashes))}: {paths[0]} "
                         f"{configs[0]['nlp']['pipeline']}, {paths[1]} {configs[1]['nlp']['pipeline']}")
    if not added:
        raise ValueError(f"{paths[1]} has no component besides the transformer {names[0]!r}")
    return names[0], added


def kept_layers(configs: Sequence[Config], name: str) -> Optional[List[int]]:
    """The hidden layers the shared transformer keeps: every pipeline's (None, all of them, if one keeps all)."""
    kept = [config["components"][name]["model"].get(KEEP_SETTING) for config in configs]
    if any(layers is None for layers in kept):
        return None
    return sorted({int(layer) for layers in kept for layer in layers})


def shared_config(configs: Sequence[Config], interpolated: Sequence[Config], name: str, added: Sequence[str]) -> Config:
    """The first config with the second's task components added, both listeners' layers kept and the
    score weights of both tasks (halved, so that they still sum to one)."""
    config = copy.deepcopy(configs[0])
    config["nlp"]["pipeline"] = [*configs[0]["nlp"]["pipeline"], *added]
    for component in added:
        config["components"][component] = copy.deepcopy(configs[1]["components"][component])
    config["components"][name]["model"][KEEP_SETTING] = kept_layers(interpolated, name)
    weights = [interpolated_config["training"].get("score_weights", {}) for interpolated_config in interpolated]
    config["training"]["score_weights"] = {key: None if value is None else value / 2
                                           for score_weights in weights for key, value in score_weights.items()}
    return Config(config)


def transformer_weights(nlp: Language, name: str) -> Dict[str, torch.Tensor]:
    """The shared transformer's Hugging Face state dict, key -> tensor (writing a tensor writes the model)."""
    return {key: owner[key] for group, label, owner, key in weight_slots(nlp) if group == "transformer" and label.startswith(f"{name}: ")}


def set_transformer(target: Language, pipelines: Sequence[Language], name: str, choice: str, paths: Sequence[Path]) -> None:
    """Put the chosen transformer weights (see the module doc) into ``target``'s transformer."""
    weights = [transformer_weights(nlp, name) for nlp in pipelines]
    if list(weights[0]) != list(weights[1]):
        only = sorted(set(weights[0]) ^ set(weights[1]))[:SHOWN_DIFFERENCES]
        raise ValueError(f"The transformers of {paths[0]} and {paths[1]} hold different weights (e.g. {only})")
    target_weights = transformer_weights(target, name)
    for key, tensor in target_weights.items():
        arrays = [found[key].detach().cpu().numpy() for found in weights]
        if arrays[0].shape != arrays[1].shape:
            raise ValueError(f"{key} has shape {arrays[0].shape} in {paths[0]}, {arrays[1].shape} in {paths[1]}")
        if choice == "average" and numpy.issubdtype(arrays[0].dtype, numpy.floating):
            value = average_arrays(arrays)
        elif choice == "average":
            if not numpy.array_equal(arrays[0], arrays[1]):
                raise ValueError(f"{key} is not a floating-point weight and differs between {paths[0]} and {paths[1]}")
            value = arrays[0]
        else:
            value = arrays[TRANSFORMER_CHOICES.index(choice) - 1]
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(numpy.ascontiguousarray(value)))


def share_pipelines(first: Path, second: Path, transformer: str = "average") -> Language:
    """The pipeline of ``first``'s components and ``second``'s task components on one shared transformer."""
    if transformer not in TRANSFORMER_CHOICES:
        raise ValueError(f"transformer = {transformer!r}: use one of {', '.join(TRANSFORMER_CHOICES)}")
    paths = [first, second]
    configs = [pipeline_config(path) for path in paths]
    name, added = check_shareable(configs, paths)
    interpolated = [config.interpolate() for config in configs]
    config = shared_config(configs, interpolated, name, added)
    nlp = load_model_from_config(config, auto_fill=False, validate=True)
    nlp.from_disk(first, exclude=added)
    for component in added:
        nlp.get_pipe(component).from_disk(second / component, exclude=["vocab"])
    pipelines = [spacy.load(path) for path in paths]
    set_transformer(nlp, pipelines, name, transformer, paths)
    if transformer != "first":
        drop_calibration(nlp)  # int8-smooth's ranges were recorded on the first pipeline's weights
    kept = config["components"][name]["model"][KEEP_SETTING]  # the model's too: the config decides on load
    nlp.meta.pop("performance", None)  # the first pipeline's dev scores
    nlp.meta[META_KEY] = {"pipelines": [str(path) for path in paths], "transformer": transformer, KEEP_SETTING: kept}
    return nlp


def share_runs(output: Path, first: Path, second: Path, transformer: str = "average", overwrite: bool = False) -> Language:
    """Write :func:`share_pipelines`' pipeline to ``output`` (an ordinary spaCy pipeline folder)."""
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise ValueError(f"{output} exists and is not empty: choose another folder or pass --overwrite")
    nlp = share_pipelines(first, second, transformer)
    output.mkdir(parents=True, exist_ok=True)  # Language.to_disk makes only the last folder
    nlp.to_disk(output)
    return nlp
