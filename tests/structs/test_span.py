"""SpanNER against brute-force enumeration of every flat labelled span set on tiny inputs."""
import math
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs.span import SpanNER, bioes_log_marginals_reference

SETTINGS = settings(max_examples=60, deadline=None)
dims = dict(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 5), R=st.integers(1, 3))


def random_ner(seed, B, N, R, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, N, N, R + 1, generator=g, dtype=dtype) * scale
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    if B > 1 and N:
        lengths[0] = N
    return SpanNER(scores, lengths), scores, lengths


def flat_structures(n, R, start=0):
    """Every set of non-overlapping labelled spans over words [start, n): (i, j, r) with r 0-based."""
    if start >= n:
        yield ()
        return
    for rest in flat_structures(n, R, start + 1):  # word `start` is O
        yield rest
    for j in range(start, n):
        for r in range(R):
            for rest in flat_structures(n, R, j + 1):
                yield ((start, j, r),) + rest


def enumerate_ner(scores, b, n):
    """(structures, log-weights) of sentence b, weights from the definition of φ."""
    R = scores.shape[-1] - 1
    structs = list(flat_structures(n, R))
    weights = torch.stack([
        sum((scores[b, i, j, r + 1] - scores[b, i, j, 0] for i, j, r in y), torch.zeros((), dtype=scores.dtype))
        for y in structs
    ])
    return structs, weights


def bioes_of(y, n, R):
    """Column index of each word's BIOES tag in structure y."""
    cols = [0] * n
    for i, j, r in y:
        if i == j:
            cols[i] = 4 + 4 * r
        else:
            cols[i], cols[j] = 1 + 4 * r, 3 + 4 * r
            for m in range(i + 1, j):
                cols[m] = 2 + 4 * r
    return cols


@SETTINGS
@given(**dims)
def test_span_log_partition_matches_enumeration(seed, B, N, R):
    ner, scores, lengths = random_ner(seed, B, N, R)
    for b, n in enumerate(lengths.tolist()):
        _, w = enumerate_ner(scores, b, n)
        assert torch.allclose(ner.log_partition[b], w.logsumexp(0))


@SETTINGS
@given(**dims)
def test_span_bioes_marginals_match_enumeration(seed, B, N, R):
    ner, scores, lengths = random_ner(seed, B, N, R)
    got = ner.bioes_log_marginals.exp()
    assert got.shape == (B, N, 1 + 4 * R)
    for b, n in enumerate(lengths.tolist()):
        structs, w = enumerate_ner(scores, b, n)
        expected = torch.zeros(N, 1 + 4 * R, dtype=torch.float64)
        expected[n:, 0] = 1.0  # padding is O with probability 1
        for y, p in zip(structs, (w - w.logsumexp(0)).exp()):
            for m, c in enumerate(bioes_of(y, n, R)):
                expected[m, c] += p
        assert torch.allclose(got[b], expected, atol=1e-10)


@SETTINGS
@given(**dims)
def test_span_bioes_marginals_sum_to_one_and_padding_is_o(seed, B, N, R):
    ner, _, _ = random_ner(seed, B, N, R)
    logp = ner.bioes_log_marginals
    assert torch.allclose(logp.exp().sum(-1), torch.ones(B, N, dtype=torch.float64))
    pad = ~ner.mask
    assert (logp[pad][:, 0] == 0).all()
    assert (logp[pad][:, 1:] < -1e300).all()


@SETTINGS
@given(**dims)
def test_span_marginals_are_gradients_and_match_enumeration(seed, B, N, R):
    _, scores, lengths = random_ner(seed, B, N, R)
    scores = scores.clone().requires_grad_()
    ner = SpanNER(scores, lengths)
    grad = torch.autograd.grad(ner.log_partition.sum(), scores)[0]
    for b, n in enumerate(lengths.tolist()):
        structs, w = enumerate_ner(scores.detach(), b, n)
        mu = torch.zeros(N, N, R, dtype=torch.float64)
        for y, p in zip(structs, (w - w.logsumexp(0)).exp()):
            for i, j, r in y:
                mu[i, j, r] += p
        assert torch.allclose(grad[b, ..., 1:], mu)  # d log Z / d phi
        assert torch.allclose(grad[b, ..., 0], -mu.sum(-1))  # phi = s[1:] - s[0]
        assert torch.allclose(ner.span_marginals[b].detach(), mu)


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 9), R=st.integers(1, 3),
       scale=st.sampled_from([1.0, 10.0]))
def test_span_reference_equals_vectorised(seed, B, N, R, scale):
    ner, _, lengths = random_ner(seed, B, N, R, scale=scale)
    for b, n in enumerate(lengths.tolist()):
        ref = bioes_log_marginals_reference(ner.span_log_potentials[b], n)
        got = ner.bioes_log_marginals[b, :n]
        assert torch.allclose(ref.exp(), got.exp(), atol=1e-10)
        possible = ref > -1e300
        assert torch.equal(possible, got > -1e300)  # both say exactly which tags are impossible
        assert torch.allclose(ref[possible], got[possible])


@SETTINGS
@given(**dims)
def test_span_padding_changes_nothing(seed, B, N, R):
    """Garbage in invalid cells (j < i, past each length, extra padded width) changes nothing."""
    ner, scores, lengths = random_ner(seed, B, N, R)
    noisy = torch.full((B, N + 2, N + 2, R + 1), math.inf, dtype=scores.dtype)
    noisy[..., 0] = math.nan
    noisy[:, :N, :N] = torch.where(ner.span_mask.unsqueeze(-1), scores, 1e4)
    noisy.requires_grad_()
    padded = SpanNER(noisy, lengths)
    assert torch.allclose(padded.log_partition, ner.log_partition)
    assert torch.allclose(padded.bioes_log_marginals[:, :N], ner.bioes_log_marginals)
    assert (padded.bioes_log_marginals[:, N:, 0] == 0).all()
    assert padded.decode() == ner.decode()
    gold = [[(0, n - 1, R)] if n else [] for n in lengths.tolist()]
    assert torch.allclose(padded.loss(gold), ner.loss(gold))
    (grad,) = torch.autograd.grad((padded.log_partition + padded.loss(gold)).sum(), noisy)
    assert torch.isfinite(grad).all()
    assert (grad[:, :N, :N].masked_fill(ner.span_mask.unsqueeze(-1), 0) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_span_large_scores_stay_finite(dtype):
    g = torch.Generator().manual_seed(0)
    scores = (torch.randn(4, 40, 40, 4, generator=g, dtype=torch.float64) * 50).to(dtype)
    lengths = torch.tensor([40, 33, 1, 0])
    ner = SpanNER(scores, lengths)
    logp = ner.bioes_log_marginals
    assert torch.isfinite(ner.log_partition).all() and torch.isfinite(logp).all()
    atol = 1e-3 if dtype == torch.float32 else 1e-9
    assert torch.allclose(logp.exp().sum(-1), torch.ones(4, 40, dtype=dtype), atol=atol)
    exact = SpanNER(scores.double(), lengths)
    assert torch.allclose(logp.exp().double(), exact.bioes_log_marginals.exp(), atol=atol)
    ref = bioes_log_marginals_reference(exact.span_log_potentials[0], 40)
    assert torch.allclose(ref.exp(), exact.bioes_log_marginals[0].exp(), atol=1e-9)
    s = scores.clone().requires_grad_()
    (grad,) = torch.autograd.grad(SpanNER(s, lengths).log_partition.sum(), s)
    assert torch.isfinite(grad).all()


def test_span_gradcheck_log_partition():
    _, scores, lengths = random_ner(1, 2, 4, 2)
    scores = scores.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda s: SpanNER(s, lengths).log_partition, (scores,))


def brute_decode(scores, n):
    """The greedy rule of Yu et al. 2020, written out with pairwise overlap checks."""
    cand = []
    for i in range(n):
        for j in range(i, n):
            c = int(scores[i, j].argmax())
            if c > 0:
                cand.append((-float(scores[i, j, c]), i, j, c))
    kept = []
    for _, i, j, c in sorted(cand):
        if all(j < a or b < i for a, b, _ in kept):
            kept.append((i, j, c))
    return sorted(kept)


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 8), R=st.integers(1, 3))
def test_span_decode_matches_greedy_and_is_flat(seed, B, N, R):
    ner, scores, lengths = random_ner(seed, B, N, R, dtype=torch.float32)
    scores[..., 1:] += 1.0  # more entity candidates, more clashes
    ner = SpanNER(scores, lengths)
    out = ner.decode()
    assert len(out) == B
    for b, n in enumerate(lengths.tolist()):
        assert out[b] == brute_decode(scores[b], n)
        words = [m for i, j, _ in out[b] for m in range(i, j + 1)]
        assert len(words) == len(set(words)) and all(0 <= m < n for m in words)
        assert all(1 <= c <= R for _, _, c in out[b])


def test_span_loss_is_softmax_cross_entropy():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 4, 4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])
    gold = [[(0, 1, 2), (3, 3, 1)], [(1, 1, 1)]]
    loss = SpanNER(scores, lengths).loss(gold)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[0, 0, 1], target[0, 3, 3], target[1, 1, 1] = 2, 1, 1
    valid = torch.zeros(2, 4, 4, dtype=torch.bool)
    for b, n in enumerate(lengths.tolist()):
        valid[b, :n, :n] = torch.ones(n, n, dtype=torch.bool).triu()
    for b in range(2):
        ce = torch.nn.functional.cross_entropy(scores[b][valid[b]], target[b][valid[b]], reduction="sum")
        assert torch.allclose(loss[b], ce)
    (grad,) = torch.autograd.grad(loss.sum(), scores)
    expected = (scores.softmax(-1) - torch.nn.functional.one_hot(target, 3)) * valid.unsqueeze(-1)
    assert torch.isfinite(grad).all() and torch.allclose(grad, expected.detach())
    # max_width = 1 keeps only single-word spans
    narrow = SpanNER(scores, lengths).loss([[(3, 3, 1)], [(1, 1, 1)]], max_width=1)
    single = valid & torch.eye(4, dtype=torch.bool)
    for b in range(2):
        ce = torch.nn.functional.cross_entropy(scores[b][single[b]], target[b][single[b]], reduction="sum")
        assert torch.allclose(narrow[b], ce)


def test_span_bioes_tags_and_empty_inputs():
    assert SpanNER.bioes_tags(["PER", "LOC"]) == ["O", "B-PER", "I-PER", "E-PER", "S-PER",
                                                  "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    ner = SpanNER(torch.zeros(2, 0, 0, 3), torch.tensor([0, 0]))
    assert ner.log_partition.tolist() == [0.0, 0.0]
    assert ner.bioes_log_marginals.shape == (2, 0, 9)
    assert ner.decode() == [[], []] and ner.loss([[], []]).tolist() == [0.0, 0.0]
    ner = SpanNER(torch.zeros(0, 3, 3, 2), torch.zeros(0, dtype=torch.long))
    assert ner.log_partition.shape == (0,) and ner.decode() == []
    # n = 1, R = 1, all zero scores: {} and {(0, 0)} -> O and S with probability 1/2 each
    p = SpanNER(torch.zeros(1, 1, 1, 2), torch.tensor([1])).bioes_log_marginals.exp()
    assert torch.allclose(p, torch.tensor([[[0.5, 0.0, 0.0, 0.0, 0.5]]]))


def test_span_does_not_flip_callers_requires_grad():
    scores = torch.randn(1, 3, 3, 2)
    ner = SpanNER(scores, torch.tensor([3]))
    assert ner.span_marginals.shape == (1, 3, 3, 1) and ner.bioes_log_marginals.shape == (1, 3, 5)
    assert not scores.requires_grad and not ner.log_partition.requires_grad


def test_span_errors_are_coded():
    ok = torch.zeros(1, 3, 3, 3)
    with pytest.raises(TypeError, match=r"\[skd-E001\]"):
        SpanNER(ok.half(), torch.tensor([3]))
    for shape in [(1, 3, 3), (1, 3, 4, 3), (1, 3, 3, 1)]:
        with pytest.raises(ValueError, match=r"\[skd-E030\]"):
            SpanNER(torch.zeros(shape), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"\[skd-E002\].*lengths"):
        SpanNER(ok, torch.tensor([3, 3]))
    with pytest.raises(ValueError, match=r"\[skd-E003\]"):
        SpanNER(ok, torch.tensor([4]))
    ner = SpanNER(ok, torch.tensor([2]))
    with pytest.raises(ValueError, match=r"\[skd-E031\]"):
        ner.loss([[], []])
    for bad in [(0, 2, 1), (1, 0, 1), (0, 0, 0), (0, 0, 3), (-1, 0, 1), (0, 1)]:
        with pytest.raises(ValueError, match=r"\[skd-E032\]"):
            ner.loss([[bad]])
    with pytest.raises(ValueError, match=r"\[skd-E033\]"):
        ner.loss([[(0, 1, 1), (0, 1, 2)]])
    for width in [0, 1.5, True]:
        with pytest.raises(ValueError, match=r"\[skd-E034\]"):
            ner.loss([[]], max_width=width)
    with pytest.raises(ValueError, match=r"\[skd-E035\]"):
        ner.loss([[(0, 1, 1)]], max_width=1)
    for labels in [["PER", "PER"], ["PER", ""]]:
        with pytest.raises(ValueError, match=r"\[skd-E036\]"):
            SpanNER.bioes_tags(labels)


def test_span_module_imports_no_spacy_or_thinc():
    code = ("import sys, spacy_skd.structs.span; "
            "bad = [m for m in ('spacy', 'thinc') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@SETTINGS
@given(**{**dims, "N": st.integers(1, 4)}, p=st.floats(0.2, 1.0))
def test_span_minus_inf_entity_scores_match_enumeration_with_finite_gradients(seed, B, N, R, p):
    """Entity classes at -inf (p of them; p = 1: no span can be an entity) forbid those spans:
    log Z and the BIOES marginals match enumeration, gradients stay finite."""
    _, scores, lengths = random_ner(seed, B, N, R)
    g = torch.Generator().manual_seed(seed)
    scores[..., 1:] = scores[..., 1:].masked_fill(torch.rand(scores[..., 1:].shape, generator=g) < p, float("-inf"))
    leaf = scores.clone().requires_grad_()
    ner = SpanNER(leaf, lengths)
    (grad,) = torch.autograd.grad(ner.log_partition.sum(), leaf)
    assert torch.isfinite(grad).all() and torch.isfinite(ner.bioes_log_marginals).all()
    got = ner.bioes_log_marginals.exp().detach()
    for b, n in enumerate(lengths.tolist()):
        structs, w = enumerate_ner(scores, b, n)
        assert torch.allclose(ner.log_partition[b].detach(), w.logsumexp(0))
        expected = torch.zeros(N, 1 + 4 * R, dtype=torch.float64)
        expected[n:, 0] = 1.0
        for y, q in zip(structs, (w - w.logsumexp(0)).exp()):
            for m, c in enumerate(bioes_of(y, n, R)):
                expected[m, c] += q
        assert torch.allclose(got[b], expected, atol=1e-10)


def test_span_minus_inf_no_entity_score_is_a_coded_error():
    """No-entity at -inf (or an entity class at +inf) on a real span means infinite odds: no
    finite distribution, so it is refused rather than turned into inf/NaN marginals."""
    scores = torch.zeros(1, 3, 3, 2)
    scores[0, 0, 1, 0] = float("-inf")
    with pytest.raises(ValueError, match=r"\[skd-E331\].*\(0, 1\)"):
        SpanNER(scores, torch.tensor([3])).log_partition
    scores = torch.zeros(1, 3, 3, 2)
    scores[0, 2, 2, 1] = float("inf")
    with pytest.raises(ValueError, match=r"\[skd-E331\]"):
        SpanNER(scores, torch.tensor([3])).bioes_log_marginals
    scores[0, 2, 2, 1] = 0.0
    scores[0, 1, 0, 0] = float("-inf")  # j < i: no span, ignored
    scores[0, 2, 2, 0] = float("-inf")  # past the length: ignored
    assert torch.isfinite(SpanNER(scores, torch.tensor([2])).log_partition).all()
