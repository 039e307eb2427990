"""Second-order dependency parser (Wang & Tu 2020): mean-field variational inference.

Sibling, co-parent and grandparent factors couple pairs of arcs. Exact inference over them is
intractable, so a fixed number of mean-field updates refines the per-word head distributions
Q(h | d); training backpropagates through the unrolled updates, and the final Q replaces the
first-order P(h | d) everywhere (loss, KD targets, decoding). Case 2b teacher, docs/algorithms.md §5.4.
"""
from functools import cached_property
from typing import Optional

import torch

from ..errors import Errors
from ._util import check_float, check_shape, log_zero
from .dependency import HeadSelection


def _distinct(H: int, device: torch.device) -> torch.Tensor:
    """[H, H, H]: True where the three indices differ (no degenerate self terms)."""
    idx = torch.arange(H, device=device)
    i, j, k = idx[:, None, None], idx[None, :, None], idx[None, None, :]
    return (i != j) & (i != k) & (j != k)


class SecondOrderMFVI(HeadSelection):
    """Head selection whose head distributions Q come from K mean-field iterations.

    arc_scores, rel_scores, lengths: as in HeadSelection (index 0 = ROOT, words 1..n_b).
    sib (Tensor): [B, N+1, N+1, N+1]; sib[b, m, h, s] scores arcs h -> m and h -> s together
        (siblings); used where m, s are distinct words and h is ROOT or a word other than both.
    cop (Tensor): [B, N+1, N+1, N+1]; cop[b, m, h, c] scores arcs h -> m and c -> m together
        (co-parents); used where m is a word and h, c are distinct heads other than m.
    grd (Tensor): [B, N+1, N+1, N+1]; grd[b, m, h, g] scores arcs g -> h and h -> m (chain
        g -> h -> m); used where m, h are words and g is ROOT or a word, all three distinct.
    None = no such factor. Entries outside these ranges (padding, ROOT as a dependent, repeated
    indices) are ignored and may hold garbage. Scores may be -inf (floored, so Q stays finite).
    iterations (int): K >= 0; 0 gives the first-order HeadSelection.

    Update, with Q_k = softmax over valid heads of q_k (zero at invalid heads) and q_0 = arc:
        q_{k+1}[m, h] = arc[m, h] + Σ_s Q_k[s, h] sib[m, h, s] + Σ_c Q_k[m, c] cop[m, h, c]
                        + Σ_g Q_k[h, g] grd[m, h, g] + Σ_c Q_k[c, m] grd[c, m, h]
    The last two terms see arc h -> m as the lower and as the upper arc of a chain.
    `arc_logits` is q_K and `arc_log_probs` is log Q_K.
    Cost: O(K B N^3) time, O(B N^3) memory per factor (times K with autograd).

    >>> arc, rel = torch.zeros(1, 3, 3), torch.zeros(1, 3, 3, 1)
    >>> sib = torch.zeros(1, 3, 3, 3); sib[0, 1, 0, 2] = sib[0, 2, 0, 1] = 4.0
    >>> SecondOrderMFVI(arc, rel, torch.tensor([2]), sib=sib, iterations=1).arc_logits[0, 1, 0]
    tensor(2.)
    """

    def __init__(
        self,
        arc_scores: torch.Tensor,
        rel_scores: torch.Tensor,
        lengths: torch.Tensor,
        sib: Optional[torch.Tensor] = None,
        cop: Optional[torch.Tensor] = None,
        grd: Optional[torch.Tensor] = None,
        iterations: int = 3,
    ):
        super().__init__(arc_scores, rel_scores, lengths)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0:
            raise ValueError(Errors.E022.format(value=iterations))
        B, H, _ = arc_scores.shape
        for name, factor in (("sib", sib), ("cop", cop), ("grd", grd)):
            if factor is not None:
                check_float(factor)
                check_shape(name, factor, (B, H, H, H))
        self.iterations = iterations
        idx = torch.arange(H, device=self.lengths.device)
        in_len = idx <= self.lengths.unsqueeze(1)  # [B, H]: ROOT and the words
        word = in_len & (idx > 0)  # [B, H]
        distinct = _distinct(H, self.lengths.device)

        # A -inf factor score (two arcs never together) would make Q * score NaN where Q is 0
        # and give -inf messages; floored, the at most 4H messages into an arc, each weighted
        # by a probability, still sum to at least log_zero, so every q stays finite.
        floor = log_zero(arc_scores.dtype) / (4 * H)

        def keep(factor, first, second, third):
            """Zero the factor outside its valid triples (first/second/third: [B, H] masks)."""
            if factor is None:
                return None
            valid = first[:, :, None, None] & second[:, None, :, None] & third[:, None, None, :] & distinct
            return factor.clamp_min(floor).masked_fill(~valid, 0.0)

        self.sib = keep(sib, word, in_len, word)  # [B, H(m), H(h), H(s)]
        self.cop = keep(cop, word, in_len, in_len)  # [B, H(m), H(h), H(c)]
        self.grd = keep(grd, word, word, in_len)  # [B, H(m), H(h), H(g)]

    def _update(self, unary: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
        """q_{k+1} [B, H(m), H(h)] from the masked unary scores and Q_k [B, H(d), H(h)]."""
        q = unary
        if self.sib is not None:
            q = q + torch.einsum("bsh,bmhs->bmh", Q, self.sib)
        if self.cop is not None:
            q = q + torch.einsum("bmc,bmhc->bmh", Q, self.cop)
        if self.grd is not None:
            q = q + torch.einsum("bhg,bmhg->bmh", Q, self.grd)  # h -> m below g -> h
            q = q + torch.einsum("bcm,bcmh->bmh", Q, self.grd)  # h -> m above m -> c
        # invalid (m, h) get no messages (their factors are zeroed), so they stay at log_zero
        return q

    @cached_property
    def arc_logits(self) -> torch.Tensor:
        """q_K [B, H(d), H(h)]; log_zero at invalid (d, h)."""
        unary = self.arc_scores.masked_fill(~self.valid, log_zero(self.arc_scores.dtype))
        q = unary
        if self.sib is None and self.cop is None and self.grd is None:
            return q
        for _ in range(self.iterations):
            # rows that are no word are all log_zero: uniform softmax, zeroed by the mask
            Q = q.softmax(-1).masked_fill(~self.valid, 0.0)  # [B, H, H]
            q = self._update(unary, Q)
        return q
