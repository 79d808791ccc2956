"""Reading several tasks' DocBins as one training corpus: their examples interleaved, each with its own annotation.

A pipeline trained on two tasks at once (``python -m spacy_dlfa run joint``) reads, e.g., the NER corpus and the
POS corpus through one reader. Each file is read as ``spacy.Corpus.v1`` reads it; their examples come round robin
(one of each file in turn), then the rest of the longer ones. Each ``Example`` keeps its file's annotation and
nothing else: what a doc does not annotate stays missing, so the other task's component learns nothing from it
(spaCy's ``ner`` skips docs whose ``ENT_IOB`` is missing, its ``tagger`` ignores empty tags, and both scorers
skip them). The converters write it so: WikiANN docs have no tags, UD docs no ``ENT_IOB`` (0, not ``O``).
"""
from itertools import zip_longest
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Union

from spacy.language import Language
from spacy.training import Corpus, Example

_SKIP = object()


def interleave(streams: Iterable[Iterable]) -> Iterator:
    """Round robin over the streams (one item of each in turn), then the rest of the longer ones."""
    for items in zip_longest(*streams, fillvalue=_SKIP):
        yield from (item for item in items if item is not _SKIP)


class InterleavedCorpus:
    """Examples of several ``.spacy`` files (or folders of them), interleaved; see the module doc.

    ``gold_preproc``, ``max_length``, ``limit`` and ``augmenter`` are ``spacy.Corpus.v1``'s, applied to each file on
    its own (``limit`` 50: the first 50 docs of each file)."""

    def __init__(self, paths: Mapping[str, Union[str, Path]], *, gold_preproc: bool = False, max_length: int = 0,
                 limit: int = 0, augmenter: Optional[Callable] = None):
        if not paths:
            raise ValueError("spacy-dlfa.InterleavedCorpus.v1: paths is empty; give one .spacy file per task, e.g. "
                             "{\"ner\": \"corpus/ner/train.spacy\", \"pos\": \"corpus/pos/train.spacy\"}")
        missing = [f"{name} = {path}" for name, path in paths.items() if path is None or not Path(path).exists()]
        if missing:
            raise ValueError(f"spacy-dlfa.InterleavedCorpus.v1: no such file: {', '.join(missing)} "
                             "(write the task's DocBins with `python -m spacy_dlfa data prepare`)")
        self.paths: Dict[str, Path] = {name: Path(path) for name, path in paths.items()}
        self.corpora: List[Corpus] = [Corpus(path, gold_preproc=gold_preproc, max_length=max_length, limit=limit,
                                             augmenter=augmenter) for path in self.paths.values()]

    def __call__(self, nlp: Language) -> Iterator[Example]:
        return interleave(corpus(nlp) for corpus in self.corpora)

