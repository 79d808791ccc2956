"""The two ways ``annotate`` runs the planned shards: ``local`` (``nlp.pipe`` in
this process, ``n_process`` workers forked by spaCy) and ``ray`` (Ray Data
schedules the shards on a pool of actors, each loading the pipeline once in
``__init__``, reading its shard, annotating it and writing its part). Both call
``write_part`` on the same records, so their outputs are the same record for
record. The pipeline travels as a name or path, never as an ``nlp`` object
(explosion/spaCy#13506)."""
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import numpy

from ..runs.distributed import RaySettings, connect_ray, worker_count
from .inputs import Shard, read_records
from .outputs import keep, part_path, write_part

# called with (shard, records written, words) as each part is written
OnPart = Callable[[Shard, int, int], None]

# --precision -> the transformer settings it loads the pipeline with (README "Speed and memory")
PRECISIONS: Dict[str, Dict[str, Any]] = {
    "fp32": {"quantize": None, "mixed_precision": False},
    "bf16": {"quantize": None, "mixed_precision": True},
    **{scheme: {"quantize": scheme, "mixed_precision": False} for scheme in ("int8", "int8-all", "int8-smooth")},
}


@dataclass(frozen=True)
class AnnotateSettings:
    """How to annotate; ``batch_size`` 0 keeps the pipeline's own ``nlp.batch_size``."""

    model: str
    output_dir: Path
    output_format: str = "jsonl"
    text_field: str = "text"
    batch_size: int = 0
    n_process: int = 1
    gpu_id: int = -1
    precision: Optional[str] = None  # a PRECISIONS key; None: as the pipeline was saved


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check_precision(precision: Optional[str]) -> None:
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use {', '.join(PRECISIONS)}")


def load_pipeline(model: str, gpu_id: int = -1, precision: Optional[str] = None):
    """The pipeline, its ``transformer`` loaded at ``precision`` when one is given, with a doc_cleaner
    at the end when it has none."""
    import spacy

    check_precision(precision)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    if precision is None:
        nlp = spacy.load(model)
    else:
        nlp = spacy.load(model, config={"components": {"transformer": {"model": PRECISIONS[precision]}}})
        if "transformer" not in nlp.pipe_names:
            raise ValueError(f"--precision {precision}: {model} has no component named 'transformer' to set it on")
    if "doc_cleaner" not in nlp.pipe_names:
        # drop the transformer output once the components have used it: with n_process > 1 every doc travels
        # back to this process, hidden states included, and no output format keeps them
        nlp.add_pipe("doc_cleaner", config={"attrs": {"_.trf_data": None}})
    return nlp


def run_local(shards: Sequence[Shard], settings: AnnotateSettings, on_part: OnPart, on_doc: Callable[[], None]) -> None:
    """One ``nlp.pipe`` stream over every pending shard (workers start once), cut back into parts."""
    nlp = load_pipeline(settings.model, settings.gpu_id, settings.precision)
    for shard in shards:
        if shard.records == 0:  # every line invalid and skipped: an empty part keeps the numbering whole
            on_part(shard, write_part(part_path(settings.output_dir, shard.index, settings.output_format), settings.output_format, []), 0)

    def texts():
        for shard in shards:
            for record in read_records(shard, settings.text_field):
                yield record.text, (shard.index, record)

    by_index = {shard.index: shard for shard in shards}
    pending: List = []
    docs = nlp.pipe(texts(), as_tuples=True, batch_size=settings.batch_size or None, n_process=settings.n_process)
    words = 0
    for doc, (index, record) in docs:
        pending.append(keep(record, doc, settings.output_format))
        words += len(doc)
        on_doc()
        shard = by_index[index]
        if len(pending) == shard.records:
            on_part(shard, write_part(part_path(settings.output_dir, index, settings.output_format), settings.output_format, pending), words)
            pending, words = [], 0


class PartWriter:
    """Ray Data actor: loads the pipeline once, then reads, annotates and writes whole shards."""

    def __init__(self, settings: AnnotateSettings, torch_threads: int):
        import torch

        torch.set_num_threads(torch_threads)
        self.settings = settings
        # Ray sets CUDA_VISIBLE_DEVICES to the GPU it gave this actor: it is device 0 here
        self.nlp = load_pipeline(settings.model, settings.gpu_id, settings.precision)

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, list]:
        import os

        out: Dict[str, list] = {"index": [], "records": [], "words": [], "seconds": [], "pid": [], "peak_rss_mb": []}
        for row in range(len(batch["index"])):
            shard = Shard(**{key: _python(batch[key][row]) for key in batch})
            start = time.perf_counter()
            records = list(read_records(shard, self.settings.text_field))
            docs = self.nlp.pipe((record.text for record in records), batch_size=self.settings.batch_size or None)
            kept, words = [], 0
            for record, doc in zip(records, docs):
                kept.append(keep(record, doc, self.settings.output_format))
                words += len(doc)
            path = part_path(self.settings.output_dir, shard.index, self.settings.output_format)
            out["records"].append(write_part(path, self.settings.output_format, kept))
            out["index"].append(shard.index)
            out["words"].append(words)
            out["seconds"].append(time.perf_counter() - start)
            out["pid"].append(os.getpid())
            out["peak_rss_mb"].append(peak_rss_mb())
        return out


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, numpy.generic) else value


def run_ray(shards: Sequence[Shard], settings: AnnotateSettings, cluster: RaySettings, on_part: OnPart) -> Iterator[Dict[str, Any]]:
    """Annotate the shards on ``cluster.concurrency`` actors; yields each part's worker statistics as it is written."""
    ray = connect_ray(cluster.address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # annotate shows its own
    if not shards:
        return
    by_index = {shard.index: shard for shard in shards}
    dataset = ray.data.from_items([shard.to_dict() for shard in shards], override_num_blocks=len(shards))
    worker_settings = AnnotateSettings(**{**settings.__dict__, "n_process": 1, "gpu_id": 0 if cluster.num_gpus > 0 else -1})
    annotated = dataset.map_batches(
        PartWriter,
        fn_constructor_args=(worker_settings, max(1, int(cluster.num_cpus))),
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=worker_count(ray, cluster)),
        num_cpus=cluster.num_cpus,
        num_gpus=cluster.num_gpus,
    )
    for row in annotated.iter_rows():
        on_part(by_index[row["index"]], row["records"], row["words"])
        yield row
