"""Black-box greedy adversarial search, judged by the model's own doc-level score.

Objectives (per doc, predicted vs gold, lower is a better attack):
``ner`` entity F1 (exact span and label; 1.0 when neither side has an entity),
``pos`` tag accuracy over the tokens with a gold tag (1.0 when none), ``pairs``
the predicted probability of the gold class (``doc.cats``): the task kinds of
``tasks.TaskSpec``, whose ``objective`` and ``example_score`` name these functions.

For each doc, each greedy step draws K candidate single-site edits (a site not
edited yet, an edit proposed by the attack) and keeps the one that lowers the
objective most; the search stops after `budget` edits or when no candidate
lowers it. Only strict improvements are kept, so the result never scores above
the clean doc, which is returned itself when nothing lowers its score. All
docs step together so that each step is one ``nlp.pipe`` call.

``nlp`` is anything with ``vocab`` and ``pipe(docs)`` (a spaCy pipeline); it
annotates bare copies of the docs (words and spaces only), as ``spacy evaluate
--gold-preproc`` does.
"""
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

from spacy.tokens import Doc

from ..corpora.common import bare
from ..tasks import KINDS, kind_spec
from .attacks import Attack, doc_rng

Objective = Callable[[Doc, Doc], float]


def entity_f1(predicted: Doc, gold: Doc) -> float:
    found = {(e.start, e.end, e.label_) for e in predicted.ents}
    wanted = {(e.start, e.end, e.label_) for e in gold.ents}
    total = len(found) + len(wanted)
    return 2 * len(found & wanted) / total if total else 1.0


def tag_accuracy(predicted: Doc, gold: Doc) -> float:
    pairs = [(p.tag_, g.tag_) for p, g in zip(predicted, gold) if g.tag_]
    return sum(p == g for p, g in pairs) / len(pairs) if pairs else 1.0


def gold_label(gold: Doc) -> str:
    if not gold.cats:
        raise ValueError(f"a pair doc needs gold doc.cats: {gold.text[:80]!r}")
    return max(gold.cats, key=gold.cats.get)


def gold_probability(predicted: Doc, gold: Doc) -> float:
    return float(predicted.cats.get(gold_label(gold), 0.0))


def pair_accuracy(predicted: Doc, gold: Doc) -> float:
    """1.0 when the top predicted class is the gold class (as cats_micro_f counts it)."""
    return float(bool(predicted.cats) and max(predicted.cats, key=predicted.cats.get) == gold_label(gold))


_BY_NAME: Dict[str, Objective] = {f.__name__: f for f in (entity_f1, tag_accuracy, gold_probability, pair_accuracy)}


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}: use one of {', '.join(KINDS)}")


def objective(kind: str) -> Objective:
    """The search's per-doc objective for a task kind (``TaskSpec.objective``)."""
    check_kind(kind)
    return _BY_NAME[kind_spec(kind).objective]


def example_score(kind: str) -> Objective:
    """Per-example task score for the attack success rate (``TaskSpec.example_score``): the objective, but right/wrong for pairs."""
    check_kind(kind)
    return _BY_NAME[kind_spec(kind).example_score]


def predict(nlp, docs: Sequence[Doc]) -> List[Doc]:
    return list(nlp.pipe(bare(doc, nlp.vocab) for doc in docs))


def objective_scores(nlp, kind: str, docs: Sequence[Doc]) -> List[float]:
    """The objective of each gold doc under the model's predictions."""
    score = objective(kind)
    return [score(predicted, gold) for predicted, gold in zip(predict(nlp, docs), docs)]


class SearchResult(NamedTuple):
    doc: Doc  # the attacked doc (the clean doc itself when nothing lowered the score)
    clean: float  # the clean doc's objective
    score: float  # the attacked doc's objective, <= clean
    edits: int  # sites edited, <= budget


@dataclass
class _State:
    clean_doc: Doc
    clean: float
    rng: random.Random
    sites: List[int]
    doc: Doc  # the best so far, and its score
    score: float
    changes: Dict[int, Any] = field(default_factory=dict)
    done: bool = False

    def candidates(self, attack: Attack, k: int) -> List[Dict[int, Any]]:
        """Up to k distinct change sets: the current one plus one new edit."""
        free = [site for site in self.sites if site not in self.changes]
        found: Dict[Any, Dict[int, Any]] = {}
        for _ in range(k if free else 0):
            site = self.rng.choice(free)
            edit = attack.propose(self.clean_doc, site, self.rng)
            if edit is not None:
                found.setdefault((site, edit), {**self.changes, site: edit})
        return list(found.values())


def check_search(budget: int, candidates: int) -> None:
    if budget < 0:
        raise ValueError(f"budget must be >= 0 (the most sites edited per example), got {budget}")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1 (the edits tried per greedy step), got {candidates}")


def adversarial_search(nlp, kind: str, docs: Sequence[Doc], attack: Attack, budget: int, candidates: int,
                       seed: int = 0, clean_scores: Optional[Sequence[float]] = None) -> List[SearchResult]:
    """Per doc, the greedy worst case of at most `budget` edits of `attack`,
    `candidates` edits tried per step (rng of doc i: ``doc_rng(seed, i)``).
    `clean_scores`: the docs' objectives if already known."""
    check_kind(kind)
    check_search(budget, candidates)
    clean = list(clean_scores) if clean_scores is not None else objective_scores(nlp, kind, docs)
    if len(clean) != len(docs):
        raise ValueError(f"{len(clean)} clean scores for {len(docs)} docs")
    states = [_State(doc, score, doc_rng(seed, i), attack.sites(doc), doc, score) for i, (doc, score) in enumerate(zip(docs, clean))]
    for _ in range(budget):
        proposals = [(state, changes, attack.apply(state.clean_doc, changes))
                     for state in states if not state.done for changes in state.candidates(attack, candidates)]
        if not proposals:
            break
        scores = objective_scores(nlp, kind, [doc for _, _, doc in proposals])
        _step(states, proposals, scores)
    return [SearchResult(s.doc, s.clean, s.score, len(s.changes)) for s in states]


def _step(states: List[_State], proposals: list, scores: List[float]) -> None:
    """Keep each state's lowest-scoring proposal if it lowers its score; the others are done."""
    best: Dict[int, int] = {}
    for k, (state, _, _) in enumerate(proposals):
        if id(state) not in best or scores[k] < scores[best[id(state)]]:
            best[id(state)] = k
    for state in states:
        k = best.get(id(state))
        if k is not None and scores[k] < state.score:
            _, state.changes, state.doc = proposals[k]
            state.score = scores[k]
        else:
            state.done = True
