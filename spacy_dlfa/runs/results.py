"""The files of one evaluated run: ``scores.json`` and ``sentences.json.gz``.

A run folder (``metrics/experiments/<task>/<run>/``, ``metrics/ner_dlfa/``, an
attack's folder ``.../attacks/<label>/``) holds two files, each keyed by the
evaluated set's name: ``<lang>`` for the gold tokens, ``<lang>.raw`` for the
raw text tokenized by the pipeline.

* ``scores.json``: ``{name: scores}``, each the keys ``spacy evaluate
  --output`` writes (an attack adds its ``attack`` block); plain JSON.
* ``sentences.json.gz``: ``{name: counts}``, the per-sentence counts that the
  paired bootstrap resamples (``evaluation.sentence_counts``; an attack keeps
  ``{"clean": ..., "attacked": ...}``); gzipped compact JSON.

Names are sorted and the gzip header carries no time or file name, so the same
results give the same bytes. ``write_scores`` adds one set to both files (each
replaced atomically, so an interrupted evaluation keeps the sets it finished).

Runs evaluated before this layout wrote ``<name>.json`` and
``<name>.sentences.json`` per set; ``pack_metrics`` (``python -m spacy_dlfa report pack-metrics``)
folds them into the two files.
"""
import gzip
import json
import os
import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import srsly

SCORES = "scores.json"
SENTENCES = "sentences.json.gz"
RAW = ".raw"  # the raw-text set of a language: "<lang>.raw"
RUN_META = "run.meta.json"  # English dev score, timings and overrides of a trained run (experiments.write_run_meta)
# the old layout's per-set files: <lang> (a 2-3 letter code, optionally _<treebank>), with .raw for the raw text
_OLD_NAME = re.compile(r"^([a-z]{2,3}(?:_[a-z0-9]+)?(?:\.raw)?)(\.sentences)?\.json$")


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _sorted(mapping: Dict[str, object]) -> Dict[str, object]:
    return {name: mapping[name] for name in sorted(mapping)}


def scores_bytes(scores: Dict[str, dict]) -> bytes:
    """``scores.json``'s bytes: names sorted, each set's keys in their order, floats as ``srsly`` writes them."""
    return (srsly.json_dumps(_sorted(scores), indent=2) + "\n").encode("utf8")


def counts_bytes(counts: Dict[str, dict]) -> bytes:
    """``sentences.json.gz``'s bytes: compact JSON, names sorted, gzip level 9 without time or file name."""
    return gzip.compress(srsly.json_dumps(_sorted(counts)).encode("utf8"), compresslevel=9, mtime=0)


def _check_new_layout(run_dir: Path) -> None:
    old = sorted(p.name for p in run_dir.glob("*.json") if _OLD_NAME.match(p.name)) if run_dir.is_dir() else []
    if old:
        raise ValueError(f"{run_dir}: per-set files of the old layout ({', '.join(old[:3])}{', ...' if len(old) > 3 else ''}); "
                         f"fold them into {SCORES} and {SENTENCES} with `python -m spacy_dlfa report pack-metrics {run_dir}`")


def load_scores(run_dir: Path) -> Dict[str, dict]:
    """``{name: scores}`` of every evaluated set (gold tokens and raw text); none: an empty dict."""
    _check_new_layout(run_dir)
    path = run_dir / SCORES
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else {}


def load_metrics(run_dir: Path) -> Dict[str, dict]:
    """``{lang: scores}`` on the gold tokens."""
    return {name: data for name, data in load_scores(run_dir).items() if "." not in name}


def load_raw_metrics(run_dir: Path) -> Dict[str, dict]:
    """``{lang: scores}`` on the raw text (none: an empty dict)."""
    return {name[: -len(RAW)]: data for name, data in load_scores(run_dir).items() if name.endswith(RAW)}


def load_run_meta(run_dir: Path) -> Dict[str, object]:
    """A run's ``run.meta.json``; FileNotFoundError naming the file when the run has none."""
    path = run_dir / RUN_META
    if not path.exists():
        raise FileNotFoundError(f"{path}: no {RUN_META} (is {run_dir} a finished run of `run grid`?)")
    return json.loads(path.read_text(encoding="utf8"))


def load_counts(run_dir: Path) -> Dict[str, dict]:
    """``{name: per-sentence counts}`` (none: an empty dict)."""
    _check_new_layout(run_dir)
    path = run_dir / SENTENCES
    return json.loads(gzip.decompress(path.read_bytes())) if path.exists() else {}


def has_counts(run_dir: Path, names: Iterable[str]) -> bool:
    """Whether every named set has its per-sentence counts (the run's evaluation finished)."""
    return set(names) <= set(load_counts(run_dir))


def write_scores(run_dir: Path, name: str, scores: dict, counts: Optional[dict]) -> None:
    """Add (or replace) set `name` in the folder's ``scores.json`` and, with counts, ``sentences.json.gz``."""
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(run_dir / SCORES, scores_bytes({**load_scores(run_dir), name: scores}))
    if counts is not None:
        _write_atomic(run_dir / SENTENCES, counts_bytes({**load_counts(run_dir), name: counts}))


def _merge(kind: str, folder: Path, packed: Dict[str, dict], loose: Dict[str, Tuple[Path, dict]]) -> Dict[str, dict]:
    merged = dict(packed)
    for name, (path, data) in loose.items():
        if name in merged and merged[name] != data:
            raise ValueError(f"{path}: {name!r} differs from the one already in {folder / kind}; remove one of them")
        merged[name] = data
    return merged


def pack_run(folder: Path) -> bool:
    """Fold one folder's old per-set files into ``scores.json`` and ``sentences.json.gz``, then delete them.
    A folder without such files is left alone (returns False): running it again changes nothing."""
    scores: Dict[str, Tuple[Path, dict]] = {}
    counts: Dict[str, Tuple[Path, dict]] = {}
    for path in sorted(folder.glob("*.json")):
        match = _OLD_NAME.match(path.name)
        if match:
            try:
                data = json.loads(path.read_text(encoding="utf8"))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}: line {error.lineno}: not valid JSON ({error.msg})") from error
            (counts if match.group(2) else scores)[match.group(1)] = (path, data)
    if not scores and not counts:
        return False
    packed_scores, packed_counts = (json.loads((folder / SCORES).read_text(encoding="utf8")) if (folder / SCORES).exists() else {},
                                    json.loads(gzip.decompress((folder / SENTENCES).read_bytes())) if (folder / SENTENCES).exists() else {})
    if scores:
        _write_atomic(folder / SCORES, scores_bytes(_merge(SCORES, folder, packed_scores, scores)))
    if counts:
        _write_atomic(folder / SENTENCES, counts_bytes(_merge(SENTENCES, folder, packed_counts, counts)))
    for path, _ in [*scores.values(), *counts.values()]:
        path.unlink()
    return True


def pack_metrics(root: Path) -> List[Path]:
    """``pack_run`` on `root` and every folder below it; returns the folders it changed."""
    if not root.is_dir():
        raise FileNotFoundError(f"metrics folder {root} does not exist")
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    return [folder for folder in folders if pack_run(folder)]
