"""Linear-chain CRF as a distribution object over tag sequences.

One masked forward recursion serves the sum semiring (log-partition) and, through autograd,
every marginal the KD objectives need: unary [B, N, L], adjacent pairs [B, N-1, L, L], start
and end [B, L]. Viterbi is the same recursion in the max semiring with back-pointers.
Batched over sentences; loops run over positions only.
"""
from functools import cached_property
from typing import List, NamedTuple, Optional, Tuple

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
    Scores below log-zero (-inf included) count as log-zero, so log Z, marginals and gradients
    stay finite when a whole row or column is forbidden.
    Cost: O(B N L^2) time; O(B N L) memory, O(B N L^2) only when pair marginals are asked for.

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
        neg = log_zero(emissions.dtype)
        if mask is not None:
            transitions = transitions.masked_fill(~mask.transitions, neg)
            start = start.masked_fill(~mask.start, neg)
            end = end.masked_fill(~mask.end, neg)
        # -inf potentials become log-zero: a tag no path can reach (say, an all -inf transition
        # column) would otherwise give an all -inf logsumexp, whose gradient is NaN
        transitions, start, end = transitions.clamp_min(neg), start.clamp_min(neg), end.clamp_min(neg)
        self.lengths = lengths
        self.mask = torch.arange(N, device=emissions.device) < lengths.unsqueeze(1)  # [B, N]
        # Padded emissions must be finite: their (zero) gradients still pass through lse.
        self.emissions = emissions.clamp_min(neg).masked_fill(~self.mask.unsqueeze(-1), 0.0)
        self.transitions = transitions
        self.start = start
        self.end = end

    @property
    def n_tags(self) -> int:
        return self.emissions.shape[-1]

    def _differentiable(self) -> bool:
        return any(t.requires_grad for t in (self.emissions, self.transitions, self.start, self.end))

    def _last(self, alphas: torch.Tensor) -> torch.Tensor:
        """alphas [B, N, L] -> alpha at each sentence's last position [B, L]."""
        idx = (self.lengths - 1).clamp(min=0)
        return alphas[torch.arange(alphas.shape[0], device=alphas.device), idx]

    # -- forward algorithm ----------------------------------------------------------------------
    def _forward(self, with_pairs: bool) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """log Z [B], plus zero "probe" tensors whose gradients are the marginals: one added to
        the emissions (-> unary marginals [B, N, L]) and, if `with_pairs`, one added to each
        adjacent pair's score (-> pair marginals [B, N-1, L, L]).

        Positions past a sentence's end are computed but never read, so they get zero gradient.
        Per-step slices come from one `unbind` (indexing inside the loop would make autograd
        materialise a full-size zero gradient per step), and no [B, N-1, L, L] tensor exists
        unless pair marginals are asked for.
        """
        e = self.emissions
        B, N, L = e.shape
        if N == 0:
            return e.new_zeros(B), []
        probes = [torch.zeros_like(e, requires_grad=True)]
        if with_pairs and N > 1:
            probes.append(e.new_zeros(B, N - 1, L, L, requires_grad=True))
        steps = (e + probes[0]).unbind(1)
        pairs = probes[1].unbind(1) if len(probes) > 1 else None
        alpha = steps[0] + self.start  # [B, L]
        alphas = [alpha]
        for i, emission in enumerate(steps[1:]):
            scores = alpha.unsqueeze(2) + self.transitions  # [B, L(from), L(to)]
            if pairs is not None:
                scores = scores + pairs[i]
            alpha = torch.logsumexp(scores, dim=1) + emission
            alphas.append(alpha)
        final = torch.logsumexp(self._last(torch.stack(alphas, 1)) + self.end, dim=-1)
        return torch.where(self.lengths > 0, final, final.new_zeros(())), probes

    @cached_property
    def _recorded(self) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """One recorded forward shared by log_partition and the unary marginals."""
        with torch.enable_grad():
            return self._forward(with_pairs=False)

    @cached_property
    def log_partition(self) -> torch.Tensor:
        """log Z [B]; differentiable when the potentials require grad."""
        log_z, _ = self._recorded
        return log_z if self._differentiable() else log_z.detach()

    # -- marginals by autograd ----------------------------------------------------------------
    def _probe_gradient(self, log_z: torch.Tensor, probe: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            return torch.autograd.grad(log_z.sum(), probe, create_graph=self._differentiable())[0]

    @cached_property
    def marginals(self) -> torch.Tensor:
        """P(y_i = c) [B, N, L]; zero past each length. Differentiable when the potentials
        require grad (posterior KD backpropagates through a student's marginals)."""
        if self._differentiable():
            # the caller owns log_partition's graph and may already have freed it by backward()
            with torch.enable_grad():
                log_z, probes = self._forward(with_pairs=False)
        else:
            log_z, probes = self._recorded
        if not probes:
            return torch.zeros_like(self.emissions)
        return self._probe_gradient(log_z, probes[0])

    @cached_property
    def pair_marginals(self) -> torch.Tensor:
        """P(y_{i-1} = a, y_i = b) [B, N-1, L(a), L(b)] at index i-1; zero past each length.
        Asked for first, it also fills `marginals` from the same backward pass."""
        B, N, L = self.emissions.shape
        if N < 2:
            return self.emissions.new_zeros(B, max(N - 1, 0), L, L)
        with torch.enable_grad():
            log_z, probes = self._forward(with_pairs=True)
            unary, pairs = torch.autograd.grad(log_z.sum(), probes, create_graph=self._differentiable())
        self.__dict__.setdefault("marginals", unary)  # the same pass gives the unary marginals
        return pairs

    @property
    def start_marginals(self) -> torch.Tensor:
        """P(y_0 = c) [B, L]; zero for length-0 sequences."""
        B, N, L = self.emissions.shape
        return self.marginals[:, 0] if N else self.emissions.new_zeros(B, L)

    @property
    def end_marginals(self) -> torch.Tensor:
        """P(y_{n-1} = c) [B, L]; zero for length-0 sequences."""
        B, N, L = self.emissions.shape
        if not N:
            return self.emissions.new_zeros(B, L)
        return self._last(self.marginals) * (self.lengths > 0).unsqueeze(1)

    # -- Viterbi --------------------------------------------------------------------------------
    @cached_property
    def _viterbi(self) -> Tuple[torch.Tensor, torch.Tensor]:
        B, N, L = self.emissions.shape
        if N == 0:
            return self.emissions.new_zeros(B), self.lengths.new_full((B, 0), -1)
        steps = self.emissions.detach().unbind(1)
        transitions = self.transitions.detach()
        alpha = steps[0] + self.start.detach()
        alphas, pointers = [alpha], []
        for emission in steps[1:]:
            alpha, best_prev = (alpha.unsqueeze(2) + transitions).max(dim=1)  # [B, L] each
            alpha = alpha + emission
            alphas.append(alpha)
            pointers.append(best_prev)
        best_score, best_last = (self._last(torch.stack(alphas, 1)) + self.end.detach()).max(dim=-1)
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
        B, N, L = self.emissions.shape
        if N == 0:
            return self.emissions.new_zeros(B)
        tags = tags.masked_fill(~self.mask, 0)
        emitted = self.emissions.gather(2, tags.unsqueeze(2)).squeeze(2).sum(1)  # padding is zero
        moved = (self.transitions[tags[:, :-1], tags[:, 1:]] * self.mask[:, 1:]).sum(1)
        last_tag = tags.gather(1, (self.lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)
        total = emitted + moved + self.start[tags[:, 0]] + self.end[last_tag]
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
