"""nlp.pipe with n_process=2 gives exactly the single-process annotations, in order, for several
batch sizes, on trained tiny pipelines loaded from disk.

torch's OpenMP thread pool does not survive fork: a worker forked after the parent ran torch on
several threads hangs in its first parallel op (plain torch does the same). spacy_dlfa registers a
fork handler that puts forked children on one torch thread;
test_forked_workers_after_multithreaded_torch checks it."""
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
from typing import Iterator, List

import pytest
import spacy
from conftest import REPO, SENTENCES
from pipelines import annotations
from spacy.language import Language

ODD = ["", "   ", "🙂 Paris \u200b Berlin", " ".join(["Paris", "Madrid", "."] * 40)]  # the last one spans 6 windows
TEXTS: List[str] = SENTENCES + ODD + SENTENCES[:4]
HANG_LIMIT_S = 120

pytestmark = pytest.mark.usefixtures("single_torch_thread")


@pytest.fixture(scope="module", params=["ner", "tagger"])
def loaded(request, trained_pipelines) -> Language:
    return spacy.load(trained_pipelines[request.param])


@pytest.fixture
def hang_guard() -> Iterator[None]:
    """Turn hung workers into a failure: kill them (spaCy joins its workers when the pipe is left)."""
    def fail(signum, frame):
        for worker in multiprocessing.active_children():
            worker.kill()
        raise TimeoutError(f"nlp.pipe(n_process=2) did not finish within {HANG_LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(HANG_LIMIT_S)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def single_process(loaded) -> List[List[tuple]]:
    return annotations(loaded.pipe(TEXTS))


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_two_processes_match_one(loaded, single_process, batch_size, hang_guard, monkeypatch):
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # silences the tokenizers' fork warning
    docs = list(loaded.pipe(TEXTS, n_process=2, batch_size=batch_size))
    assert [doc.text for doc in docs] == TEXTS
    assert annotations(docs) == single_process
    assert any(token.tag_ or token.ent_iob_ for doc in docs for token in doc)


def test_forked_workers_after_multithreaded_torch(trained_pipelines):
    script = textwrap.dedent(f"""
        import spacy, torch
        torch.set_num_threads(2)
        nlp = spacy.load({str(trained_pipelines["ner"])!r})
        single = [[t.ent_iob_ for t in doc] for doc in nlp.pipe({TEXTS[:6]!r})]
        multi = [[t.ent_iob_ for t in doc] for doc in nlp.pipe({TEXTS[:6]!r}, n_process=2, batch_size=3)]
        assert multi == single
    """)
    # A session of its own, so that the hung workers can be killed with it.
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        _, stderr = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        pytest.fail("nlp.pipe(n_process=2) hung after the parent ran torch on 2 threads")
    assert child.returncode == 0, stderr[-2000:]
