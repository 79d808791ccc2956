"""Build pipelines from the shipped configs on the tiny test model."""
from pathlib import Path
from typing import Dict, List, Optional

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import load_config, load_model_from_config

from conftest import REPO, SENTENCES, TINY_WIDTH

COMPONENT = {"ner": "ner", "tagger": "tagger"}


def tiny_overrides(task: str, model_path: Path, variant: str = "dlfa", fusion_layer: int = 1) -> Dict[str, object]:
    overrides: Dict[str, object] = {"paths.transformer": str(model_path), "nlp.batch_size": 8}
    if variant == "dlfa":
        prefix = f"components.{COMPONENT[task]}.model.tok2vec"
        overrides.update({f"{prefix}.fusion.width": TINY_WIDTH, f"{prefix}.fusion_layer": fusion_layer, f"{prefix}.fusion.dropout": 0.0})
    return overrides


def load_pipeline(task: str, model_path: Path, variant: str = "dlfa", extra: Optional[Dict[str, object]] = None) -> Language:
    overrides = {**tiny_overrides(task, model_path, variant), **(extra or {})}
    config = load_config(REPO / "configs" / f"{task}_{variant}.cfg", overrides=overrides, interpolate=True)
    return load_model_from_config(config, auto_fill=True, validate=True)


def tagged_docs(vocab) -> List[Doc]:
    tags = ["PROPN", "VERB", "NOUN", "ADP", "PUNCT"]
    docs = []
    for i, sentence in enumerate(SENTENCES):
        words = sentence.split()
        docs.append(Doc(vocab, words=words, tags=[tags[(i + j) % len(tags)] for j in range(len(words))]))
    return docs


def entity_docs(vocab) -> List[Doc]:
    labels = ["PER", "ORG", "LOC"]
    docs = []
    for i, sentence in enumerate(SENTENCES):
        words = sentence.split()
        ents = [f"B-{labels[i % 3]}"] + ["O"] * (len(words) - 1)
        docs.append(Doc(vocab, words=words, ents=ents))
    return docs


def examples(nlp: Language, gold: List[Doc]) -> List[Example]:
    return [Example(nlp.make_doc(doc.text), doc) for doc in gold]


def write_docbins(directory: Path, task: str) -> Dict[str, Path]:
    vocab = spacy.blank("xx").vocab
    docs = tagged_docs(vocab) if task == "tagger" else entity_docs(vocab)
    paths = {}
    for split in ("train", "dev"):
        paths[split] = directory / f"{task}-{split}.spacy"
        DocBin(docs=docs).to_disk(paths[split])
    return paths


def fusion_listener(nlp: Language, component: str):
    """The FusionListener chain (TransformerListener >> fused-trfs2arrays) of a component."""
    for node in nlp.get_pipe(component).model.walk():
        if len(node.layers) == 2 and node.layers[1].name == "fused-trfs2arrays":
            return node
    raise LookupError(f"{component} has no fusion listener")
