"""Shared fixtures: a tiny random BERT with a locally trained WordPiece tokenizer."""
from pathlib import Path

import pytest

from spacy_dlfa.models.tiny import SENTENCES, TINY_LAYERS, TINY_WIDTH, build_tiny_bert  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"the data mirror {SHARED_DATA} is absent (it sits beside the repository in CI)")
    return SHARED_DATA
