"""Attack a trained pipeline's test sets: clean vs attacked scores per language.

Per language, ``<lang>`` in ``<output>/scores.json`` (``results.py``) holds the attacked set's scores under
``spacy evaluate``'s keys (read the same way as ``evaluate_languages``: the
``Corpus`` reader with gold tokenization, the pipeline, ``Scorer``), so it is
``spacy evaluate``-compatible, plus an ``attack`` block: the clean and attacked
task score (``ents_f``, ``tag_acc`` or ``cats_micro_f``), the relative drop
``(clean - attacked) / clean`` (null when clean is 0), the success rate (share
of examples whose own task score dropped: entity F1, tag accuracy, or right ->
wrong for pairs), the settings and the clean set's full scores.
``<output>/<lang>.attacked.spacy`` holds the perturbed gold docs and
``<output>/sentences.json.gz`` the per-sentence counts of the clean and
the attacked set (``{"clean": ..., "attacked": ...}``, as
``evaluation.sentence_counts``) for the paired bootstrap of the study report.
With ``clean_dir`` the clean set's scores are also written there as
``evaluate_languages`` writes them, so a study scores each clean set once.

``budget`` 0 perturbs each site at random with probability ``rate``; a budget
above 0 runs the greedy adversarial search (``search.py``) instead, and the
``attack`` block records ``rate`` as null. ``limit`` > 0 attacks only the first
``limit`` examples of each set (recorded in the block; 0 = all).
"""
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Corpus, Example
from thinc.api import require_gpu
from wasabi import msg

from ..corpora.common import bare
from ..corpora.docbin import write_docbin
from ..pairs import pair_separator, transformer_tokenizer
from ..runs.evaluation import annotate_and_score, sentence_counts, spacy_evaluate_json
from ..runs.results import write_scores
from ..tasks import TASKS, kind_spec
from .attacks import ATTACKS, Attack, check_rate, doc_rng, make_attack, perturb
from .search import adversarial_search, check_search, example_score, objective


@dataclass(frozen=True)
class AttackSettings:
    name: str  # the attack
    rate: Optional[float] = 0.2  # None with a budget: the search does not use it
    budget: int = 0
    candidates: int = 8
    seed: int = 0
    limit: int = 0  # first N examples per set; 0 = all


def pipeline_kind(nlp: Language) -> str:
    """The task kind (ner, pos or pairs) of the first task whose ``TaskSpec.factories`` the pipeline has."""
    factories = set(nlp.pipe_factories.values())
    for spec in TASKS.values():
        if factories.intersection(spec.factories):
            return spec.kind
    raise ValueError(f"the pipeline has no ner, tagger or textcat component to attack (components: {', '.join(nlp.pipe_names)})")


def data_files(data: Path, languages: Optional[Sequence[str]] = None) -> Dict[str, Path]:
    """{lang: file}: a folder's ``test-<lang>.spacy`` files (all, or `languages`), or one .spacy file."""
    if not data.exists():
        raise FileNotFoundError(f"attack data {data} does not exist")
    if data.is_file():
        if data.suffix != ".spacy" or languages:
            raise ValueError(f"attack data {data}: expected a .spacy file (without --languages) or a folder with test-<lang>.spacy files")
        return {data.stem[len("test-"):] if data.stem.startswith("test-") else data.stem: data}
    if not languages:
        files = {path.stem[len("test-"):]: path for path in sorted(data.glob("test-*.spacy"))}
        if not files:
            raise FileNotFoundError(f"no test-<lang>.spacy files in {data}")
        return files
    files = {lang: data / f"test-{lang}.spacy" for lang in languages}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"attack data missing: {', '.join(missing)}")
    return files


def check_settings(attack: str, rate: float, budget: int, candidates: int, pool: Optional[Path], lexicon: Optional[Path]) -> None:
    """Everything that can be checked before the model is loaded."""
    if attack not in ATTACKS:
        raise ValueError(f"unknown attack {attack!r}: use one of {', '.join(ATTACKS)}")
    check_rate(rate)
    check_search(budget, candidates)
    for name, path, needed in (("pool", pool, attack == "entity_swap"), ("lexicon", lexicon, attack == "code_switch")):
        if needed and path is None:
            raise ValueError(f"--attack {attack} needs --{name}")
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{name} file {path} does not exist")


def _attack(nlp: Language, kind: str, attack_name: str, pool: Optional[Path], lexicon: Optional[Path]) -> Attack:
    if attack_name == "entity_swap" and kind != "ner":
        raise ValueError(f"entity_swap attacks NER pipelines; this one is a {kind} pipeline")
    separator = pair_separator(transformer_tokenizer(nlp)) if kind == "pairs" else None
    pool_docs = list(DocBin().from_disk(pool).get_docs(nlp.vocab)) if pool else None
    return make_attack(attack_name, separator, pool_docs, lexicon)


def _attacked_docs(nlp: Language, kind: str, attack: Attack, examples: List[Example], settings: AttackSettings) -> Tuple[List[Doc], List[int]]:
    golds = [eg.reference for eg in examples]
    if settings.budget:
        clean = [objective(kind)(eg.predicted, eg.reference) for eg in examples]
        found = adversarial_search(nlp, kind, golds, attack, settings.budget, settings.candidates, settings.seed, clean)
    else:
        found = [perturb(doc, attack, settings.rate, doc_rng(settings.seed, i)) for i, doc in enumerate(golds)]
    return [result.doc for result in found], [result.edits for result in found]


def attack_corpus(nlp: Language, kind: str, attack: Attack, path: Path, settings: AttackSettings) -> Tuple[dict, List[Doc], dict]:
    """The attacked set's spacy-evaluate scores with the ``attack`` block, the attacked docs and the
    per-sentence counts ``{"clean": ..., "attacked": ...}``."""
    examples = list(Corpus(path, gold_preproc=True, limit=settings.limit)(nlp))
    clean_scores = spacy_evaluate_json(annotate_and_score(nlp, examples))
    docs, edits = _attacked_docs(nlp, kind, attack, examples, settings)
    attacked = [Example(bare(doc, nlp.vocab), doc) for doc in docs]
    scores = spacy_evaluate_json(annotate_and_score(nlp, attacked))
    per_example = example_score(kind)
    dropped = [per_example(a.predicted, a.reference) < per_example(c.predicted, c.reference) for c, a in zip(examples, attacked)]
    key = kind_spec(kind).score_key
    clean, after = clean_scores.get(key), scores.get(key)
    scores["attack"] = {
        **asdict(settings), "search": settings.budget > 0, "task": kind, "score_key": key, "clean": clean, "attacked": after,
        "relative_drop": (clean - after) / clean if clean and after is not None else None,
        "success_rate": _share(sum(dropped), len(dropped)), "examples": len(examples),
        "perturbed_examples": sum(n > 0 for n in edits), "edits_per_example": _share(sum(edits), len(edits)),
        "clean_scores": clean_scores,
    }
    return scores, docs, {"clean": sentence_counts(examples), "attacked": sentence_counts(attacked)}


def attack_languages(model: Path, data: Path, output_dir: Path, attack: str, languages: Optional[Sequence[str]] = None,
                     rate: float = 0.2, budget: int = 0, candidates: int = 8, seed: int = 0, pool: Optional[Path] = None,
                     lexicon: Optional[Path] = None, limit: int = 0, gpu_id: int = -1,
                     clean_dir: Optional[Path] = None) -> Dict[str, dict]:
    """Attack every language's test set (see the module docstring); write
    ``<lang>`` to `output_dir`'s ``scores.json`` and ``sentences.json.gz``, and ``<lang>.attacked.spacy``
    and, with `clean_dir`, the clean scores and counts there."""
    check_settings(attack, rate, budget, candidates, pool, lexicon)
    if not Path(model).exists():
        raise FileNotFoundError(f"model {model} does not exist")
    files = data_files(Path(data), languages)
    if gpu_id >= 0:
        require_gpu(gpu_id)
    nlp = spacy.load(model)
    kind = pipeline_kind(nlp)
    chosen = _attack(nlp, kind, attack, pool, lexicon)
    settings = AttackSettings(attack, None if budget else rate, budget, candidates, seed, limit)
    msg.info(f"attack {attack} on a {kind} pipeline: " + (f"greedy search, budget {budget}, {candidates} candidates per step"
                                                          if budget else f"random, rate {rate}") + f", seed {seed}")
    output_dir.mkdir(parents=True, exist_ok=True)
    if clean_dir is not None:
        clean_dir.mkdir(parents=True, exist_ok=True)
    results = {}
    for number, (lang, path) in enumerate(files.items(), 1):
        start = time.perf_counter()
        results[lang], docs, counts = attack_corpus(nlp, kind, chosen, path, settings)
        write_scores(output_dir, lang, results[lang], counts)
        if clean_dir is not None:
            write_scores(clean_dir, lang, results[lang]["attack"]["clean_scores"], counts["clean"])
        write_docbin(docs, output_dir / f"{lang}.attacked.spacy")
        block = results[lang]["attack"]
        drop = "n/a" if block["relative_drop"] is None else f"{block['relative_drop']:.1%}"
        msg.text(f"[{number}/{len(files)}] {lang}: {block['examples']:,} examples, {block['score_key']} "
                 f"{_number(block['clean'])} -> {_number(block['attacked'])} (drop {drop}), success {block['success_rate']:.1%} "
                 f"({time.perf_counter() - start:.0f} s) -> {output_dir}")
    return results


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.3f}"
