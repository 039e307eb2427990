"""Maximum spanning dependency trees (Chu-Liu/Edmonds) with exactly one word attached to ROOT.

Decoding runs per sentence in float64 numpy on the CPU: MST is a discrete argmax with no gradient,
and the contraction recursion is data dependent, so batching it on the accelerator gains nothing.

Single root, exactly, in one arborescence search: each arc's score is the pair (-[arc leaves
ROOT], score), compared lexicographically. Chu-Liu/Edmonds only adds, subtracts and compares
scores, so it is exact for such pairs too; the best tree then has the fewest root arcs (one is
always possible) and, among single-root trees, the highest score. The search is Tarjan's dense
organisation of Chu-Liu/Edmonds, O(n^2) per sentence: contracting a cycle merges its members'
rows and columns in O(n) each, and there are fewer than 2n nodes, contracted ones included.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import Errors
from ._util import check_shape

# Finite stand-in for -inf arcs in the input: 1024 of them still sum without overflowing, so tree
# scores stay comparable. Structural non-arcs (self-loops, arcs into the root) use a real -inf,
# which never reaches a subtraction because every dependent keeps a finite candidate head.
_FLOOR = np.finfo(np.float64).min / 1024


def mst(scores: torch.Tensor, lengths: torch.Tensor) -> torch.LongTensor:
    """Maximum spanning dependency tree with a single root (Chu-Liu/Edmonds), per sentence.

    scores (Tensor): [B, N+1, N+1]; scores[b, d, h] = log-score of head h for dependent d. Index 0 is
        ROOT, words are 1..lengths[b]. Row 0 and rows/cols past each length are ignored. Large
        finite negatives (e.g. -1e30) mark forbidden arcs; -inf is treated as the most negative
        finite score, so a valid tree is always returned.
    lengths (LongTensor): [B], each in [0, N].
    RETURNS (LongTensor): heads [B, N+1] on the input's device: heads[b, d] in 0..n_b for
        1 <= d <= n_b, exactly one d with head 0, no cycles; heads[b, 0] = -1 and heads[b, d] = -1
        for d > n_b. Ties are broken towards lower indices (deterministic, not unique).
    Cost: O(n^2) time and memory per sentence.

    >>> s = torch.tensor([[[0., 0., 0.], [5., 0., 1.], [4., 3., 0.]]])   # both words prefer ROOT
    >>> mst(s, torch.tensor([2])).tolist()                              # 5 + 3 beats 4 + 1
    [[-1, 0, 1]]
    """
    if scores.dim() != 3 or scores.shape[1] != scores.shape[2] or scores.shape[1] < 1:
        raise ValueError(Errors.E002.format(name="scores", expected="[B, N+1, N+1]", shape=tuple(scores.shape)))
    B, H = scores.shape[0], scores.shape[1]
    check_shape("lengths", lengths, (B,))
    lens = [int(n) for n in lengths.tolist()]
    if any(n < 0 or n > H - 1 for n in lens):
        raise ValueError(Errors.E003.format(max_len=H - 1, lengths=lens))
    S_all = scores.detach().to("cpu", torch.float64).numpy()
    heads = np.full((B, H), -1, dtype=np.int64)
    for b, n in enumerate(lens):
        if n == 0:
            continue
        S = S_all[b, : n + 1, : n + 1]
        if np.isnan(S[1:]).any():
            raise ValueError(Errors.E010.format(b=b))
        heads[b, : n + 1] = _single_root_mst(np.maximum(S, _FLOOR))
    return torch.from_numpy(heads).to(scores.device)


def is_tree(heads: Sequence[int]) -> bool:
    """True iff `heads` (heads[i] = head of word i+1, 0 = ROOT) is a single-root tree over words
    1..n: every head in 0..n, no self-loop, exactly one root word, no cycle. Empty -> True."""
    heads = [int(h) for h in heads]
    n = len(heads)
    if n == 0:
        return True
    if any(h < 0 or h > n or h == i for i, h in enumerate(heads, 1)):
        return False
    if sum(h == 0 for h in heads) != 1:
        return False
    return _find_cycle([-1] + heads) is None


def _single_root_mst(S: np.ndarray) -> np.ndarray:
    """S [n+1, n+1] finite float64 (S[d, h]); RETURNS heads [n+1] with heads[0] = -1."""
    n = S.shape[0] - 1
    if n == 1:
        return np.array([-1, 0], dtype=np.int64)
    P = np.zeros_like(S)
    P[:, 0] = -1.0  # first key: fewer root arcs is better
    return _msa(P, S)


def _msa(P: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence rooted at node 0 under the lexicographic arc score (P, S):
    Chu-Liu/Edmonds with Tarjan's dense O(m^2) organisation.

    Heads are chosen along a path of (contracted) nodes, each taking its best incoming arc, until
    the path reaches the root or a node already attached to it; a cycle on the path is contracted
    at once into the slot of its first node, merging the members' rows (scores relative to each
    member's own chosen arc) and columns with elementwise maxima, O(m) per member. Afterwards
    each contracted node's chosen arc replaces the cycle arc of the member it enters.

    P, S (ndarray): [m, m] float64, arc h -> d scores (P[d, h], S[d, h]); P is integer-valued.
        Self-loops and arcs into node 0 are dropped; every other node needs a finite arc.
    RETURNS (ndarray): heads [m] int64 with heads[0] = -1.
    """
    m = S.shape[0]
    P, S = P.copy(), S.copy()
    for X in (P, S):
        np.fill_diagonal(X, -np.inf)
        X[0] = -np.inf
    arc_d = np.broadcast_to(np.arange(m)[:, None], (m, m)).copy()  # original arc behind each entry
    arc_h = np.broadcast_to(np.arange(m)[None, :], (m, m)).copy()
    parent: List[int] = list(range(m))  # contraction node containing each node (itself at top)
    rep: List[int] = list(range(m))  # the same, shortcut by `top`
    members: List[List[int]] = [[] for _ in range(m)]
    slot: List[int] = list(range(m))  # matrix row/column of each node
    at_slot: List[int] = list(range(m))  # node in each row/column
    enter: List[Tuple[int, int]] = [(-1, -1)] * m  # chosen incoming original arc (d, h)
    enter_score: List[Tuple[float, float]] = [(0.0, 0.0)] * m
    done = [False] * m
    done[0] = True

    def top(v: int) -> int:
        """The outermost contraction holding v (union-find with path halving on `rep`)."""
        while rep[v] != v:
            rep[v] = rep[rep[v]]
            v = rep[v]
        return v

    for start in range(1, m):
        if done[top(start)]:
            continue
        path = [top(start)]
        on_path = {path[0]}
        while True:
            a = path[-1]
            r = slot[a]
            j = int(_lex_argmax(P[r], S[r]))
            enter[a] = (int(arc_d[r, j]), int(arc_h[r, j]))
            enter_score[a] = (P[r, j], S[r, j])
            u = at_slot[j]
            if done[u]:
                for v in path:
                    done[v] = True
                break
            if u not in on_path:
                path.append(u)
                on_path.add(u)
                continue
            cycle = path[path.index(u):]
            del path[path.index(u):]
            c = len(parent)
            parent.append(c)
            rep.append(c)
            members.append(cycle)
            enter.append((-1, -1))
            enter_score.append((0.0, 0.0))
            done.append(False)
            for v in cycle:
                parent[v] = rep[v] = c
                on_path.discard(v)
            _merge(P, S, arc_d, arc_h, [slot[v] for v in cycle], [enter_score[v] for v in cycle])
            slot.append(slot[cycle[0]])
            at_slot[slot[c]] = c
            path.append(c)
            on_path.add(c)
    heads = np.full(m, -1, dtype=np.int64)
    stack = [(v, enter[v]) for v in range(1, len(parent)) if parent[v] == v]
    while stack:
        v, (d, h) = stack.pop()
        if v < m:
            heads[v] = h
            continue
        entered = d
        while parent[entered] != v:  # the member of v that holds the arc's dependent
            entered = parent[entered]
        stack.extend((w, (d, h) if w == entered else enter[w]) for w in members[v])
    return heads


def _merge(P: np.ndarray, S: np.ndarray, arc_d: np.ndarray, arc_h: np.ndarray, slots: List[int],
           own: List[Tuple[float, float]]) -> None:
    """Contract the nodes in `slots` into slots[0], in place. Its row: the best arc into any
    member, scored relative to that member's chosen arc `own`; its column: the best arc out of
    any member. The other slots and arcs inside the cycle are dropped."""
    r = slots[0]
    row_p, row_s = P[r] - own[0][0], S[r] - own[0][1]
    row_d, row_h = arc_d[r].copy(), arc_h[r].copy()
    col_p, col_s, col_d, col_h = P[:, r].copy(), S[:, r].copy(), arc_d[:, r].copy(), arc_h[:, r].copy()
    for q, (own_p, own_s) in zip(slots[1:], own[1:]):
        cand_p, cand_s = P[q] - own_p, S[q] - own_s
        better = (cand_p > row_p) | ((cand_p == row_p) & (cand_s > row_s))
        row_p, row_s = np.where(better, cand_p, row_p), np.where(better, cand_s, row_s)
        row_d, row_h = np.where(better, arc_d[q], row_d), np.where(better, arc_h[q], row_h)
        better = (P[:, q] > col_p) | ((P[:, q] == col_p) & (S[:, q] > col_s))
        col_p, col_s = np.where(better, P[:, q], col_p), np.where(better, S[:, q], col_s)
        col_d, col_h = np.where(better, arc_d[:, q], col_d), np.where(better, arc_h[:, q], col_h)
    P[r], S[r], arc_d[r], arc_h[r] = row_p, row_s, row_d, row_h
    P[:, r], S[:, r], arc_d[:, r], arc_h[:, r] = col_p, col_s, col_d, col_h
    for q in slots:
        P[q, slots] = -np.inf
        S[q, slots] = -np.inf
    for q in slots[1:]:
        P[q], S[q], P[:, q], S[:, q] = -np.inf, -np.inf, -np.inf, -np.inf


def _lex_argmax(P: np.ndarray, S: np.ndarray) -> int:
    """Index of the lexicographic maximum of (P, S) (the first one on ties)."""
    return int(np.where(P == P.max(), S, -np.inf).argmax())


def _find_cycle(heads: Sequence[int]) -> Optional[List[int]]:
    """heads [m] with heads[0] = -1 (node 0 is the root). RETURNS one cycle's nodes, or None."""
    m = len(heads)
    state = [0] * m  # 0 unseen, 1 on the current path, 2 done
    for start in range(1, m):
        path, v = [], start
        while v > 0 and state[v] == 0:
            state[v] = 1
            path.append(v)
            v = int(heads[v])
        if v > 0 and state[v] == 1:
            return path[path.index(v):]
        for u in path:
            state[u] = 2
    return None
