"""teacher/runner.py: the teacher runs in batches bounded by padded size, never by count alone."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.pipes.crf_tagger import CRFTagger
from spacy_skd.teacher.runner import (
    DEFAULT_MAX_BATCH_COST, TeacherRunner, padded_size, plan_batches,
)
from tests.conftest import examples_from, train_tagger

TEXTS = [("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]), ("Paris is big", [(0, 1, "LOC")])]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train_tagger("skd_crf_tagger", lambda nlp: examples_from(nlp, TEXTS),
                        tmp_path_factory.mktemp("teacher") / "crf", steps=1)


@settings(deadline=None, max_examples=200)
@given(lengths=st.lists(st.integers(0, 12), max_size=12), max_cost=st.integers(1, 400),
       max_count=st.one_of(st.none(), st.integers(1, 5)))
def test_plan_batches_bounds_every_batch_and_covers_every_sentence(lengths, max_cost, max_count):
    cost = lambda n: n * n + 1  # noqa: E731
    batches, too_long = plan_batches(lengths, cost, max_cost, max_count)
    assert sorted(itertools.chain(too_long, *batches)) == list(range(len(lengths)))
    assert too_long == [i for i, n in enumerate(lengths) if cost(n) > max_cost]
    for batch in batches:
        assert batch and len(batch) * cost(max(lengths[i] for i in batch)) <= max_cost
        assert batch == sorted(batch)  # the original order: a batch needing no split runs as given
        assert max_count is None or len(batch) <= max_count


def test_padded_size_per_kind():
    assert padded_size("crf", 10, 17) == 10 * 17 * 17  # a CRF student's pair marginals
    assert padded_size("biaffine", 10, 40) == 10 * 11 * 40  # relation scores [n, n + 1, R]
    assert padded_size("mfvi", 10, 4) == 10 * 11 * 11  # sibling scores
    assert padded_size("span", 10, 5) == 10 * 10 * 5


def test_runner_batches_by_padded_size_and_skips_a_sentence_too_long_alone_issue20(teacher, monkeypatch):
    """A 300-token line among short sentences: no teacher batch exceeds max_batch_cost, the line
    too long for it alone gets None (never run), the others the outputs of an unbounded run."""
    words = [("Paris", "is", "big"), ("John", "lives", "here", "."), tuple(["word"] * 300), ("Hello",)]
    unbounded = TeacherRunner(teacher, "ner")
    assert unbounded.max_batch_cost == DEFAULT_MAX_BATCH_COST
    expected = unbounded(words)
    runner = TeacherRunner(teacher, "ner", max_batch_cost=unbounded.cost(200))
    seen = []
    original = CRFTagger.teacher_outputs

    def recording(self, docs):
        seen.append([len(doc) for doc in docs])
        return original(self, docs)

    monkeypatch.setattr(CRFTagger, "teacher_outputs", recording)
    found = runner(words)
    assert found[2] is None and all(n < 300 for batch in seen for n in batch)
    assert all(len(batch) * runner.cost(max(batch)) <= runner.max_batch_cost for batch in seen)
    for got, want in zip(found[:2] + found[3:], expected[:2] + expected[3:]):
        np.testing.assert_allclose(got["emissions"], want["emissions"], rtol=1e-5, atol=1e-5)
    assert runner.too_long([words[2]]) == {"n": 1, "longest": 300, "cost": runner.cost(300),
                                          "bound": runner.max_batch_cost}


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "big"])
def test_runner_max_batch_cost_must_be_a_positive_integer(teacher, value):
    with pytest.raises(ValueError, match=r"\[skd-E342\]"):
        TeacherRunner(teacher, "ner", max_batch_cost=value)
