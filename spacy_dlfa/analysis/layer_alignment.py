"""How language-neutral each hidden layer of a model is — the premise DLFA rests
on ("lower layers carry more language-independent signal") — measured without
training, on line-aligned translations (the XNLI dev files).

Per layer: translation retrieval (English sentence -> its translation among all
sentences of a language, by cosine of mean-pooled wordpieces, raw and with each
language's mean vector subtracted) and nearest-centroid language identification
of sentences and of single wordpieces. A language-neutral layer retrieves
translations well and identifies languages badly.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy

from ..corpora.common import CorpusFormatError
from ..corpora.sentence_pairs import XNLI, read_pair_tsv
from ..layers.transformer import only_transformers_errors

TOKENS_PER_SENTENCE = 4  # wordpieces sampled per sentence for the token-level language probe


def parallel_sentences(data_dir: Path, languages: Sequence[str], limit: int) -> Dict[str, List[str]]:
    """The first ``limit`` distinct premises of ``<data_dir>/<lang>/dev-<lang>.tsv``, chosen on
    the English lines so that item i of every language is a translation of the same sentence."""
    files = {lang: Path(data_dir) / lang / f"dev-{lang}.tsv" for lang in ["en", *languages]}
    pairs = {lang: list(read_pair_tsv(path, XNLI)) for lang, path in files.items()}
    for lang, rows in pairs.items():
        if len(rows) != len(pairs["en"]):
            raise CorpusFormatError(files[lang], len(rows), f"expected {len(pairs['en'])} lines, line-aligned with {files['en']}")
    positions = [i for i, pair in enumerate(pairs["en"]) if i == 0 or pair.text_a != pairs["en"][i - 1].text_a][:limit]
    return {lang: [rows[i].text_a for i in positions] for lang, rows in pairs.items()}


def load_encoder(model_path: str) -> Tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    with only_transformers_errors():  # the unused pooler of a task-less checkpoint is "newly initialized"
        return AutoTokenizer.from_pretrained(model_path), AutoModel.from_pretrained(model_path).eval()


def layer_vectors(encoder: Tuple[Any, Any], texts: Sequence[str], batch_size: int = 32
                  ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Mean-pooled content wordpieces, (layers + 1, sentences, width); up to TOKENS_PER_SENTENCE
    evenly spaced content wordpieces per sentence, (layers + 1, tokens, width); each token's sentence."""
    import torch

    tokenizer, model = encoder
    pooled, sampled, owners = [], [], []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            inputs = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True, max_length=128,
                               return_tensors="pt", return_special_tokens_mask=True)
            content = inputs.pop("special_tokens_mask").eq(0) & inputs["attention_mask"].bool()
            states = torch.stack(model(**inputs, output_hidden_states=True).hidden_states)  # (L+1, B, T, W)
            weights = content.to(states.dtype)
            pooled.append(((states * weights[..., None]).sum(2) / weights.sum(1).clamp(min=1)[:, None]).numpy())
            for row, mask in enumerate(content):
                positions = mask.nonzero().squeeze(1)
                picks = positions[numpy.linspace(0, len(positions) - 1, min(TOKENS_PER_SENTENCE, len(positions))).astype(int)]
                sampled.append(states[:, row, picks].numpy())
                owners.extend([start + row] * len(picks))
    return numpy.concatenate(pooled, axis=1), numpy.concatenate(sampled, axis=1), numpy.array(owners)


def retrieval_accuracy(queries: numpy.ndarray, candidates: numpy.ndarray) -> float:
    """Share of rows i whose most cosine-similar candidate is row i."""
    unit_q = queries / numpy.linalg.norm(queries, axis=1, keepdims=True).clip(min=1e-12)
    unit_c = candidates / numpy.linalg.norm(candidates, axis=1, keepdims=True).clip(min=1e-12)
    return float(((unit_q @ unit_c.T).argmax(axis=1) == numpy.arange(len(queries))).mean())


def centroid_accuracy(train: Sequence[numpy.ndarray], test: Sequence[numpy.ndarray]) -> float:
    """Nearest-centroid (Euclidean) classification: class k's centroid is the mean of train[k];
    the share of test rows, over all classes, assigned to their own class."""
    centroids = numpy.stack([vectors.mean(axis=0) for vectors in train])
    hits = [((vectors[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(axis=1) == k for k, vectors in enumerate(test)]
    return float(numpy.concatenate(hits).mean())


def halves(vectors: numpy.ndarray, owners: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Rows owned by even / odd sentences: probes are fitted on one half and tested on the other."""
    return vectors[owners % 2 == 0], vectors[owners % 2 == 1]


def layer_scores(pooled: Dict[str, numpy.ndarray], tokens: Dict[str, Tuple[numpy.ndarray, numpy.ndarray]]) -> List[Dict]:
    """Per layer: retrieval (raw and language-centred) per target, its mean, sentence and token language ID."""
    targets = [lang for lang in pooled if lang != "en"]
    scores = []
    for layer in range(pooled["en"].shape[0]):
        sentences = {lang: vectors[layer] for lang, vectors in pooled.items()}
        centred = {lang: vectors - vectors.mean(axis=0) for lang, vectors in sentences.items()}
        raw = {lang: retrieval_accuracy(sentences["en"], sentences[lang]) for lang in targets}
        mean_removed = {lang: retrieval_accuracy(centred["en"], centred[lang]) for lang in targets}
        owners = numpy.arange(len(sentences["en"]))
        sentence_split = [halves(vectors, owners) for vectors in sentences.values()]
        token_split = [halves(vectors[layer], owner) for vectors, owner in tokens.values()]
        scores.append({
            "layer": layer,
            "retrieval": raw,
            "retrieval_mean": float(numpy.mean(list(raw.values()))),
            "retrieval_centred": mean_removed,
            "retrieval_centred_mean": float(numpy.mean(list(mean_removed.values()))),
            "sentence_language_id": centroid_accuracy([a for a, _ in sentence_split], [b for _, b in sentence_split]),
            "token_language_id": centroid_accuracy([a for a, _ in token_split], [b for _, b in token_split]),
        })
    return scores


def layer_alignment(model_path: str, data_dir: Path, languages: Sequence[str], limit: int) -> Dict:
    texts = parallel_sentences(data_dir, languages, limit)
    encoder, pooled, tokens = load_encoder(model_path), {}, {}
    for lang, sentences in texts.items():
        pooled[lang], sampled, owners = layer_vectors(encoder, sentences)
        tokens[lang] = (sampled, owners)
    return {"model": str(model_path), "languages": list(texts), "sentences": len(texts["en"]),
            "tokens_per_sentence": TOKENS_PER_SENTENCE, "layers": layer_scores(pooled, tokens)}


def format_table(result: Dict) -> str:
    lines = ["| layer | retrieval en->X | retrieval, centred | sentence language ID | token language ID |", "|---:|---:|---:|---:|---:|"]
    for row in result["layers"]:
        lines.append(f"| {row['layer']} | {100 * row['retrieval_mean']:.1f} | {100 * row['retrieval_centred_mean']:.1f} | "
                     f"{100 * row['sentence_language_id']:.1f} | {100 * row['token_language_id']:.1f} |")
    return "\n".join(lines)


def write_layer_alignment(model_path: str, data_dir: Path, languages: Sequence[str], limit: int, output: Path) -> Dict:
    result = layer_alignment(model_path, data_dir, languages, limit)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2), encoding="utf8")
    return result
