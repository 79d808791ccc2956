"""Build pipelines from the shipped configs on the tiny test model."""
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import spacy
import torch
from conftest import REPO, SENTENCES, TINY_WIDTH
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from thinc.api import fix_random_seed

COMPONENT = {"ner": "ner", "tagger": "tagger"}
# Windows that fit the tiny model's 64 positions, so that long docs are split into many spans.
SHORT_SPANS = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 24, "stride": 20}


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


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread: the tiny models run several times faster (OpenMP overhead dominates,
    worse on a busy machine), and a process forked afterwards can run torch (see test_multiprocessing)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def gold_docs(task: str, vocab) -> List[Doc]:
    return tagged_docs(vocab) if task == "tagger" else entity_docs(vocab)


def train_tiny(task: str, model_path: Path, steps: int = 3, seed: int = 0, extra: Optional[Dict[str, object]] = None
               ) -> Tuple[Language, List[Dict[str, float]]]:
    """A pipeline on SHORT_SPANS trained `steps` updates from `seed`, and the losses of each update."""
    fix_random_seed(seed)
    nlp = load_pipeline(task, model_path, extra={"components.transformer.model.get_spans": SHORT_SPANS, **(extra or {})})
    egs = examples(nlp, gold_docs(task, nlp.vocab))
    optimizer = nlp.initialize(lambda: egs)
    losses_per_step = []
    for _ in range(steps):
        losses: Dict[str, float] = {}
        optimizer.step_schedules()  # as spaCy's training loop: warmup_linear's rate is 0 before the first step
        nlp.update(egs, sgd=optimizer, losses=losses, drop=0.1)
        losses_per_step.append({name: float(loss) for name, loss in losses.items()})
    return nlp, losses_per_step


def train_fast(task: str, model_path: Path, seed: int = 0, steps: int = 3, extra: Optional[Dict[str, object]] = None) -> Language:
    """A pipeline on SHORT_SPANS after `steps` updates from `seed` at a learning rate (0.01 after one warm-up step)
    high enough that runs of different seeds or tasks end with different weights everywhere."""
    fix_random_seed(seed)
    nlp = load_pipeline(task, model_path, extra={"components.transformer.model.get_spans": SHORT_SPANS, "system.seed": seed,
                                                 "training.optimizer.learn_rate.initial_rate": 0.01,
                                                 "training.optimizer.learn_rate.warmup_steps": 1, **(extra or {})})
    egs = examples(nlp, gold_docs(task, nlp.vocab))
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(steps):
        optimizer.step_schedules()
        nlp.update(egs, sgd=optimizer, drop=0.1)
    return nlp


def annotations(docs) -> List[List[tuple]]:
    """Per doc: (text, tag, IOB, entity type) of every token, then the entity spans."""
    return [[(t.text, t.tag_, t.ent_iob_, t.ent_type_) for t in doc] + [(e.start, e.end, e.label_) for e in doc.ents]
            for doc in docs]
