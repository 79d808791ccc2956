"""The rule of ``reports/recipe_rule.md`` as code: the shipped recipe chosen from the candidates' English dev scores.

``reports/recipe_rule.json`` lists, per task, the base's runs (one per seed) and the candidates' runs (metrics
folders): single changes, each marked ``cheaper`` (costs no more in training and inference) or not, alternatives of
one ``kind`` (the fusions), and the combinations with the names of the changes they hold (``parts``). Only
English dev enters (``dev_score`` in each run's ``run.meta.json``); the chosen run's folder name gives the variant
and layer, its ``run.meta.json`` the overrides, so ``reports/recipe.json`` is what that run trained.

With m and s the mean and standard deviation of the base's dev scores:

1. a cheaper change is adopted at dev >= m - s;
2. any other change at dev >= m + s;
3. a combination counts only when all its parts are adopted (and kept by 4), and only when its own run passes
   again: m + s if it holds a change adopted by rule 2, else m - s (the reading written down in
   ``reports/recipe_candidates.md`` before the combination's score was seen);
4. of adopted alternatives of one kind, the higher dev score is kept.

The recipe is the passing combination with the most parts (then the higher dev score); without one, the kept
single change with the highest dev score; without any, nothing is chosen.
"""
from dataclasses import dataclass
from pathlib import Path
from statistics import mean, stdev
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .experiments import parse_run_name
from .recipe import RecipeError, task_entries, task_entry
from .results import load_run_meta


@dataclass(frozen=True)
class Candidate:
    name: str
    run: str  # metrics folder, relative to the project
    cheaper: bool = False
    kind: str = ""  # alternatives of one kind compete (rule 4)
    parts: Tuple[str, ...] = ()  # a combination: the single changes it holds (rule 3)


@dataclass(frozen=True)
class Verdict:
    name: str
    dev: float
    needs: float  # the dev score it had to reach
    passed: bool  # reached it
    kept: bool  # counts for the recipe (passed, and not displaced by rule 4 or an ineligible part)
    rule: str  # which threshold applies, and why
    note: str = ""  # why a passing candidate is not kept


def judge(base: Sequence[float], dev: Dict[str, float], candidates: Sequence[Candidate]) -> Tuple[List[Verdict], Optional[str]]:
    """Every candidate's verdict in the order given, and the name of the chosen one (``None``: keep the base)."""
    if len(base) < 2:
        raise ValueError(f"the rule needs the base's dev scores of at least 2 seeds, got {len(base)}")
    m, s = mean(base), stdev(base)
    by_name = {c.name: c for c in candidates}
    verdicts: Dict[str, Verdict] = {}
    for c in (c for c in candidates if not c.parts):
        needs, rule = (m - s, "rule 1, cheaper: m - s") if c.cheaper else (m + s, "rule 2: m + s")
        passed = dev[c.name] >= needs
        verdicts[c.name] = Verdict(c.name, dev[c.name], needs, passed, passed, rule)
    for kind in {c.kind for c in candidates if c.kind and not c.parts}:
        rivals = [verdicts[c.name] for c in candidates if c.kind == kind and not c.parts and verdicts[c.name].passed]
        best = max(rivals, key=lambda v: v.dev, default=None)
        for v in rivals:
            if v is not best:
                verdicts[v.name] = Verdict(v.name, v.dev, v.needs, True, False, v.rule, f"rule 4: {best.name} ({best.dev:.2f}) is kept")
    for c in (c for c in candidates if c.parts):
        unknown = [p for p in c.parts if p not in by_name or by_name[p].parts]
        if unknown:
            raise ValueError(f"combination {c.name!r}: parts {', '.join(unknown)} are not single candidates")
        rule2 = any(not by_name[p].cheaper for p in c.parts)
        needs, rule = (m + s, "rule 3, holds a rule-2 change: m + s") if rule2 else (m - s, "rule 3, cheaper parts: m - s")
        passed = dev[c.name] >= needs
        dropped = [p for p in c.parts if not verdicts[p].kept]
        note = f"not eligible: {', '.join(dropped)} not kept" if dropped else ""
        verdicts[c.name] = Verdict(c.name, dev[c.name], needs, passed, passed and not dropped, rule, note)
    kept = [verdicts[c.name] for c in candidates if verdicts[c.name].kept]
    combos = [v for v in kept if by_name[v.name].parts]
    pool = combos or kept
    chosen = max(pool, key=lambda v: (len(by_name[v.name].parts), v.dev), default=None)
    return [verdicts[c.name] for c in candidates], chosen.name if chosen else None


def load_rule(path: Path, task: str, entries: Optional[Dict[str, Any]] = None) -> Tuple[List[str], List[Candidate]]:
    """The base's runs and the candidates of ``task`` in the rule file (``entries``: the file already read)."""
    entry = task_entry(path, task, "rule", entries)
    for key in ("base", "candidates"):
        if not isinstance(entry.get(key), list) or not entry[key]:
            raise RecipeError(path, f"{task}.{key}: expected a non-empty list")
    candidates = []
    for i, item in enumerate(entry["candidates"]):
        if not isinstance(item, dict) or not {"name", "run"} <= set(item):
            raise RecipeError(path, f"{task}.candidates[{i}]: expected an object with name and run, got {item!r}")
        extra = set(item) - {"name", "run", "cheaper", "kind", "parts"}
        if extra:
            raise RecipeError(path, f"{task}.candidates[{i}]: unknown keys {', '.join(sorted(extra))}")
        candidates.append(Candidate(item["name"], item["run"], bool(item.get("cheaper", False)), item.get("kind", ""),
                                    tuple(item.get("parts", ()))))
    names = [c.name for c in candidates]
    if len(set(names)) < len(names):
        raise RecipeError(path, f"{task}.candidates: names repeat ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
    return list(entry["base"]), candidates


def choose_recipes(rule_file: Path, root: Path = Path(".")) -> Dict[str, Dict[str, Any]]:
    """``reports/recipe.json``: the recipe of every task in the rule file."""
    entries = task_entries(rule_file)
    return {task: choose_recipe(rule_file, task, root, entries) for task in entries}


def choose_recipe(rule_file: Path, task: str, root: Path = Path("."), entries: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``reports/recipe.json`` entry of ``task``: the chosen run's variant, layer and overrides, how, and every dev score."""
    base_runs, candidates = load_rule(rule_file, task, entries)
    base = [float(load_run_meta(root / run)["dev_score"]) for run in base_runs]
    metas = {c.name: load_run_meta(root / c.run) for c in candidates}
    dev = {name: float(meta["dev_score"]) for name, meta in metas.items()}
    try:
        verdicts, chosen = judge(base, dev, candidates)
    except ValueError as err:
        raise RecipeError(rule_file, f"{task}: {err}") from None
    if chosen is None:
        raise RecipeError(rule_file, f"{task}: no candidate passes the rule; the base stays (nothing to write)")
    run = next(c.run for c in candidates if c.name == chosen)  # a run's folder name: <variant>[_l<layer>]_s<seed>
    name = parse_run_name(Path(run).name)
    m, s = mean(base), stdev(base)
    told = "; ".join(f"{v.name} {v.dev:.2f} {'passes' if v.passed else 'fails'} ({v.rule} = {v.needs:.2f}{', ' + v.note if v.note else ''})"
                     for v in verdicts)
    return {
        "variant": name["variant"],
        "layer": name["layer"],
        "overrides": metas[chosen].get("overrides", {}),
        "chosen_by": f"{rule_file.name} applied by spacy_dlfa.runs.recipe_rule to English dev (base m {m:.2f}, s {s:.2f}): {told}; chosen: {chosen}",
        "config": f"python -m spacy_dlfa run recipe {task} OUT.cfg: the grid's {name['variant']} variant"
                  + ("" if name["layer"] is None else f" at layer {name['layer']}") + " with the overrides above, as run " + run,
        "run": run,
        "english_dev": {"base": [round(score, 2) for score in base], **{v.name: round(v.dev, 2) for v in verdicts}},
    }
