"""What ``annotate`` reads: plain text (one document per line), JSONL (one object
per line, the text in ``text_field``, every other field kept as metadata) and
Parquet (a text column, the other columns as metadata); a file, a folder
(searched recursively) or a glob.

The input is planned as shards of consecutive records: byte ranges of a text or
JSONL file, row groups of a Parquet file. A shard is what one worker reads,
annotates and writes as one output part, so reading happens where the work
runs and a finished part never needs doing again. Planning reads every record
once, so a malformed line is reported (file and line) before any annotation.
"""
import glob
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..corpora.common import CorpusFormatError

FORMATS = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class Record:
    """One document: ``id`` is ``<input file>:<line or row>`` (1-based)."""

    id: str
    text: str
    meta: Dict[str, Any]


@dataclass(frozen=True)
class Invalid:
    """A line (row) that is not a valid record, and why."""

    source: str
    line: int
    reason: str
    content: str

    def error(self, unit: str) -> CorpusFormatError:
        return CorpusFormatError(self.source, self.line, self.reason, unit=unit)


@dataclass(frozen=True)
class Shard:
    """Consecutive records of one file: bytes [start, stop) of a text or JSONL
    file, or row groups [start, stop) of a Parquet file; ``first`` is the
    1-based number of its first line (row)."""

    index: int
    path: str
    name: str
    format: str
    start: int
    stop: int
    first: int
    records: int
    skipped: int

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def input_files(spec: Union[str, Path], input_format: Optional[str] = None) -> List[Tuple[Path, str, str]]:
    """``(path, name used in ids, format)`` of every input file, sorted. ``spec`` is a
    file, a folder (its files with a known suffix, recursively) or a glob."""
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith("."))
        root = path
    elif path.is_file():
        files, root = [path], path.parent
    else:
        files = sorted(Path(p) for p in glob.glob(str(spec), recursive=True) if Path(p).is_file())
        root = Path(os.path.commonpath([str(p.parent) for p in files])) if files else path.parent
    if not files:
        known = ", ".join(sorted(FORMATS))
        raise FileNotFoundError(f"no input files at {spec} (a file, a folder with files ending in {known}, or a glob)")
    planned = []
    for file in files:
        kind = input_format or FORMATS.get(file.suffix.lower())
        if kind not in ("text", "jsonl", "parquet"):
            raise ValueError(f"{file}: unknown input format (suffix {file.suffix!r}); use --input-format text, jsonl or parquet")
        planned.append((file.resolve(), file.relative_to(root).as_posix(), kind))
    return planned


def plan_shards(files: Sequence[Tuple[Path, str, str]], text_field: str, shard_size: int,
                skip_invalid: bool) -> Tuple[List[Shard], List[Invalid]]:
    """Cut every file into shards of at most ``shard_size`` lines (rows; Parquet at
    row-group boundaries). Without ``skip_invalid`` the first invalid record
    raises a CorpusFormatError; with it the invalid records are returned."""
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    shards: List[Shard] = []
    skipped: List[Invalid] = []
    for path, name, kind in files:
        cuts = _parquet_cuts(path, text_field, shard_size) if kind == "parquet" else _line_cuts(path, shard_size)
        for start, stop, first in cuts:
            shard = Shard(len(shards), str(path), name, kind, start, stop, first, 0, 0)
            records, invalid = 0, []
            for item in read_shard(shard, text_field):  # one item per line (row)
                if isinstance(item, Record):
                    records += 1
                elif skip_invalid:
                    invalid.append(item)
                else:
                    raise item.error(_unit(kind))
            skipped.extend(invalid)
            shards.append(Shard(shard.index, shard.path, name, kind, start, stop, first, records, len(invalid)))
    return shards, skipped


def read_records(shard: Union[Shard, Dict[str, Any]], text_field: str) -> Iterator[Record]:
    """The valid records of a shard, in order (the invalid ones were counted when it was planned)."""
    if isinstance(shard, dict):
        shard = Shard(**shard)
    return (item for item in read_shard(shard, text_field) if isinstance(item, Record))


def read_shard(shard: Shard, text_field: str) -> Iterator[Union[Record, Invalid]]:
    if shard.format == "parquet":
        yield from _parquet_rows(shard, text_field)
        return
    for number, raw in _lines(shard):
        yield _parse_line(raw, shard, number, text_field)


def _unit(kind: str) -> str:
    return "row" if kind == "parquet" else "line"


def _line_cuts(path: Path, shard_size: int) -> Iterator[Tuple[int, int, int]]:
    start, offset, lines = 0, 0, 0
    with open(path, "rb") as f:
        for raw in f:
            offset += len(raw)
            lines += 1
            if lines % shard_size == 0:
                yield start, offset, lines - shard_size + 1
                start = offset
    if offset > start:
        yield start, offset, lines - (lines % shard_size) + 1


def _lines(shard: Shard) -> Iterator[Tuple[int, bytes]]:
    with open(shard.path, "rb") as f:
        f.seek(shard.start)
        number, offset = shard.first, shard.start
        while offset < shard.stop:
            raw = f.readline()
            if not raw:
                break
            offset += len(raw)
            yield number, raw
            number += 1


def _parse_line(raw: bytes, shard: Shard, number: int, text_field: str) -> Union[Record, Invalid]:
    def invalid(reason: str) -> Invalid:
        return Invalid(shard.name, number, reason, raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return invalid(f"expected UTF-8 text ({err.reason})")
    if number == 1:
        line = line.lstrip("\ufeff")
    line = line[:-2] if line.endswith("\r\n") else line.rstrip("\n")
    record_id = f"{shard.name}:{number}"
    if shard.format == "text":
        return Record(record_id, line, {})
    try:
        value = json.loads(line)
    except ValueError as err:
        return invalid(f"expected a JSON object ({err})")
    if not isinstance(value, dict):
        return invalid(f"expected a JSON object, got {type(value).__name__}")
    if not isinstance(value.get(text_field), str):
        found = "no such field" if text_field not in value else type(value[text_field]).__name__
        return invalid(f"expected a string in field {text_field!r} ({found}; fields: {', '.join(value) or 'none'})")
    return Record(record_id, value.pop(text_field), value)


def _parquet_cuts(path: Path, text_field: str, shard_size: int) -> Iterator[Tuple[int, int, int]]:
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(path).metadata
    if text_field not in metadata.schema.names:
        raise CorpusFormatError(path, 1, f"expected a column {text_field!r} (columns: {', '.join(metadata.schema.names)})", unit="row")
    start, rows, first = 0, 0, 1
    for group in range(metadata.num_row_groups):
        rows += metadata.row_group(group).num_rows
        if rows >= shard_size:
            yield start, group + 1, first
            start, first, rows = group + 1, first + rows, 0
    if start < metadata.num_row_groups:
        yield start, metadata.num_row_groups, first


def _parquet_rows(shard: Shard, text_field: str) -> Iterator[Union[Record, Invalid]]:
    import pyarrow.parquet as pq

    table = pq.ParquetFile(shard.path).read_row_groups(list(range(shard.start, shard.stop)))
    for number, row in enumerate(table.to_pylist(), shard.first):
        text = row.pop(text_field)
        if not isinstance(text, str):
            yield Invalid(shard.name, number, f"expected a string in column {text_field!r}, got {type(text).__name__}",
                          json.dumps(row, default=str, ensure_ascii=False))
        else:
            yield Record(f"{shard.name}:{number}", text, row)
