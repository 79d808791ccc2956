"""One pipeline trained on both token tasks at once: the NER and the POS recipe on one shared transformer.

Assembling two fine-tuned single-task pipelines (:mod:`.sharing`) loses most of each task's score, so the
pipeline for both tasks is trained jointly. :func:`joint_config` writes its training config from the two shipped
recipes (``reports/recipe.json``), each built as ``run recipe`` builds it (:func:`~.recipe.recipe_config`): the
NER recipe's config (transformer, optimizer, tokenizer, training settings) plus the POS recipe's ``tagger``, whose
listener reads the same transformer; each listener keeps its recipe's fused layer and fusion module, and
``keep_hidden_layers`` holds both layers. The two recipes must agree on the transformer (:func:`.sharing.check_shareable`
names what differs). Train and dev corpora read both tasks' DocBins interleaved (``spacy-dlfa.InterleavedCorpus.v1``):
a WikiANN doc has no tags and a UD doc no entities, so each component learns only from its own task's docs.
The best model is chosen by ``ents_f`` and ``tag_acc`` weighted equally.
"""
import copy
from pathlib import Path
from typing import Any, Dict

import spacy
from thinc.api import Config

from ..layers.transformer import KEEP_SETTING
from ..tasks import TASKS
from .recipe import load_recipe, recipe_config
from .sharing import check_shareable

TASK_ORDER = ("ner", "pos")  # the first task's config is the joint config's base
SPLITS = ("train", "dev")
READER = "spacy-dlfa.InterleavedCorpus.v1"
READER_SETTINGS = ("gold_preproc", "max_length", "limit", "augmenter")  # taken from the base config's corpora
SCORE_WEIGHTS = {"ents_f": 0.5, "tag_acc": 0.5}


def corpus_files(corpus_dir: Path, option: str) -> Dict[str, Path]:
    """split -> ``<corpus_dir>/<split>.spacy``; a clear error naming the option when one is missing."""
    files = {split: Path(corpus_dir) / f"{split}.spacy" for split in SPLITS}
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        raise ValueError(f"{option} {corpus_dir}: no {' or '.join(missing)} in it (expected train.spacy and dev.spacy, "
                         "written by `python -m spacy_dlfa data prepare`)")
    return files


def listener(config: Config, task: str) -> Dict[str, Any]:
    return config["components"][TASKS[task].component]["model"]["tok2vec"]


def null_weights(config: Config) -> Dict[str, None]:
    """Every score weight the pipeline's factories declare, null (spaCy would fill in their defaults, e.g. the
    tagger's ``pos_acc`` 0.0): only :data:`SCORE_WEIGHTS` choose the best model."""
    nlp = spacy.blank(config["nlp"]["lang"])  # spaCy registers its factories when a pipeline is first made
    return {key: None for name in config["nlp"]["pipeline"]
            for key in nlp.get_factory_meta(config["components"][name]["factory"]).default_score_weights}


def joint_config(recipe_file: Path, ner_corpus: Path, pos_corpus: Path, configs_dir: Path, transformer: str,
                 hidden_width: int, max_steps: int = 0, batch_size: int = 0, seed: int = 0) -> Config:
    """The joint training config (see the module doc); ``max_steps`` / ``batch_size`` 0 keep the NER config's."""
    corpora = {"ner": (ner_corpus, "--ner-corpus"), "pos": (pos_corpus, "--pos-corpus")}
    files = {task: corpus_files(*corpora[task]) for task in TASK_ORDER}
    recipes = {task: load_recipe(recipe_file, task) for task in TASK_ORDER}
    configs = {task: recipe_config(recipes[task], configs_dir, corpora[task][0], transformer, hidden_width, max_steps,
                                   batch_size, seed) for task in TASK_ORDER}
    base, other = TASK_ORDER
    name, added = check_shareable([configs[base], configs[other]], [f"{recipe_file} ({base})", f"{recipe_file} ({other})"])
    wanted = TASKS[other].component
    if added != [wanted]:
        raise ValueError(f"{recipe_file}: the {other} recipe's config has components {added} besides {name!r}, expected [{wanted!r}]")
    config = copy.deepcopy(configs[base])
    config["nlp"]["pipeline"] = [*configs[base]["nlp"]["pipeline"], wanted]
    config["components"][wanted] = copy.deepcopy(configs[other]["components"][wanted])
    listener(config, other)["upstream"] = listener(config, base)["upstream"]
    layers = ", ".join(f"${{components.{TASKS[task].component}.model.tok2vec.fusion_layer}}" for task in TASK_ORDER)
    config["components"][name]["model"][KEEP_SETTING] = f"[{layers}]"
    for split in SPLITS:
        config["paths"].pop(split, None)
        config["paths"].update({f"{task}_{split}": str(files[task][split]) for task in TASK_ORDER})
        settings = {key: config["corpora"][split][key] for key in READER_SETTINGS if key in config["corpora"][split]}
        config["corpora"][split] = {"@readers": READER, **settings,
                                    "paths": {task: f"${{paths.{task}_{split}}}" for task in TASK_ORDER}}
    config["training"]["score_weights"] = {**null_weights(config), **SCORE_WEIGHTS}
    return Config(config)  # recipe_config has fitted each recipe's schedule to max_steps
