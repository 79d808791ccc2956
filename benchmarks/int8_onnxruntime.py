"""ONNX Runtime's int8 route for the transformer on CPU against torch fp32, one run:
the raw forward (tokenizer + encoder, no grad) in words/s of torch fp32, ORT fp32 and
ORT dynamic int8 variants, taking turns batch by batch on the same batches, and how
far each ORT engine's hidden states move from torch fp32 (mean token cosine of the
fused layer and of the last layer).

    OMP_NUM_THREADS=1 python benchmarks/int8_onnxruntime.py assets/e5-small corpus/ner/test-de.spacy

The encoder is exported with ``torch.onnx.export`` (TorchScript exporter, dynamic batch
and sequence axes, outputs: the fused layer's and the last layer's hidden states) into a
temporary folder and quantized with ``onnxruntime.quantization.quantize_dynamic`` (int8
weights per channel, activations per call, MatMuls with a constant weight: the linear
layers): every MatMul, or all but the feed-forward output projections (as
``spacy_dlfa.layers.quantize``'s ``"int8"`` scheme); the same two after ORT's offline BERT
fusion (``onnxruntime.transformers.optimizer``; the fused Attention's QKV projection
becomes QAttention), and the fused graph in fp32. In the same run (``--torch-routes``):
torch's dynamic int8 (``quantize_linears``, every Linear or the ``"int8"`` scheme, with
its 7-bit activations as shipped and with 8-bit ones) and bf16 autocast. One intra-op
thread each. Needs ``pip install onnxruntime onnx`` (not package dependencies; measured
with onnxruntime 1.32.0, onnx 1.23.2).
"""
import copy
import math
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy
import onnx
import onnxruntime
import spacy
import torch
import typer
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.transformers.optimizer import optimize_model
from spacy.tokens import DocBin
from spacy_transformers.util import batch_by_length
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as hf_logging

from spacy_dlfa.layers.quantize import QUANTIZE_SCHEMES, Int8Linear, quantize_linears

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class TwoLayers(torch.nn.Module):
    """The encoder's hidden states of one layer and of the last layer."""

    def __init__(self, model: torch.nn.Module, layer: int):
        super().__init__()
        self.model, self.layer = model, layer

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                         output_hidden_states=True)
        return out.hidden_states[self.layer], out.hidden_states[-1]


def export(model: torch.nn.Module, tokenizer, layer: int, path: Path) -> None:
    enc = tokenizer(["Ein kurzer Satz.", "Noch ein etwas längerer Satz zum Exportieren."], padding="longest",
                    return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS + ["fused", "last"]}
    with torch.no_grad():
        # eval(): the exporter restores the wrapper's mode after tracing, and a new module is in training mode
        torch.onnx.export(TwoLayers(model, layer).eval(), tuple(enc[name] for name in INPUTS), str(path),
                          input_names=INPUTS, output_names=["fused", "last"], dynamic_axes=axes,
                          opset_version=17, dynamo=False)
    model.eval()


def fuse(source: Path, target: Path, config) -> str:
    """ORT's offline BERT graph fusion (Attention, EmbedLayerNormalization, SkipLayerNormalization, BiasGelu)."""
    fused = optimize_model(str(source), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, opt_level=0)
    fused.save_model_to_file(str(target))
    return ", ".join(f"{n} {op}" for op, n in fused.get_fused_operator_statistics().items() if n)


def quantize(source: Path, target: Path, keep_ffn_output: bool) -> str:
    matmuls = [node.name for node in onnx.load(str(source), load_external_data=False).graph.node
               if node.op_type == "MatMul"]
    # the feed-forward output projections, layer.N.output.dense (not attention.output.dense)
    exclude = [name for name in matmuls if keep_ffn_output and "/output/dense/" in name and "/attention/" not in name]
    quantize_dynamic(source, target, op_types_to_quantize=["MatMul", "Attention"], per_channel=True,
                     reduce_range=False, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                     extra_options={"MatMulConstBOnly": True,  # fused contrib ops defeat shape inference:
                                    "DefaultTensorType": onnx.TensorProto.FLOAT})
    graph = onnx.load(str(target), load_external_data=False).graph
    ops = [node.op_type for node in graph.node]
    sizes = {init.name: len(init.dims) and init.dims[0] for init in graph.initializer}
    per_channel = sum(1 for node in graph.node if node.op_type == "MatMulInteger" and sizes.get(node.input[3], 0) > 1)
    return (f"{ops.count('MatMulInteger')} MatMulInteger ({per_channel} per channel), {ops.count('QAttention')} QAttention, "
            f"{ops.count('MatMul')} MatMul fp32 ({len(exclude)} FFN outputs kept), {target.stat().st_size / 2**20:.0f} MiB")


def ort_session(path: Path):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_engine(tokenizer, model, layer: int, bf16: bool = False) -> Callable[[List[str]], List[numpy.ndarray]]:
    def run(texts: List[str]) -> List[numpy.ndarray]:
        enc = tokenizer(texts, padding="longest", truncation=True, return_tensors="pt")
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = model(**enc, output_hidden_states=True)
        return [out.hidden_states[layer].float().numpy(), out.hidden_states[-1].float().numpy()]
    return run


def eight_bit_activations(model: torch.nn.Module) -> torch.nn.Module:
    """torch's dynamic Linear quantizes activations to 7 bits (``reduce_range=True``); these use all 8."""
    for module in [module for module in model.modules() if isinstance(module, Int8Linear)]:
        packed = module.int8._packed_params._packed_params
        module.forward = lambda x, packed=packed: torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False)
    return model


def ort_engine(tokenizer, session) -> Callable[[List[str]], List[numpy.ndarray]]:
    def run(texts: List[str]) -> List[numpy.ndarray]:
        enc = tokenizer(texts, padding="longest", truncation=True, return_tensors="np")
        return session.run(None, {name: enc[name].astype(numpy.int64) for name in INPUTS})
    return run


def cosine(a: numpy.ndarray, b: numpy.ndarray) -> numpy.ndarray:
    return (a * b).sum(-1) / (numpy.linalg.norm(a, axis=-1) * numpy.linalg.norm(b, axis=-1))


def mean_half(values) -> Tuple[float, float]:
    """Mean and half width of its 95% CI (normal approximation)."""
    half = 1.96 * float(numpy.std(values, ddof=1)) / math.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(numpy.mean(values)), half


def mean_ci(values: List[float]) -> str:
    mean, half = mean_half(values)
    return f"{mean:8.1f} [{mean - half:7.1f}, {mean + half:7.1f}]"


def ratio_ci(ratios: List[float]) -> str:
    """Geometric mean of per-batch ratios with a 95% CI (normal, on the logs)."""
    mean, half = mean_half(numpy.log(ratios))
    return f"{math.exp(mean):.3f} [{math.exp(mean - half):.3f}, {math.exp(mean + half):.3f}]"


def cpu_flags() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    have = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return " ".join(flag for flag in wanted if flag in have) or "unknown"


def main(
    transformer: str = typer.Argument(..., help="Hugging Face model folder"),
    docbin: str = typer.Argument(..., help="A .spacy file of test sentences"),
    n_batches: int = typer.Option(12, help="Batches; every engine runs every batch, taking turns"),
    batch_size: int = typer.Option(64),
    max_batch_items: int = typer.Option(512, help="Sub-batches as the pipeline makes them"),
    fused_layer: int = typer.Option(10, help="The hidden layer (0 = embeddings) compared besides the last"),
    cosine_sentences: int = typer.Option(256),
    torch_routes: bool = typer.Option(True, help="Also torch's dynamic int8 (spacy_dlfa.layers.quantize) and bf16 autocast"),
) -> None:
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)
    docs = [doc for doc in DocBin().from_disk(docbin).get_docs(spacy.blank("xx").vocab) if len(doc)]
    tokenizer = AutoTokenizer.from_pretrained(transformer)
    model = AutoModel.from_pretrained(transformer).eval()
    print(f"# {transformer}, {Path(docbin).name}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
          f"1 intra-op thread each, CPU capability {torch.backends.cpu.get_cpu_capability()}\n# CPU flags: {cpu_flags()}")
    engines: Dict[str, Callable[[List[str]], List[numpy.ndarray]]] = {
        "torch fp32": torch_engine(tokenizer, model, fused_layer)}
    routes = {"torch int8, all Linears": (lambda name: False, False), 'torch int8, "int8" scheme': (QUANTIZE_SCHEMES["int8"], False),
              "torch int8, all, 8-bit act.": (lambda name: False, True), 'torch int8, "int8", 8-bit act.': (QUANTIZE_SCHEMES["int8"], True)}
    for name, (keep, full_range) in routes.items() if torch_routes else ():
        quantized = copy.deepcopy(model)
        print(f"# {name}: {quantize_linears(quantized, keep_fp32=keep)} Linear int8 per channel (engine x86)")
        engines[name] = torch_engine(tokenizer, eight_bit_activations(quantized) if full_range else quantized, fused_layer)
    engines.update({"torch bf16 autocast": torch_engine(tokenizer, model, fused_layer, bf16=True)} if torch_routes else {})
    with tempfile.TemporaryDirectory() as tmp:
        fp32_path = Path(tmp) / "fp32.onnx"
        export(model, tokenizer, fused_layer, fp32_path)
        print(f"# exported (opset 17): {fp32_path.stat().st_size / 2**20:.0f} MiB")
        fused_path = Path(tmp) / "fused.onnx"
        print(f"# fused graph: {fuse(fp32_path, fused_path, model.config)}")
        paths = {"ORT fp32": fp32_path, "ORT fp32, fused graph": fused_path}
        variants = {"ORT int8, all MatMuls": (fp32_path, False), "ORT int8, FFN output fp32": (fp32_path, True),
                    "ORT int8, fused, all": (fused_path, False), "ORT int8, fused, FFN out fp32": (fused_path, True)}
        for name, (source, keep) in variants.items():
            paths[name] = Path(tmp) / f"{len(paths)}.onnx"
            print(f"# {name}: {quantize(source, paths[name], keep)}")
        for name, path in paths.items():
            engines[name] = ort_engine(tokenizer, ort_session(path))

    texts = [doc.text for doc in docs[:cosine_sentences]]
    cos: Dict[str, List[List[numpy.ndarray]]] = {name: [[], []] for name in engines if name != "torch fp32"}
    for start in range(0, len(texts), 32):
        chunk = texts[start:start + 32]
        mask = tokenizer(chunk, padding="longest", truncation=True, return_tensors="np")["attention_mask"].astype(bool)
        ref = engines["torch fp32"](chunk)
        for name in cos:
            for i, out in enumerate(engines[name](chunk)):
                cos[name][i].append(cosine(ref[i], out)[mask])

    batches = [docs[(i * batch_size) % len(docs):][:batch_size] for i in range(n_batches)]
    names = list(engines)
    for name in names:  # warm-up
        engines[name]([doc.text for doc in batches[0][:8]])
    wps: Dict[str, List[float]] = {name: [] for name in names}
    for b, batch in enumerate(batches):
        groups = [[batch[i].text for i in indices] for indices in batch_by_length(batch, max_batch_items)]
        words = sum(len(doc) for doc in batch)
        for k in range(len(names)):  # taking turns, the first engine rotating from batch to batch
            name = names[(b + k) % len(names)]
            began = time.perf_counter()
            for group in groups:
                engines[name](group)
            wps[name].append(words / (time.perf_counter() - began))

    print(f"\nraw forward (tokenizer + encoder, no grad), {n_batches} batches of {batch_size} sentences (sub-batches of "
          f"max_batch_items {max_batch_items}), the engines taking turns batch by batch, the first rotating.")
    print("The machine is shared (2 cores, two training runs beside this one): only the ratios of interleaved timings mean "
          f"something, not the words/s.\nMean token cosine to torch fp32 over the tokens of {len(texts)} sentences (sub-batches of 32).\n")
    n_layers = model.config.num_hidden_layers
    print(f"{'engine':>30} {'words/s [95% CI over batches]':>30} {'cos L' + str(fused_layer):>8} "
          f"{'p5 L' + str(fused_layer):>8} {'cos L' + str(n_layers):>8} {'p5 L' + str(n_layers):>8}")
    for name in names:
        line = f"{name:>30} {mean_ci(wps[name]):>30}"
        if name in cos:
            fused, last = (numpy.concatenate(parts) for parts in cos[name])
            line += "".join(f" {value:8.5f}" for value in (fused.mean(), numpy.percentile(fused, 5), last.mean(), numpy.percentile(last, 5)))
        print(line)
    print("\nratio = geometric mean over batches of the per-batch words/s ratio [95% CI]; ratio of mean words/s in ()")
    base = wps["torch fp32"]
    for name in names[1:]:
        engine, _, variant = name.partition(", ")
        ratios = [a / b for a, b in zip(wps[name], base)]
        print(f"ratio {engine} / torch fp32: {ratio_ci(ratios)} ({numpy.mean(wps[name]) / numpy.mean(base):.3f})"
              + (f"  {variant}" if variant else ""))
    for other in [other for other in ("ORT fp32", "torch bf16 autocast", "torch int8, all, 8-bit act.") if other in wps]:
        for name in [name for name in names if name.startswith("ORT int8")]:
            print(f"ratio {name} / {other}: {ratio_ci([a / b for a, b in zip(wps[name], wps[other])])}")


if __name__ == "__main__":
    typer.run(main)
