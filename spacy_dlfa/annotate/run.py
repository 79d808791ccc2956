"""``annotate``: plan the input into shards, skip the parts already written,
run the rest on an engine, then check that every input record has exactly one
output record.

``OUTPUT/annotate.json`` keeps the settings and the shard plan; a rerun with the
same settings reads the plan from it and annotates only the missing parts, a
rerun with other settings is refused (naming the setting). Skipped invalid
lines go to ``OUTPUT/skipped.jsonl``.
"""
import json
import resource
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm
from wasabi import msg

from ..runs.distributed import ENGINES, RaySettings
from .engines import AnnotateSettings, check_precision, peak_rss_mb, run_local, run_ray
from .inputs import Invalid, Shard, input_files, plan_shards
from .outputs import SUFFIX, count_part, part_path

MANIFEST = "annotate.json"
SKIPPED = "skipped.jsonl"


class AnnotateMismatch(ValueError):
    """The output folder holds parts written with other settings."""


def annotate(input_spec: str, settings: AnnotateSettings, input_format: Optional[str] = None, shard_size: int = 10_000,
             skip_invalid: bool = False, engine: str = "local", cluster: Optional[RaySettings] = None) -> Dict[str, Any]:
    """Annotate every record of ``input_spec`` into ``settings.output_dir``; returns the counts and speed."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: use {' or '.join(ENGINES)}")
    check_precision(settings.precision)
    if settings.output_format not in SUFFIX:
        raise ValueError(f"unknown output format {settings.output_format!r}: use {', '.join(SUFFIX)}")
    if engine == "local" and settings.gpu_id >= 0 and settings.n_process > 1:
        msg.warn("--n-process > 1 on a GPU loads the model once per process (explosion/spaCy#9242); prefer --n-process 1")
    if engine == "ray" and (settings.n_process > 1 or settings.gpu_id >= 0):
        msg.warn("--n-process and --gpu-id are for the local engine; with --engine ray use --concurrency and --num-gpus")
    output_dir = Path(settings.output_dir).resolve()
    settings = AnnotateSettings(**{**settings.__dict__, "output_dir": output_dir, "model": _model_reference(settings.model)})
    shards = _plan(input_spec, settings, input_format, shard_size, skip_invalid)
    done = {shard.index for shard in shards if part_path(output_dir, shard.index, settings.output_format).exists()}
    pending = [shard for shard in shards if shard.index not in done]
    total = sum(shard.records for shard in shards)
    if done:
        msg.info(f"resuming: {len(done)} of {len(shards)} parts already written, {len(pending)} to do")
    start = time.perf_counter()
    words, peaks = _run(pending, settings, engine, cluster or RaySettings())
    seconds = time.perf_counter() - start
    written = _check(shards, settings)
    new_docs = sum(shard.records for shard in pending)
    summary = {"input_records": total + sum(shard.skipped for shard in shards), "annotated": written,
               "skipped": sum(shard.skipped for shard in shards), "parts": len(shards), "new_docs": new_docs,
               "seconds": seconds, "docs_per_second": new_docs / max(seconds, 1e-9), "words_per_second": words / max(seconds, 1e-9),
               "peak_rss_mb": peaks}
    msg.good(f"{summary['input_records']:,} input records: {written:,} annotated, {summary['skipped']:,} skipped, "
             f"in {len(shards)} parts -> {output_dir}")
    if new_docs:
        msg.text(f"this run: {new_docs:,} documents in {seconds:.1f} s ({summary['docs_per_second']:.1f} docs/s, "
                 f"{summary['words_per_second']:.0f} words/s, engine {engine})")
    return summary


def _model_reference(model: str) -> str:
    """A local pipeline folder as an absolute path (workers may run elsewhere), a package name as it is."""
    return str(Path(model).resolve()) if Path(model).exists() else model


def _plan(input_spec: str, settings: AnnotateSettings, input_format: Optional[str], shard_size: int, skip_invalid: bool) -> List[Shard]:
    files = input_files(input_spec, input_format)
    wanted = {"model": settings.model, "precision": settings.precision, "output_format": settings.output_format, "text_field": settings.text_field,
              "shard_size": shard_size, "skip_invalid": skip_invalid,
              "inputs": [[str(path.resolve()), path.stat().st_size] for path, _, _ in files]}
    manifest_path = settings.output_dir / MANIFEST
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf8"))
        differing = [key for key, value in wanted.items() if manifest["settings"].get(key) != value]
        if differing:
            listed = "; ".join(f"{key} = {manifest['settings'].get(key)!r}, asked {wanted[key]!r}" for key in differing)
            raise AnnotateMismatch(f"{settings.output_dir} holds an annotation with other settings ({listed}): "
                                   "use another output folder, or delete it to start again")
        return [Shard(**shard) for shard in manifest["shards"]]
    start = time.perf_counter()
    shards, skipped = plan_shards(files, settings.text_field, shard_size, skip_invalid)
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    _write_skipped(settings.output_dir / SKIPPED, skipped)
    record = {"settings": wanted, "shards": [shard.to_dict() for shard in shards]}
    manifest_path.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf8")
    records = sum(shard.records for shard in shards)
    msg.info(f"{len(files)} input file(s): {records:,} documents in {len(shards)} parts of up to {shard_size:,} "
             f"({len(skipped):,} invalid lines skipped) planned in {time.perf_counter() - start:.1f} s")
    if skipped:
        msg.warn(f"{len(skipped):,} invalid lines skipped, listed in {settings.output_dir / SKIPPED}; "
                 f"first: {skipped[0].source}, line {skipped[0].line}: {skipped[0].reason}")
    return shards


def _write_skipped(path: Path, skipped: Sequence[Invalid]) -> None:
    with open(path, "w", encoding="utf8") as f:
        for item in skipped:
            f.write(json.dumps(item.__dict__, ensure_ascii=False) + "\n")


def _run(pending: Sequence[Shard], settings: AnnotateSettings, engine: str, cluster: RaySettings) -> Tuple[int, Dict[str, Any]]:
    """Annotate the pending shards with a progress bar (documents, docs/s, ETA); returns the words annotated
    and the peak memory (MB) of this process and of each worker."""
    totals = {"words": 0}
    with tqdm(total=sum(shard.records for shard in pending), unit="doc", desc="annotate", dynamic_ncols=True) as bar:
        def on_part(shard: Shard, records: int, words: int) -> None:
            if records != shard.records:
                raise RuntimeError(f"part {shard.index} ({shard.name}, from line {shard.first}) got {records} records, "
                                   f"planned {shard.records}")
            totals["words"] += words
            if engine == "ray":
                bar.update(records)
            bar.set_postfix_str(f"{totals['words'] / max(bar.format_dict['elapsed'], 1e-9):.0f} words/s", refresh=False)

        workers: Dict[int, float] = {}
        if engine == "local":
            run_local(pending, settings, on_part, lambda: bar.update(1))
            if settings.n_process > 1:  # the largest of the forked workers, all joined by now
                workers[0] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        else:
            for row in run_ray(pending, settings, cluster, on_part):
                workers[row["pid"]] = max(workers.get(row["pid"], 0.0), row["peak_rss_mb"])
    peaks = {"main": peak_rss_mb(), "workers": sorted(workers.values())}
    if workers:
        msg.text(f"peak memory (MB): this process {peaks['main']:.0f}, workers {', '.join(f'{p:.0f}' for p in peaks['workers'])}")
    return totals["words"], peaks


def _check(shards: Sequence[Shard], settings: AnnotateSettings) -> int:
    """Read every part back: one output record per valid input record, no part missing."""
    problems: List[Tuple[int, str]] = []
    written = 0
    for shard in shards:
        path = part_path(settings.output_dir, shard.index, settings.output_format)
        if not path.exists():
            problems.append((shard.index, "missing"))
            continue
        count = count_part(path, settings.output_format)
        written += count
        if count != shard.records:
            problems.append((shard.index, f"{count} records, expected {shard.records}"))
    if problems:
        listed = "; ".join(f"part {index}: {problem}" for index, problem in problems[:10])
        raise RuntimeError(f"output check failed in {settings.output_dir} ({listed}); rerun to redo missing parts")
    return written
