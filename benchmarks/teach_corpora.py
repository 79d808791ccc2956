"""Each task's English training docs completed with the other task's annotation, as the other task's pipeline
predicts it on the gold tokens (#23 item 5, eighth route, ``metrics/taught/rule.md``): the training data of one
pipeline for both tasks distilled from two single-task teachers (Clark et al. 2019, "BAM! Born-Again Multi-Task
Networks", here with hard labels). Writes ``OUT/ner`` and ``OUT/pos``, each with ``train.spacy`` (gold docs plus the
teacher's annotation) and ``dev.spacy`` (copied, gold only), for ``python -m spacy_dlfa run joint --ner-corpus OUT/ner
--pos-corpus OUT/pos``. Only English training text is read. The route failed its rule (``metrics/taught/compare.md``),
so this is a script, not a command.

    python benchmarks/teach_corpora.py OUT corpus/ner corpus/pos NER_PIPELINE POS_PIPELINE [--task ner|pos]
"""
import shutil
from pathlib import Path
from typing import Callable, Dict, Iterator, List

import spacy
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span
from tqdm import tqdm

from spacy_dlfa.corpora.common import bare
from spacy_dlfa.corpora.docbin import write_docbin
from spacy_dlfa.runs.joint import TASK_ORDER, corpus_files
from spacy_dlfa.tasks import TASKS


def copy_tags(gold: Doc, predicted: Doc) -> None:
    for gold_token, token in zip(gold, predicted):
        gold_token.tag_ = token.tag_


def copy_entities(gold: Doc, predicted: Doc) -> None:
    gold.set_ents([Span(gold, ent.start, ent.end, label=ent.label_) for ent in predicted.ents], default="outside")


COPY: Dict[str, Callable[[Doc, Doc], None]] = {"pos": copy_tags, "ner": copy_entities}
ANNOTATION = {"pos": ("TAG", "tags"), "ner": ("ENT_IOB", "entities")}  # the attribute a doc carries, what it is


def teach_docs(docs: List[Doc], teacher: Language, task: str, source: str = "docs", batch_size: int = 64) -> Iterator[Doc]:
    """The gold ``docs``, each with ``task``'s annotation as ``teacher`` predicts it on the doc's own tokens (words
    and spaces); a doc that already carries that annotation is an error naming ``source`` and the doc's index."""
    component = TASKS[task].component
    if component not in teacher.pipe_names:
        raise ValueError(f"the {task} teacher has no {component!r} component (it has {teacher.pipe_names})")
    attribute, what = ANNOTATION[task]
    for index, doc in enumerate(docs):
        if doc.has_annotation(attribute):
            raise ValueError(f"{source}, doc {index}: already has {what}; a corpus to complete must carry one task only")
    for gold, predicted in zip(docs, teacher.pipe((bare(doc, teacher.vocab) for doc in docs), batch_size=batch_size)):
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


def main(
    output_dir: Path = typer.Argument(..., help="Folder to write: OUTPUT_DIR/ner and OUTPUT_DIR/pos"),
    ner_corpus: Path = typer.Argument(..., exists=True, help="Folder with the NER train.spacy and dev.spacy"),
    pos_corpus: Path = typer.Argument(..., exists=True, help="Folder with the POS train.spacy and dev.spacy"),
    ner_pipeline: Path = typer.Argument(..., exists=True, help="NER pipeline: the teacher of the POS docs' entities"),
    pos_pipeline: Path = typer.Argument(..., exists=True, help="POS pipeline: the teacher of the NER docs' tags"),
    task: str = typer.Option("", help="Complete only this task's corpus (ner or pos; two processes can share the work)"),
    batch_size: int = typer.Option(64, min=1, help="Docs per batch of the teachers"),
) -> None:
    if task and task not in TASK_ORDER:
        raise typer.BadParameter(f"{task!r}: expected one of {', '.join(TASK_ORDER)}", param_hint="--task")
    corpora, teachers = {"ner": ner_corpus, "pos": pos_corpus}, {"ner": ner_pipeline, "pos": pos_pipeline}
    for name in ([task] if task else TASK_ORDER):
        written = teach_corpus(output_dir, name, corpora[name], teachers[other_task(name)], batch_size)
        print(f"{output_dir / name / 'train.spacy'}: {written['docs']:,} docs, {written['tokens']:,} tokens, both tasks annotated")


if __name__ == "__main__":
    typer.run(main)
