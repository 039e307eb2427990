"""Maximum spanning dependency trees (Chu-Liu/Edmonds) with exactly one word attached to ROOT.

Decoding runs per sentence in float64 numpy on the CPU: MST is a discrete argmax with no gradient,
and the contraction recursion is data dependent, so batching it on the accelerator gains nothing.

Single root, exactly: the best single-root tree whose root word is r is the arc ROOT -> r plus the
best arborescence over the words rooted at r. `mst` takes the maximum over r, so it is exact. Two
shortcuts keep it cheap: when the unconstrained tree (any number of root arcs) already has one
root it is optimal, because it is the maximum over a superset; otherwise root candidates are tried
in order of an upper bound on their best tree and the search stops once no bound beats the best
tree found (branch and bound, still exact).
"""
from typing import List, Optional, Sequence

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
    Cost: O(n^3) per sentence in the common case, O(n^4) worst case when many root words compete.

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
    out = np.full(n + 1, -1, dtype=np.int64)
    if n == 1:
        out[1] = 0
        return out
    free = _msa(S)  # unconstrained: any number of words may attach to ROOT
    if (free[1:] == 0).sum() == 1:
        return free
    words = S[1:, 1:].copy()  # [n, n] word -> word arcs
    np.fill_diagonal(words, -np.inf)
    # Upper bound for root r: its root arc plus every other word's best word head (ignoring acyclicity).
    best_in = words.max(1)  # [n]
    bounds = S[1:, 0] + best_in.sum() - best_in  # [n]
    best_score, best = -np.inf, None
    for r in np.argsort(-bounds, kind="stable"):
        if best is not None and bounds[r] <= best_score:
            break
        order = np.concatenate(([r], np.delete(np.arange(n), r)))  # word r becomes node 0
        sub = _msa(words[np.ix_(order, order)])
        heads = np.empty(n, dtype=np.int64)
        heads[order[1:]] = order[sub[1:]] + 1
        heads[r] = 0
        score = S[np.arange(1, n + 1), heads].sum()
        if score > best_score:
            best_score, best = score, heads
    out[1:] = best
    return out


def _msa(S: np.ndarray) -> np.ndarray:
    """Maximum spanning arborescence rooted at node 0 (Chu-Liu/Edmonds, recursive contraction).

    S (ndarray): [m, m] float64, S[d, h] = score of arc h -> d; -inf marks a missing arc.
    RETURNS (ndarray): heads [m] int64 with heads[0] = -1.
    """
    m = S.shape[0]
    S = S.copy()
    np.fill_diagonal(S, -np.inf)
    S[0] = -np.inf
    heads = S.argmax(1)
    heads[0] = -1
    cycle = _find_cycle(heads)
    if cycle is None:
        return heads
    cycle = np.asarray(cycle)
    in_cycle = np.zeros(m, dtype=bool)
    in_cycle[cycle] = True
    rest = np.flatnonzero(~in_cycle)  # rest[0] == 0; contracted node gets index k
    k = len(rest)
    C = np.full((k + 1, k + 1), -np.inf)
    C[:k, :k] = S[np.ix_(rest, rest)]
    # Arcs leaving the cycle: for each outside dependent, its best head inside the cycle.
    leave = S[np.ix_(rest, cycle)]  # [k, c]
    leave_src = leave.argmax(1)
    C[:k, k] = leave[np.arange(k), leave_src]
    # Arcs entering the cycle: gain of replacing a cycle node's cycle arc by an outside head.
    enter = S[np.ix_(cycle, rest)] - S[cycle, heads[cycle]][:, None]  # [c, k]
    enter_dst = enter.argmax(0)
    C[k, :k] = enter[enter_dst, np.arange(k)]
    sub = _msa(C)
    out = heads.copy()
    for j in range(1, k):
        h = sub[j]
        out[rest[j]] = rest[h] if h < k else cycle[leave_src[j]]
    h = sub[k]
    out[cycle[enter_dst[h]]] = rest[h]  # breaks the cycle where the outside head enters
    return out


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
