"""analyse compare: two evaluated runs of one task side by side, per language, on the
gold tokens and (where both have them) the raw text, with the paired bootstrap of
the target average (``statistics.paired_bootstrap``: the same resampled sentences
for both runs)."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy

from ..runs.results import RAW, load_counts
from ..statistics import paired_bootstrap, score
from ..tasks import task_spec


def _counts(counts: Dict[str, dict], lang: str, suffix: str, key: str) -> Optional[numpy.ndarray]:
    found = counts.get(f"{lang}{suffix}")
    return None if found is None else numpy.asarray([found[key]], dtype="f8")


def compare_runs(task: str, before: Path, after: Path, languages: Sequence[str], targets: Sequence[str]) -> List[str]:
    """Markdown lines: per language before / after / change on gold tokens and raw text, then the
    change of the average over ``targets`` with its 95% paired-bootstrap interval."""
    spec = task_spec(task)
    key, measure = spec.count_key, spec.measure
    lines = ["| language | before, gold tokens | after, gold tokens | change | before, raw text | after, raw text | change |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    pairs: Dict[str, Dict[str, Dict[str, numpy.ndarray]]] = {"": {"before": {}, "after": {}}, RAW: {"before": {}, "after": {}}}
    counts_before, counts_after = load_counts(before), load_counts(after)
    for lang in languages:
        cells = []
        for suffix in ("", RAW):
            old, new = _counts(counts_before, lang, suffix, key), _counts(counts_after, lang, suffix, key)
            if old is None or new is None:
                cells += ["–", "–", "–"]
                continue
            a, b = float(score(measure, old)[0]), float(score(measure, new)[0])
            cells += [f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}"]
            if lang in targets:
                pairs[suffix]["before"][lang], pairs[suffix]["after"][lang] = old, new
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    for suffix, name in (("", "gold tokens"), (RAW, "raw text")):
        found = pairs[suffix]
        if len(found["before"]) == len(targets):
            delta, low, high = paired_bootstrap(measure, found["before"], found["after"])
            average = numpy.mean([score(measure, counts)[0] for counts in found["after"].values()])
            lines.append(f"\nAverage of the {len(targets)} targets, {name}: after {average:.2f}, change {delta:+.2f} [{low:+.2f}, {high:+.2f}] "
                         "(95% paired bootstrap over sentences, 1,000 resamples)")
        else:
            lines.append(f"\n{name}: {len(found['before'])} of {len(targets)} targets scored in both runs, no average")
    return lines
