"""KD targets (spacy_skd.kd.targets) against brute-force enumeration of every tag sequence."""
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spacy_skd.kd.targets import KDTargets, crf_targets, maxent_targets, target_entropy

from . import SETTINGS, dims, product_sequences, random_chain, sequences, slot_marginals


def enumerated_slots(chain, b, N, L, T=1.0):
    paths, log_p = sequences(chain, b, T)
    return slot_marginals(paths, log_p, N, L)


def temper(probs, T):
    """Local tempering straight from the definition: p^(1/T), renormalised (zero rows stay zero)."""
    powered = probs ** (1.0 / T)
    total = powered.sum(-1, keepdim=True)
    return torch.where(total > 0, powered / total.clamp(min=1e-300), torch.zeros_like(powered))


@pytest.mark.parametrize("T", [1.0, 2.0])
@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_crf_targets_global_match_enumeration(T, seed, B, N, L, with_mask):
    chain = random_chain(seed, B, N, L, with_mask=with_mask)
    t = crf_targets(*chain.args, temperature=T, mode="global", dtype=torch.float64)
    for b in range(B):
        unary, pairs, start, end = enumerated_slots(chain, b, N, L, T)
        assert torch.allclose(t.unary[b], unary)
        assert torch.allclose(t.pairs[b], pairs)
        assert torch.allclose(t.start[b], start)
        assert torch.allclose(t.end[b], end)
    assert_top1_is_best_sequence(t, chain)


def assert_top1_is_best_sequence(t, chain):
    """top1 is the best sequence at T = 1 whatever the temperature and mode, -1 past the end."""
    for b, n in enumerate(chain.lengths.tolist()):
        paths, log_p = sequences(chain, b)
        assert t.top1[b, :n].tolist() == paths[int(log_p.argmax())].tolist()
        assert (t.top1[b, n:] == -1).all()


@pytest.mark.parametrize("T", [0.5, 3.0])
@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_crf_targets_local_temper_each_slot(T, seed, B, N, L, with_mask):
    chain = random_chain(seed, B, N, L, with_mask=with_mask)
    t = crf_targets(*chain.args, temperature=T, mode="local", dtype=torch.float64)
    for b in range(B):
        unary, pairs, start, end = enumerated_slots(chain, b, N, L)  # T = 1 marginals
        assert torch.allclose(t.unary[b], temper(unary, T))
        assert torch.allclose(t.pairs[b], temper(pairs.reshape(-1, L * L), T).reshape(pairs.shape))
        assert torch.allclose(t.start[b], temper(start, T))
        assert torch.allclose(t.end[b], temper(end, T))
    assert_top1_is_best_sequence(t, chain)


@pytest.mark.parametrize("mode", ["global", "local"])
def test_crf_targets_without_pairs_build_unaries_only(mode):
    chain = random_chain(7, 3, 4, 3)
    full = crf_targets(*chain.args, temperature=2.0, mode=mode)
    unary_only = crf_targets(*chain.args, temperature=2.0, mode=mode, pairs=False)
    assert unary_only.pairs is None and unary_only.start is None and unary_only.end is None
    assert torch.equal(unary_only.unary, full.unary)
    # start/end default to the first and last unaries, which is what they are
    assert torch.allclose(unary_only.start_probs(), full.start) and torch.allclose(unary_only.end_probs(), full.end)


def test_crf_targets_return_dtype_and_no_grad():
    chain = random_chain(1, 2, 3, 3)
    emit = chain.emit.float().requires_grad_()
    t = crf_targets(emit, chain.trans.float(), chain.lengths)
    assert t.unary.dtype == t.pairs.dtype == torch.float32
    assert not t.unary.requires_grad and not emit.grad


@SETTINGS
@given(**dims, T=st.sampled_from([1.0, 3.0]))
def test_maxent_targets_are_tempered_token_softmax(seed, B, N, L, T):
    chain = random_chain(seed, B, N, L)
    t = maxent_targets(chain.emit, chain.lengths, temperature=T, dtype=torch.float64)
    assert t.pairs is None and t.start is None and t.end is None and t.consistent
    for b, n in enumerate(chain.lengths.tolist()):
        assert torch.allclose(t.unary[b, :n], torch.softmax(chain.emit[b, :n] / T, -1))
        assert (t.unary[b, n:] == 0).all()
        assert t.top1[b, :n].tolist() == chain.emit[b, :n].argmax(-1).tolist()
        assert (t.top1[b, n:] == -1).all()


@pytest.mark.parametrize("teacher", ["crf-T2", "maxent-T2", "crf-local-unary-T2"])
@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_target_entropy_matches_enumeration(teacher, seed, B, N, L, with_mask):
    chain = random_chain(seed, B, N, L, with_mask=with_mask and teacher.startswith("crf"))
    T = 2.0
    if teacher == "maxent-T2":
        t = maxent_targets(chain.emit, chain.lengths, temperature=T, dtype=torch.float64)
    elif teacher == "crf-local-unary-T2":  # a product of locally tempered unaries is a distribution
        t = crf_targets(*chain.args, temperature=T, mode="local", pairs=False, dtype=torch.float64)
    else:
        t = crf_targets(*chain.args, temperature=T, dtype=torch.float64)
    H = target_entropy(t)
    for b, n in enumerate(chain.lengths.tolist()):
        if t.pairs is None:
            paths, log_p = product_sequences(t.unary[b], n)
        else:
            paths, log_p = sequences(chain, b, T)
        p = log_p.exp()
        assert torch.allclose(H[b], -torch.xlogy(p, p).sum(), atol=1e-9)


def test_target_entropy_rejects_local_pairs():
    chain = random_chain(0, 2, 3, 3)
    with pytest.raises(ValueError, match=r"\[skd-E163\]"):
        target_entropy(crf_targets(*chain.args, temperature=2.0, mode="local"))
    # at T = 1 local and global coincide, so the entropy is defined
    target_entropy(crf_targets(*chain.args, temperature=1.0, mode="local"))


def assert_same_targets(a: KDTargets, b: KDTargets):
    for name in ("lengths", "unary", "pairs", "start", "end", "top1"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.shape == y.shape and torch.equal(x, y), name
    assert (a.temperature, a.mode) == (b.temperature, b.mode)


@pytest.mark.parametrize("teacher", ["crf", "maxent"])
@SETTINGS
@given(**dims)
def test_kdtargets_split_stack_round_trip(teacher, seed, B, N, L):
    chain = random_chain(seed, B, N, L)
    if teacher == "maxent":
        t = maxent_targets(chain.emit, chain.lengths, temperature=2.0)
    else:
        t = crf_targets(*chain.args, temperature=2.0)
    items = t.split()
    assert len(items) == B
    for item, n in zip(items, chain.lengths.tolist()):
        assert item.unary.shape == (1, n, L)
        if item.pairs is not None:
            assert item.pairs.shape == (1, max(n - 1, 0), L, L)
    assert_same_targets(KDTargets.stack(items).pad_to(N), t)


@SETTINGS
@given(**dims, extra=st.integers(0, 3))
def test_kdtargets_pad_to_round_trip(seed, B, N, L, extra):
    chain = random_chain(seed, B, N, L)
    t = crf_targets(*chain.args)
    wide = t.pad_to(N + extra)
    assert wide.unary.shape == (B, N + extra, L) and wide.pairs.shape == (B, max(N + extra - 1, 0), L, L)
    assert (wide.unary[:, N:] == 0).all() and (wide.pairs[:, max(N - 1, 0):] == 0).all()
    assert (wide.top1[:, N:] == -1).all()
    assert_same_targets(wide.pad_to(N), t)
    longest = int(chain.lengths.max())
    assert_same_targets(t.pad_to(longest).pad_to(N), t)  # truncating padding loses nothing


def test_kdtargets_pad_to_cannot_cut_a_sentence():
    t = crf_targets(*random_chain(0, 2, 4, 3, lengths=torch.tensor([4, 2])).args)
    with pytest.raises(ValueError, match=r"\[skd-E162\].*width 3.*4 tokens"):
        t.pad_to(3)


def test_kdtargets_stack_fills_missing_start_end_from_unaries():
    chain = random_chain(3, 2, 4, 3, lengths=torch.tensor([4, 2]))
    full = crf_targets(*chain.args)
    a, b = full.split()
    stacked = KDTargets.stack([a, KDTargets(b.lengths, b.unary, b.pairs, top1=b.top1, temperature=b.temperature)])
    assert torch.allclose(stacked.start, full.start) and torch.allclose(stacked.end, full.end)


def test_kdtargets_to_moves_every_tensor():
    t = crf_targets(*random_chain(0, 2, 3, 2).args)
    moved = t.to(torch.device("cpu"))
    assert_same_targets(moved, t)
    assert moved.unary.device.type == "cpu"


def test_kdtargets_empty_batch_and_all_length_one():
    t = crf_targets(*random_chain(0, 3, 1, 3, lengths=torch.tensor([1, 1, 1])).args)
    assert t.pairs.shape == (3, 0, 3, 3)
    assert torch.allclose(t.start, t.unary[:, 0]) and torch.allclose(t.end, t.unary[:, 0])
    empty = crf_targets(*random_chain(0, 2, 0, 3).args)
    assert empty.unary.shape == (2, 0, 3) and empty.pairs.shape == (2, 0, 3, 3)
    assert [item.unary.shape for item in empty.split()] == [(1, 0, 3), (1, 0, 3)]


@pytest.mark.parametrize("value", [0.0, -1.0, math.inf, math.nan])
def test_targets_reject_bad_temperature(value):
    chain = random_chain(0, 1, 2, 2)
    with pytest.raises(ValueError, match=r"\[skd-E150\]"):
        crf_targets(*chain.args, temperature=value)
    with pytest.raises(ValueError, match=r"\[skd-E150\]"):
        maxent_targets(chain.emit, chain.lengths, temperature=value)


def test_targets_reject_bad_mode_and_shapes():
    chain = random_chain(0, 2, 3, 2)
    with pytest.raises(ValueError, match=r"\[skd-E151\].*'auto'"):
        crf_targets(*chain.args, mode="auto")
    t = crf_targets(*chain.args)
    with pytest.raises(ValueError, match=r"\[skd-E155\].*pairs"):
        KDTargets(t.lengths, t.unary, t.pairs[:, :1])
    with pytest.raises(ValueError, match=r"\[skd-E155\].*lengths"):
        KDTargets(t.lengths[:1], t.unary)
    with pytest.raises(ValueError, match=r"\[skd-E155\].*logits"):
        maxent_targets(chain.emit[0], chain.lengths)
    with pytest.raises(ValueError, match=r"\[skd-E003\]"):
        maxent_targets(chain.emit, torch.tensor([1, 4]))


@pytest.mark.parametrize("other,field", [
    (lambda c: crf_targets(*c.args, pairs=False), "pairs is None"),
    (lambda c: crf_targets(*c.args, temperature=2.0), "temperature"),
    (lambda c: crf_targets(*c.args, mode="local"), "mode"),
    (lambda c: crf_targets(c.emit[..., :2], c.trans[:2, :2], c.lengths), "labels"),
])
def test_kdtargets_stack_rejects_mixed_items(other, field):
    chain = random_chain(0, 1, 3, 3)
    with pytest.raises(ValueError, match=rf"\[skd-E161\] .*{field}"):
        KDTargets.stack([crf_targets(*chain.args), other(chain)])
    with pytest.raises(ValueError, match=r"\[skd-E160\]"):
        KDTargets.stack([])
