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

HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
SOURCES = ("mirror", "hub")
MEASURES = ("f1", "accuracy")  # how per-sentence count rows make a score (``statistics.score``)

Job = Tuple[str, Callable[[], Tuple[List[Doc], Counts]]]


@dataclass(frozen=True)
class TaskSpec:
    """Everything the package knows about one task; every module reads it from ``TASKS``.

    The kind says what the docs carry and how they are scored: ``ner`` (entities),
    ``pos`` (tags) or ``pairs`` (sentence-pair classification, ``doc.cats``). The
    fields marked *kind* are the same for every task of a kind (a test checks it):
    the robustness package works with kinds, since a trained pipeline shows its
    kind (its components), not which pair corpus it learnt."""

    name: str  # the task: folder names, --task values
    title: str  # in report headings
    kind: str  # ner, pos or pairs
    corpus: str  # the data format and mirror folder: wikiann, ud, xnli or pawsx
    source_language: str  # training language (a UD treebank for pos)
    component: str  # kind: the trained pipeline component (also the config section)
    factories: Tuple[str, ...]  # kind: pipeline factories that make a pipeline of this kind (robustness)
    config_prefix: str  # configs/<config_prefix>_{baseline,dlfa}.cfg
    score_key: str  # kind: spacy evaluate's task score: dev selection, reports, attacks
    metric: str  # the score's name in report tables and plots
    raw_score_key: Optional[str]  # kind: the score on raw text (evaluate --raw-text); None: no raw-text form
    count_key: str  # kind: the per-sentence counts (``evaluation.sentence_counts``) the bootstrap resamples
    measure: str  # kind: what the count rows score, one of MEASURES
    objective: str  # kind: the attack search's per-doc objective (a function of ``robustness.search``)
    example_score: str  # kind: the per-doc score of the attack success rate (a function of ``robustness.search``)
    package_keys: Tuple[str, ...]  # scores a packaged pipeline's meta.json lists per language
    paper_gain: float  # the reported gain over last-layer mBERT (DESIGN.md), in points
    hub_dataset: Optional[str] = None  # Hugging Face dataset (source="hub"); None: no hub source
    holdout: Optional[int] = None  # pairs: pairs held out of the mirror's English dev for dev and the tests

    @property
    def is_pair(self) -> bool:
        return self.kind == "pairs"

    @property
    def chance(self) -> Optional[float]:
        """Accuracy in percent of a uniform guess over the classes (pair tasks); None for token tasks."""
        return 100.0 / len(PAIR_SCHEMES[self.corpus].labels) if self.is_pair else None

    def mirror_file(self, mirror: Path, language: str, split: str) -> Path:
        if self.corpus == "wikiann":
            return mirror / "wikiann" / language / f"{split}-{language}.tsv"
        if self.is_pair:
            return mirror / self.corpus / language / f"{split}-{language}.tsv"
        return mirror / "ud" / language / f"{language}-ud-{split}.conllu"

    def existing_mirror_file(self, mirror: Path, language: str, split: str) -> Path:
        path = self.mirror_file(mirror, language, split)
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: expected the {self.name} {split} data for '{language}' in the mirror {mirror}")
        return path


_NER = dict(kind="ner", component="ner", factories=("ner",), score_key="ents_f", raw_score_key="ents_char_f", count_key="ents",
            measure="f1", objective="entity_f1", example_score="entity_f1", package_keys=("ents_f", "ents_p", "ents_r"))
_POS = dict(kind="pos", component="tagger", factories=("tagger",), score_key="tag_acc", raw_score_key="tag_acc", count_key="tags",
            measure="accuracy", objective="tag_accuracy", example_score="tag_accuracy", package_keys=("tag_acc", "pos_acc"))
# pairs: the attack lowers the gold class's probability; success is right -> wrong
_PAIRS = dict(kind="pairs", component="textcat", factories=("textcat", "textcat_multilabel"), score_key="cats_micro_f",
              raw_score_key=None, count_key="cats", measure="accuracy", objective="gold_probability",
              example_score="pair_accuracy", package_keys=("cats_macro_f",))
# Pairs held out of the mirror's English dev (2,490 XNLI, 2,000 PAWS-X pairs) for
# dev and the test sets: 30 %, 250 whole XNLI premises.
TASKS: Dict[str, TaskSpec] = {
    "ner": TaskSpec("ner", "NER", corpus="wikiann", source_language="en", config_prefix="ner", metric="NER F1", paper_gain=1.2,
                    hub_dataset="unimelb-nlp/wikiann", **_NER),
    "pos": TaskSpec("pos", "POS", corpus="ud", source_language="en_ewt", config_prefix="tagger", metric="UPOS accuracy",
                    paper_gain=1.5, **_POS),
    "xnli": TaskSpec("xnli", "XNLI", corpus="xnli", source_language="en", config_prefix="xnli", metric="XNLI accuracy",
                     paper_gain=1.5, hub_dataset="facebook/xnli", holdout=750, **_PAIRS),
    "pawsx": TaskSpec("pawsx", "PAWS-X", corpus="pawsx", source_language="en", config_prefix="pawsx", metric="PAWS-X accuracy",
                      paper_gain=2.4, hub_dataset="google-research-datasets/paws-x", holdout=600, **_PAIRS),
}
KINDS: Tuple[str, ...] = tuple(dict.fromkeys(spec.kind for spec in TASKS.values()))


def task_spec(name: str) -> TaskSpec:
    """The spec of the task called `name`; a ValueError naming the tasks otherwise."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: use one of {', '.join(TASKS)}")
    return TASKS[name]


def kind_spec(kind: str) -> TaskSpec:
    """The first task of `kind` (ner, pos or pairs): read only its kind fields (TaskSpec's docstring)."""
    found = next((spec for spec in TASKS.values() if spec.kind == kind), None)
    if found is None:
        raise ValueError(f"unknown task kind {kind!r}: use one of {', '.join(KINDS)}")
    return found


def _splits(task: TaskSpec, targets: Sequence[str]) -> List[Tuple[str, str, str]]:
    """(output name, language, split) of every DocBin a task writes."""
    jobs = [("train", task.source_language, "train"), ("dev", task.source_language, "dev")]
    return jobs + [(f"test-{language}", language, "test") for language in [task.source_language, *targets]]


def _read_split(task: TaskSpec, source: str, mirror: Path, vocab: Vocab, language: str, split: str, limit: Optional[int]):
    if source == "hub":
        if task.hub_dataset is None:
            raise ValueError(f"{task.corpus.upper()} has no hub source: fetch it with `spacy project assets` and use that folder as the mirror")
        rows = load_hf_dataset(task.hub_dataset, language, HF_SPLITS[split])
        return wikiann_rows_to_docs(rows, vocab, limit=limit, source=f"{task.hub_dataset}/{language}/{split}")
    reader: Callable = wikiann_to_docs if task.corpus == "wikiann" else conllu_to_docs
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


def _load_separator(task: TaskSpec, transformer: Optional[str]) -> List[str]:
    if transformer is None:
        raise ValueError(f"{task.name} needs `transformer` (a model folder or hub name): its DocBins hold that tokenizer's pair separator")
    from transformers import AutoTokenizer  # heavy import, only for pair tasks

    return pair_separator(AutoTokenizer.from_pretrained(str(transformer)))


def _pair_hub_jobs(task: TaskSpec, targets: Sequence[str], limits: Dict[str, Optional[int]], convert: Callable) -> List[Job]:
    name = task.hub_dataset

    def read(language: str, split: str) -> Tuple[List[Doc], Counts]:
        rows = load_hf_dataset(name, language, HF_SPLITS[split])
        return convert(rows, limit=limits[split], source=f"{name}/{language}/{split}")

    return [(output, partial(read, language, split)) for output, language, split in _splits(task, targets)]


def _pair_mirror_jobs(task: TaskSpec, mirror: Path, targets: Sequence[str], limits: Dict[str, Optional[int]],
                      holdout: int, convert: Callable) -> List[Job]:
    scheme = PAIR_SCHEMES[task.corpus]
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


def _pair_jobs(task: TaskSpec, source: str, mirror: Path, targets: Sequence[str], limits: Dict[str, Optional[int]],
               transformer: Optional[str], holdout: Optional[int]) -> List[Job]:
    scheme = PAIR_SCHEMES[task.corpus]
    nlp, separator = spacy.blank("xx"), _load_separator(task, transformer)
    if source == "hub":
        if holdout is not None:
            raise ValueError("holdout splits the mirror's English dev set; the hub has real train and validation splits")
        return _pair_hub_jobs(task, targets, limits, partial(pair_rows_to_docs, nlp=nlp, separator=separator, scheme=scheme))
    convert = partial(pairs_to_docs, nlp=nlp, separator=separator, labels=scheme.labels)
    return _pair_mirror_jobs(task, mirror, targets, limits, task.holdout if holdout is None else holdout, convert)


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
    ``TaskSpec.holdout``) of English dev are held out for dev and all test sets
    (module docstring); the limits then cut the training pairs, the held-out
    pairs (dev) and every test set. `transformer` is ignored for ner and pos.
    """
    task = task_spec(task_name)
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: use one of {', '.join(SOURCES)}")
    limits = {"train": train_limit, "dev": dev_limit, "test": eval_limit}
    if task.is_pair:
        jobs = _pair_jobs(task, source, mirror, targets, limits, transformer, holdout)
    elif holdout is not None:
        raise ValueError(f"holdout is for the sentence-pair tasks ({', '.join(n for n, t in TASKS.items() if t.is_pair)}), not {task_name}")
    else:
        vocab = spacy.blank("xx").vocab
        jobs = [(name, partial(_read_split, task, source, mirror, vocab, language, split, limits[split]))
                for name, language, split in _splits(task, targets)]
    return _write_jobs(task_name, output_dir, jobs)
