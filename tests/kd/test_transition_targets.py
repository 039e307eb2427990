"""kd/transition_targets.py: a spaCy teacher's beam as targets, against brute force on tiny beams."""
import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.kd.transition_targets import (NERBeamPotentials, beam_parser_potentials, biluo_columns,
                                             ner_transition_targets)
from spacy_skd.structs._util import log_zero
from spacy_skd.structs.tag_schemes import spans_to_tags, tag_set

LABELS = ("LOC", "PER")


def random_parse(rng: random.Random, n: int):
    """Random non-overlapping entity spans over n tokens."""
    spans, i = [], 0
    while i < n:
        if rng.random() < 0.4:
            end = rng.randint(i + 1, n)
            spans.append((i, end, rng.choice(LABELS)))
            i = end
        else:
            i += 1
    return spans


def make_beam(seed: int, lengths, K: int):
    """Random beams: [B, K, N] BILUO column ids, log-probs [B, K], uniform steps; and the spans."""
    rng = random.Random(seed)
    columns = {tag: c for c, tag in enumerate(biluo_columns(LABELS))}
    B, N = len(lengths), max(lengths)
    parses = torch.full((B, K, N), -1, dtype=torch.long)
    spans = []
    for b, n in enumerate(lengths):
        spans.append([random_parse(rng, n) for _ in range(K)])
        for k, parse in enumerate(spans[b]):
            parses[b, k, :n] = torch.tensor([columns[t] for t in spans_to_tags(parse, n, "BILUO")], dtype=torch.long)
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.log_softmax(torch.randn(B, K, generator=g, dtype=torch.float64) * 2, -1).float()
    steps = torch.log_softmax(torch.randn(B, N, len(columns), generator=g), -1)
    teacher = NERBeamPotentials("ner_beam", parses, log_probs, steps, torch.tensor(lengths), LABELS)
    return teacher, spans


@pytest.mark.parametrize("scheme", ["BIOES", "BILUO", "IOB2", "IOB1", "sBIO"])
@given(seed=st.integers(0, 2**16), K=st.integers(1, 4),
       lengths=st.lists(st.integers(0, 5), min_size=1, max_size=3))
@settings(max_examples=15, deadline=None)
def test_beam_marginals_equal_weighted_parse_indicators(scheme, seed, K, lengths):
    teacher, spans = make_beam(seed, lengths, K)
    tags = tag_set(LABELS, scheme)
    targets = ner_transition_targets(teacher, tags, scheme, case="beam", pairs=True, dtype=torch.float64)
    p = teacher.log_probs.double().exp()
    for b, n in enumerate(lengths):
        unary = torch.zeros(n, len(tags), dtype=torch.float64)
        counts = torch.zeros(len(tags), len(tags), dtype=torch.float64)
        for k in range(K):
            ids = [tags.index(t) for t in spans_to_tags(spans[b][k], n, scheme)]
            for i, c in enumerate(ids):
                unary[i, c] += p[b, k]
            for a, c in zip(ids, ids[1:]):
                counts[a, c] += p[b, k]
        assert torch.allclose(targets.unary[b, :n], unary, atol=1e-6)
        assert torch.allclose(targets.unary[b, :n].sum(-1), torch.ones(n, dtype=torch.float64), atol=1e-6)
        assert torch.all(targets.unary[b, n:] == 0)
        assert torch.allclose(targets.pair_counts[b], counts, atol=1e-6)


@given(seed=st.integers(0, 2**16), K=st.integers(2, 4), n=st.integers(1, 5))
@settings(max_examples=20, deadline=None)
def test_beam_marginal_argmax_is_the_best_parse_when_it_dominates(seed, K, n):
    teacher, spans = make_beam(seed, [n], K)
    teacher.log_probs[0] = torch.log_softmax(torch.tensor([3.0] + [0.0] * (K - 1)), -1)  # best > 1/2
    tags = tag_set(LABELS, "BIOES")
    targets = ner_transition_targets(teacher, tags, "BIOES", case="beam")
    best = [tags.index(t) for t in spans_to_tags(spans[0][0], n, "BIOES")]
    assert targets.unary[0, :n].argmax(-1).tolist() == best == targets.top1[0, :n].tolist()


def test_beam_global_temperature_reweights_parses():
    """Global T: parse k weighs p_k^(1/T), renormalised; the unaries follow from those weights."""
    teacher, _ = make_beam(3, [4, 3], 3)
    tags = tag_set(LABELS, "BIOES")
    T = 2.0
    hot = ner_transition_targets(teacher, tags, "BIOES", case="beam", temperature=T, mode="global")
    reweighted = NERBeamPotentials("ner_beam", teacher.parses, torch.log_softmax(teacher.log_probs / T, -1),
                                   teacher.steps, teacher.lengths, LABELS)
    plain = ner_transition_targets(reweighted, tags, "BIOES", case="beam")
    assert torch.allclose(hot.unary, plain.unary, atol=1e-6)
    assert hot.mode == "global" and hot.temperature == T


def test_step_targets_are_the_tempered_step_distributions():
    """Token KD: BILUO steps mapped onto BIOES positions; p^(1/T) renormalised per token."""
    teacher, _ = make_beam(5, [4], 2)
    tags = tag_set(LABELS, "BILUO")  # same positions, so the map is a permutation of columns
    columns = biluo_columns(LABELS)
    targets = ner_transition_targets(teacher, tags, "BILUO", case="token", temperature=2.0)
    expected = torch.softmax(teacher.steps[0, :4].double() / 2.0, -1)  # [n, C] in column order
    order = [columns.index(tag) for tag in tags]
    assert torch.allclose(targets.unary[0].double(), expected[:, order], atol=1e-5)
    assert targets.pairs is None and targets.pair_counts is None


def test_step_targets_refuse_iob1():
    teacher, _ = make_beam(1, [3], 1)
    with pytest.raises(ValueError, match=r"\[skd-E323\]"):
        ner_transition_targets(teacher, tag_set(LABELS, "IOB1"), "IOB1", case="token")


def test_beam_parser_marginals_equal_weighted_trees():
    """P(h) and P(r | h) of a beam of trees are the probability-weighted indicator sums."""
    heads = torch.tensor([[[2, 0, 2], [0, 1, 2], [2, 0, 1]]])  # [B=1, K=3, N=3], 0 = ROOT
    rels = torch.tensor([[[0, 1, 0], [1, 0, 2], [2, 1, 0]]])
    p = torch.tensor([[0.5, 0.3, 0.2]])
    pot = beam_parser_potentials(heads, rels, p.log(), torch.tensor([3]), R=3)
    arc, rel = pot.arc.double().exp(), pot.rel.double().exp()
    assert torch.allclose(arc.sum(-1), torch.ones(1, 3, dtype=torch.float64), atol=1e-6)
    # word 1: head 2 (p 0.5 + 0.2), head 0 (0.3); at head 2, relation 0 (0.5) or 2 (0.2)
    assert arc[0, 0, 2].item() == pytest.approx(0.7) and arc[0, 0, 0].item() == pytest.approx(0.3)
    assert rel[0, 0, 2, 0].item() == pytest.approx(0.5 / 0.7) and rel[0, 0, 2, 2].item() == pytest.approx(0.2 / 0.7)
    assert pot.rel[0, 0, 1, 0].item() == pytest.approx(log_zero(torch.float32))  # no tree has head 1 there
    best_heads, best_rels = pot.top1()
    assert best_heads.tolist() == [[2, 0, 2]] and best_rels.tolist() == [[0, 1, 0]]
