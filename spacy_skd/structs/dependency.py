"""First-order graph-based dependency parser as a distribution: local head selection.

The biaffine parser of Dozat & Manning (2017) scores every (dependent, head) pair and every
relation given the pair; each word then picks its head with its own softmax (no tree CRF), and
its relation with a softmax conditioned on that head. This is the teacher of case 1b
(docs/algorithms.md §5.3): the KD adapter reads P(h | d) and P(r | d, h) per word. Decoding runs MST
over the head log-probabilities, so predictions are always single-root trees.

Layout: index 0 of both dependent and head axes is ROOT; words are 1..n_b; H = N + 1.
"""
from functools import cached_property
from typing import Tuple

import torch

from ..errors import Errors
from ._util import check_float, check_shape, log_zero
from .tree import mst


def arc_mask(lengths: torch.Tensor, H: int) -> torch.Tensor:
    """valid[b, d, h] [B, H, H]: d is a word (1..n_b), h is ROOT or a word (0..n_b), h != d."""
    idx = torch.arange(H, device=lengths.device)
    in_len = idx <= lengths.unsqueeze(1)  # [B, H]: ROOT and the words
    word = in_len & (idx > 0)  # [B, H]
    not_self = idx.unsqueeze(1) != idx  # [H, H]
    return word.unsqueeze(2) & in_len.unsqueeze(1) & not_self


class HeadSelection:
    """P(h, r | d) = softmax_h(arc[d, h]) · softmax_r(rel[d, h, r]), independently for each word d.

    arc_scores (Tensor): [B, N+1, N+1]; arc_scores[b, d, h] scores head h for dependent d.
        Index 0 is ROOT; words are 1..lengths[b]. Entries with d = 0, d or h past the length,
        or h = d are ignored (they may hold garbage, even NaN).
    rel_scores (Tensor): [B, N+1, N+1, R]; rel_scores[b, d, h, r] scores relation r for the arc
        h -> d. R >= 1. Entries at ignored (d, h) pairs are ignored.
    lengths (LongTensor): [B], each in [0, N].
    Cost: O(B N^2 R) time and memory; argmax adds the MST (Chu-Liu/Edmonds) per sentence.

    Several words may pick ROOT, and heads may form cycles: head selection is not a tree
    distribution. Only `argmax` enforces a tree.

    >>> hs = HeadSelection(torch.zeros(1, 3, 3), torch.zeros(1, 3, 3, 2), torch.tensor([2]))
    >>> hs.arc_log_probs[0, 1].exp()                  # word 1: ROOT or word 2, never itself
    tensor([0.5000, 0.0000, 0.5000])
    """

    def __init__(self, arc_scores: torch.Tensor, rel_scores: torch.Tensor, lengths: torch.Tensor):
        check_float(arc_scores)
        check_float(rel_scores)
        if arc_scores.dim() != 3 or arc_scores.shape[1] != arc_scores.shape[2] or arc_scores.shape[1] < 1:
            raise ValueError(Errors.E002.format(name="arc_scores", expected="[B, N+1, N+1]",
                                                shape=tuple(arc_scores.shape)))
        B, H, _ = arc_scores.shape
        if rel_scores.dim() != 4 or rel_scores.shape[-1] < 1:
            raise ValueError(Errors.E002.format(name="rel_scores", expected=f"[{B}, {H}, {H}, R] with R >= 1",
                                                shape=tuple(rel_scores.shape)))
        check_shape("rel_scores", rel_scores, (B, H, H, rel_scores.shape[-1]))
        check_shape("lengths", lengths, (B,))
        lengths = lengths.to(device=arc_scores.device, dtype=torch.long)
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > H - 1):
            raise ValueError(Errors.E003.format(max_len=H - 1, lengths=lengths.tolist()))
        self.arc_scores = arc_scores
        self.rel_scores = rel_scores
        self.lengths = lengths
        self.valid = arc_mask(lengths, H)  # [B, H, H]
        self.word_mask = self.valid.any(-1)  # [B, H]: positions 1..n_b (a length-1 sentence's word has ROOT)

    @property
    def n_rels(self) -> int:
        return self.rel_scores.shape[-1]

    # -- distributions --------------------------------------------------------------------------
    @cached_property
    def arc_logits(self) -> torch.Tensor:
        """Head scores [B, H, H] that the softmax over heads normalises; log_zero at invalid
        (d, h). Here the biaffine scores themselves; subclasses (MFVI) refine them."""
        return self.arc_scores.masked_fill(~self.valid, log_zero(self.arc_scores.dtype))

    @cached_property
    def arc_log_probs(self) -> torch.Tensor:
        """log P(h | d) [B, H(d), H(h)]: log-softmax over the valid heads 0..n_b, h != d.

        Invalid heads get log_zero (finite, exp() == 0). Rows that are no word (d = 0 and
        d > n_b) are all log_zero: defined and finite, but not distributions; their gradient
        is zero.
        """
        logits = self.arc_logits
        neg = log_zero(logits.dtype)
        return logits.masked_fill(~self.valid, neg).log_softmax(-1).masked_fill(~self.valid, neg)

    @cached_property
    def rel_log_probs(self) -> torch.Tensor:
        """log P(r | d, h) [B, H, H, R]: log-softmax over relations. At invalid (d, h) pairs the
        scores are replaced by zeros, so there it is uniform (-log R) and ignores garbage."""
        rel = self.rel_scores.masked_fill(~self.valid.unsqueeze(-1), 0.0)
        return rel.log_softmax(-1)

    def word_log_probs(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(arc [B, N, N+1], rel [B, N, N+1, R]): the rows of words 1..N, the form the KD
        adapter and the teacher cache use (the ROOT row carries no distribution)."""
        return self.arc_log_probs[:, 1:], self.rel_log_probs[:, 1:]

    # -- scoring gold trees ---------------------------------------------------------------------
    def _check_gold(self, heads: torch.Tensor, rels: torch.Tensor) -> None:
        B, H, _ = self.arc_scores.shape
        check_shape("heads", heads, (B, H))
        check_shape("rels", rels, (B, H))
        idx = torch.arange(H, device=heads.device)
        n = self.lengths.unsqueeze(1)
        bad = self.word_mask & ((heads < -1) | (heads > n) | (heads == idx))
        if bool(bad.any()):
            b, d = (int(i) for i in bad.nonzero()[0])
            raise ValueError(Errors.E020.format(head=int(heads[b, d]), word=d, b=b, n=int(self.lengths[b])))
        bad = self.word_mask & ((rels < -1) | (rels >= self.n_rels))
        if bool(bad.any()):
            b, d = (int(i) for i in bad.nonzero()[0])
            raise ValueError(Errors.E021.format(rel=int(rels[b, d]), word=d, b=b, n_rels=self.n_rels))

    def log_prob(self, heads: torch.Tensor, rels: torch.Tensor) -> torch.Tensor:
        """log P(heads, rels) [B] of (partial) gold annotations.

        heads, rels (LongTensor): [B, N+1]; -1 = unknown. Index 0 and positions past a
        sentence's length are ignored. A word with a known head adds log P(h* | d), plus
        log P(r* | d, h*) if its relation is known too; a relation without its head is ignored
        (its probability depends on the head).
        """
        heads = heads.to(device=self.arc_scores.device, dtype=torch.long)
        rels = rels.to(device=self.arc_scores.device, dtype=torch.long)
        self._check_gold(heads, rels)
        known = self.word_mask & (heads >= 0)  # [B, H]
        h = heads.masked_fill(~known, 0).unsqueeze(-1)  # [B, H, 1]
        arc = self.arc_log_probs.gather(2, h).squeeze(2)  # [B, H]
        rel_lp = self.rel_log_probs
        B, H, _, R = rel_lp.shape
        rel_at_head = rel_lp.gather(2, h.unsqueeze(-1).expand(B, H, 1, R)).squeeze(2)  # [B, H, R]
        rel_known = known & (rels >= 0)
        rel = rel_at_head.gather(2, rels.masked_fill(~rel_known, 0).unsqueeze(-1)).squeeze(2)  # [B, H]
        zero = arc.new_zeros(())
        return torch.where(known, arc, zero).sum(-1) + torch.where(rel_known, rel, zero).sum(-1)

    def loss(self, heads: torch.Tensor, rels: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood [B] (summed over words; divide by B for the sentence-level
        reduction of docs/algorithms.md §0). Differentiable in the scores."""
        return -self.log_prob(heads, rels)

    # -- decoding -------------------------------------------------------------------------------
    @cached_property
    def argmax(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """(heads [B, N+1], rels [B, N+1]) LongTensors, -1 at index 0 and past each length.

        Heads: the maximum spanning single-root tree under Σ_d log P(h_d | d) (MST even when the
        per-word argmax is already a tree: the results agree then). Rels: the best relation at
        the chosen head.
        """
        heads = mst(self.arc_log_probs.detach(), self.lengths)  # [B, H]
        B, H, _, R = self.rel_scores.shape
        h = heads.clamp(min=0)[:, :, None, None].expand(B, H, 1, R)
        # the raw scores at the chosen heads: same argmax as the log-probs, without normalising
        # all [B, H, H, R] of them (the bulk of a parser's prediction time)
        rels = self.rel_scores.detach().gather(2, h).squeeze(2).argmax(-1)  # [B, H]
        return heads, rels.masked_fill(heads < 0, -1)
