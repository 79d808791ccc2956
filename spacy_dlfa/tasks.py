"""Where each task's English training data and target-language test data live.

Offline the files come from a local mirror (``../shared/data`` layout:
``wikiann/<lang>/{train,dev,test}-<lang>.tsv``, ``ud/<treebank>/<treebank>-ud-<split>.conllu``,
``{xnli,pawsx}/<lang>/dev-<lang>.tsv``).
Online, WikiANN comes from the Hugging Face dataset ``unimelb-nlp/wikiann``;
UD has no maintained hub copy for current ``datasets``, so the project fetches
the treebanks' GitHub repositories as assets into a folder of the same layout.

The sentence-pair tasks (XNLI, PAWS-X) have only dev sets offline, line-aligned
translations of the English one. From the mirror, English dev is split in two:
the held-out pairs (``heldout_positions``: whole groups of pairs sharing a
text, from the end of the file) give ``dev.spacy`` and ``test-en.spacy`` (the
same pairs: the English score is a dev score), the other pairs ``train.spacy``;
``test-<lang>.spacy`` holds the target's pairs at the held-out positions only,
since the others are translations of the English training pairs. Online
(``source="hub"``): the real English train set (MultiNLI for ``facebook/xnli``),
English validation, and each language's test split.
"""
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import spacy
from spacy.tokens import Doc
from spacy.vocab import Vocab
from wasabi import msg

from .corpora.common import Counts
from .corpora.docbin import write_docbin
from .corpora.hf_rows import load_hf_dataset
from .corpora.sentence_pairs import PAIR_SCHEMES, Pair, pair_rows_to_docs, pairs_to_docs, read_pair_tsv
from .corpora.ud import conllu_to_docs
from .corpora.wikiann import wikiann_rows_to_docs, wikiann_to_docs
from .pairs import pair_separator

HF_WIKIANN = "unimelb-nlp/wikiann"
HF_PAIRS = {"xnli": "facebook/xnli", "pawsx": "google-research-datasets/paws-x"}
HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
SOURCES = ("mirror", "hub")
# Pairs held out of the mirror's English dev (2,490 XNLI, 2,000 PAWS-X pairs) for
# dev and the test sets: 30 %, 250 whole XNLI premises.
DEFAULT_HOLDOUT = {"xnli": 750, "pawsx": 600}

Job = Tuple[str, Callable[[], Tuple[List[Doc], Counts]]]


@dataclass(frozen=True)
class TaskData:
    name: str
    source_language: str
    kind: str
    title: str  # in report headings

    @property
    def is_pair(self) -> bool:
        return self.kind in PAIR_SCHEMES

    @property
    def chance(self) -> Optional[float]:
        """Accuracy in percent of a uniform guess over the classes (pair tasks); None for token tasks."""
        return 100.0 / len(PAIR_SCHEMES[self.kind].labels) if self.is_pair else None

    def mirror_file(self, mirror: Path, language: str, split: str) -> Path:
        if self.kind == "wikiann":
            return mirror / "wikiann" / language / f"{split}-{language}.tsv"
        if self.is_pair:
            return mirror / self.kind / language / f"{split}-{language}.tsv"
        return mirror / "ud" / language / f"{language}-ud-{split}.conllu"

    def existing_mirror_file(self, mirror: Path, language: str, split: str) -> Path:
        path = self.mirror_file(mirror, language, split)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: expected the {self.name} {split} data for '{language}' in the mirror {mirror}")
        return path


TASKS: Dict[str, TaskData] = {
    "ner": TaskData("ner", "en", "wikiann", "NER"),
    "pos": TaskData("pos", "en_ewt", "ud", "POS"),
    "xnli": TaskData("xnli", "en", "xnli", "XNLI"),
    "pawsx": TaskData("pawsx", "en", "pawsx", "PAWS-X"),
}


def _splits(task: TaskData, targets: Sequence[str]) -> List[Tuple[str, str, str]]:
    """(output name, language, split) of every DocBin a task writes."""
    jobs = [("train", task.source_language, "train"), ("dev", task.source_language, "dev")]
    return jobs + [(f"test-{language}", language, "test") for language in [task.source_language, *targets]]


def _read_split(task: TaskData, source: str, mirror: Path, vocab: Vocab, language: str, split: str, limit: Optional[int]):
    if source == "hub":
        if task.kind != "wikiann":
            raise ValueError("UD has no hub source: fetch the treebanks with `spacy project assets` and use them as the mirror")
        rows = load_hf_dataset(HF_WIKIANN, language, HF_SPLITS[split])
        return wikiann_rows_to_docs(rows, vocab, limit=limit, source=f"{HF_WIKIANN}/{language}/{split}")
    reader: Callable = wikiann_to_docs if task.kind == "wikiann" else conllu_to_docs
    return reader(task.existing_mirror_file(mirror, language, split), vocab, limit=limit)


# --------------------------------------------------------------------------- #
# Sentence pairs


def _text_groups(pairs: Sequence[Pair]) -> List[int]:
    """A group id per pair: pairs sharing a text (transitively) share the id."""
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: Dict[str, int] = {}
    for i, pair in enumerate(pairs):
        for text in (pair.text_a.strip(), pair.text_b.strip()):
            parent[root(i)] = root(first.setdefault(text, i))
    return [root(i) for i in range(len(pairs))]


def heldout_positions(pairs: Sequence[Pair], size: int) -> List[int]:
    """The positions (ascending) of the pairs held out of English dev: at most
    `size` pairs, in whole groups of pairs that share a text (XNLI: a premise's
    three hypotheses; PAWS-X: pairs made from the same sentence), so no held-out
    text is also a training text. Groups are taken from the end of the file (a
    group by its last pair), skipping those that no longer fit; deterministic."""
    if not 0 < size < len(pairs):
        raise ValueError(f"the hold-out must be between 1 and {len(pairs) - 1} pairs (of {len(pairs)}), got {size}")
    groups = _text_groups(pairs)
    members: Dict[int, List[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    held: List[int] = []
    seen: Set[int] = set()
    for group in reversed(groups):
        if group not in seen and len(held) + len(members[group]) <= size:
            held += members[group]
        seen.add(group)
        if len(held) == size:
            break
    return sorted(held)


def _load_separator(task: TaskData, transformer: Optional[str]) -> List[str]:
    if transformer is None:
        raise ValueError(f"{task.name} needs `transformer` (a model folder or hub name): its DocBins hold that tokenizer's pair separator")
    from transformers import AutoTokenizer  # heavy import, only for pair tasks

    return pair_separator(AutoTokenizer.from_pretrained(str(transformer)))


def _pair_hub_jobs(task: TaskData, targets: Sequence[str], limits: Dict[str, Optional[int]], convert: Callable) -> List[Job]:
    name = HF_PAIRS[task.kind]

    def read(language: str, split: str) -> Tuple[List[Doc], Counts]:
        rows = load_hf_dataset(name, language, HF_SPLITS[split])
        return convert(rows, limit=limits[split], source=f"{name}/{language}/{split}")

    return [(output, partial(read, language, split)) for output, language, split in _splits(task, targets)]


def _pair_mirror_jobs(task: TaskData, mirror: Path, targets: Sequence[str], limits: Dict[str, Optional[int]],
                      holdout: int, convert: Callable) -> List[Job]:
    scheme = PAIR_SCHEMES[task.kind]
    english_path = task.existing_mirror_file(mirror, task.source_language, "dev")
    english = list(read_pair_tsv(english_path, scheme))
    held = heldout_positions(english, holdout)
    held_set = set(held)
    train = [pair for i, pair in enumerate(english) if i not in held_set]
    dev = [english[i] for i in held]
    msg.info(f"{task.name}: English dev {english_path} split into {len(train):,} training and {len(held):,} held-out pairs; "
             f"dev, test-{task.source_language} and the targets' tests are the held-out pairs")

    def target(language: str) -> Tuple[List[Doc], Counts]:
        path = task.existing_mirror_file(mirror, language, "dev")
        pairs = list(read_pair_tsv(path, scheme))
        if len(pairs) != len(english):
            raise ValueError(f"{path} has {len(pairs):,} pairs, {english_path} {len(english):,}: "
                             "expected line-aligned translations of the English dev set")
        return convert([pairs[i] for i in held], limit=limits["test"], source=f"{path} (held-out lines)")

    held_out = f"{english_path} (held-out lines)"
    jobs: List[Job] = [
        ("train", partial(convert, train, limit=limits["train"], source=f"{english_path} (all but the held-out lines)")),
        ("dev", partial(convert, dev, limit=limits["dev"], source=held_out)),
        (f"test-{task.source_language}", partial(convert, dev, limit=limits["test"], source=held_out)),
    ]
    return jobs + [(f"test-{language}", partial(target, language)) for language in targets]


def _pair_jobs(task: TaskData, source: str, mirror: Path, targets: Sequence[str], limits: Dict[str, Optional[int]],
               transformer: Optional[str], holdout: Optional[int]) -> List[Job]:
    scheme = PAIR_SCHEMES[task.kind]
    nlp, separator = spacy.blank("xx"), _load_separator(task, transformer)
    if source == "hub":
        if holdout is not None:
            raise ValueError("holdout splits the mirror's English dev set; the hub has real train and validation splits")
        return _pair_hub_jobs(task, targets, limits, partial(pair_rows_to_docs, nlp=nlp, separator=separator, scheme=scheme))
    convert = partial(pairs_to_docs, nlp=nlp, separator=separator, labels=scheme.labels)
    return _pair_mirror_jobs(task, mirror, targets, limits, DEFAULT_HOLDOUT[task.kind] if holdout is None else holdout, convert)


# --------------------------------------------------------------------------- #


def _write_jobs(task_name: str, output_dir: Path, jobs: List[Job]) -> List[dict]:
    written = []
    for number, (name, read) in enumerate(jobs, 1):
        docs, counts = read()
        output = output_dir / f"{name}.spacy"
        result = write_docbin(docs, output)
        if result["docs"] != counts["sentences"]:
            raise RuntimeError(f"{output}: wrote {result['docs']} docs for {counts['sentences']} sentences read")
        unit = "pairs" if "pairs" in counts else "sentences"
        cut = f" (first {counts['limit']:,} of more)" if counts["truncated"] else ""
        msg.text(f"[{number}/{len(jobs)}] {output}: {result['docs']:,} {unit}{cut}, {result['tokens']:,} tokens from {counts['source']}")
        written.append({**counts, "output": str(output)})
    msg.good(f"{task_name}: wrote {len(jobs)} DocBins to {output_dir}")
    return written


def prepare_task(
    task_name: str,
    output_dir: Path,
    targets: Sequence[str],
    mirror: Path,
    source: str = "mirror",
    train_limit: Optional[int] = None,
    dev_limit: Optional[int] = None,
    eval_limit: Optional[int] = None,
    transformer: Optional[str] = None,
    holdout: Optional[int] = None,
) -> List[dict]:
    """Write train.spacy and dev.spacy (source language) and test-<lang>.spacy
    for the source language and every target into `output_dir`.

    Pair tasks (xnli, pawsx) need `transformer` (model folder or hub name): its
    tokenizer's pair separator is written into every Doc, so the DocBins fit
    only models of that tokenizer family (``[SEP]`` for BERT, ``</s></s>`` for
    XLM-R and multilingual E5). From the mirror, `holdout` pairs (default
    ``DEFAULT_HOLDOUT``) of English dev are held out for dev and all test sets
    (module docstring); the limits then cut the training pairs, the held-out
    pairs (dev) and every test set. `transformer` is ignored for ner and pos.
    """
    if task_name not in TASKS:
        raise ValueError(f"unknown task {task_name!r}: use one of {', '.join(TASKS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
    task = TASKS[task_name]
    limits = {"train": train_limit, "dev": dev_limit, "test": eval_limit}
    if task.is_pair:
        jobs = _pair_jobs(task, source, mirror, targets, limits, transformer, holdout)
    elif holdout is not None:
        raise ValueError(f"holdout is for the sentence-pair tasks ({', '.join(PAIR_SCHEMES)}), not {task_name}")
    else:
        vocab = spacy.blank("xx").vocab
        jobs = [(name, partial(_read_split, task, source, mirror, vocab, language, split, limits[split]))
                for name, language, split in _splits(task, targets)]
    return _write_jobs(task_name, output_dir, jobs)
