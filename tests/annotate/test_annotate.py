"""annotate: every input record gives one output record, bad input is told by file and line, an
interrupted run resumes without duplicates or gaps, and the Ray engine writes what the local one does."""
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from conftest import REPO, SENTENCES
from spacy.tokens import DocBin

from spacy_dlfa.annotate import AnnotateMismatch, AnnotateSettings, RaySettings, annotate, outputs
from spacy_dlfa.annotate.inputs import input_files, plan_shards
from spacy_dlfa.corpora.common import CorpusFormatError

pytestmark = pytest.mark.usefixtures("single_torch_thread")

TEXTS = SENTENCES[:5] + ["", "北京是中国的首都。", "   "]


def write_inputs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text("\n".join(TEXTS) + "\n", encoding="utf8")
    rows = [{"text": text, "n": i, "source": {"site": "x"}} for i, text in enumerate(SENTENCES[5:9])]
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "b.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf8")
    return folder


def records(output: Path, output_format: str = "jsonl") -> List[Dict]:
    return [row for path in sorted(output.glob(f"part-*{outputs.SUFFIX[output_format]}")) for row in outputs.read_part(path, output_format)]


def run(model: Path, source, output: Path, **options):
    settings = AnnotateSettings(str(model), output, **{k: v for k, v in options.items() if k in AnnotateSettings.__dataclass_fields__})
    rest = {k: v for k, v in options.items() if k not in AnnotateSettings.__dataclass_fields__}
    return annotate(str(source), settings, **rest)


@pytest.fixture(scope="module")
def local_run(trained_pipelines, tmp_path_factory):
    root = tmp_path_factory.mktemp("annotate")
    inputs = write_inputs(root / "in")
    summary = run(trained_pipelines["ner"], inputs, root / "out", shard_size=3)
    return inputs, root / "out", summary


def test_every_record_once_with_ids_text_metadata_and_offsets(local_run):
    inputs, output, summary = local_run
    rows = records(output)
    assert [row["text"] for row in rows] == TEXTS + SENTENCES[5:9]
    assert [row["id"] for row in rows] == [f"a.txt:{i}" for i in range(1, 9)] + [f"sub/b.jsonl:{i}" for i in range(1, 5)]
    assert rows[8]["meta"] == {"n": 0, "source": {"site": "x"}} and rows[0]["meta"] == {}
    assert summary["input_records"] == summary["annotated"] == 12 and summary["skipped"] == 0
    assert summary["parts"] == 5  # a.txt in 3 + 3 + 2 lines, b.jsonl in 3 + 1: parts never span files
    for row in rows:
        assert all(row["text"][t["start"]:t["end"]] == t["text"] for t in row["tokens"])
        assert "".join(t["text"] for t in row["tokens"]).replace(" ", "") == row["text"].replace(" ", "")
        for ent in row["ents"]:
            assert row["text"][ent["start"]:ent["end"]] == ent["text"]
    assert rows[5]["tokens"] == [] and rows[5]["ents"] == []  # empty text: empty annotations


def test_records_hold_what_the_pipeline_predicts(local_run, trained_pipelines):
    import spacy

    nlp = spacy.load(trained_pipelines["ner"])
    rows = records(local_run[1])
    docs = list(nlp.pipe(row["text"] for row in rows))
    assert [[(e["start"], e["end"], e["label"]) for e in row["ents"]] for row in rows] == \
           [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]
    assert [[t["text"] for t in row["tokens"]] for row in rows] == [[t.text for t in doc] for doc in docs]


def test_parquet_input_and_outputs_match_jsonl(local_run, trained_pipelines, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    inputs, output, _ = local_run
    expected = records(output)
    table = pa.Table.from_pylist([{"body": row["text"], "k": i} for i, row in enumerate(expected)])
    pq.write_table(table, tmp_path / "c.parquet", row_group_size=5)
    run(trained_pipelines["ner"], tmp_path / "c.parquet", tmp_path / "pq", text_field="body", output_format="parquet", shard_size=5)
    rows = records(tmp_path / "pq", "parquet")
    assert [row["id"] for row in rows] == [f"c.parquet:{i}" for i in range(1, 13)]
    assert [{k: v for k, v in row.items() if k not in ("id", "meta")} for row in rows] == \
           [{k: v for k, v in row.items() if k not in ("id", "meta")} for row in expected]
    assert [row["meta"] for row in rows] == [{"k": i} for i in range(12)]


def test_docbin_output_keeps_ids_and_metadata(local_run, trained_pipelines, tmp_path):
    inputs, output, _ = local_run
    run(trained_pipelines["ner"], inputs, tmp_path / "db", output_format="docbin", shard_size=3)
    import spacy

    vocab = spacy.blank("xx").vocab
    docs = [doc for path in sorted((tmp_path / "db").glob("part-*.spacy")) for doc in DocBin().from_disk(path).get_docs(vocab)]
    expected = records(output)
    assert [doc.text for doc in docs] == [row["text"] for row in expected]
    assert [doc.user_data["id"] for doc in docs] == [row["id"] for row in expected]
    assert all(doc._.trf_data is None for doc in docs)  # the hidden states are not written
    assert [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs] == \
           [[(e["start"], e["end"], e["label"]) for e in row["ents"]] for row in expected]


def test_tags_are_written_for_a_tagger(trained_pipelines, tmp_path):
    (tmp_path / "t.txt").write_text("\n".join(SENTENCES[:3]), encoding="utf8")  # no final line break: still 3 records
    run(trained_pipelines["tagger"], tmp_path / "t.txt", tmp_path / "out")
    rows = records(tmp_path / "out")
    assert len(rows) == 3 and all("tag" in token for row in rows for token in row["tokens"])


def test_two_processes_give_the_same_output(local_run, trained_pipelines, tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    inputs, output, _ = local_run
    run(trained_pipelines["ner"], inputs, tmp_path / "np2", shard_size=3, n_process=2, batch_size=2)
    for part in sorted(output.glob("part-*.jsonl")):
        assert (tmp_path / "np2" / part.name).read_text(encoding="utf8") == part.read_text(encoding="utf8")


def test_an_interrupted_run_resumes_without_duplicates_or_gaps(local_run, trained_pipelines, tmp_path, monkeypatch):
    inputs, output, _ = local_run
    real_write = outputs.write_part
    calls = {"n": 0}

    def failing_write(path, output_format, kept):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if stopped while writing the third part
        return real_write(path, output_format, kept)

    monkeypatch.setattr("spacy_dlfa.annotate.engines.write_part", failing_write)
    with pytest.raises(KeyboardInterrupt):
        run(trained_pipelines["ner"], inputs, tmp_path / "out", shard_size=3)
    assert len(list((tmp_path / "out").glob("part-*.jsonl"))) == 2
    first = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("part-*.jsonl")}
    monkeypatch.setattr("spacy_dlfa.annotate.engines.write_part", real_write)
    summary = run(trained_pipelines["ner"], inputs, tmp_path / "out", shard_size=3)
    assert summary["new_docs"] == 12 - 6 and summary["annotated"] == 12
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("part-*.jsonl") if p.name in first} == first
    assert records(tmp_path / "out") == records(output)
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_a_rerun_with_other_settings_is_refused(local_run, trained_pipelines):
    inputs, output, _ = local_run
    with pytest.raises(AnnotateMismatch, match="shard_size = 3, asked 4"):
        run(trained_pipelines["ner"], inputs, output, shard_size=4)
    assert run(trained_pipelines["ner"], inputs, output, shard_size=3)["new_docs"] == 0


def test_a_malformed_line_names_file_and_line(tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a"}\n{"text": "b"\n{"txt": "c"}\n', encoding="utf8")
    files = input_files(tmp_path / "d.jsonl")
    with pytest.raises(CorpusFormatError, match=r"d\.jsonl, line 2: expected a JSON object"):
        plan_shards(files, "text", 10, skip_invalid=False)
    shards, skipped = plan_shards(files, "text", 10, skip_invalid=True)
    assert [(item.line, item.content) for item in skipped] == [(2, '{"text": "b"'), (3, '{"txt": "c"}')]
    assert "no such field; fields: txt" in skipped[1].reason
    assert [(s.records, s.skipped) for s in shards] == [(1, 2)]


def test_skip_invalid_counts_and_lists_the_skipped_lines(trained_pipelines, tmp_path):
    (tmp_path / "d.jsonl").write_text('[1]\n{"text": null}\n{"text": "Paris ."}\n', encoding="utf8")
    summary = run(trained_pipelines["ner"], tmp_path / "d.jsonl", tmp_path / "out", shard_size=2, skip_invalid=True)
    assert (summary["input_records"], summary["annotated"], summary["skipped"]) == (3, 1, 2)
    assert [row["id"] for row in records(tmp_path / "out")] == ["d.jsonl:3"]
    assert (tmp_path / "out" / "part-00000.jsonl").read_text() == ""  # both lines of the first part skipped
    skipped = [json.loads(line) for line in (tmp_path / "out" / "skipped.jsonl").read_text().splitlines()]
    assert [(item["source"], item["line"]) for item in skipped] == [("d.jsonl", 1), ("d.jsonl", 2)]


def test_inputs_by_glob_and_unknown_suffixes(tmp_path):
    write_inputs(tmp_path)
    assert [name for _, name, _ in input_files(str(tmp_path / "**" / "*.jsonl"))] == ["b.jsonl"]
    assert [kind for _, _, kind in input_files(tmp_path)] == ["text", "jsonl"]
    (tmp_path / "x.csv").write_text("a\n")
    with pytest.raises(ValueError, match="x.csv: unknown input format"):
        input_files(tmp_path / "x.csv")
    with pytest.raises(FileNotFoundError, match="no input files"):
        input_files(tmp_path / "nothing-*.txt")


def test_the_cli_reports_a_bad_line_without_a_traceback(trained_pipelines, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"text": "a"}\nnot json\n', encoding="utf8")
    result = subprocess.run([sys.executable, "-m", "spacy_dlfa", "annotate", str(trained_pipelines["ner"]), str(tmp_path / "d.jsonl"),
                             str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert "d.jsonl, line 2: expected a JSON object" in result.stdout and "Traceback" not in result.stderr


def test_ray_engine_writes_what_the_local_engine_writes(local_ray, local_run, trained_pipelines, tmp_path):
    inputs, output, _ = local_run
    summary = run(trained_pipelines["ner"], inputs, tmp_path / "ray", shard_size=3, engine="ray", cluster=RaySettings(concurrency=2))
    assert summary["annotated"] == 12 and len(summary["peak_rss_mb"]["workers"]) >= 1
    for part in sorted(output.glob("part-*.jsonl")):
        assert (tmp_path / "ray" / part.name).read_text(encoding="utf8") == part.read_text(encoding="utf8")


def test_precision_loads_the_transformer_so_and_is_kept_with_the_settings(local_run, trained_pipelines, tmp_path):
    from spacy_dlfa.annotate.engines import load_pipeline
    from spacy_dlfa.layers.quantize import Int8Linear

    inputs, output, _ = local_run
    nlp = load_pipeline(str(trained_pipelines["ner"]), precision="int8")
    assert any(isinstance(module, Int8Linear) for module in nlp.get_pipe("transformer").model.transformer.modules())
    summary = run(trained_pipelines["ner"], inputs, tmp_path / "int8", shard_size=3, precision="int8")
    assert summary["annotated"] == len(records(output))
    expected = [[[ent.start_char, ent.end_char, ent.label_] for ent in doc.ents] for doc in nlp.pipe(row["text"] for row in records(tmp_path / "int8"))]
    assert [[[e["start"], e["end"], e["label"]] for e in row["ents"]] for row in records(tmp_path / "int8")] == expected
    with pytest.raises(AnnotateMismatch, match="precision = 'int8', asked None"):
        run(trained_pipelines["ner"], inputs, tmp_path / "int8", shard_size=3)
    with pytest.raises(ValueError, match="unknown precision 'int4': use fp32, bf16, int8, int8-all, int8-smooth"):
        run(trained_pipelines["ner"], inputs, tmp_path / "int4", precision="int4")
