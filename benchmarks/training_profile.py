"""Where one training step's time goes: the NER DLFA pipeline (configs/ner_dlfa.cfg) on a
transformer, ``nlp.update`` on batches of about 256 words of WikiANN English, with and
without ``freeze_layers`` (or, with ``--mixed-precision``, with and without
``mixed_precision``: bfloat16 autocast on a CPU with native bf16), the variants taking
turns on the same batches.

    python benchmarks/training_profile.py assets/e5-small corpus/ner/train.spacy --freeze 3
    python benchmarks/training_profile.py assets/e5-small corpus/ner/train.spacy --freeze 0 --mixed-precision

Timers wrap the parts of one step; each part's time is exclusive (the time of the parts
nested in it is subtracted), so the parts add up to the step:

- examples: ``nlp.make_doc`` + ``Example`` (tokenize, align to the gold tokens);
- transformer, spans + tokenizer + alignment: the transformer model's forward pass minus
  the torch forward (span splitting, wordpiece tokenization, alignment, output split);
- transformer forward: the torch module, by part (embeddings, the frozen layers, the trained
  layers, the rest: masks and pooler);
- transformer backward: ``torch.autograd.backward`` through the transformer (the wrapper's
  backprop), plus the gradient assembly around it;
- listener + fusion + pooling: the fusion listener's forward and backward (AIF at the fused layer);
- optimizer: every ``optimizer(...)`` call (the transformer's and the NER head's updates);
- NER head and spaCy: what is left of ``nlp.update``: the transition-based parser's steps,
  oracle and loss, its projection layers, spaCy's update loop.
"""
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List

import numpy
import spacy
import torch
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from thinc.api import Model, fix_random_seed
from transformers.utils import logging as hf_logging

REPO = Path(__file__).resolve().parent.parent


class Timers:
    """Exclusive wall time per label: nested timers' time is taken out of the enclosing one."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = defaultdict(float)
        self.stack: List[List[float]] = []  # [start, time of nested timers]

    @contextmanager
    def time(self, label: str) -> Iterator[None]:
        self.stack.append([time.perf_counter(), 0.0])
        try:
            yield
        finally:
            start, nested = self.stack.pop()
            elapsed = time.perf_counter() - start
            self.seconds[label] += elapsed - nested
            if self.stack:
                self.stack[-1][1] += elapsed

    def wrap_node(self, node: Model, forward_label: str, backward_label: str) -> None:
        """Time a thinc node's forward callback and the backprop it returns."""
        func = node._func

        def timed(model, X, is_train):
            with self.time(forward_label):
                Y, backprop = func(model, X, is_train)

            def timed_backprop(dY):
                with self.time(backward_label):
                    return backprop(dY)

            return Y, timed_backprop

        node._func = timed

    def wrap_module(self, module: torch.nn.Module, label: str) -> None:
        """Time a torch module's forward with hooks."""
        module.register_forward_pre_hook(lambda *_: self.stack.append([time.perf_counter(), 0.0]))

        def done(*_):
            start, nested = self.stack.pop()
            elapsed = time.perf_counter() - start
            self.seconds[label] += elapsed - nested
            self.stack[-1][1] += elapsed

        module.register_forward_hook(done)


class TimedOptimizer:
    """Times every update of the thinc optimizer it stands for (a Cython class: no subclassing)."""

    def __init__(self, optimizer, timers: Timers) -> None:
        self.optimizer, self.timers = optimizer, timers

    def __call__(self, *args, **kwargs):
        with self.timers.time("optimizer"):
            return self.optimizer(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.optimizer, name)


def build(transformer: Path, width: int, layer: int, freeze: int, init: List[Doc], mixed_precision: bool = False) -> Language:
    overrides = {"paths.transformer": str(transformer), "components.ner.model.tok2vec.fusion_layer": layer,
                 "components.ner.model.tok2vec.fusion.width": width, "components.transformer.model.freeze_layers": freeze,
                 "components.transformer.model.mixed_precision": mixed_precision}
    config = load_config(REPO / "configs" / "ner_dlfa.cfg", overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    fix_random_seed(0)
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc) for doc in init])
    return nlp


def instrument(nlp: Language, timers: Timers, freeze: int) -> None:
    trf = nlp.get_pipe("transformer").model
    timers.wrap_node(trf, "transformer: spans + tokenizer + alignment", "transformer backward: gradient assembly")
    timers.wrap_node(trf.layers[0], "transformer forward: rest (masks, pooler)", "transformer backward: torch autograd")
    module = trf.transformer
    timers.wrap_module(module.embeddings, "transformer forward: embeddings")
    for i, layer in enumerate(module.encoder.layer):
        part = "frozen" if i < freeze else "trained"
        timers.wrap_module(layer, f"transformer forward: {part} layers")
    for node in nlp.get_pipe("ner").model.walk():
        if node.name == "fused-trfs2arrays":
            timers.wrap_node(node, "listener + fusion + pooling (forward)", "listener + fusion + pooling (backward)")


def word_batches(docs: List[Doc], words: int, count: int) -> List[List[Doc]]:
    batches, batch = [], []
    for doc in docs:
        batch.append(doc)
        if sum(len(d) for d in batch) >= words:
            batches.append(batch)
            batch = []
            if len(batches) == count:
                break
    return batches


def main(
    transformer: Path = typer.Argument(..., help="Transformer folder", exists=True),
    train_path: Path = typer.Argument(..., help="WikiANN English train.spacy", exists=True),
    freeze: int = typer.Option(3, help="freeze_layers of the second variant"),
    width: int = typer.Option(384),
    layer: int = typer.Option(10, help="Fused layer"),
    words: int = typer.Option(256, help="Words per batch"),
    steps: int = typer.Option(6, help="Measured steps per variant (after 2 warm-up steps)"),
    init_docs: int = typer.Option(300),
    mixed_precision: bool = typer.Option(False, help="Second variant: freeze_layers = --freeze and mixed_precision = true, the first fp32"),
) -> None:
    hf_logging.set_verbosity_error()
    docs = [doc for doc in DocBin().from_disk(train_path).get_docs(spacy.blank("xx").vocab) if len(doc)]
    batches = word_batches(docs[init_docs:], words, steps + 2)
    if mixed_precision:
        variants = {f"freeze_layers = {freeze}": freeze, f"freeze_layers = {freeze}, mixed_precision = true": freeze}
    else:
        variants = {f"freeze_layers = {k}": k for k in (0, freeze)}
    pipelines = {name: build(transformer, width, layer, k, docs[:init_docs], mixed_precision and "mixed" in name)
                 for name, k in variants.items()}
    timers = {name: Timers() for name in variants}
    optimizers = {}
    for name, nlp in pipelines.items():
        instrument(nlp, timers[name], variants[name])
        optimizers[name] = TimedOptimizer(nlp.create_optimizer(), timers[name])
    step_seconds: Dict[str, List[float]] = {name: [] for name in variants}
    for step, batch in enumerate(batches):
        for name, nlp in pipelines.items():
            t = timers[name]
            if step == 2:  # the first two steps warm up
                t.seconds.clear()
            began = time.perf_counter()
            with t.time("NER head (parser steps, oracle, loss) and spaCy's update loop"):
                with t.time("examples: make_doc + Example (gold alignment)"):
                    egs = [Example(nlp.make_doc(doc.text), doc) for doc in batch]
                nlp.update(egs, sgd=optimizers[name])
            if step >= 2:
                step_seconds[name].append(time.perf_counter() - began)
    measured = batches[2:]
    n_words = sum(len(doc) for batch in measured for doc in batch)
    print(f"# training step profile: {transformer}, configs/ner_dlfa.cfg (fused layer {layer}, freeze_embeddings true), "
          f"torch threads {torch.get_num_threads()}, {len(measured)} steps of about {words} words "
          f"({n_words / len(measured):.0f} words, {numpy.mean([len(b) for b in measured]):.1f} sentences on average) "
          f"per variant after 2 warm-up steps, the variants taking turns on the same batches")
    for name in variants:
        total = sum(step_seconds[name])
        print(f"\n## {name}: {total / len(measured):.2f} s/step, {n_words / total:.1f} words/s")
        for label, seconds in sorted(timers[name].seconds.items(), key=lambda item: -item[1]):
            print(f"{label:>62}: {seconds / len(measured):7.3f} s/step {100 * seconds / total:5.1f}%")
        print(f"{'sum of the parts':>62}: {sum(timers[name].seconds.values()) / len(measured):7.3f} s/step")
    names = list(variants)
    ratio = sum(step_seconds[names[0]]) / sum(step_seconds[names[1]])
    print(f"\nratio training words/s {names[1]} / {names[0]}: {ratio:.3f}")


if __name__ == "__main__":
    typer.run(main)
