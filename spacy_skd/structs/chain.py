"""Linear-chain CRF as a distribution object over tag sequences.

One masked forward recursion serves the sum semiring (log-partition) and, through autograd,
every marginal the KD objectives need: unary [B, N, L], adjacent pairs [B, N-1, L, L], start
and end [B, L]. Viterbi is the same recursion in the max semiring with back-pointers.
Batched over sentences; loops run over positions only.
"""
from functools import cached_property
from typing import NamedTuple, Optional, Tuple

import torch

from ..errors import Errors
from ._util import check_float, check_shape, log_zero


class TransitionMask(NamedTuple):
    """Which tag sequences are allowed, e.g. by a tag scheme (no O -> I-PER in BIOES).

    start (BoolTensor): [L], tag may begin a sequence.
    transitions (BoolTensor): [L, L]; transitions[a, b]: tag a may be followed by tag b.
    end (BoolTensor): [L], tag may end a sequence.
    """

    start: torch.Tensor
    transitions: torch.Tensor
    end: torch.Tensor


class LinearChainCRF:
    """p(y) ∝ exp(start[y_0] + Σ_i emissions[i, y_i] + Σ_{i≥1} transitions[y_{i-1}, y_i] + end[y_{n-1}]).

    emissions (Tensor): [B, N, L] log-potentials; positions >= lengths[b] are ignored.
    transitions (Tensor): [L, L]; transitions[a, b] scores tag a followed by tag b.
    lengths (LongTensor): [B], each in [0, N]. A length-0 sequence has one (empty) path, log Z = 0.
    start, end (Tensor): [L] scores of the first and last tag; zeros when None.
    mask (TransitionMask): forbidden starts/transitions/ends get log-zero scores.
    Cost: O(B N L^2) time, O(B N L^2) memory for the pair potentials.

    >>> crf = LinearChainCRF(torch.zeros(1, 3, 2), torch.zeros(2, 2), torch.tensor([3]))
    >>> round(float(crf.log_partition[0].exp()))       # eight equal paths
    8
    """

    def __init__(
        self,
        emissions: torch.Tensor,
        transitions: torch.Tensor,
        lengths: torch.Tensor,
        start: Optional[torch.Tensor] = None,
        end: Optional[torch.Tensor] = None,
        mask: Optional[TransitionMask] = None,
    ):
        check_float(emissions)
        if emissions.dim() != 3:
            raise ValueError(Errors.E002.format(name="emissions", expected="[B, N, L]", shape=tuple(emissions.shape)))
        B, N, L = emissions.shape
        check_shape("transitions", transitions, (L, L))
        check_shape("lengths", lengths, (B,))
        lengths = lengths.to(device=emissions.device, dtype=torch.long)
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
            raise ValueError(Errors.E003.format(max_len=N, lengths=lengths.tolist()))
        zeros = emissions.new_zeros(L)
        start = zeros if start is None else start
        end = zeros if end is None else end
        check_shape("start", start, (L,))
        check_shape("end", end, (L,))
        if mask is not None:
            neg = log_zero(emissions.dtype)
            transitions = transitions.masked_fill(~mask.transitions, neg)
            start = start.masked_fill(~mask.start, neg)
            end = end.masked_fill(~mask.end, neg)
        self.lengths = lengths
        self.mask = torch.arange(N, device=emissions.device) < lengths.unsqueeze(1)  # [B, N]
        # Padded emissions must be finite: their (zero) gradients still pass through lse.
        self.emissions = emissions.masked_fill(~self.mask.unsqueeze(-1), 0.0)
        self.transitions = transitions
        self.start = start
        self.end = end

    @property
    def n_tags(self) -> int:
        return self.emissions.shape[-1]

    # -- factor graph in "parts" form -------------------------------------------------------
    def _parts(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-potentials of every substructure: start [B, L] (start + first emission),
        pairs [B, N-1, L(from), L(to)] (transition + emission of the 'to' tag), end [B, L]."""
        e = self.emissions
        theta_start = e[:, 0] + self.start if e.shape[1] else e.new_zeros(e.shape[0], e.shape[2])
        theta_pair = self.transitions + e[:, 1:].unsqueeze(2)
        theta_end = self.end.expand(e.shape[0], -1)
        return theta_start, theta_pair, theta_end

    def _last(self, alphas: torch.Tensor) -> torch.Tensor:
        """alphas [B, N, L] -> alpha at each sentence's last position [B, L]."""
        idx = (self.lengths - 1).clamp(min=0)
        return alphas[torch.arange(alphas.shape[0], device=alphas.device), idx]

    def _log_partition(self, theta_start, theta_pair, theta_end) -> torch.Tensor:
        """Forward algorithm. Positions past a sentence's end are computed but never read,
        so they get zero gradient (no per-step masking needed)."""
        B, N, L = self.emissions.shape
        if N == 0:
            return self.emissions.new_zeros(B)
        alpha = theta_start
        alphas = [alpha]
        for i in range(N - 1):
            alpha = torch.logsumexp(alpha.unsqueeze(2) + theta_pair[:, i], dim=1)  # [B, L]
            alphas.append(alpha)
        final = torch.logsumexp(self._last(torch.stack(alphas, 1)) + theta_end, dim=-1)
        return torch.where(self.lengths > 0, final, final.new_zeros(()))

    @cached_property
    def log_partition(self) -> torch.Tensor:
        """log Z [B]."""
        return self._log_partition(*self._parts())

    # -- marginals by autograd ----------------------------------------------------------------
    @cached_property
    def _part_marginals(self) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        parts = self._parts()
        differentiable = any(p.requires_grad for p in parts)
        with torch.enable_grad():
            # Leaves for parts outside the caller's graph; detach() so a caller's tensor keeps
            # its requires_grad flag.
            parts = tuple(p if p.requires_grad else p.detach().requires_grad_() for p in parts)
            log_z = self._log_partition(*parts)
            if not log_z.requires_grad:  # N == 0: nothing to differentiate
                return tuple(torch.zeros_like(p) for p in parts)
            grads = torch.autograd.grad(log_z.sum(), parts, create_graph=differentiable, allow_unused=True)
        return tuple(torch.zeros_like(p) if g is None else g for p, g in zip(parts, grads))

    @property
    def start_marginals(self) -> torch.Tensor:
        """P(y_0 = c) [B, L]; zero for length-0 sequences."""
        return self._part_marginals[0]

    @property
    def pair_marginals(self) -> torch.Tensor:
        """P(y_{i-1} = a, y_i = b) [B, N-1, L(a), L(b)] at index i-1; zero past each length."""
        return self._part_marginals[1]

    @property
    def end_marginals(self) -> torch.Tensor:
        """P(y_{n-1} = c) [B, L]; zero for length-0 sequences."""
        return self._part_marginals[2]

    @cached_property
    def marginals(self) -> torch.Tensor:
        """P(y_i = c) [B, N, L]; zero past each length."""
        first = self.start_marginals.unsqueeze(1)
        return torch.cat([first, self.pair_marginals.sum(dim=2)], dim=1)[:, : self.emissions.shape[1]]

    # -- Viterbi --------------------------------------------------------------------------------
    @cached_property
    def _viterbi(self) -> Tuple[torch.Tensor, torch.Tensor]:
        theta_start, theta_pair, theta_end = (p.detach() for p in self._parts())
        B, N, L = self.emissions.shape
        if N == 0:
            return self.emissions.new_zeros(B), self.lengths.new_full((B, 0), -1)
        alpha = theta_start
        alphas, pointers = [alpha], []
        for i in range(N - 1):
            alpha, best_prev = (alpha.unsqueeze(2) + theta_pair[:, i]).max(dim=1)  # [B, L] each
            alphas.append(alpha)
            pointers.append(best_prev)
        best_score, best_last = (self._last(torch.stack(alphas, 1)) + theta_end).max(dim=-1)
        tags = self.lengths.new_empty(B, N)
        last = self.lengths - 1
        cur = best_last
        for i in range(N - 1, -1, -1):
            cur = torch.where(last <= i, best_last, cur)  # rows not started yet sit at their end tag
            tags[:, i] = cur
            if i:
                cur = pointers[i - 1].gather(1, cur.unsqueeze(1)).squeeze(1)
        tags = tags.masked_fill(~self.mask, -1)
        best_score = torch.where(self.lengths > 0, best_score, best_score.new_zeros(()))
        return best_score, tags

    @property
    def max(self) -> torch.Tensor:
        """Score of the best sequence [B]."""
        return self._viterbi[0]

    @property
    def argmax(self) -> torch.Tensor:
        """Best tag sequence [B, N] (LongTensor), -1 past each length."""
        return self._viterbi[1]

    # -- scoring given sequences ---------------------------------------------------------------
    def score(self, tags: torch.Tensor) -> torch.Tensor:
        """Unnormalised log-score of tag sequences [B, N] (entries past each length ignored) -> [B]."""
        theta_start, theta_pair, theta_end = self._parts()
        B, N, L = self.emissions.shape
        if N == 0:
            return self.emissions.new_zeros(B)
        tags = tags.masked_fill(~self.mask, 0)
        total = theta_start.gather(1, tags[:, :1]).squeeze(1)
        if N > 1:
            prev, nxt = tags[:, :-1], tags[:, 1:]
            pair = theta_pair.gather(2, prev[:, :, None, None].expand(-1, -1, 1, L)).squeeze(2)  # [B, N-1, L]
            pair = pair.gather(2, nxt.unsqueeze(2)).squeeze(2)  # [B, N-1]
            total = total + (pair * self.mask[:, 1:]).sum(1)
        last_tag = tags.gather(1, (self.lengths - 1).clamp(min=0).unsqueeze(1))
        total = total + theta_end.gather(1, last_tag).squeeze(1)
        return torch.where(self.lengths > 0, total, total.new_zeros(()))

    def log_prob(self, tags: torch.Tensor) -> torch.Tensor:
        """log p(tags) [B]."""
        return self.score(tags) - self.log_partition

    def restrict(self, allowed: torch.Tensor) -> "LinearChainCRF":
        """The same chain with only the tags in `allowed` [B, N, L] (bool) possible at each
        position. log Z of the restriction minus log Z is the log-probability of a *partial*
        annotation: a one-hot row fixes a tag, an all-True row leaves it open (missing gold)."""
        check_shape("allowed", allowed, self.emissions.shape)
        emissions = self.emissions.masked_fill(~allowed, log_zero(self.emissions.dtype))
        crf = LinearChainCRF.__new__(LinearChainCRF)
        crf.__dict__.update(lengths=self.lengths, mask=self.mask, transitions=self.transitions,
                            start=self.start, end=self.end)
        crf.emissions = emissions.masked_fill(~self.mask.unsqueeze(-1), 0.0)
        return crf
