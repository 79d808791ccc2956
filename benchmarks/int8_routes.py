"""Routes to int8 inference for the transformer on CPU, side by side in one run:
raw Hugging Face forward (tokenizer + model, no grad) words/s of each route
against fp32, the routes taking turns on the same batches, and how far each
route's hidden states move from fp32 (mean cosine per token of the fused layer
and of the last layer).

    python benchmarks/int8_routes.py assets/e5-small corpus/ner/test-de.spacy

Routes: torch's dynamic quantization (``spacy_dlfa.layers.quantize``) of the
encoder's linear layers with per-tensor or per-channel weight scales, with
some layers left in fp32, and under each quantized engine torch offers.
"""
import copy
import time
from typing import Callable, Dict, List, Tuple

import numpy
import spacy
import torch
import typer
from spacy.tokens import Doc, DocBin
from spacy_transformers.util import batch_by_length
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from spacy_dlfa.layers.quantize import QUANTIZE_SCHEMES, is_ffn_output, quantize_linears


def attention_output(name: str) -> bool:
    return name.endswith(".attention.output.dense")


def top_layers(first: int) -> Callable[[str], bool]:
    return lambda name: any(f".layer.{i}." in f".{name}." for i in range(first, 100))


# name -> (engine, per_channel, keep_fp32)
ROUTES: Dict[str, Tuple[str, bool, Callable[[str], bool]]] = {
    "all, per tensor (x86)": ("x86", False, lambda name: False),
    "all, per channel (x86)": ("x86", True, lambda name: False),
    "all, per channel (fbgemm)": ("fbgemm", True, lambda name: False),
    "all, per channel (onednn)": ("onednn", True, lambda name: False),
    "FFN output fp32, per channel (x86)": ("x86", True, is_ffn_output),
    "attn+FFN output fp32, per channel (x86)": ("x86", True, lambda name: is_ffn_output(name) or attention_output(name)),
    "layers 10-12 fp32, per channel (x86)": ("x86", True, top_layers(9)),
    'shipped "int8"': ("x86", True, QUANTIZE_SCHEMES["int8"]),
}


def forward(tokenizer, model, texts: List[str]):
    return model(**tokenizer(texts, padding="longest", truncation=True, return_tensors="pt"), output_hidden_states=True)


def timed_pass(tokenizer, model, engine: str, batches: List[List[Doc]], max_items: int) -> List[float]:
    torch.backends.quantized.engine = engine
    wps = []
    with torch.no_grad():
        for batch in batches:
            began = time.perf_counter()
            for indices in batch_by_length(batch, max_items):
                forward(tokenizer, model, [batch[i].text for i in indices])
            wps.append(sum(len(doc) for doc in batch) / (time.perf_counter() - began))
    return wps


def cosines(tokenizer, reference, model, engine: str, texts: List[str], layers: List[int]) -> Dict[int, numpy.ndarray]:
    found: Dict[int, List[numpy.ndarray]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for start in range(0, len(texts), 32):
            chunk = texts[start : start + 32]
            torch.backends.quantized.engine = "x86"
            ref = forward(tokenizer, reference, chunk)
            torch.backends.quantized.engine = engine
            out = forward(tokenizer, model, chunk)
            mask = tokenizer(chunk, padding="longest", truncation=True, return_tensors="pt")["attention_mask"].bool()
            for layer in layers:
                cos = torch.nn.functional.cosine_similarity(ref.hidden_states[layer], out.hidden_states[layer], dim=-1)
                found[layer].append(cos[mask].numpy())
    return {layer: numpy.concatenate(parts) for layer, parts in found.items()}


def main(
    transformer: str = typer.Argument(..., help="Transformer folder"),
    docbin: str = typer.Argument(..., help="A .spacy file of test sentences"),
    rounds: int = typer.Option(3),
    n_batches: int = typer.Option(6, help="Batches per route per round"),
    batch_size: int = typer.Option(64),
    max_batch_items: int = typer.Option(512),
    fused_layer: int = typer.Option(10),
    cosine_sentences: int = typer.Option(256),
) -> None:
    hf_logging.set_verbosity_error()
    docs = [doc for doc in DocBin().from_disk(docbin).get_docs(spacy.blank("xx").vocab) if len(doc)]
    tokenizer = AutoTokenizer.from_pretrained(transformer)
    fp32 = AutoModel.from_pretrained(transformer).eval()
    models = {"fp32": ("x86", fp32)}
    for name, (engine, per_channel, keep) in ROUTES.items():
        torch.backends.quantized.engine = engine
        model = copy.deepcopy(fp32)
        n = quantize_linears(model, keep_fp32=keep, per_channel=per_channel)
        models[name] = (engine, model)
        print(f"# {name}: {n} linear layers int8")
    print(f"# {transformer}, {docbin.rsplit('/', 1)[-1]}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    batches = [docs[(i * batch_size) % len(docs):][:batch_size] for i in range(n_batches)]
    texts = [doc.text for doc in docs[:cosine_sentences]]
    n_layers = fp32.config.num_hidden_layers
    cos = {name: cosines(tokenizer, fp32, model, engine, texts, [fused_layer, n_layers]) for name, (engine, model) in models.items() if name != "fp32"}
    for engine, model in models.values():
        timed_pass(tokenizer, model, engine, batches[:1], max_batch_items)  # warm-up
    samples: Dict[str, List[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, (engine, model) in models.items():
            samples[name] += timed_pass(tokenizer, model, engine, batches, max_batch_items)
    print(f"\nraw HF forward, {rounds} rounds x {n_batches} batches of {batch_size} sentences, routes taking turns; "
          f"mean token cosine to fp32 over {len(texts)} sentences")
    print(f"{'route':>42} {'words/s':>8} {'ratio':>6} {'cos L' + str(fused_layer):>8} {'cos L' + str(n_layers):>8} {'p5 L' + str(n_layers):>8}")
    base = numpy.mean(samples["fp32"])
    for name, sample in samples.items():
        line = f"{name:>42} {numpy.mean(sample):8.1f} {numpy.mean(sample) / base:6.3f}"
        if name in cos:
            line += f" {cos[name][fused_layer].mean():8.4f} {cos[name][n_layers].mean():8.4f} {numpy.percentile(cos[name][n_layers], 5):8.4f}"
        print(line)


if __name__ == "__main__":
    typer.run(main)
