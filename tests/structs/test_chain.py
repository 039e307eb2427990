"""LinearChainCRF against brute-force enumeration of every tag sequence on tiny inputs."""
import itertools
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs.chain import LinearChainCRF, TransitionMask

SETTINGS = settings(max_examples=60, deadline=None)


def random_crf(seed, B, N, L, dtype=torch.float64, with_mask=False, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    emit = torch.randn(B, N, L, generator=g, dtype=dtype) * scale
    trans = torch.randn(L, L, generator=g, dtype=dtype) * scale
    start = torch.randn(L, generator=g, dtype=dtype)
    end = torch.randn(L, generator=g, dtype=dtype)
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    mask = None
    if with_mask:
        mask = TransitionMask(torch.rand(L, generator=g) < 0.8, torch.rand(L, L, generator=g) < 0.7,
                              torch.rand(L, generator=g) < 0.8)
    return LinearChainCRF(emit, trans, lengths, start, end, mask), (emit, trans, start, end, lengths, mask)


def enumerate_paths(n, L, args, b):
    """Every sequence of length n with its score, straight from the definition."""
    emit, trans, start, end, _, mask = args
    paths, scores = [], []
    for path in itertools.product(range(L), repeat=n):
        if mask is not None and n and not (
            mask.start[path[0]] and mask.end[path[-1]] and all(mask.transitions[a, c] for a, c in zip(path, path[1:]))
        ):
            continue
        s = torch.zeros((), dtype=emit.dtype)
        if n:
            s = start[path[0]] + end[path[-1]] + sum(emit[b, i, t] for i, t in enumerate(path))
            s = s + sum((trans[a, c] for a, c in zip(path, path[1:])), torch.zeros((), dtype=emit.dtype))
        paths.append(path)
        scores.append(s)
    return paths, torch.stack(scores) if scores else torch.empty(0, dtype=emit.dtype)


dims = dict(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 4), L=st.integers(1, 3))


@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_chain_log_partition_matches_enumeration(seed, B, N, L, with_mask):
    crf, args = random_crf(seed, B, N, L, with_mask=with_mask)
    for b, n in enumerate(args[4].tolist()):
        paths, scores = enumerate_paths(n, L, args, b)
        if not paths:  # the mask forbids every sequence: log Z is a large negative, finite
            assert torch.isfinite(crf.log_partition[b]) and crf.log_partition[b] < -1e30
            continue
        assert torch.allclose(crf.log_partition[b], scores.logsumexp(0))


@SETTINGS
@given(**dims)
def test_chain_marginals_match_enumeration(seed, B, N, L):
    crf, args = random_crf(seed, B, N, L)
    for b, n in enumerate(args[4].tolist()):
        paths, scores = enumerate_paths(n, L, args, b)
        probs = (scores - scores.logsumexp(0)).exp()
        unary = torch.zeros(N, L, dtype=torch.float64)
        pair = torch.zeros(max(N - 1, 0), L, L, dtype=torch.float64)
        first = torch.zeros(L, dtype=torch.float64)
        last = torch.zeros(L, dtype=torch.float64)
        for path, p in zip(paths, probs):
            for i, t in enumerate(path):
                unary[i, t] += p
            for i, (a, c) in enumerate(zip(path, path[1:])):
                pair[i, a, c] += p
            if n:
                first[path[0]] += p
                last[path[-1]] += p
        assert torch.allclose(crf.marginals[b], unary)
        assert torch.allclose(crf.pair_marginals[b], pair)
        assert torch.allclose(crf.start_marginals[b], first)
        assert torch.allclose(crf.end_marginals[b], last)


@SETTINGS
@given(**dims)
def test_chain_marginals_sum_to_one_and_agree(seed, B, N, L):
    crf, args = random_crf(seed, B, N, L)
    mask = crf.mask.double()
    assert torch.allclose(crf.marginals.sum(-1), mask)
    pair = crf.pair_marginals
    # pair i covers (y_i, y_{i+1}): summing out either side gives the unary marginal there
    assert torch.allclose(pair.sum(3), crf.marginals[:, :-1] * mask[:, 1:, None])
    assert torch.allclose(pair.sum(2), crf.marginals[:, 1:])
    has = (args[4] > 0).double()
    assert torch.allclose(crf.start_marginals.sum(-1), has)
    assert torch.allclose(crf.end_marginals.sum(-1), has)


@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_chain_viterbi_matches_enumeration(seed, B, N, L, with_mask):
    # jitter avoids ties, for which any maximiser is correct
    crf, args = random_crf(seed, B, N, L, with_mask=with_mask)
    for b, n in enumerate(args[4].tolist()):
        paths, scores = enumerate_paths(n, L, args, b)
        if not paths:
            continue
        best = int(scores.argmax())
        assert crf.argmax[b, :n].tolist() == list(paths[best])
        assert (crf.argmax[b, n:] == -1).all()
        assert torch.allclose(crf.max[b], scores[best])


@SETTINGS
@given(**dims)
def test_chain_score_and_log_prob_match_enumeration(seed, B, N, L):
    crf, args = random_crf(seed, B, N, L)
    g = torch.Generator().manual_seed(seed + 1)
    tags = torch.randint(0, L, (B, N), generator=g)
    for b, n in enumerate(args[4].tolist()):
        paths, scores = enumerate_paths(n, L, args, b)
        idx = paths.index(tuple(tags[b, :n].tolist()))
        assert torch.allclose(crf.score(tags)[b], scores[idx])
        assert torch.allclose(crf.log_prob(tags)[b], scores[idx] - scores.logsumexp(0))


@SETTINGS
@given(**dims)
def test_chain_padding_changes_nothing(seed, B, N, L):
    """Garbage past each length, or extra padded width, leaves every output unchanged."""
    crf, (emit, trans, start, end, lengths, _) = random_crf(seed, B, N, L)
    noisy = torch.cat([emit, torch.full((B, 2, L), 1e3, dtype=emit.dtype)], 1)
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = 1e3
    padded = LinearChainCRF(noisy, trans, lengths, start, end)
    assert torch.allclose(padded.log_partition, crf.log_partition)
    assert torch.allclose(padded.marginals[:, :N], crf.marginals)
    assert (padded.marginals[:, N:] == 0).all()
    assert torch.equal(padded.argmax[:, :N], crf.argmax)


@SETTINGS
@given(**dims)
def test_chain_restrict_gives_partial_annotation_likelihood(seed, B, N, L):
    crf, args = random_crf(seed, B, N, L)
    g = torch.Generator().manual_seed(seed + 2)
    tags = torch.randint(0, L, (B, N), generator=g)
    known = torch.rand(B, N, generator=g) < 0.6
    allowed = torch.nn.functional.one_hot(tags, L).bool() | ~known.unsqueeze(-1)
    got = crf.restrict(allowed).log_partition - crf.log_partition
    for b, n in enumerate(args[4].tolist()):
        paths, scores = enumerate_paths(n, L, args, b)
        ok = torch.tensor([all(allowed[b, i, t] for i, t in enumerate(p)) for p in paths])
        assert torch.allclose(got[b], scores[ok].logsumexp(0) - scores.logsumexp(0))
    # fully known: restriction is the ordinary log-likelihood
    full = torch.nn.functional.one_hot(tags, L).bool()
    assert torch.allclose(crf.restrict(full).log_partition - crf.log_partition, crf.log_prob(tags))


def test_chain_marginals_are_gradients_and_differentiable():
    """Marginals by autograd keep the graph when the inputs require grad (posterior KD needs
    d marginals / d emissions); gradcheck the log-partition and the marginals."""
    crf, (emit, trans, start, end, lengths, _) = random_crf(3, 2, 4, 3)
    emit = emit.clone().requires_grad_()
    trans = trans.clone().requires_grad_()
    lengths = torch.tensor([4, 2])
    assert torch.autograd.gradcheck(lambda e, t: LinearChainCRF(e, t, lengths, start, end).log_partition, (emit, trans))
    assert torch.autograd.gradcheck(lambda e, t: LinearChainCRF(e, t, lengths, start, end).marginals, (emit, trans))
    crf = LinearChainCRF(emit, trans, lengths, start, end)
    grad = torch.autograd.grad(crf.log_partition.sum(), emit)[0]
    assert torch.allclose(grad, crf.marginals)


def test_chain_does_not_flip_callers_requires_grad():
    emit = torch.randn(2, 3, 4)
    crf = LinearChainCRF(emit, torch.zeros(4, 4), torch.tensor([3, 1]))
    assert crf.marginals.shape == (2, 3, 4)
    assert not emit.requires_grad and not crf.marginals.requires_grad


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chain_fully_forbidden_row_is_finite(dtype):
    """A mask that forbids everything gives a finite log Z and finite (zero) marginals, not NaN."""
    L = 3
    mask = TransitionMask(torch.zeros(L, dtype=torch.bool), torch.ones(L, L, dtype=torch.bool), torch.ones(L, dtype=torch.bool))
    emit = torch.randn(1, 4, L, dtype=dtype)
    crf = LinearChainCRF(emit, torch.zeros(L, L, dtype=dtype), torch.tensor([4]), mask=mask)
    assert torch.isfinite(crf.log_partition).all()
    assert torch.isfinite(crf.marginals).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chain_large_scores_stay_finite(dtype):
    # |log Z| ~ 1e4 here, so float32 keeps ~3 decimals of the marginals: the reason DPs never run in fp16
    crf, _ = random_crf(0, 4, 30, 9, dtype=dtype, scale=200.0)
    assert torch.isfinite(crf.log_partition).all()
    atol = 2e-3 if dtype == torch.float32 else 1e-9
    assert torch.allclose(crf.marginals.sum(-1), crf.mask.to(dtype), atol=atol)


def test_chain_empty_batch_and_length_zero():
    crf = LinearChainCRF(torch.zeros(0, 3, 2), torch.zeros(2, 2), torch.zeros(0, dtype=torch.long))
    assert crf.log_partition.shape == (0,)
    crf = LinearChainCRF(torch.zeros(2, 0, 2), torch.zeros(2, 2), torch.tensor([0, 0]))
    assert crf.log_partition.tolist() == [0.0, 0.0]
    assert crf.argmax.shape == (2, 0) and crf.marginals.shape == (2, 0, 2)


def test_chain_errors_are_coded():
    with pytest.raises(TypeError, match=r"\[skd-E001\]"):
        LinearChainCRF(torch.zeros(1, 2, 2, dtype=torch.float16), torch.zeros(2, 2), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"\[skd-E002\].*transitions"):
        LinearChainCRF(torch.zeros(1, 2, 2), torch.zeros(3, 3), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"\[skd-E003\]"):
        LinearChainCRF(torch.zeros(1, 2, 2), torch.zeros(2, 2), torch.tensor([3]))


def test_structs_import_no_spacy_or_thinc():
    code = ("import sys, spacy_skd.structs.chain, spacy_skd.structs.tag_schemes; "
            "bad = [m for m in ('spacy', 'thinc') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@SETTINGS
@given(**{**dims, "N": st.integers(1, 4)}, where=st.sampled_from(["column", "row", "start", "end", "emission"]))
def test_chain_minus_inf_potentials_match_enumeration_with_finite_gradients(seed, B, N, L, where):
    """A whole transition column (or row, start, end, or one emission) at -inf forbids those
    paths: log Z and the marginals still match enumeration, and no gradient is NaN."""
    g = torch.Generator().manual_seed(seed)
    emit = torch.randn(B, N, L, generator=g, dtype=torch.float64)
    trans = torch.randn(L, L, generator=g, dtype=torch.float64)
    start, end = torch.randn(L, generator=g, dtype=torch.float64), torch.randn(L, generator=g, dtype=torch.float64)
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    k = int(torch.randint(L, (1,), generator=g))
    inf = float("-inf")
    if where == "column":
        trans[:, k] = inf
    elif where == "row":
        trans[k] = inf
    elif where == "start":
        start[k] = inf
    elif where == "end":
        end[k] = inf
    elif N:
        emit[:, 0, k] = inf
    potentials = [t.clone().requires_grad_() for t in (emit, trans, start, end)]
    crf = LinearChainCRF(potentials[0], potentials[1], lengths, potentials[2], potentials[3])
    grads = torch.autograd.grad(crf.log_partition.sum(), potentials, allow_unused=True)
    assert all(torch.isfinite(grad).all() for grad in grads if grad is not None)
    marginals, pairs = crf.marginals.detach(), crf.pair_marginals.detach()
    assert torch.isfinite(marginals).all() and torch.isfinite(pairs).all()
    args = (emit, trans, start, end, lengths, None)
    for b, n in enumerate(lengths.tolist()):
        paths, scores = enumerate_paths(n, L, args, b)
        if not torch.isfinite(scores).any():  # every path forbidden: finite, hugely negative
            assert torch.isfinite(crf.log_partition[b]) and crf.log_partition[b] < -1e30
            continue
        assert torch.allclose(crf.log_partition[b].detach(), scores.logsumexp(0))
        probs = (scores - scores.logsumexp(0)).exp()
        unary = torch.zeros(N, L, dtype=torch.float64)
        for path, p in zip(paths, probs):
            for i, t in enumerate(path):
                unary[i, t] += p
        assert torch.allclose(marginals[b], unary)
