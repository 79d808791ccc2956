"""Each task's English training docs completed with the other task's annotation, as the other task's pipeline
predicts it: the training data of one pipeline for both tasks distilled from two single-task teachers (Clark et al.
2019, "BAM! Born-Again Multi-Task Networks", here with hard labels).

A WikiANN doc has no tags and a UD doc no entities, so in a joint run (:mod:`.joint`) each component learns from its own
task's docs only. :func:`teach_corpora` writes ``<output>/<task>/train.spacy``: the task's gold docs, each also
carrying the other task's annotation predicted on its gold tokens (tags by the POS teacher, entities by the NER teacher);
``dev.spacy`` is copied unchanged, gold only, so the best model is still chosen on gold English dev. ``run joint
--ner-corpus <output>/ner --pos-corpus <output>/pos`` then trains on it. Only English training text is read.
"""
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Mapping

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from tqdm import tqdm

from ..corpora.docbin import write_docbin
from ..tasks import TASKS
from .joint import TASK_ORDER, corpus_files


def copy_tags(gold: Doc, predicted: Doc) -> None:
    for gold_token, token in zip(gold, predicted):
        gold_token.tag_ = token.tag_


def copy_entities(gold: Doc, predicted: Doc) -> None:
    gold.set_ents([Span(gold, ent.start, ent.end, label=ent.label_) for ent in predicted.ents], default="outside")


def has_tags(doc: Doc) -> bool:
    return any(token.tag_ for token in doc)


def has_entities(doc: Doc) -> bool:
    return doc.has_annotation("ENT_IOB")


COPY: Dict[str, Callable[[Doc, Doc], None]] = {"pos": copy_tags, "ner": copy_entities}
ANNOTATED: Dict[str, Callable[[Doc], bool]] = {"pos": has_tags, "ner": has_entities}
WHAT = {"pos": "tags", "ner": "entities"}


def teach_docs(docs: List[Doc], teacher: Language, task: str, source: str = "docs", batch_size: int = 64) -> Iterator[Doc]:
    """The gold ``docs``, each with ``task``'s annotation as ``teacher`` predicts it on the doc's own tokens (words
    and spaces); a doc that already carries that annotation is an error naming ``source`` and the doc's index."""
    component = TASKS[task].component
    if component not in teacher.pipe_names:
        raise ValueError(f"the {task} teacher has no {component!r} component (it has {teacher.pipe_names})")
    for index, doc in enumerate(docs):
        if ANNOTATED[task](doc):
            raise ValueError(f"{source}, doc {index}: already has {WHAT[task]}; a corpus to complete must carry one task only")
    inputs = (Doc(teacher.vocab, words=[token.text for token in doc], spaces=[bool(token.whitespace_) for token in doc])
              for doc in docs)
    for gold, predicted in zip(docs, teacher.pipe(inputs, batch_size=batch_size)):
        COPY[task](gold, predicted)
        yield gold


def other_task(task: str) -> str:
    return next(other for other in TASK_ORDER if other != task)


def teach_corpus(output_dir: Path, task: str, corpus_dir: Path, teacher_path: Path, batch_size: int = 64) -> Dict[str, int]:
    """``<output_dir>/<task>/train.spacy``: ``task``'s gold training docs with the other task's annotation predicted
    by the pipeline at ``teacher_path``; ``dev.spacy`` copied. Returns the numbers of docs and tokens written."""
    files = corpus_files(corpus_dir, f"--{task}-corpus")
    teacher = spacy.load(teacher_path)
    docs = list(DocBin().from_disk(files["train"]).get_docs(teacher.vocab))
    if not docs:
        raise ValueError(f"{files['train']}: no docs")
    out = Path(output_dir) / task
    out.mkdir(parents=True, exist_ok=True)
    taught = teach_docs(docs, teacher, other_task(task), str(files["train"]), batch_size)
    counts = write_docbin(tqdm(taught, total=len(docs), desc=f"{task} train + {other_task(task)} by {teacher_path}"),
                          out / "train.spacy")
    shutil.copyfile(files["dev"], out / "dev.spacy")
    return counts


def teach_corpora(output_dir: Path, corpora: Mapping[str, Path], teachers: Mapping[str, Path],
                  batch_size: int = 64) -> Dict[str, Dict[str, int]]:
    """Both tasks' training corpora completed (see the module doc); ``corpora`` and ``teachers`` map each task to its
    corpus folder and to its single-task pipeline (the teacher of that task's annotation on the other corpus)."""
    return {task: teach_corpus(output_dir, task, corpora[task], teachers[other_task(task)], batch_size)
            for task in TASK_ORDER}
