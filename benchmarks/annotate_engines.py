"""The annotate engines side by side in one run: the same WikiANN sentences
through ``nlp.pipe`` in one process, ``--n-process 2`` and Ray Data with 2
actors (one CPU each), on an NER pipeline built from configs/ner_dlfa.cfg.

    python benchmarks/annotate_engines.py assets/e5-small ../shared/data --sentences 20000

The pipeline is initialised, not trained (speed and memory do not depend on the
weights). The input is N test sentences of the 10 NER target languages taken in
turn, tokens joined by spaces (CJK characters without), one per line. Every engine runs in a
fresh process; Ray joins a local cluster started before the timer (as on a
real cluster), so its time includes starting the actors and loading the
pipeline in each, as the other engines' time includes loading theirs. Prints
words/s per engine, ``ratio ray / n_process: X`` and peak memory per worker,
and checks that the three outputs are identical.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List

import typer

REPO = Path(__file__).resolve().parent.parent
LANGUAGES = "de es fr nl pt ru zh ar hi tr"
# label -> (output folder, annotate options)
RUNS = {
    "nlp.pipe, 1 process": ("single", ["--engine", "local"]),
    "--n-process 2": ("processes", ["--engine", "local", "--n-process", "2"]),
    "ray, 2 actors x 1 CPU": ("ray", ["--engine", "ray", "--concurrency", "2", "--address", "auto"]),
}
app = typer.Typer(add_completion=False)


def hidden_width(transformer: Path) -> int:
    return json.loads((transformer / "config.json").read_text(encoding="utf8"))["hidden_size"]


def build_pipeline(transformer: Path, mirror: Path, output: Path) -> None:
    import spacy
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config
    from thinc.api import fix_random_seed

    from spacy_dlfa.corpora.wikiann import wikiann_to_docs

    overrides = {"paths.transformer": str(transformer), "components.ner.model.tok2vec.fusion.width": hidden_width(transformer)}
    config = load_config(REPO / "configs" / "ner_dlfa.cfg", overrides=overrides, interpolate=True)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    train = wikiann_to_docs(mirror / "wikiann" / "en" / "train-en.tsv", spacy.blank("xx"), limit=200)[0]
    fix_random_seed(0)
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc) for doc in train])
    nlp.to_disk(output)


def write_input(mirror: Path, languages: List[str], sentences: int, output: Path) -> int:
    """``sentences`` test sentences taken in turn from each language's test set (one each, then the next
    of each, ...), so that a smaller set (hi has 1,000) leaves its share to the others."""
    from spacy_dlfa.corpora.wikiann import read_wikiann_tsv
    from spacy_dlfa.tokenizer import cjk_written_together

    readers = [read_wikiann_tsv(mirror / "wikiann" / lang / f"test-{lang}.tsv") for lang in languages]
    lines: List[str] = []
    while readers and len(lines) < sentences:
        for reader in list(readers):
            sentence = next(reader, None)
            if sentence is None:
                readers.remove(reader)
            elif len(lines) < sentences:
                words = sentence.words
                lines.append(words[0] + "".join(("" if cjk_written_together(left, right) else " ") + right
                                                for left, right in zip(words, words[1:])))
    output.write_text("\n".join(lines) + "\n", encoding="utf8")
    return len(lines)


def run_checked(command: List[str], **options) -> subprocess.CompletedProcess:
    done = subprocess.run(command, capture_output=True, text=True, **options)
    if done.returncode:
        raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{done.stderr[-3000:]}")
    return done


@app.command()
def one(model: str, input_path: str, output_dir: Path, engine: str = "local", n_process: int = 1, concurrency: int = 2,
        shard_size: int = 1000, address: str = "") -> None:
    """One engine, one process; prints the summary as JSON on the last line."""
    from spacy_dlfa.annotate import AnnotateSettings, RaySettings, annotate

    settings = AnnotateSettings(model, output_dir, n_process=n_process)
    summary = annotate(input_path, settings, shard_size=shard_size, engine=engine,
                       cluster=RaySettings(address or None, concurrency, 1.0, 0.0))
    print(json.dumps(summary))


@app.command()
def main(
    transformer: Path = typer.Argument(..., exists=True, help="Hugging Face model folder, e.g. assets/e5-small"),
    mirror: Path = typer.Argument(Path("../shared/data"), exists=True),
    sentences: int = typer.Option(20_000),
    languages: str = typer.Option(LANGUAGES),
    shard_size: int = typer.Option(1000),
) -> None:
    """Build the pipeline and input, run the three engines, print the comparison."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build_pipeline(transformer, mirror, root / "pipeline")
        count = write_input(mirror, languages.split(), sentences, root / "input.txt")
        print(f"{count:,} sentences from WikiANN test-{{{','.join(languages.split())}}}, parts of {shard_size:,}")
        run_checked(["ray", "start", "--head", "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"])
        try:
            results: Dict[str, dict] = {}
            for name, (folder, options) in RUNS.items():
                command = [sys.executable, __file__, "one", str(root / "pipeline"), str(root / "input.txt"), str(root / folder),
                           "--shard-size", str(shard_size), *options]
                done = run_checked(command, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
                results[name] = json.loads(done.stdout.strip().splitlines()[-1])
                result = results[name]
                workers = ", ".join(f"{peak:.0f}" for peak in result["peak_rss_mb"]["workers"]) or "-"
                print(f"{name:24s} {result['words_per_second']:8.0f} words/s {result['docs_per_second']:7.1f} docs/s "
                      f"{result['seconds']:6.1f} s   peak MB: main {result['peak_rss_mb']['main']:.0f}, workers {workers}")
        finally:
            subprocess.run(["ray", "stop", "--force"], capture_output=True)
        outputs = [[p.read_bytes() for p in sorted((root / folder).glob("part-*.jsonl"))] for folder, _ in RUNS.values()]
        print(f"outputs identical across engines: {all(output == outputs[0] for output in outputs)}")
        single, processes, ray = (results[name]["words_per_second"] for name in RUNS)
        print(f"ratio n_process / 1 process: {processes / single:.2f}")
        print(f"ratio ray / n_process: {ray / processes:.2f}")


if __name__ == "__main__":
    app()
