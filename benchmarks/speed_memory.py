"""Speed, memory and gradient traffic of the DLFA pipeline vs the stock
last-layer pipeline, measured side by side in one run.

    python benchmarks/speed_memory.py assets/e5-small corpus/ner --task ner --layer 6

Both pipelines are built from the shipped configs on the same transformer and
initialised on the same training docs (speed and memory do not depend on
training). Sections, each printing its figures and ratios:

1. inference: words/s of ``spacy benchmark speed``'s own timing loop
   (spacy.cli.benchmark_speed.benchmark), the pipelines taking turns in rounds
   on the same docs; plus the raw Hugging Face forward (tokenizer + model, no
   grad) on the same docs, batches and length-sorted sub-batches, the ceiling;
2. memory: ``doc._.trf_data`` bytes per token on N docs, every hidden layer kept
   vs ``keep_hidden_layers`` (arrays that share memory are counted once);
3. training: words/s of ``nlp.update`` for the baseline, DLFA, and DLFA with
   dense hidden-layer gradients (a zero tensor for every layer, the "before" of
   sending gradients only for the layers used);
4. int8 (``--sections int8``, on a trained ``--pipeline`` or one built and
   initialised as above): the pipeline loaded fp32 and with
   ``components.transformer.model.quantize = "int8"`` (``--sections int8-all``:
   ``"int8-all"``; ``--sections int8-smooth``: ``"int8-smooth"``, on a pipeline that
   ``python -m spacy_dlfa calibrate`` wrote), words/s side by side
   (taking turns on the same docs), the change of the zero-shot average over
   the targets on gold tokens (the first ``--zero-shot-sentences`` sentences
   of each, paired bootstrap), and the RSS of a fresh process after loading;
   bf16 (``--sections bf16``): the same with ``mixed_precision = true``
   (bfloat16 autocast on a CPU with native bf16);
5. batching (``--sections batching``): words/s of the fp32 pipeline for
   ``nlp.batch_size`` / ``max_batch_items`` settings, taking turns on the same texts;
6. shared (``--sections shared --pipelines "NER POS"``, two trained single-task pipelines of one
   recipe): the pipeline with both tasks on one shared transformer (``run share``, the average of
   the two transformers; with ``--joint PATH`` a pipeline trained on both tasks, ``run joint``) against
   the two single-task pipelines run one after the other, words/s taking turns on the same batches,
   and the RSS of a fresh process after loading each.
"""
import json
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy
import spacy
import torch
import typer
from spacy.cli.benchmark_speed import benchmark, bootstrap
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from spacy.util import load_config, load_model_from_config
from spacy_transformers.util import batch_by_length
from thinc.api import fix_random_seed
from transformers.utils import logging as hf_logging

from spacy_dlfa.layers import transformer as transformer_module
from spacy_dlfa.runs.calibration import calibrate_pipeline
from spacy_dlfa.runs.evaluation import annotate_and_score, sentence_counts
from spacy_dlfa.statistics import paired_bootstrap, score
from spacy_dlfa.tasks import TASKS

REPO = Path(__file__).resolve().parent.parent
BF16 = {"components": {"transformer": {"model": {"mixed_precision": True}}}}
LOAD_VARIANTS = {scheme: ({"components": {"transformer": {"model": {"quantize": scheme}}}}, f'quantize = "{scheme}"')
                 for scheme in ("int8", "int8-all", "int8-smooth")}
LOAD_VARIANTS["bf16"] = (BF16, "mixed_precision = true (bfloat16 autocast on CPU)")


def build_pipeline(task: str, variant: str, transformer: Path, width: int, layer: int, keep: object, train: List[Doc]) -> Language:
    component = TASKS[task].component
    overrides: Dict[str, object] = {"paths.transformer": str(transformer)}
    if variant == "dlfa":
        prefix = f"components.{component}.model.tok2vec"
        overrides.update({f"{prefix}.fusion_layer": layer, f"{prefix}.fusion.width": width})
    if keep != "config":
        overrides["components.transformer.model.keep_hidden_layers"] = keep
    config = load_config(REPO / "configs" / f"{TASKS[task].config_prefix}_{variant}.cfg", overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    fix_random_seed(0)
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc) for doc in train])
    return nlp


def summarize(sample: numpy.ndarray) -> str:
    means = numpy.sort(bootstrap(sample, iterations=2000))
    return f"{sample.mean():8.1f} words/s (95% CI {means[50]:.1f}-{means[1950]:.1f}, {len(sample)} batches)"


def hf_forward(tokenizer, model, docs: Sequence[Doc], batch_size: int, max_batch_items: int) -> numpy.ndarray:
    """Tokenizer + model forward per batch of docs, split into the sub-batches
    the transformer component makes (spacy_transformers.util.batch_by_length)."""
    wps = []
    with torch.no_grad():
        for start in range(0, len(docs), batch_size):
            batch = docs[start : start + batch_size]
            began = time.perf_counter()
            for indices in batch_by_length(batch, max_batch_items):
                model(**tokenizer([batch[i].text for i in indices], padding="longest", truncation=True, return_tensors="pt"))
            wps.append(sum(len(doc) for doc in batch) / (time.perf_counter() - began))
    return numpy.array(wps)


def inference(pipelines: Dict[str, Language], transformer: Path, docs: List[Doc], rounds: int, n_batches: int, batch_size: int) -> None:
    print(f"\n## 1. Inference: {rounds} rounds x {n_batches} batches of {batch_size} docs per pipeline, taking turns")
    samples: Dict[str, List[numpy.ndarray]] = {name: [] for name in [*pipelines, "raw HF forward"]}
    max_items = pipelines["dlfa"].get_pipe("transformer").cfg["max_batch_items"]
    bench_docs = [docs[i % len(docs)] for i in range(n_batches * batch_size)]
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(transformer), AutoModel.from_pretrained(transformer).eval()
    for nlp in pipelines.values():
        benchmark(nlp, docs, 2, batch_size, shuffle=False)  # warm-up
    hf_forward(tokenizer, model, bench_docs[: 2 * batch_size], batch_size, max_items)
    for _ in range(rounds):
        for name, nlp in pipelines.items():
            samples[name].append(benchmark(nlp, docs, n_batches, batch_size, shuffle=False))
        samples["raw HF forward"].append(hf_forward(tokenizer, model, bench_docs, batch_size, max_items))
    means = {}
    for name, parts in samples.items():
        sample = numpy.concatenate(parts)
        means[name] = sample.mean()
        print(f"{name:>16}: {summarize(sample)}")
    print(f"ratio DLFA / baseline pipeline: {means['dlfa'] / means['baseline']:.3f}")
    print(f"ratio DLFA / raw HF forward:    {means['dlfa'] / means['raw HF forward']:.3f}")
    print(f"ratio baseline / raw HF forward: {means['baseline'] / means['raw HF forward']:.3f}")


def trf_data_bytes(docs: Iterator[Doc]) -> Dict[str, float]:
    seen: Dict[int, int] = {}
    tokens = 0
    for doc in docs:
        tokens += len(doc)
        output = doc._.trf_data.model_output
        arrays = [output.last_hidden_state, *output.get("hidden_states", [])]
        for array in arrays:
            base = array
            while isinstance(base.base, numpy.ndarray):
                base = base.base
            # keyed by address: last_hidden_state and the top hidden state share memory
            seen[base.__array_interface__["data"][0]] = base.nbytes
    return {"bytes_per_token": sum(seen.values()) / max(tokens, 1), "tokens": tokens}


def memory(task: str, transformer: Path, width: int, layer: int, train: List[Doc], docs: List[Doc], n_docs: int) -> None:
    print(f"\n## 2. Memory: doc._.trf_data after prediction, {n_docs} docs")
    texts = [docs[i % len(docs)].text for i in range(n_docs)]
    results = {}
    for label, variant, keep in (("DLFA, all layers kept", "dlfa", None), (f"DLFA, keep [{layer}]", "dlfa", [layer]), ("baseline, keep []", "baseline", [])):
        nlp = build_pipeline(task, variant, transformer, width, layer, keep, train)
        # keep every doc alive so that shared batch arrays are counted once
        kept_docs = list(nlp.pipe(texts))
        results[label] = trf_data_bytes(iter(kept_docs))
        print(f"{label:>24}: {results[label]['bytes_per_token']:10.0f} bytes/token")
    first, second = list(results.values())[:2]
    print(f"ratio keep [{layer}] / all layers: {second['bytes_per_token'] / first['bytes_per_token']:.3f}")


@contextmanager
def dense_hidden_gradients(n_layers: int):
    """Emulate sending a gradient for every hidden layer (zeros where unused)."""
    original = transformer_module.HiddenGradients.add

    def add_all(self, layer, rows, gradient):
        for other in range(n_layers):
            if other not in self.by_layer:
                self.by_layer[other] = self.xp.zeros(self.shape, dtype="f")
        original(self, layer, rows, gradient)

    transformer_module.HiddenGradients.add = add_all
    try:
        yield
    finally:
        transformer_module.HiddenGradients.add = original


@contextmanager
def hidden_gradient_sinks() -> Iterator[List[object]]:
    """Collect every HiddenGradients sink created while active."""
    sinks: List[object] = []
    original = transformer_module.HiddenGradients.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        sinks.append(self)

    transformer_module.HiddenGradients.__init__ = init
    try:
        yield sinks
    finally:
        transformer_module.HiddenGradients.__init__ = original


def training(task: str, transformer: Path, width: int, layer: int, train: List[Doc], steps: int, batch_docs: int) -> None:
    print(f"\n## 3. Training: {steps} nlp.update steps of {batch_docs} docs per variant, taking turns")
    pipelines = {name: build_pipeline(task, variant, transformer, width, layer, "config", train) for name, variant in (("baseline", "baseline"), ("dlfa", "dlfa"), ("dlfa dense grads", "dlfa"))}
    optimizers = {name: nlp.create_optimizer() for name, nlp in pipelines.items()}
    n_hidden = pipelines["dlfa"].get_pipe("transformer").model.transformer.config.num_hidden_layers + 1
    batches = [train[i : i + batch_docs] for i in range(0, len(train) - batch_docs + 1, batch_docs)]
    wps: Dict[str, List[float]] = {name: [] for name in pipelines}
    gradient_bytes: Dict[str, List[int]] = {name: [] for name in pipelines}
    for step in range(steps + 2):
        batch = batches[step % len(batches)]
        for name, nlp in pipelines.items():
            egs = [Example(nlp.make_doc(doc.text), doc) for doc in batch]
            dense = dense_hidden_gradients(n_hidden) if name == "dlfa dense grads" else nullcontext()
            with hidden_gradient_sinks() as sinks, dense:
                began = time.perf_counter()
                nlp.update(egs, sgd=optimizers[name])
                elapsed = time.perf_counter() - began
            if step >= 2:  # the first two steps warm up
                wps[name].append(sum(len(doc) for doc in batch) / elapsed)
                gradient_bytes[name].append(sum(g.nbytes for sink in sinks for g in sink.by_layer.values()))
    for name, sample in wps.items():
        print(f"{name:>18}: {summarize(numpy.array(sample))}, hidden-layer gradients {numpy.mean(gradient_bytes[name]) / 2**20:.2f} MiB/step")
    print(f"ratio DLFA / baseline training: {numpy.mean(wps['dlfa']) / numpy.mean(wps['baseline']):.3f}")
    print(f"ratio DLFA sparse / dense hidden gradients: {numpy.mean(wps['dlfa']) / numpy.mean(wps['dlfa dense grads']):.3f}")


def rss_after_load(pipeline: Path, config: dict, *others: Path) -> str:
    """VmRSS and VmHWM (peak) in MiB of a fresh process that has loaded the pipeline (and the others)."""
    code = ("import json, sys, spacy; [spacy.load(path, config=json.loads(sys.argv[1])) for path in sys.argv[2:]]; "
            "print(' '.join(l.split()[1] for l in open('/proc/self/status') if l.startswith(('VmRSS', 'VmHWM'))))")
    done = subprocess.run([sys.executable, "-c", code, json.dumps(config), str(pipeline), *map(str, others)],
                          capture_output=True, text=True, check=True)
    peak, rss = (int(kib) / 1024 for kib in done.stdout.split())
    return f"RSS after load {rss:.0f} MiB (peak while loading {peak:.0f} MiB)"


def zero_shot(task: str, nlp: Language, corpus_dir: Path, targets: Sequence[str], limit: int) -> Dict[str, numpy.ndarray]:
    """Per target: the per-sentence counts on the gold tokens of the first `limit` sentences."""
    counts = {}
    for target in targets:
        examples = list(Corpus(corpus_dir / f"test-{target}.spacy", gold_preproc=True, limit=limit)(nlp))
        annotate_and_score(nlp, examples)
        counts[target] = numpy.asarray([sentence_counts(examples)[TASKS[task].count_key]], dtype="f8")
    return counts


def load_variant(variant: str, task: str, pipeline: Path, docs: List[Doc], corpus_dir: Path, targets: Sequence[str],
                 limit: int, rounds: int, n_batches: int, batch_size: int) -> None:
    """The int8 or bf16 section: ``variant`` names a LOAD_VARIANTS entry."""
    override, setting = LOAD_VARIANTS[variant]
    print(f"\n## 4. {variant}: fp32 and {setting} loaded from the same pipeline folder")
    pipelines = {"fp32": spacy.load(pipeline), variant: spacy.load(pipeline, config=override)}
    for nlp in pipelines.values():
        benchmark(nlp, docs, 2, batch_size, shuffle=False)  # warm-up
    samples: Dict[str, List[numpy.ndarray]] = {name: [] for name in pipelines}
    # taking turns batch by batch, each batch first for one and then for the other, so that load changes cancel
    for k in range(rounds * n_batches):
        start = (k * batch_size) % len(docs)
        batch = (docs[start:] + docs)[:batch_size]
        for name in (("fp32", variant) if k % 2 == 0 else (variant, "fp32")):
            samples[name].append(benchmark(pipelines[name], batch, 1, batch_size, shuffle=False))
    print(f"inference: {rounds * n_batches} batches of {batch_size} docs per pipeline, the same batch for both in turn")
    for name, parts in samples.items():
        print(f"{name:>16}: {summarize(numpy.concatenate(parts))}")
    ratio = numpy.concatenate(samples[variant]).mean() / numpy.concatenate(samples["fp32"]).mean()
    print(f"ratio {variant} / fp32 inference: {ratio:.3f}")
    if limit < 0:  # no zero-shot and RSS
        return
    spec = TASKS[task]
    counts = {name: zero_shot(task, nlp, corpus_dir, targets, limit) for name, nlp in pipelines.items()}
    print(f"zero-shot {spec.metric}, gold tokens, first {limit or 'all'} sentences of each target: fp32 / {variant} / change")
    for target in targets:
        a, b = (float(score(spec.measure, counts[name][target])[0]) for name in ("fp32", variant))
        print(f"{target:>10}: {a:6.2f} {b:6.2f} {b - a:+6.2f}")
    averages = {name: numpy.mean([score(spec.measure, c)[0] for c in counts[name].values()]) for name in counts}
    delta, low, high = paired_bootstrap(spec.measure, counts["fp32"], counts[variant])
    print(f"average of {len(targets)} targets: fp32 {averages['fp32']:.2f}, {variant} {averages[variant]:.2f}")
    print(f"{variant} zero-shot change: {delta:+.2f} points (95% paired bootstrap over sentences {low:+.2f} to {high:+.2f})")
    for name, config in (("fp32", {}), (variant, override)):
        print(f"{name:>16}: {rss_after_load(pipeline, config)}")


def batching(pipeline: Path, docs: List[Doc], settings: Sequence[str], rounds: int, n_docs: int) -> None:
    print(f"\n## 5. Batching: fp32, {rounds} rounds x {n_docs} docs per nlp.batch_size/max_batch_items setting, taking turns")
    nlps = {}
    for setting in settings:
        size, items = (int(v) for v in setting.split("/"))
        nlps[setting] = spacy.load(pipeline, config={"nlp": {"batch_size": size}, "components": {"transformer": {"max_batch_items": items}}})
    samples: Dict[str, List[float]] = {setting: [] for setting in settings}
    texts = [docs[i % len(docs)].text for i in range(n_docs)]
    for nlp in nlps.values():
        list(nlp.pipe(texts[:64]))  # warm-up
    for _ in range(rounds):
        for setting, nlp in nlps.items():
            began = time.perf_counter()
            n_words = sum(len(doc) for doc in nlp.pipe(texts))
            samples[setting].append(n_words / (time.perf_counter() - began))
    for setting, sample in samples.items():
        print(f"{setting:>10}: {numpy.mean(sample):8.1f} words/s (rounds: {', '.join(f'{x:.0f}' for x in sample)})")


def shared(singles: Sequence[Path], docs: List[Doc], rounds: int, n_batches: int, batch_size: int, joint: Optional[Path] = None) -> None:
    what = f"{joint} (trained jointly)" if joint else f"the components of {', '.join(map(str, singles))} on the average of their transformers"
    print(f"\n## 6. Shared transformer: one pipeline, {what}, against the single-task pipelines "
          f"{', '.join(map(str, singles))} one after the other")
    from spacy_dlfa.runs.sharing import share_runs

    with tempfile.TemporaryDirectory() as temp:
        folder = joint or Path(temp) / "shared"
        if joint is None:
            share_runs(folder, *singles)
        pipelines = {"shared": spacy.load(folder), **{f"single {i + 1}": spacy.load(path) for i, path in enumerate(singles)}}
        print("components: " + "; ".join(f"{name} {nlp.pipe_names}" for name, nlp in pipelines.items()))
        for nlp in pipelines.values():
            benchmark(nlp, docs, 2, batch_size, shuffle=False)  # warm-up
        seconds: Dict[str, List[float]] = {name: [] for name in pipelines}
        words: List[int] = []
        # taking turns batch by batch, the shared pipeline first on even and last on odd batches, so that load changes cancel
        for k in range(rounds * n_batches):
            start = (k * batch_size) % len(docs)
            batch = (docs[start:] + docs)[:batch_size]
            words.append(sum(len(doc) for doc in batch))
            for name in (list(pipelines) if k % 2 == 0 else list(pipelines)[::-1]):
                wps = benchmark(pipelines[name], batch, 1, batch_size, shuffle=False)
                seconds[name].append(words[-1] / wps[0])
        print(f"inference: {rounds * n_batches} batches of {batch_size} docs per pipeline, the same batch for all in turn")
        singles_seconds = sum(numpy.array(times) for name, times in seconds.items() if name != "shared")
        samples = {**{name: numpy.array(words) / numpy.array(times) for name, times in seconds.items()},
                   "both singles": numpy.array(words) / singles_seconds}
        for name, sample in samples.items():
            print(f"{name:>16}: {summarize(sample)}")
        print("(both singles: the two single-task pipelines one after the other on the same batch)")
        ratio = (sum(words) / sum(seconds["shared"])) / (sum(words) / singles_seconds.sum())
        print(f"ratio shared / two single-task pipelines: {ratio:.3f}")
        print(f"{'shared':>16}: {rss_after_load(folder, {})}")
        for i, path in enumerate(singles):
            print(f"{f'single {i + 1}':>16}: {rss_after_load(path, {})}")
        print(f"{'both singles':>16}: {rss_after_load(singles[0], {}, *singles[1:])}")


def main(
    transformer: Path = typer.Argument(..., help="Transformer folder (python -m spacy_dlfa data model ...)", exists=True),
    corpus_dir: Path = typer.Argument(..., help="Folder with train.spacy and test-<lang>.spacy", exists=True),
    task: str = typer.Option("ner", help="ner or pos"),
    lang: str = typer.Option("", help="Test set for inference and memory (default: the first target found)"),
    width: int = typer.Option(384, help="Hidden width of the transformer"),
    layer: int = typer.Option(6, help="Fused layer"),
    init_docs: int = typer.Option(500, help="Training docs used to initialise the pipelines (labels)"),
    rounds: int = typer.Option(3),
    n_batches: int = typer.Option(10, help="Batches per pipeline per round"),
    batch_size: int = typer.Option(64),
    memory_docs: int = typer.Option(1000),
    train_steps: int = typer.Option(20),
    train_batch: int = typer.Option(24, help="Docs per training step (about the configs' 256 padded tokens on WikiANN)"),
    sections: str = typer.Option("inference memory training", help="Any of: inference memory training int8 int8-all int8-smooth bf16 batching shared"),
    pipeline: Path = typer.Option(None, help="Trained pipeline for int8 and batching (default: the DLFA pipeline built and initialised here)"),
    pipelines: str = typer.Option("", help="Two trained single-task pipelines of one recipe for the shared section, space-separated"),
    joint: Path = typer.Option(None, help="Shared section: this pipeline with both tasks (run joint) instead of assembling one from --pipelines"),
    targets: str = typer.Option("", help="Zero-shot targets, space-separated (default: every test-<lang>.spacy but the source)"),
    zero_shot_sentences: int = typer.Option(500, help="Sentences scored per target in the int8 and bf16 sections (0: all, -1: none)"),
    batch_settings: str = typer.Option("64/512 128/512 256/512 256/1024 256/2048", help="nlp.batch_size/max_batch_items pairs"),
    batching_docs: int = typer.Option(512, help="Docs per setting per round in the batching section"),
) -> None:
    hf_logging.set_verbosity_error()
    chosen = set(sections.split())
    vocab = spacy.blank("xx").vocab
    train = list(DocBin().from_disk(corpus_dir / "train.spacy").get_docs(vocab))[:init_docs]
    source = TASKS[task].source_language
    tests = sorted(p for p in corpus_dir.glob("test-*.spacy") if p.stem != f"test-{source}")
    test_path = corpus_dir / f"test-{lang}.spacy" if lang else tests[0]
    docs = [doc for doc in DocBin().from_disk(test_path).get_docs(vocab) if len(doc)]
    built = f"fused layer {layer} (pipelines built here)" if pipeline is None or "inference" in chosen else f"pipeline {pipeline}"
    print(f"# spacy-dlfa speed and memory: {transformer}, task {task}, {built}, test docs {test_path.name}, torch threads {torch.get_num_threads()}")
    if "inference" in chosen:
        pipelines = {variant: build_pipeline(task, variant, transformer, width, layer, "config", train) for variant in ("baseline", "dlfa")}
        inference(pipelines, transformer, docs, rounds, n_batches, batch_size)
    if "memory" in chosen:
        memory(task, transformer, width, layer, train, docs, memory_docs)
    if "training" in chosen:
        training(task, transformer, width, layer, train, train_steps, train_batch)
    if any(section in chosen for section in (*LOAD_VARIANTS, "batching")):
        with tempfile.TemporaryDirectory() as temp:
            if pipeline is None:
                pipeline = Path(temp) / "dlfa"
                built_nlp = build_pipeline(task, "dlfa", transformer, width, layer, "config", train)
                if "int8-smooth" in chosen:
                    calibrate_pipeline(built_nlp, [Doc(built_nlp.vocab, words=[t.text for t in doc]) for doc in train])
                built_nlp.to_disk(pipeline)
            names = targets.split() or [p.stem[len("test-"):] for p in tests]
            for variant in LOAD_VARIANTS:
                if variant in chosen:
                    load_variant(variant, task, pipeline, docs, corpus_dir, names, zero_shot_sentences, rounds, n_batches, batch_size)
            if "batching" in chosen:
                batching(pipeline, docs, batch_settings.split(), rounds, batching_docs)
    if "shared" in chosen:
        if len(pipelines.split()) != 2:
            raise typer.BadParameter(f"expected two pipeline folders, got {pipelines!r}", param_hint="--pipelines")
        shared([Path(path) for path in pipelines.split()], docs, rounds, n_batches, batch_size, joint)


if __name__ == "__main__":
    typer.run(main)
