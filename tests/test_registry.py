"""Every entry-point name resolves through the spaCy registry, without importing spacy_dlfa."""
import configparser
import json
import subprocess
import sys
from typing import Dict

import spacy
from conftest import REPO


def _entry_points() -> Dict[str, str]:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = parser["options.entry_points"]["spacy_architectures"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


def test_entry_points_resolve_in_a_fresh_process():
    names = list(_entry_points())
    script = (
        "import json, sys, spacy\n"
        f"names = {names!r}\n"
        "assert 'spacy_dlfa' not in sys.modules\n"
        "print(json.dumps({n: spacy.registry.architectures.get(n).__module__ for n in names}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert {n: found[n] for n in names} == {n: "spacy_dlfa.architectures" for n in names}


def test_every_registered_builder_is_an_entry_point():
    import spacy_dlfa  # noqa: F401

    registered = {name for name in spacy.registry.architectures.get_all() if name.startswith("spacy-dlfa.")}
    assert registered == set(_entry_points())
    for name, target in _entry_points().items():
        module, function = target.split(":")
        assert spacy.registry.architectures.get(name).__name__ == function


def test_names_are_versioned_and_safe_from_replace_listener_cfg():
    for name in _entry_points():
        assert name.startswith("spacy-dlfa.") and name.rsplit(".", 1)[1].startswith("v")
        assert "TransformerListener" not in name
