"""Case 4 targets (spacy_skd.kd.span_targets): a span teacher's tag marginals in the student's
scheme, against brute-force enumeration of every flat structure and against the BIOES marginals
mapped by hand, one scheme at a time."""
from typing import List, Tuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.kd.span_targets import SpanPotentials, span_targets
from spacy_skd.structs.span import SpanNER
from spacy_skd.structs.tag_schemes import spans_to_tags, tag_set

SCHEMES = ["BIOES", "BILUO", "IOB2", "sBIO"]
LABELS = ("LOC", "PER")
SETTINGS = settings(max_examples=25, deadline=None)
dims = dict(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 4), R=st.integers(1, 2))


def random_teacher(seed: int, B: int, N: int, R: int, scale: float = 2.0) -> SpanPotentials:
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, N, N, R + 1, generator=g, dtype=torch.float64) * scale
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    return SpanPotentials(scores, lengths, LABELS[:R])


def flat_structures(n: int, R: int, start: int = 0) -> List[List[Tuple[int, int, int]]]:
    """Every set of non-overlapping labelled spans over words start..n-1: (start, end incl., r)."""
    if start >= n:
        return [[]]
    out = [s for s in flat_structures(n, R, start + 1)]  # word `start` is O
    for end in range(start, n):
        for r in range(R):
            out += [[(start, end, r)] + s for s in flat_structures(n, R, end + 1)]
    return out


def enumerated_unary(teacher: SpanPotentials, b: int, scheme: str, T: float = 1.0) -> torch.Tensor:
    """P(tag at word m) [n, L] in `scheme`, p(Y) ∝ exp(Σ_{(i,j,r) ∈ Y} φ(i,j,r) / T)."""
    n = int(teacher.lengths[b])
    tags = tag_set(teacher.labels, scheme)
    index = {tag: i for i, tag in enumerate(tags)}
    s = teacher.scores[b]
    structures = flat_structures(n, len(teacher.labels))
    weights = torch.stack([sum((s[i, j, 1 + r] - s[i, j, 0] for i, j, r in y), s.new_zeros(())) / T
                           for y in structures])
    probs = weights.softmax(0)
    unary = torch.zeros(n, len(tags), dtype=torch.float64)
    for y, p in zip(structures, probs):
        named = [(i, j + 1, teacher.labels[r]) for i, j, r in y]
        for m, tag in enumerate(spans_to_tags(named, n, scheme)):
            unary[m, index[tag]] += p
    return unary


def mapped_by_hand(bioes: torch.Tensor, labels, scheme: str) -> torch.Tensor:
    """BIOES probabilities [B, N, 1+4R] (O, then B, I, E, S per label) summed into `scheme`."""
    tags = tag_set(labels, scheme)
    out = bioes.new_zeros(*bioes.shape[:2], len(tags))
    col = {tag: i for i, tag in enumerate(tags)}

    def p(prefix, r):
        return bioes[..., 1 + 4 * r + "BIES".index(prefix)]

    out[..., col["O"]] = bioes[..., 0]
    for r, label in enumerate(labels):
        if scheme == "BIOES":
            for prefix in "BIES":
                out[..., col[f"{prefix}-{label}"]] = p(prefix, r)
        elif scheme == "BILUO":
            for prefix, new in zip("BIES", "BILU"):
                out[..., col[f"{new}-{label}"]] = p(prefix, r)
        elif scheme == "IOB2":
            out[..., col[f"B-{label}"]] = p("B", r) + p("S", r)
            out[..., col[f"I-{label}"]] = p("I", r) + p("E", r)
        else:  # sBIO: the bare label opens a chunk, one untyped I continues any chunk
            out[..., col[label]] = p("B", r) + p("S", r)
            out[..., col["I"]] += p("I", r) + p("E", r)
    return out


def valid(teacher: SpanPotentials) -> torch.Tensor:
    return torch.arange(teacher.scores.shape[1]) < teacher.lengths.unsqueeze(1)  # [B, N]


@pytest.mark.parametrize("scheme", SCHEMES)
@SETTINGS
@given(**dims)
def test_span_targets_match_enumeration(scheme, seed, B, N, R):
    teacher = random_teacher(seed, B, N, R)
    t = span_targets(teacher, tag_set(teacher.labels, scheme), scheme, dtype=torch.float64)
    for b in range(B):
        n = int(teacher.lengths[b])
        assert torch.allclose(t.unary[b, :n], enumerated_unary(teacher, b, scheme), atol=1e-9)
        assert (t.unary[b, n:] == 0).all()


@pytest.mark.parametrize("scheme", SCHEMES)
@SETTINGS
@given(**dims)
def test_span_targets_are_bioes_marginals_mapped_per_scheme(scheme, seed, B, N, R):
    teacher = random_teacher(seed, B, N, R)
    t = span_targets(teacher, tag_set(teacher.labels, scheme), scheme, dtype=torch.float64)
    bioes = SpanNER(teacher.scores, teacher.lengths).bioes_log_marginals.exp()
    expected = mapped_by_hand(bioes, teacher.labels, scheme) * valid(teacher).unsqueeze(-1)
    assert torch.allclose(t.unary, expected, atol=1e-12)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("T,mode", [(1.0, "local"), (3.0, "local"), (3.0, "global"), (0.5, "global")])
@SETTINGS
@given(**dims)
def test_span_targets_rows_sum_to_one(scheme, T, mode, seed, B, N, R):
    teacher = random_teacher(seed, B, N, R)
    t = span_targets(teacher, tag_set(teacher.labels, scheme), scheme, temperature=T, mode=mode,
                     dtype=torch.float64)
    assert (t.unary >= 0).all()
    assert torch.allclose(t.unary.sum(-1), valid(teacher).double())


@pytest.mark.parametrize("scheme", SCHEMES)
@SETTINGS
@given(**dims)
def test_span_targets_top1_is_flat_decoding(scheme, seed, B, N, R):
    teacher = random_teacher(seed, B, N, R)
    tags = tag_set(teacher.labels, scheme)
    t = span_targets(teacher, tags, scheme)
    decoded = SpanNER(teacher.scores, teacher.lengths).decode()
    for b, spans in enumerate(decoded):
        n = int(teacher.lengths[b])
        named = [(i, j + 1, teacher.labels[c - 1]) for i, j, c in spans]
        assert [tags[k] for k in t.top1[b, :n].tolist()] == spans_to_tags(named, n, scheme)
        assert (t.top1[b, n:] == -1).all()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("T", [0.5, 2.0, 4.0])
@SETTINGS
@given(**dims)
def test_span_targets_global_temperature_divides_span_scores(scheme, T, seed, B, N, R):
    """Global: the structure distribution of scores / T, i.e. p(Y)^(1/T) renormalised."""
    teacher = random_teacher(seed, B, N, R)
    t = span_targets(teacher, tag_set(teacher.labels, scheme), scheme, temperature=T, mode="global",
                     dtype=torch.float64)
    assert t.mode == "global" and t.temperature == T
    bioes = SpanNER(teacher.scores / T, teacher.lengths).bioes_log_marginals.exp()
    expected = mapped_by_hand(bioes, teacher.labels, scheme) * valid(teacher).unsqueeze(-1)
    assert torch.allclose(t.unary, expected, atol=1e-12)
    for b in range(B):
        n = int(teacher.lengths[b])
        assert torch.allclose(t.unary[b, :n], enumerated_unary(teacher, b, scheme, T), atol=1e-9)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("T", [0.5, 2.0, 4.0])
@SETTINGS
@given(**dims)
def test_span_targets_local_temperature_tempers_bioes_marginals(scheme, T, seed, B, N, R):
    """Local (the reference): softmax(log m / T) over each word's BIOES marginals, then mapped."""
    teacher = random_teacher(seed, B, N, R)
    t = span_targets(teacher, tag_set(teacher.labels, scheme), scheme, temperature=T, mode="local",
                     dtype=torch.float64)
    assert t.mode == "local"
    log_m = SpanNER(teacher.scores, teacher.lengths).bioes_log_marginals
    bioes = torch.softmax(log_m / T, -1)
    expected = mapped_by_hand(bioes, teacher.labels, scheme) * valid(teacher).unsqueeze(-1)
    assert torch.allclose(t.unary, expected, atol=1e-12)


def test_span_targets_local_and_global_differ_and_agree_at_t1():
    teacher = random_teacher(7, 2, 4, 2)
    tags = tag_set(teacher.labels, "BIOES")
    local = span_targets(teacher, tags, "BIOES", temperature=3.0, mode="local", dtype=torch.float64)
    glob = span_targets(teacher, tags, "BIOES", temperature=3.0, mode="global", dtype=torch.float64)
    assert not torch.allclose(local.unary, glob.unary, atol=1e-3)
    one_l = span_targets(teacher, tags, "BIOES", temperature=1.0, mode="local", dtype=torch.float64)
    one_g = span_targets(teacher, tags, "BIOES", temperature=1.0, mode="global", dtype=torch.float64)
    assert torch.equal(one_l.unary, one_g.unary)


def test_span_targets_hand_example():
    """One word, one type, φ = log 3: P(S-PER) = 3/4, P(O) = 1/4; in IOB2 S-PER is B-PER."""
    scores = torch.zeros(1, 1, 1, 2, dtype=torch.float64)
    scores[0, 0, 0, 1] = torch.tensor(3.0, dtype=torch.float64).log()
    teacher = SpanPotentials(scores, torch.tensor([1]), ("PER",))
    t = span_targets(teacher, ["O", "B-PER", "I-PER"], "IOB2", dtype=torch.float64)
    assert torch.allclose(t.unary[0, 0], torch.tensor([0.25, 0.75, 0.0], dtype=torch.float64))
    assert t.top1.tolist() == [[1]]


def test_span_targets_ignore_padding_cells():
    """Garbage (inf, nan) in cells with j < i or past the length reaches nothing."""
    teacher = random_teacher(3, 2, 4, 2)
    teacher.lengths = torch.tensor([4, 2])
    tags = tag_set(teacher.labels, "BIOES")
    clean = span_targets(teacher, tags, "BIOES", dtype=torch.float64)
    dirty = teacher.scores.clone()
    lower = torch.ones(4, 4, dtype=torch.bool).tril(-1)
    dirty[:, lower] = float("nan")
    dirty[1, 2:, :] = float("inf")
    dirty[1, :, 2:] = float("-inf")
    t = span_targets(SpanPotentials(dirty, teacher.lengths, teacher.labels), tags, "BIOES", dtype=torch.float64)
    assert torch.equal(t.unary, clean.unary) and torch.equal(t.top1, clean.top1)


def test_span_targets_refuse_iob1():
    teacher = random_teacher(0, 1, 3, 1)
    with pytest.raises(ValueError, match=r"\[skd-E180\]"):
        span_targets(teacher, tag_set(teacher.labels, "IOB1"), "IOB1")


def test_span_targets_missing_tag():
    teacher = random_teacher(0, 1, 3, 2)  # LOC and PER
    with pytest.raises(ValueError, match=r"\[skd-E181\].*B-PER"):
        span_targets(teacher, tag_set(["LOC"], "BIOES"), "BIOES")


def test_span_targets_unknown_mode():
    teacher = random_teacher(0, 1, 3, 1)
    with pytest.raises(ValueError, match=r"\[skd-E151\]"):
        span_targets(teacher, tag_set(teacher.labels, "BIOES"), "BIOES", temperature=2.0, mode="auto")


def test_span_targets_bad_temperature():
    teacher = random_teacher(0, 1, 3, 1)
    with pytest.raises(ValueError, match=r"\[skd-E150\]"):
        span_targets(teacher, tag_set(teacher.labels, "BIOES"), "BIOES", temperature=0.0)
