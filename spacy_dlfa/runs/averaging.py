"""Across runs: one pipeline whose weights are the uniform average of several runs' weights.

The runs share one config and differ only in the seed (and the train/dev
paths); all start from the same pretrained transformer, so their fine-tuned
transformers lie close together and their elementwise mean is a model of its
own (a "model soup"; Schmidt et al. 2023, arXiv 2305.16834, for zero-shot
transfer). Three groups of weights:

- ``transformer``: the Hugging Face model's floating-point tensors, averaged.
  Tensors equal in every run (the frozen word embeddings) are kept as they are.
- ``fusion``: the torch modules inside the task components (AIF, ConcatFusion),
  averaged.
- ``heads``: the thinc weights of the task components (the tagger's softmax,
  the NER's parser layers). ``heads="average"`` averages them as well;
  ``heads="first"`` keeps the first run's. Heads of different seeds start from
  different random weights, so their hidden units are not aligned in general;
  a linear softmax on the averaged encoder may still work. Which is better is
  measured, not assumed: the command reports how far each group's runs lie
  from their average.
"""
from pathlib import Path
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy
import spacy
import torch
from spacy.language import Language
from spacy.util import dict_to_dot, load_config
from spacy_transformers.layers.hf_shim import HFShim
from thinc.api import Model

from .calibration import drop_calibration

HEADS = ("average", "first")
# Settings that may differ between the runs of one recipe.
FREE_SETTINGS = frozenset({"system.seed", "training.seed", "paths.train", "paths.dev", "corpora.train.path", "corpora.dev.path"})
META_KEY = "spacy_dlfa_averaged"
SHOWN_DIFFERENCES = 5


def config_differences(configs: Sequence[Dict[str, Any]]) -> Dict[str, List[Any]]:
    """Settings (dotted paths) whose values are not the same in every config, seeds and train/dev paths
    excepted: path -> the value in each config (``"<missing>"`` where a config lacks it)."""
    flat = [dict_to_dot(config) for config in configs]
    paths = sorted({path for settings in flat for path in settings} - FREE_SETTINGS)
    values = {path: [settings.get(path, "<missing>") for settings in flat] for path in paths}
    return {path: found for path, found in values.items() if any(value != found[0] for value in found[1:])}


def average_arrays(arrays: Sequence[numpy.ndarray]) -> numpy.ndarray:
    """Elementwise mean, accumulated in float64 and returned in the first array's dtype."""
    shapes = {tuple(array.shape) for array in arrays}
    if len(shapes) != 1:
        raise ValueError(f"Cannot average arrays of different shapes {sorted(shapes)}")
    total = numpy.zeros(arrays[0].shape, dtype="float64")
    for array in arrays:
        total += array
    return (total / len(arrays)).astype(arrays[0].dtype)


def relative_spread(arrays: Sequence[numpy.ndarray], mean: numpy.ndarray) -> Tuple[float, float]:
    """(sum over runs of ||a - mean||^2 / n, ||mean||^2): summed over a group's tensors, their ratio's
    square root is the runs' typical distance from their average relative to its norm."""
    squared = sum(float(numpy.sum((array.astype("float64") - mean) ** 2)) for array in arrays) / len(arrays)
    return squared, float(numpy.sum(mean.astype("float64") ** 2))


def _models(nlp: Language) -> Iterator[Tuple[str, Model]]:
    for name, pipe in nlp.pipeline:
        model = getattr(pipe, "model", None)
        if isinstance(model, Model):
            yield name, model


def weight_slots(nlp: Language) -> List[Tuple[str, str, Any, str]]:
    """Every weight of the pipeline, in a fixed order: (group, readable name, owner, key).

    The owner is a torch state dict (transformer, fusion) or a thinc node (heads)."""
    slots: List[Tuple[str, str, Any, str]] = []
    seen = set()
    for pipe_name, model in _models(nlp):
        for node_index, node in enumerate(model.walk()):
            if id(node) in seen:
                continue
            seen.add(id(node))
            for shim_index, shim in enumerate(node.shims):
                group = "transformer" if isinstance(shim, HFShim) else "fusion"
                state = shim._model.state_dict()
                for key in state:
                    slots.append((group, f"{pipe_name}: {node.name}.shims[{shim_index}].{key}", state, key))
            for param in node.param_names:
                if node.has_param(param):
                    slots.append(("heads", f"{pipe_name}: {node.name} (#{node_index}).{param}", node, param))
    return slots


def _read(owner: Any, key: str) -> numpy.ndarray:
    if isinstance(owner, Model):
        return numpy.asarray(owner.ops.to_numpy(owner.get_param(key)))
    return owner[key].detach().cpu().numpy()


def _write(owner: Any, key: str, value: numpy.ndarray) -> None:
    if isinstance(owner, Model):
        owner.set_param(key, owner.ops.asarray(value))
    else:
        with torch.no_grad():
            owner[key].copy_(torch.from_numpy(value))


def check_compatible(pipelines: Sequence[Language], names: Sequence[str]) -> None:
    """Same components, labels (in the same order) and weight names and shapes in every pipeline."""
    first = pipelines[0]
    for other, name in zip(pipelines[1:], names[1:]):
        if other.pipe_names != first.pipe_names:
            raise ValueError(f"{name} has components {other.pipe_names}, {names[0]} {first.pipe_names}")
        for pipe_name in first.pipe_names:
            for attribute in ("move_names", "labels"):
                mine, theirs = getattr(first.get_pipe(pipe_name), attribute, None), getattr(other.get_pipe(pipe_name), attribute, None)
                if mine is not None and tuple(mine) != tuple(theirs or ()):
                    raise ValueError(f"The {pipe_name} {attribute} differ (or their order does): {names[0]} {list(mine)}, {name} {list(theirs or ())}")
        slots, other_slots = weight_slots(first), weight_slots(other)
        if [slot[1] for slot in slots] != [slot[1] for slot in other_slots]:
            raise ValueError(f"{name} and {names[0]} hold different weights: the same config should build the same model")
        for (_, label, owner, key), (_, _, other_owner, other_key) in zip(slots, other_slots):
            shape, other_shape = _read(owner, key).shape, _read(other_owner, other_key).shape
            if shape != other_shape:
                raise ValueError(f"{label} has shape {shape} in {names[0]}, {other_shape} in {name}")


def average_pipelines(pipelines: Sequence[Language], heads: str = "average", names: Sequence[str] = ()) -> Tuple[Language, Dict[str, float]]:
    """Put the average of every pipeline's weights into the first pipeline (heads: see the module doc).

    Returns it with, per group, the runs' root-mean-square distance from the average relative to the
    average's norm (0 where the runs agree). Floating-point tensors only; others must be equal."""
    if heads not in HEADS:
        raise ValueError(f"heads = {heads!r}: use one of {', '.join(HEADS)}")
    if len(pipelines) < 2:
        raise ValueError(f"Averaging needs two or more runs, got {len(pipelines)}")
    names = list(names) or [f"run {i + 1}" for i in range(len(pipelines))]
    check_compatible(pipelines, names)
    all_slots = [weight_slots(nlp) for nlp in pipelines]
    sums: Dict[str, List[float]] = {}
    for position, (group, label, owner, key) in enumerate(all_slots[0]):
        arrays = [_read(slots[position][2], slots[position][3]) for slots in all_slots]
        if not numpy.issubdtype(arrays[0].dtype, numpy.floating):
            if any(not numpy.array_equal(array, arrays[0]) for array in arrays[1:]):
                raise ValueError(f"{label} is not a floating-point weight and differs between the runs")
            continue
        if group == "heads" and heads == "first":
            continue
        if all(numpy.array_equal(array, arrays[0]) for array in arrays[1:]):
            continue
        mean = average_arrays(arrays)
        spread, norm = relative_spread(arrays, mean)
        totals = sums.setdefault(group, [0.0, 0.0])
        totals[0] += spread
        totals[1] += norm
        _write(owner, key, mean)
    if "transformer" in sums:
        drop_calibration(pipelines[0])  # int8-smooth's ranges were recorded on the first run's weights
    return pipelines[0], {group: (spread / norm) ** 0.5 if norm else 0.0 for group, (spread, norm) in sums.items()}


def pipeline_config(run: Path) -> Dict[str, Any]:
    """A trained pipeline folder's config.cfg; a clear error for a training output folder or anything else."""
    config_path = run / "config.cfg"
    if not config_path.is_file() or not (run / "meta.json").is_file():
        hint = f": pass {run / 'model-best'} or {run / 'model-last'}" if (run / "model-best").is_dir() else ""
        raise ValueError(f"{run} is not a spaCy pipeline folder (config.cfg and meta.json expected){hint}")
    return load_config(config_path)


def check_same_config(runs: Sequence[Path]) -> None:
    differences = config_differences([pipeline_config(run) for run in runs])
    if differences:
        listed = "; ".join(f"{path}: " + ", ".join(f"{run} = {value!r}" for run, value in zip(runs, values))
                           for path, values in list(differences.items())[:SHOWN_DIFFERENCES])
        if len(differences) > SHOWN_DIFFERENCES:
            listed += f"; and {len(differences) - SHOWN_DIFFERENCES} more"
        raise ValueError(f"The runs were trained with different settings ({listed}); only the seed and the "
                         f"train/dev paths may differ between runs that are averaged")


def average_runs(output: Path, runs: Sequence[Path], heads: str = "average", overwrite: bool = False) -> Dict[str, float]:
    """Write to ``output`` the pipeline whose weights average those of ``runs`` (pipeline folders).

    Returns the relative spread of each group (see :func:`average_pipelines`)."""
    if heads not in HEADS:
        raise ValueError(f"heads = {heads!r}: use one of {', '.join(HEADS)}")
    if len(runs) < 2:
        raise ValueError(f"Averaging needs two or more runs, got {len(runs)}")
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise ValueError(f"{output} exists and is not empty: choose another folder or pass --overwrite")
    check_same_config(runs)
    averaged, spread = average_pipelines([spacy.load(run) for run in runs], heads, [str(run) for run in runs])
    averaged.meta[META_KEY] = {"runs": [str(run) for run in runs], "heads": heads, "relative_spread": spread}
    output.mkdir(parents=True, exist_ok=True)  # Language.to_disk makes only the last folder
    averaged.to_disk(output)
    return spread
