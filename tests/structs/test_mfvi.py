"""SecondOrderMFVI against a loop implementation of one mean-field update, HeadSelection (no
second-order factors), gradcheck through the unrolled iterations, and padding invariance."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs.dependency import HeadSelection
from spacy_skd.structs.mfvi import SecondOrderMFVI
from spacy_skd.structs.tree import is_tree

SETTINGS = settings(max_examples=30, deadline=None)
dims = dict(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 4))
FACTORS = ("sib", "cop", "grd")


def random_inputs(seed, B, N, R=2, dtype=torch.float64, which=FACTORS):
    g = torch.Generator().manual_seed(seed)
    arc = torch.randn(B, N + 1, N + 1, generator=g, dtype=dtype)
    rel = torch.randn(B, N + 1, N + 1, R, generator=g, dtype=dtype)
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    factors = {k: torch.randn(B, N + 1, N + 1, N + 1, generator=g, dtype=dtype) for k in which}
    return arc, rel, lengths, factors


def loop_update(arc, factors, b, n):
    """One mean-field update for sentence b, written as loops over the definition:
    Q[d, .] = softmax over heads 0..n, h != d of arc[d, .], then for each valid arc h -> m
    q[m, h] = arc[m, h] + Σ_s Q[s,h] sib[m,h,s] + Σ_c Q[m,c] cop[m,h,c]
              + Σ_g Q[h,g] grd[m,h,g] + Σ_c Q[c,m] grd[c,m,h]
    over distinct indices, dependents being words (1..n) and heads ROOT or words (0..n)."""
    words, nodes = range(1, n + 1), range(n + 1)
    Q = {}
    for d in words:
        heads = [h for h in nodes if h != d]
        probs = torch.stack([arc[b, d, h] for h in heads]).softmax(0)
        Q.update({(d, h): p for h, p in zip(heads, probs)})
    q = {}
    for m in words:
        for h in nodes:
            if h == m:
                continue
            total = arc[b, m, h].clone()
            if "sib" in factors:
                total += sum((Q[s, h] * factors["sib"][b, m, h, s] for s in words if s not in (m, h)), 0.0)
            if "cop" in factors:
                total += sum((Q[m, c] * factors["cop"][b, m, h, c] for c in nodes if c not in (m, h)), 0.0)
            if "grd" in factors:
                grd = factors["grd"][b]
                if h != 0:  # ROOT has no head: h -> m is never below a grandparent arc then
                    total += sum((Q[h, g] * grd[m, h, g] for g in nodes if g not in (m, h)), 0.0)
                total += sum((Q[c, m] * grd[c, m, h] for c in words if c not in (m, h)), 0.0)
            q[m, h] = total
    return q


@SETTINGS
@given(**dims, which=st.sampled_from([FACTORS, ("sib",), ("cop",), ("grd",), ("sib", "grd")]))
def test_mfvi_one_iteration_matches_loop(seed, B, N, which):
    arc, rel, lengths, factors = random_inputs(seed, B, N, which=which)
    mf = SecondOrderMFVI(arc, rel, lengths, **factors, iterations=1)
    logits = mf.arc_logits
    for b, n in enumerate(lengths.tolist()):
        expected = loop_update(arc, factors, b, n)
        for d in range(N + 1):
            for h in range(N + 1):
                if (d, h) in expected:
                    assert logits[b, d, h].item() == pytest.approx(expected[d, h].item(), abs=1e-10)
                else:
                    assert logits[b, d, h] < -1e300


@SETTINGS
@given(**dims, iterations=st.integers(0, 4))
def test_mfvi_without_factors_is_head_selection(seed, B, N, iterations):
    arc, rel, lengths, factors = random_inputs(seed, B, N)
    first = HeadSelection(arc, rel, lengths)
    zeros = {k: torch.zeros_like(v) for k, v in factors.items()}
    for kwargs in ({}, zeros):
        mf = SecondOrderMFVI(arc, rel, lengths, **kwargs, iterations=iterations)
        assert torch.equal(mf.arc_log_probs, first.arc_log_probs)
        assert torch.equal(mf.rel_log_probs, first.rel_log_probs)
        assert torch.equal(mf.argmax[0], first.argmax[0]) and torch.equal(mf.argmax[1], first.argmax[1])
    mf = SecondOrderMFVI(arc, rel, lengths, **factors, iterations=0)  # 0 iterations: first order
    assert torch.equal(mf.arc_log_probs, first.arc_log_probs)


@SETTINGS
@given(**dims, iterations=st.integers(1, 4))
def test_mfvi_q_rows_are_distributions_and_argmax_is_tree(seed, B, N, iterations):
    arc, rel, lengths, factors = random_inputs(seed, B, N)
    mf = SecondOrderMFVI(arc, rel, lengths, **{k: 3 * v for k, v in factors.items()}, iterations=iterations)
    Q = mf.arc_log_probs.exp()
    assert torch.isfinite(mf.arc_log_probs).all()
    assert (Q[~mf.valid] == 0).all()
    heads, rels = mf.argmax
    for b, n in enumerate(lengths.tolist()):
        rows = Q[b, 1 : n + 1].sum(-1)
        assert torch.allclose(rows, torch.ones_like(rows))
        assert is_tree(heads[b, 1 : n + 1].tolist())
        assert (heads[b, n + 1 :] == -1).all() and heads[b, 0] == rels[b, 0] == -1


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(1, 4))
def test_mfvi_padding_changes_nothing(seed, B, N):
    """Each sentence alone, cropped to its length, gives the same Q as in the padded batch, and
    garbage (NaN) outside the valid triples changes nothing."""
    arc, rel, lengths, factors = random_inputs(seed, B, N)
    batch = SecondOrderMFVI(arc, rel, lengths, **factors)
    H = N + 1
    pad = torch.arange(H) > lengths[:, None]  # [B, H]
    outside = pad[:, :, None, None] | pad[:, None, :, None] | pad[:, None, None, :]
    i, j, k = torch.arange(H)[:, None, None], torch.arange(H)[None, :, None], torch.arange(H)[None, None, :]
    degenerate = (i == j) | (i == k) | (j == k) | (i == 0)  # [H, H, H]; slot 1 is always a dependent
    root_slot = {"sib": k == 0, "cop": i < 0, "grd": j == 0}  # ROOT in another dependent slot
    junk = {f: v.masked_fill(outside | degenerate | root_slot[f], float("nan")) for f, v in factors.items()}
    junk_arc = arc.masked_fill(pad[:, :, None] | pad[:, None, :], float("nan"))
    junked = SecondOrderMFVI(junk_arc, rel, lengths, **junk)
    assert torch.equal(batch.arc_logits, junked.arc_logits)
    assert torch.equal(batch.arc_log_probs, junked.arc_log_probs)
    for b, n in enumerate(lengths.tolist()):
        c = n + 1  # crop to ROOT and the words
        alone = SecondOrderMFVI(arc[b : b + 1, :c, :c], rel[b : b + 1, :c, :c], lengths[b : b + 1],
                                **{f: v[b : b + 1, :c, :c, :c] for f, v in factors.items()})
        assert torch.allclose(batch.arc_log_probs[b, :c, :c], alone.arc_log_probs[0], atol=1e-12)
        assert (batch.arc_log_probs[b, c:] < -1e300).all() and (batch.arc_log_probs[b, :, c:] < -1e300).all()


@pytest.mark.parametrize("which", [FACTORS, ("sib",), ("cop",), ("grd",)])
def test_mfvi_gradcheck_through_iterations(which):
    arc, rel, lengths, factors = random_inputs(3, 2, 3, which=which)
    lengths = torch.tensor([3, 2])
    inputs = (arc, *factors.values())

    def q(arc, *fs):
        return SecondOrderMFVI(arc, rel, lengths, **dict(zip(factors, fs)), iterations=3).arc_log_probs

    assert torch.autograd.gradcheck(q, tuple(t.clone().requires_grad_() for t in inputs))


def test_mfvi_loss_backpropagates_to_every_factor():
    arc, rel, lengths, factors = random_inputs(5, 2, 4)
    lengths = torch.tensor([4, 3])
    leaves = {k: v.clone().requires_grad_() for k, v in factors.items()}
    arc = arc.clone().requires_grad_()
    heads = torch.tensor([[-1, 2, 0, 2, 3], [-1, 0, 1, 1, -1]])
    rels = torch.tensor([[-1, 0, 1, 0, 1], [-1, 1, -1, 0, -1]])
    SecondOrderMFVI(arc, rel, lengths, **leaves).loss(heads, rels).sum().backward()
    for t in (arc, *leaves.values()):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert (leaves["sib"].grad[1, 4] == 0).all() and (leaves["grd"].grad[:, 0] == 0).all()


def test_mfvi_empty_batch_and_short_sentences():
    mf = SecondOrderMFVI(torch.zeros(0, 3, 3), torch.zeros(0, 3, 3, 2), torch.zeros(0, dtype=torch.long),
                         sib=torch.zeros(0, 3, 3, 3), cop=torch.zeros(0, 3, 3, 3), grd=torch.zeros(0, 3, 3, 3))
    assert mf.arc_log_probs.shape == (0, 3, 3) and mf.argmax[0].shape == (0, 3)
    f = torch.randn(2, 2, 2, 2)
    mf = SecondOrderMFVI(torch.randn(2, 2, 2), torch.randn(2, 2, 2, 1), torch.tensor([0, 1]), sib=f, cop=f, grd=f)
    assert mf.argmax[0].tolist() == [[-1, -1], [-1, 0]]
    assert mf.arc_log_probs[1, 1, 0] == 0 and torch.isfinite(mf.arc_log_probs).all()
    mf = SecondOrderMFVI(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1, 1), torch.tensor([0]), sib=torch.zeros(1, 1, 1, 1))
    assert mf.argmax[0].tolist() == [[-1]]


def test_mfvi_errors_are_coded():
    arc, rel, lengths = torch.zeros(1, 3, 3), torch.zeros(1, 3, 3, 2), torch.tensor([2])
    for bad in (-1, 1.5, True, None):
        with pytest.raises(ValueError, match=r"\[skd-E022\]"):
            SecondOrderMFVI(arc, rel, lengths, iterations=bad)
    with pytest.raises(ValueError, match=r"\[skd-E002\].*cop"):
        SecondOrderMFVI(arc, rel, lengths, cop=torch.zeros(1, 3, 3, 2))
    with pytest.raises(TypeError, match=r"\[skd-E001\]"):
        SecondOrderMFVI(arc, rel, lengths, grd=torch.zeros(1, 3, 3, 3, dtype=torch.float16))
    with pytest.raises(TypeError, match=r"\[skd-E001\]"):
        SecondOrderMFVI(arc.half(), rel, lengths)


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(2, 4),
       which=st.sampled_from(["sib", "cop", "grd"]))
def test_mfvi_one_minus_inf_factor_score_matches_loop_and_stays_finite(seed, B, N, which):
    """One factor score at -inf (those two arcs never together): Q stays a distribution that
    matches the loop's (where that arc's probability is exactly zero), gradients stay finite."""
    arc, rel, lengths, factors = random_inputs(seed, B, N)
    lengths[0] = N
    # sib: ROOT -> 1 with ROOT -> 2; cop: heads ROOT and 2 of word 1; grd: ROOT -> 2 -> 1
    cell = {"sib": (0, 1, 0, 2), "cop": (0, 1, 0, 2), "grd": (0, 1, 2, 0)}[which]
    factors[which][cell] = float("-inf")
    leaves = {k: v.clone().requires_grad_() for k, v in factors.items()}
    arc_leaf = arc.clone().requires_grad_()
    mf = SecondOrderMFVI(arc_leaf, rel, lengths, **leaves, iterations=1)
    probs = mf.arc_log_probs.exp()
    grads = torch.autograd.grad(mf.arc_log_probs.sum(), [arc_leaf, leaves[which]])
    assert torch.isfinite(mf.arc_log_probs).all() and all(torch.isfinite(g).all() for g in grads)
    for b, n in enumerate(lengths.tolist()):
        q = loop_update(arc, factors, b, n)
        for d in range(1, n + 1):
            heads = [h for h in range(n + 1) if h != d]
            expected = torch.stack([q[d, h] for h in heads]).softmax(0)
            assert torch.allclose(probs[b, d, heads], expected, atol=1e-12)
    # more iterations stay finite too
    assert torch.isfinite(SecondOrderMFVI(arc, rel, lengths, **factors, iterations=3).arc_log_probs).all()
