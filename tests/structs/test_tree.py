"""mst against brute-force enumeration of every single-root dependency tree on tiny inputs."""
import itertools
import time

import pytest
import networkx as nx
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs.tree import is_tree, mst

SETTINGS = settings(max_examples=80, deadline=None)


def all_trees(n):
    """Every single-root tree over words 1..n, as head lists (heads[i] = head of word i+1)."""
    for heads in itertools.product(range(n + 1), repeat=n):
        if is_tree(heads):
            yield heads


def tree_score(S, heads):
    return sum(float(S[d, h]) for d, h in enumerate(heads, 1))


def brute_max(S, n):
    return max(tree_score(S, t) for t in all_trees(n))


def check_valid(heads_row, n):
    row = heads_row.tolist()
    assert row[0] == -1
    assert all(h == -1 for h in row[n + 1:])
    assert is_tree(row[1:n + 1])


@pytest.mark.parametrize("n,count", [(1, 1), (2, 2), (3, 9), (4, 64)])
def test_tree_enumeration_counts_single_root_trees(n, count):
    # n^(n-1) single-root trees (Cayley): the brute force itself is right.
    assert len(list(all_trees(n))) == count


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 5), scale=st.sampled_from([0.1, 1.0, 10.0]))
def test_tree_mst_matches_enumeration(seed, B, N, scale):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(B, N + 1, N + 1, generator=g, dtype=torch.float64) * scale
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    heads = mst(scores, lengths)
    assert heads.shape == (B, N + 1) and heads.dtype == torch.long
    for b, n in enumerate(lengths.tolist()):
        check_valid(heads[b], n)
        if n:
            got = tree_score(scores[b], heads[b, 1:n + 1].tolist())
            assert got == pytest.approx(brute_max(scores[b], n), abs=1e-9)


@SETTINGS
@given(seed=st.integers(0, 2**16), n=st.integers(2, 5))
def test_tree_mst_many_root_candidates_matches_enumeration(seed, n):
    # Strong root arcs: the unconstrained tree has several roots, so the root search must be exact.
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(1, n + 1, n + 1, generator=g, dtype=torch.float64)
    scores[0, :, 0] += 3.0 + torch.rand(n + 1, generator=g, dtype=torch.float64)
    heads = mst(scores, torch.tensor([n]))
    check_valid(heads[0], n)
    assert tree_score(scores[0], heads[0, 1:].tolist()) == pytest.approx(brute_max(scores[0], n), abs=1e-9)


@SETTINGS
@given(seed=st.integers(0, 2**16), n=st.integers(1, 5), p=st.floats(0.0, 0.9))
def test_tree_mst_forbidden_arcs_still_give_a_tree(seed, n, p):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(1, n + 1, n + 1, generator=g)
    forbid = torch.rand(1, n + 1, n + 1, generator=g) < p
    scores = scores.masked_fill(forbid, -1e30)
    heads = mst(scores, torch.tensor([n]))
    check_valid(heads[0], n)
    allowed = [t for t in all_trees(n) if all(not forbid[0, d, h] for d, h in enumerate(t, 1))]
    if allowed:  # a tree of allowed arcs exists: mst must find the best of them
        best = max(tree_score(scores[0].double(), t) for t in allowed)
        assert tree_score(scores[0].double(), heads[0, 1:].tolist()) == pytest.approx(best, rel=1e-5)


def test_tree_mst_all_forbidden_and_minus_inf_give_a_tree():
    for fill in (-1e30, float("-inf")):
        scores = torch.full((2, 5, 5), fill)
        heads = mst(scores, torch.tensor([4, 3]))
        check_valid(heads[0], 4)
        check_valid(heads[1], 3)


def test_tree_mst_lengths_zero_and_one():
    scores = torch.randn(3, 4, 4)
    heads = mst(scores, torch.tensor([0, 1, 3]))
    assert heads[0].tolist() == [-1, -1, -1, -1]
    assert heads[1].tolist() == [-1, 0, -1, -1]
    check_valid(heads[2], 3)
    assert mst(torch.zeros(0, 3, 3), torch.zeros(0, dtype=torch.long)).shape == (0, 3)


def test_tree_mst_ignores_padding_and_row_zero():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(1, 6, 6, generator=g)
    noisy = scores.clone()
    noisy[0, 4:, :] = 1e6  # padded rows
    noisy[0, :, 4:] = 1e6  # padded heads
    noisy[0, 0, :] = float("nan")  # row 0 is never read
    lengths = torch.tensor([3])
    assert torch.equal(mst(scores, lengths), mst(noisy, lengths))


def test_tree_mst_ties_do_not_crash():
    for n in range(1, 7):
        heads = mst(torch.zeros(1, n + 1, n + 1), torch.tensor([n]))
        check_valid(heads[0], n)
    g = torch.Generator().manual_seed(1)
    scores = torch.randint(0, 2, (4, 6, 6), generator=g).float()
    heads = mst(scores, torch.tensor([5, 5, 4, 2]))
    for b, n in enumerate([5, 5, 4, 2]):
        check_valid(heads[b], n)
        assert tree_score(scores[b], heads[b, 1:n + 1].tolist()) == brute_max(scores[b], n)


def test_tree_mst_returns_on_input_device_and_keeps_input():
    scores = torch.randn(2, 4, 4, requires_grad=True)
    before = scores.detach().clone()
    heads = mst(scores, torch.tensor([3, 2]))
    assert heads.device == scores.device
    assert torch.equal(scores.detach(), before) and scores.requires_grad


def test_tree_mst_larger_sentences_are_trees():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(4, 61, 61, generator=g, dtype=torch.float64)
    scores[:, :, 0] += 2.0  # many words like ROOT
    lengths = torch.tensor([60, 45, 10, 1])
    heads = mst(scores, lengths)
    for b, n in enumerate(lengths.tolist()):
        check_valid(heads[b], n)


@pytest.mark.parametrize(
    "heads,expected",
    [([], True), ([0], True), ([2, 0, 2], True), ([0, 0], False), ([2, 1], False), ([1], False),
     ([0, 2], False), ([0, 3], False), ([0, -1], False), ([2, 3, 1, 0], False)],
)
def test_tree_is_tree(heads, expected):
    assert is_tree(heads) is expected


def test_tree_mst_errors():
    with pytest.raises(ValueError, match=r"\[skd-E002\]"):
        mst(torch.zeros(1, 3, 4), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"\[skd-E003\]"):
        mst(torch.zeros(1, 3, 3), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"\[skd-E010\]"):
        mst(torch.full((1, 3, 3), float("nan")), torch.tensor([2]))


def nx_single_root_max(S, n):
    """Best single-root tree score by an independent solver: networkx's arborescence search,
    once per root word r (arcs into r removed, so r must be the root), plus r's root arc.
    Forbidden arcs (<= -1e29) are left out of the graph."""
    best = float("-inf")
    for r in range(1, n + 1):
        g = nx.DiGraph()
        g.add_nodes_from(range(1, n + 1))
        g.add_weighted_edges_from((h, d, float(S[d, h])) for d in range(1, n + 1) if d != r
                                  for h in range(1, n + 1) if h != d and float(S[d, h]) > -1e29)
        try:
            tree = nx.maximum_spanning_arborescence(g, attr="weight", preserve_attrs=True)
        except nx.NetworkXException:  # no spanning tree of allowed arcs with this root
            continue
        best = max(best, float(S[r, 0]) + sum(w for _, _, w in tree.edges(data="weight")))
    return best


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(6, 14), root_boost=st.sampled_from([0.0, 3.0]))
def test_tree_mst_matches_networkx_on_medium_sentences(seed, n, root_boost):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(1, n + 1, n + 1, generator=g, dtype=torch.float64)
    scores[0, :, 0] += root_boost  # many words like ROOT: the single-root constraint binds
    heads = mst(scores, torch.tensor([n]))
    check_valid(heads[0], n)
    assert tree_score(scores[0], heads[0, 1:].tolist()) == pytest.approx(nx_single_root_max(scores[0], n), abs=1e-9)


def offset_like_scores(n: int, seed: int = 0) -> torch.Tensor:
    """What a sequence-labelling parser gives MST: every word likes ROOT about equally and has
    a few nearby candidate heads; every other arc is forbidden (-1e30)."""
    g = torch.Generator().manual_seed(seed)
    scores = torch.full((1, n + 1, n + 1), -1e30, dtype=torch.float64)
    d = torch.arange(1, n + 1)
    scores[0, d, 0] = -1.0 - 0.1 * torch.rand(n, generator=g, dtype=torch.float64)
    for offset in (-2, -1, 1, 2):
        h = d + offset
        ok = (h >= 1) & (h <= n)
        scores[0, d[ok], h[ok]] = -1.0 - torch.rand(int(ok.sum()), generator=g, dtype=torch.float64)
    return scores


def test_tree_mst_1000_words_decode_in_well_under_a_second_issue20():
    # The root-by-root search took 89 s on 400 such words; one lexicographic search is O(n^2).
    n = 1000
    scores = offset_like_scores(n)
    start = time.perf_counter()
    heads = mst(scores, torch.tensor([n]))
    assert time.perf_counter() - start < 1.0
    check_valid(heads[0], n)


def test_tree_mst_offset_like_scores_match_networkx_issue20():
    n = 12
    scores = offset_like_scores(n, seed=3)
    heads = mst(scores, torch.tensor([n]))
    assert tree_score(scores[0], heads[0, 1:].tolist()) == pytest.approx(nx_single_root_max(scores[0], n), rel=1e-12)
