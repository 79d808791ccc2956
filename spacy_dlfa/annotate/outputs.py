"""What ``annotate`` writes: one output part per input shard, ``part-00000.jsonl``
(or ``.parquet``, or ``.spacy`` DocBin), written to a temporary name and renamed
when complete, so a part that exists is whole.

A record: ``id``, ``text``, ``meta`` (the input's other fields), ``ents``
(character offsets, label, text) and ``tokens`` (text, character offsets and,
where the pipeline sets them, ``tag`` and ``pos``); ``cats`` where it classifies.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

from spacy.tokens import Doc, DocBin

from .inputs import Record

SUFFIX = {"jsonl": ".jsonl", "parquet": ".parquet", "docbin": ".spacy"}
TRF_DATA = ("._.", "trf_data", None, None)  # where spacy-transformers keeps doc._.trf_data


def part_path(output_dir: Path, index: int, output_format: str) -> Path:
    return Path(output_dir) / f"part-{index:05d}{SUFFIX[output_format]}"


def doc_record(record: Record, doc: Doc) -> Dict[str, Any]:
    tokens = []
    for token in doc:
        item: Dict[str, Any] = {"text": token.text, "start": token.idx, "end": token.idx + len(token)}
        if token.tag_:
            item["tag"] = token.tag_
        if token.pos_:
            item["pos"] = token.pos_
        tokens.append(item)
    ents = [{"start": ent.start_char, "end": ent.end_char, "label": ent.label_, "text": ent.text} for ent in doc.ents]
    result = {"id": record.id, "text": record.text, "meta": record.meta, "ents": ents, "tokens": tokens}
    if doc.cats:
        result["cats"] = dict(doc.cats)
    return result


def keep(record: Record, doc: Doc, output_format: str) -> Union[Dict[str, Any], Doc]:
    """What a part keeps of an annotated doc, made at once so no transformer output piles up: the record, or
    for a DocBin the doc with its id and metadata and without ``doc._.trf_data`` (the size of the hidden states)."""
    if output_format != "docbin":
        return doc_record(record, doc)
    doc.user_data.pop(TRF_DATA, None)
    doc.user_data["id"] = record.id
    doc.user_data["meta"] = json.loads(_json(record.meta))
    return doc


def write_part(path: Path, output_format: str, kept: Sequence[Union[Dict[str, Any], Doc]]) -> int:
    """Write what ``keep`` made to ``path`` (atomically); returns how many records."""
    temporary = path.with_name(f".{path.name}.tmp")
    if output_format == "docbin":
        DocBin(docs=kept, store_user_data=True).to_disk(temporary)
    elif output_format == "jsonl":
        _write_jsonl(temporary, kept)
    else:
        _write_parquet(temporary, kept)
    os.replace(temporary, path)
    return len(kept)


def count_part(path: Path, output_format: str) -> int:
    """Records in a finished part (read back, for the final check)."""
    if output_format == "jsonl":
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    if output_format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return len(DocBin().from_disk(path))


def read_part(path: Path, output_format: str) -> List[Dict[str, Any]]:
    """The records of a JSONL or Parquet part as dicts (tests, downstream use)."""
    if output_format == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines()]
    import pyarrow.parquet as pq

    rows = pq.read_table(path).to_pylist()
    for row in rows:
        row["meta"] = json.loads(row["meta"])
        row["tokens"] = [{key: value for key, value in token.items() if value is not None} for token in row["tokens"]]
        if row.get("cats") is None:
            row.pop("cats", None)
        else:
            row["cats"] = dict(row["cats"])
    return rows


def _json(value: Any) -> str:
    # default=str: Parquet metadata may hold dates or decimals
    return json.dumps(value, ensure_ascii=False, default=str)


def _write_jsonl(path: Path, rows: List[Dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf8") as f:
        for row in rows:
            f.write(_json(row) + "\n")


def _parquet_schema():
    import pyarrow as pa

    span = pa.struct([("start", pa.int64()), ("end", pa.int64()), ("label", pa.string()), ("text", pa.string())])
    token = pa.struct([("text", pa.string()), ("start", pa.int64()), ("end", pa.int64()), ("tag", pa.string()), ("pos", pa.string())])
    return pa.schema([("id", pa.string()), ("text", pa.string()), ("meta", pa.string()), ("ents", pa.list_(span)),
                      ("tokens", pa.list_(token)), ("cats", pa.map_(pa.string(), pa.float64()))])


def _write_parquet(path: Path, rows: List[Dict[str, Any]]) -> None:
    """Parquet has one schema per file: metadata is stored as a JSON string, absent tags and cats as null."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [{**row, "meta": _json(row["meta"]), "cats": list(row["cats"].items()) if "cats" in row else None} for row in rows]
    pq.write_table(pa.Table.from_pylist(columns, schema=_parquet_schema()), path)
