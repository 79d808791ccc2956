"""Task arithmetic for one pipeline of both tasks (#23 item 5, metrics/task_sum/rule.md): the NER pipeline's
components plus the POS pipeline's tagger (``run share --transformer first``) on one transformer whose weights are
``W_NER + W_POS - W_pretrained`` (Ilharco et al. 2023), scored on both English dev sets (``spacy evaluate
--gold-preproc``'s ents_f and tag_acc). No training, no target language.

    python benchmarks/task_arithmetic.py NER_PIPELINE POS_PIPELINE assets/e5-small corpus OUT
"""
from pathlib import Path

import spacy
import torch
import typer
from spacy.training import Corpus
from transformers import AutoModel

from spacy_dlfa.runs.sharing import share_pipelines, transformer_weights


def main(
    ner: Path = typer.Argument(..., exists=True, help="The NER pipeline (its config, tokenizer and ner are kept)"),
    pos: Path = typer.Argument(..., exists=True, help="The POS pipeline of the same transformer settings"),
    pretrained: Path = typer.Argument(..., exists=True, help="The Hugging Face folder both were fine-tuned from"),
    corpus: Path = typer.Argument(..., exists=True, help="Folder with ner/dev.spacy and pos/dev.spacy"),
    output: Path = typer.Argument(..., help="Pipeline folder to write"),
) -> None:
    nlp = share_pipelines(ner, pos, "first")
    weights, others = transformer_weights(nlp, "transformer"), transformer_weights(spacy.load(pos), "transformer")
    base = AutoModel.from_pretrained(pretrained).state_dict()
    unchanged = 0
    with torch.no_grad():
        for key, tensor in weights.items():
            start = base[key].to(tensor.dtype)
            unchanged += int(torch.equal(tensor, start) and torch.equal(others[key], start))
            tensor.copy_(tensor + others[key] - start)
    print(f"{len(weights)} weights, {unchanged} the pretrained ones in both pipelines (frozen)")
    nlp.to_disk(output)
    for task, key in (("ner", "ents_f"), ("pos", "tag_acc")):
        examples = list(Corpus(corpus / task / "dev.spacy", gold_preproc=True)(nlp))
        print(f"English dev {key}: {100 * nlp.evaluate(examples)[key]:.2f}")


if __name__ == "__main__":
    typer.run(main)
