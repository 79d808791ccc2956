"""Where each task's English training data and target-language test data live.

Offline the files come from a local mirror (``../shared/data`` layout:
``wikiann/<lang>/{train,dev,test}-<lang>.tsv``, ``ud/<treebank>/<treebank>-ud-<split>.conllu``).
Online, WikiANN comes from the Hugging Face dataset ``unimelb-nlp/wikiann``;
UD has no maintained hub copy for current ``datasets``, so the project fetches
the treebanks' GitHub repositories as assets into a folder of the same layout.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import spacy
from spacy.vocab import Vocab
from wasabi import msg

from .corpora import conllu_to_docs, load_hf_dataset, wikiann_rows_to_docs, wikiann_to_docs, write_docbin

HF_WIKIANN = "unimelb-nlp/wikiann"
HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class TaskData:
    name: str
    source_language: str
    kind: str

    def mirror_file(self, mirror: Path, language: str, split: str) -> Path:
        if self.kind == "wikiann":
            return mirror / "wikiann" / language / f"{split}-{language}.tsv"
        return mirror / "ud" / language / f"{language}-ud-{split}.conllu"


TASKS: Dict[str, TaskData] = {
    "ner": TaskData("ner", "en", "wikiann"),
    "pos": TaskData("pos", "en_ewt", "ud"),
}


def _read_split(task: TaskData, source: str, mirror: Path, vocab: Vocab, language: str, split: str, limit: Optional[int]):
    if source == "hub":
        if task.kind != "wikiann":
            raise ValueError("UD has no hub source: fetch the treebanks with `spacy project assets` and use them as the mirror")
        rows = load_hf_dataset(HF_WIKIANN, language, HF_SPLITS[split])
        return wikiann_rows_to_docs(rows, vocab, limit=limit, source=f"{HF_WIKIANN}/{language}/{split}")
    path = task.mirror_file(mirror, language, split)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: expected the {task.name} {split} data for '{language}' in the mirror {mirror}")
    reader: Callable = wikiann_to_docs if task.kind == "wikiann" else conllu_to_docs
    return reader(path, vocab, limit=limit)


def prepare_task(
    task_name: str,
    output_dir: Path,
    targets: Sequence[str],
    mirror: Path,
    source: str = "mirror",
    train_limit: Optional[int] = None,
    dev_limit: Optional[int] = None,
    eval_limit: Optional[int] = None,
) -> List[dict]:
    """Write train.spacy and dev.spacy (source language) and test-<lang>.spacy
    for the source language and every target into `output_dir`."""
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}: use one of {', '.join(TASKS)}")
    task = TASKS[task_name]
    jobs = [("train", task.source_language, "train", train_limit), ("dev", task.source_language, "dev", dev_limit)]
    jobs += [(f"test-{language}", language, "test", eval_limit) for language in [task.source_language, *targets]]
    vocab = spacy.blank("xx").vocab
    written = []
    for number, (name, language, split, limit) in enumerate(jobs, 1):
        docs, counts = _read_split(task, source, mirror, vocab, language, split, limit)
        output = output_dir / f"{name}.spacy"
        result = write_docbin(docs, output)
        if result["docs"] != counts["sentences"]:
            raise RuntimeError(f"{output}: wrote {result['docs']} docs for {counts['sentences']} sentences read")
        cut = f" (first {limit:,} of more)" if counts["truncated"] else ""
        msg.text(f"[{number}/{len(jobs)}] {output}: {result['docs']:,} sentences{cut}, {result['tokens']:,} tokens from {counts['source']}")
        written.append({**counts, "output": str(output)})
    msg.good(f"{task_name}: wrote {len(jobs)} DocBins to {output_dir}")
    return written
