"""Brute-force twins for the KD tests: every tag sequence of a tiny chain, enumerated.

Shared by test_targets.py and test_objectives.py. Everything is float64 and written straight
from the definitions (scores of whole sequences, probabilities by normalising over all of them),
so it shares no code with spacy_skd.structs or spacy_skd.kd.
"""
import itertools
from typing import NamedTuple, Optional

import torch
from hypothesis import settings
from hypothesis import strategies as st

from spacy_skd.structs.chain import TransitionMask

SETTINGS = settings(max_examples=40, deadline=None)
dims = dict(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(0, 4), L=st.integers(1, 3))


class Chain(NamedTuple):
    emit: torch.Tensor  # [B, N, L]
    trans: torch.Tensor  # [L, L]
    start: torch.Tensor  # [L]
    end: torch.Tensor  # [L]
    lengths: torch.Tensor  # [B]
    mask: Optional[TransitionMask]

    @property
    def args(self):
        """Positional arguments of crf_targets and the CRF losses."""
        return self.emit, self.trans, self.lengths, self.start, self.end, self.mask


def random_chain(seed, B, N, L, *, with_mask=False, scale=1.0, lengths=None) -> Chain:
    g = torch.Generator().manual_seed(seed)
    emit = torch.randn(B, N, L, generator=g, dtype=torch.float64) * scale
    trans = torch.randn(L, L, generator=g, dtype=torch.float64) * scale
    start = torch.randn(L, generator=g, dtype=torch.float64)
    end = torch.randn(L, generator=g, dtype=torch.float64)
    if lengths is None:
        lengths = torch.randint(0, N + 1, (B,), generator=g)
    mask = None
    if with_mask:
        allowed = (torch.rand(L, generator=g) < 0.7, torch.rand(L, L, generator=g) < 0.6, torch.rand(L, generator=g) < 0.7)
        for a in allowed:  # keep the all-tag-0 sequence possible, so no sentence has zero paths
            a.view(-1)[0] = True
        mask = TransitionMask(*allowed)
    return Chain(emit, trans, start, end, lengths, mask)


def paths_of(n: int, L: int) -> torch.Tensor:
    """Every tag sequence of length n: [L**n, n] (one empty sequence for n = 0)."""
    return torch.tensor(list(itertools.product(range(L), repeat=n)), dtype=torch.long).reshape(L**n, n)


def sequences(chain: Chain, b: int, T: float = 1.0):
    """The allowed sequences of sentence b, [P, n], and their log-probabilities [P] under
    p(y) ∝ exp(score(y) / T)."""
    n, L = int(chain.lengths[b]), chain.emit.shape[-1]
    paths = paths_of(n, L)
    if n == 0:
        return paths, torch.zeros(1, dtype=torch.float64)
    pos = torch.arange(n)
    score = (chain.emit[b, pos, paths].sum(-1) + chain.trans[paths[:, :-1], paths[:, 1:]].sum(-1)
             + chain.start[paths[:, 0]] + chain.end[paths[:, -1]])
    if chain.mask is not None:
        ok = (chain.mask.start[paths[:, 0]] & chain.mask.end[paths[:, -1]]
              & chain.mask.transitions[paths[:, :-1], paths[:, 1:]].all(-1))
        paths, score = paths[ok], score[ok]
    score = score / T
    return paths, score - score.logsumexp(0)


def product_sequences(unary: torch.Tensor, n: int):
    """Every sequence of length n and its log-probability under Π_i unary[i, y_i]: [P, n], [P]."""
    paths = paths_of(n, unary.shape[-1])
    return paths, unary[torch.arange(n), paths].log().sum(-1)


def slot_marginals(paths: torch.Tensor, log_probs: torch.Tensor, N: int, L: int):
    """Marginals of an enumerated distribution, padded to width N: unary [N, L],
    pairs [max(N-1, 0), L, L], start [L], end [L]."""
    probs = log_probs.exp()
    n = paths.shape[1]
    unary = torch.zeros(N, L, dtype=torch.float64)
    pairs = torch.zeros(max(N - 1, 0), L, L, dtype=torch.float64)
    for i in range(n):
        unary[i].index_put_((paths[:, i],), probs, accumulate=True)
        if i:
            pairs[i - 1].index_put_((paths[:, i - 1], paths[:, i]), probs, accumulate=True)
    start = unary[0].clone() if n else torch.zeros(L, dtype=torch.float64)
    end = unary[n - 1].clone() if n else torch.zeros(L, dtype=torch.float64)
    return unary, pairs, start, end


def cross_entropy(p_log: torch.Tensor, q_log: torch.Tensor) -> torch.Tensor:
    """-Σ_y p(y) log q(y) over one enumerated support."""
    return -(p_log.exp() * q_log).sum()
