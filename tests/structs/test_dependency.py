"""HeadSelection against its definition: per-word softmaxes, loops over gold trees, and brute-force
enumeration of every single-root tree for the MST decoder."""
import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs.dependency import HeadSelection
from spacy_skd.structs.tree import is_tree

SETTINGS = settings(max_examples=40, deadline=None)
dims = dict(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 4), R=st.integers(1, 3))


def random_inputs(seed, B, N, R, dtype=torch.float64, min_len=0):
    g = torch.Generator().manual_seed(seed)
    arc = torch.randn(B, N + 1, N + 1, generator=g, dtype=dtype) * 2
    rel = torch.randn(B, N + 1, N + 1, R, generator=g, dtype=dtype)
    lengths = torch.randint(min(min_len, N), N + 1, (B,), generator=g)
    return arc, rel, lengths


def random_gold(seed, lengths, N, R, p_unknown=0.0):
    """A random (not necessarily tree-shaped) head/rel assignment, some entries unknown (-1)."""
    g = torch.Generator().manual_seed(seed + 1)
    B = len(lengths)
    heads = torch.full((B, N + 1), -1, dtype=torch.long)
    rels = torch.full((B, N + 1), -1, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        for d in range(1, n + 1):
            choices = [h for h in range(n + 1) if h != d]
            heads[b, d] = choices[int(torch.randint(len(choices), (1,), generator=g))]
            rels[b, d] = int(torch.randint(R, (1,), generator=g))
    drop_h = torch.rand(B, N + 1, generator=g) < p_unknown
    drop_r = torch.rand(B, N + 1, generator=g) < p_unknown
    return heads.masked_fill(drop_h, -1), rels.masked_fill(drop_r, -1)


def brute_arc(arc, b, n, d):
    """log P(h | d) over heads 0..n, h != d, straight from the definition."""
    heads = [h for h in range(n + 1) if h != d]
    scores = torch.stack([arc[b, d, h] for h in heads])
    return dict(zip(heads, (scores - scores.logsumexp(0)).tolist()))


def all_trees(n):
    """Every single-root dependency tree over words 1..n as a tuple of heads of words 1..n."""
    for heads in itertools.product(range(n + 1), repeat=n):
        if any(h == d for d, h in enumerate(heads, 1)) or sum(h == 0 for h in heads) != 1:
            continue
        ok = True
        for d in range(1, n + 1):  # follow heads from d; more than n steps means a cycle
            v, steps = d, 0
            while v != 0 and steps <= n:
                v, steps = heads[v - 1], steps + 1
            ok &= v == 0
        if ok:
            yield heads


@SETTINGS
@given(**dims)
def test_head_selection_log_probs_match_definition(seed, B, N, R):
    arc, rel, lengths = random_inputs(seed, B, N, R)
    hs = HeadSelection(arc, rel, lengths)
    arc_lp, rel_lp = hs.arc_log_probs, hs.rel_log_probs
    assert arc_lp.shape == (B, N + 1, N + 1) and rel_lp.shape == (B, N + 1, N + 1, R)
    assert torch.isfinite(arc_lp).all() and torch.isfinite(rel_lp).all()
    for b, n in enumerate(lengths.tolist()):
        for d in range(N + 1):
            expected = brute_arc(arc, b, n, d) if 1 <= d <= n else {}
            for h in range(N + 1):
                if h in expected:
                    assert arc_lp[b, d, h].item() == pytest.approx(expected[h], abs=1e-10)
                    assert torch.allclose(rel_lp[b, d, h], rel[b, d, h].log_softmax(-1))
                else:  # invalid head or a row that is no word: log_zero, probability 0
                    assert arc_lp[b, d, h] < -1e300 and arc_lp[b, d, h].exp() == 0
                    assert torch.allclose(rel_lp[b, d, h], torch.full((R,), -math.log(R), dtype=rel.dtype))
        rows = arc_lp[b, 1 : n + 1].exp().sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows))
    arc_w, rel_w = hs.word_log_probs()
    assert torch.equal(arc_w, arc_lp[:, 1:]) and torch.equal(rel_w, rel_lp[:, 1:])


@SETTINGS
@given(**dims, p_unknown=st.sampled_from([0.0, 0.3]))
def test_head_selection_log_prob_matches_loop(seed, B, N, R, p_unknown):
    arc, rel, lengths = random_inputs(seed, B, N, R)
    heads, rels = random_gold(seed, lengths, N, R, p_unknown)
    heads[:, 0] = 7  # index 0 and padding are ignored whatever they hold
    hs = HeadSelection(arc, rel, lengths)
    log_prob = hs.log_prob(heads, rels)
    for b, n in enumerate(lengths.tolist()):
        total = 0.0
        for d in range(1, n + 1):
            h, r = int(heads[b, d]), int(rels[b, d])
            if h < 0:
                continue  # unknown head: the word counts for nothing, even with a known rel
            total += brute_arc(arc, b, n, d)[h]
            if r >= 0:
                total += rel[b, d, h].log_softmax(-1)[r].item()
        assert log_prob[b].item() == pytest.approx(total, abs=1e-9)
    assert torch.equal(hs.loss(heads, rels), -log_prob)


@SETTINGS
@given(**dims)
def test_head_selection_loss_gradient_is_softmax_minus_one_hot(seed, B, N, R):
    arc, rel, lengths = random_inputs(seed, B, N, R)
    heads, rels = random_gold(seed, lengths, N, R, p_unknown=0.3)
    arc = arc.clone().requires_grad_()
    HeadSelection(arc, rel, lengths).loss(heads, rels).sum().backward()
    expected = torch.zeros_like(arc)
    for b, n in enumerate(lengths.tolist()):
        for d in range(1, n + 1):
            h = int(heads[b, d])
            if h < 0:
                continue
            for k, lp in brute_arc(arc.detach(), b, n, d).items():
                expected[b, d, k] = torch.tensor(lp, dtype=arc.dtype).exp()
            expected[b, d, h] -= 1
    assert torch.allclose(arc.grad, expected, atol=1e-10)


@SETTINGS
@given(**dims)
def test_head_selection_argmax_is_best_tree(seed, B, N, R):
    arc, rel, lengths = random_inputs(seed, B, N, R)
    hs = HeadSelection(arc, rel, lengths)
    heads, rels = hs.argmax
    assert heads.shape == rels.shape == (B, N + 1) and heads.dtype == rels.dtype == torch.long
    arc_lp = hs.arc_log_probs
    for b, n in enumerate(lengths.tolist()):
        assert heads[b, 0] == rels[b, 0] == -1
        assert (heads[b, n + 1 :] == -1).all() and (rels[b, n + 1 :] == -1).all()
        if n == 0:
            continue
        words = heads[b, 1 : n + 1].tolist()
        assert is_tree(words)
        score = sum(arc_lp[b, d, h] for d, h in enumerate(words, 1))
        best = max(sum(arc_lp[b, d, h] for d, h in enumerate(t, 1)) for t in all_trees(n))
        assert score.item() == pytest.approx(best.item(), abs=1e-9)
        for d, h in enumerate(words, 1):
            assert rels[b, d] == rel[b, d, h].argmax()


def test_head_selection_argmax_keeps_tree_of_per_word_argmax():
    """When every word's favourite head already forms a tree, MST returns exactly it."""
    arc = torch.full((1, 4, 4), -5.0)
    arc[0, 1, 2] = arc[0, 2, 0] = arc[0, 3, 2] = 5.0
    heads, _ = HeadSelection(arc, torch.zeros(1, 4, 4, 2), torch.tensor([3])).argmax
    assert heads.tolist() == [[-1, 2, 0, 2]]


def test_head_selection_argmax_forces_single_root():
    arc = torch.zeros(1, 4, 4)
    arc[0, 1:, 0] = 10.0  # every word prefers ROOT
    heads, _ = HeadSelection(arc, torch.zeros(1, 4, 4, 1), torch.tensor([3])).argmax
    assert (heads[0, 1:] == 0).sum() == 1 and is_tree(heads[0, 1:].tolist())


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(1, 4), R=st.integers(1, 3))
def test_head_selection_padding_changes_nothing(seed, B, N, R):
    arc, rel, lengths = random_inputs(seed, B, N, R)
    heads, rels = random_gold(seed, lengths, N, R)
    hs = HeadSelection(arc, rel, lengths)
    pad = torch.arange(N + 1) > lengths[:, None]  # [B, H]
    junk_pair = pad[:, :, None] | pad[:, None, :]
    junk_pair = junk_pair | torch.eye(N + 1, dtype=torch.bool)  # self arcs and ROOT's row too
    junk_pair[:, 0] = True
    arc2 = arc.masked_fill(junk_pair, float("nan"))
    rel2 = rel.masked_fill(junk_pair[..., None], 1e30)
    hs2 = HeadSelection(arc2, rel2, lengths)
    assert torch.equal(hs.arc_log_probs, hs2.arc_log_probs)
    assert torch.equal(hs.rel_log_probs, hs2.rel_log_probs)
    assert torch.equal(hs.log_prob(heads, rels), hs2.log_prob(heads, rels))
    assert torch.equal(hs.argmax[0], hs2.argmax[0]) and torch.equal(hs.argmax[1], hs2.argmax[1])


def test_head_selection_gradient_is_finite_and_zero_on_padding():
    arc = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    rel = torch.randn(2, 4, 4, 3, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 1])
    heads = torch.tensor([[-1, 2, 0, 2], [-1, 0, -1, -1]])
    rels = torch.tensor([[-1, 0, 1, 2], [-1, 1, -1, -1]])
    HeadSelection(arc, rel, lengths).loss(heads, rels).sum().backward()
    assert torch.isfinite(arc.grad).all() and torch.isfinite(rel.grad).all()
    assert (arc.grad[1, 2:] == 0).all() and (arc.grad[1, :, 2:] == 0).all() and (arc.grad[:, 0] == 0).all()
    assert torch.autograd.gradcheck(
        lambda a, r: HeadSelection(a, r, lengths).loss(heads, rels), (arc.detach().requires_grad_(),
                                                                     rel.detach().requires_grad_()))


def test_head_selection_does_not_flip_callers_requires_grad():
    arc, rel = torch.randn(1, 3, 3), torch.randn(1, 3, 3, 2)
    hs = HeadSelection(arc, rel, torch.tensor([2]))
    _ = hs.arc_log_probs, hs.argmax
    assert not arc.requires_grad and not rel.requires_grad and not hs.arc_log_probs.requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_head_selection_large_scores_stay_finite(dtype):
    arc = torch.randn(2, 5, 5, dtype=dtype) * 1e4
    hs = HeadSelection(arc, torch.randn(2, 5, 5, 2, dtype=dtype) * 1e4, torch.tensor([4, 2]))
    assert torch.isfinite(hs.arc_log_probs).all() and torch.isfinite(hs.rel_log_probs).all()
    assert is_tree(hs.argmax[0][0, 1:].tolist()) and is_tree(hs.argmax[0][1, 1:3].tolist())


def test_head_selection_empty_batch_and_short_sentences():
    hs = HeadSelection(torch.zeros(0, 3, 3), torch.zeros(0, 3, 3, 2), torch.zeros(0, dtype=torch.long))
    assert hs.argmax[0].shape == (0, 3) and hs.log_prob(*hs.argmax).shape == (0,)
    hs = HeadSelection(torch.randn(3, 3, 3), torch.randn(3, 3, 3, 2), torch.tensor([0, 1, 2]))
    heads, rels = hs.argmax
    assert heads[0].tolist() == [-1, -1, -1] and heads[1].tolist() == [-1, 0, -1]
    assert hs.arc_log_probs[1, 1, 0] == 0  # a single word must attach to ROOT
    assert hs.log_prob(heads, rels)[0] == 0  # nothing to score in an empty sentence
    hs = HeadSelection(torch.zeros(2, 1, 1), torch.zeros(2, 1, 1, 1), torch.tensor([0, 0]))  # N = 0
    assert hs.argmax[0].tolist() == [[-1], [-1]] and hs.word_log_probs()[0].shape == (2, 0, 1)


def test_head_selection_errors_are_coded():
    arc, rel, lengths = torch.zeros(1, 3, 3), torch.zeros(1, 3, 3, 2), torch.tensor([2])
    with pytest.raises(TypeError, match=r"\[skd-E001\]"):
        HeadSelection(arc.half(), rel, lengths)
    with pytest.raises(TypeError, match=r"\[skd-E001\]"):
        HeadSelection(arc, rel.half(), lengths)
    with pytest.raises(ValueError, match=r"\[skd-E002\].*arc_scores"):
        HeadSelection(torch.zeros(1, 3, 4), rel, lengths)
    with pytest.raises(ValueError, match=r"\[skd-E002\].*rel_scores"):
        HeadSelection(arc, torch.zeros(1, 3, 2, 2), lengths)
    with pytest.raises(ValueError, match=r"\[skd-E002\].*rel_scores"):
        HeadSelection(arc, torch.zeros(1, 3, 3, 0), lengths)
    with pytest.raises(ValueError, match=r"\[skd-E002\].*lengths"):
        HeadSelection(arc, rel, torch.tensor([2, 2]))
    with pytest.raises(ValueError, match=r"\[skd-E003\]"):
        HeadSelection(arc, rel, torch.tensor([3]))
    hs = HeadSelection(arc, rel, lengths)
    with pytest.raises(ValueError, match=r"\[skd-E002\].*heads"):
        hs.log_prob(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long))
    for bad in ([-1, 1, 0], [-1, 3, 0], [-1, -2, 0]):  # self loop, past the length, not -1
        with pytest.raises(ValueError, match=r"\[skd-E020\]"):
            hs.log_prob(torch.tensor([bad]), torch.tensor([[-1, 0, 0]]))
    with pytest.raises(ValueError, match=r"\[skd-E021\]"):
        hs.log_prob(torch.tensor([[-1, 2, 0]]), torch.tensor([[-1, 2, 0]]))
