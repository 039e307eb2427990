"""Biaffine span NER (Yu et al. 2020) as a distribution over flat entity structures.

The teacher scores every span independently; structural KD into a BIOES tagger (case 4) needs
the per-word BIOES marginals of the distribution it induces over *flat* structures, i.e. sets of
non-overlapping labelled spans (docs/algorithms.md §6.2). A semi-Markov forward/backward pass without
transitions gives them in O(B N^2 R) work, in log space and with no subtraction anywhere
(docs/algorithms.md §6.4), so nothing cancels catastrophically and nothing needs clamping.
`bioes_log_marginals_reference` is the same recursion written as plain loops over one sentence:
the baseline of `benchmarks/span_dp.py` and a second implementation for the tests.
"""
import math
from functools import cached_property
from typing import List, Optional, Sequence, Tuple

import torch

from ..errors import Errors
from ._util import check_float, check_shape, log_zero

Span = Tuple[int, int, int]  # (start, end inclusive, class 1..R)


class SpanNER:
    """p(Y) ∝ Π_{(i,j,r) ∈ Y} exp(φ(i,j,r)), φ(i,j,r) = scores[i,j,1+r] - scores[i,j,0], over flat Y.

    Y ranges over sets of non-overlapping labelled spans (the empty set has weight 1); words
    outside every span of Y are "O". Only the odds against "no entity" matter: the product of
    the no-entity probabilities of all spans is a constant that cancels.

    scores (Tensor): [B, N, N, R+1]; scores[b, i, j, c] scores words i..j (inclusive, 0-based)
        having class c; class 0 = no entity, 1..R = entity types. Cells with j < i or j >= n_b
        are ignored (they may hold anything finite or not). An entity class may be -inf on
        a valid span (that type is impossible there); no entity at -inf is an error (E331).
    lengths (LongTensor): [B], each in [0, N].
    Cost: O(B N^2 R) time and memory; N sequential steps each way.

    >>> ner = SpanNER(torch.zeros(1, 2, 2, 2), torch.tensor([2]))
    >>> round(float(ner.log_partition[0].exp()))     # {}, {0}, {1}, {0}{1}, {0-1}
    5
    """

    def __init__(self, scores: torch.Tensor, lengths: torch.Tensor):
        check_float(scores)
        if scores.dim() != 4 or scores.shape[1] != scores.shape[2] or scores.shape[3] < 2:
            raise ValueError(Errors.E030.format(shape=tuple(scores.shape)))
        B, N = scores.shape[:2]
        check_shape("lengths", lengths, (B,))
        lengths = lengths.to(device=scores.device, dtype=torch.long)
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
            raise ValueError(Errors.E003.format(max_len=N, lengths=lengths.tolist()))
        self.scores = scores
        self.lengths = lengths
        pos = torch.arange(N, device=scores.device)
        self.mask = pos < lengths.unsqueeze(1)  # [B, N]
        # [B, N(i), N(j)]: i <= j < n_b
        self.span_mask = (pos.unsqueeze(1) <= pos) & self.mask.unsqueeze(1)

    @property
    def n_types(self) -> int:
        return self.scores.shape[-1] - 1

    @cached_property
    def span_log_potentials(self) -> torch.Tensor:
        """φ [B, N, N, R] on valid spans, log_zero elsewhere. Invalid cells are zeroed *before*
        the subtraction so that garbage there (inf, nan) reaches neither values nor gradients."""
        valid = self.span_mask.unsqueeze(-1)
        s = self.scores.masked_fill(~valid, 0.0)
        phi = s[..., 1:] - s[..., :1]
        infinite = torch.isposinf(phi) & valid
        if bool(infinite.any()):  # infinite odds of an entity: no finite distribution
            b, i, j, _ = (int(x) for x in infinite.nonzero()[0])
            raise ValueError(Errors.E331.format(b=b, i=i, j=j))
        # an entity class at -inf forbids it; log-zero keeps an all-forbidden span's lse finite
        return phi.clamp_min(log_zero(s.dtype)).masked_fill(~valid, log_zero(s.dtype))

    # -- forward / backward ---------------------------------------------------------------------
    @cached_property
    def _span_totals(self) -> torch.Tensor:
        """A [B, N(i), N(j)] = lse_r φ[i, j, r]: span i..j is an entity of any type."""
        return torch.logsumexp(self.span_log_potentials, dim=-1)

    @cached_property
    def _alpha(self) -> torch.Tensor:
        """alpha [B, N+1]: log weight of the structures over words [0, m). Padded words can only
        be O with weight 1, so alpha[N] = log Z for every sentence, with no gather by length."""
        phi = self.span_log_potentials
        B, N = phi.shape[:2]
        if N == 0:  # log Z = 0, still attached to the graph so that backward() works
            return phi.sum((1, 2, 3)).unsqueeze(1)
        ends = self._span_totals.unbind(2)  # N x [B, N(i)]: A[:, i, j] for each j
        alpha = phi.new_zeros(B, 1)  # [B, m]
        for m in range(1, N + 1):
            # the last word m-1 is O, or ends a span i..m-1 opened after the prefix [0, i)
            enter = torch.logsumexp(alpha + ends[m - 1][:, :m], dim=1)  # [B]
            alpha = torch.cat([alpha, torch.logaddexp(alpha[:, -1], enter).unsqueeze(1)], 1)
        return alpha

    @cached_property
    def _beta(self) -> torch.Tensor:
        """beta [B, N+1]: log weight of the structures over words [m, N); beta[N] = 0."""
        phi = self.span_log_potentials
        B, N = phi.shape[:2]
        starts = self._span_totals.unbind(1)  # N x [B, N(j)]: A[:, i, j] for each i
        beta = phi.new_zeros(B, 1)  # [B, N+1-m], beta[m+1..N] before the step
        for m in range(N - 1, -1, -1):
            # word m is O, or opens a span m..j followed by the suffix [j+1, N)
            enter = torch.logsumexp(starts[m][:, m:] + beta, dim=1)  # [B]
            beta = torch.cat([torch.logaddexp(beta[:, 0], enter).unsqueeze(1), beta], 1)
        return beta

    @cached_property
    def log_partition(self) -> torch.Tensor:
        """log Z [B]; 0 for empty sentences. Differentiable: d log Z / d φ = span marginals."""
        return self._alpha[:, -1]

    @cached_property
    def span_marginals(self) -> torch.Tensor:
        """P((i, j, r) ∈ Y) [B, N, N, R], zero on invalid spans; closed form, no autograd."""
        alpha, beta = self._alpha, self._beta
        log_mu = (alpha[:, :-1, None, None] + self.span_log_potentials + beta[:, None, 1:, None]
                  - self.log_partition[:, None, None, None])
        return log_mu.exp().masked_fill(~self.span_mask.unsqueeze(-1), 0.0)

    @cached_property
    def bioes_log_marginals(self) -> torch.Tensor:
        """log P(tag at word m) [B, N, 1+4R]: column 0 = O, then B, I, E, S of type r at
        1+4r .. 4+4r (names: `bioes_tags`). Padded words are O with probability 1."""
        phi = self.span_log_potentials
        B, N, _, R = phi.shape
        neg = log_zero(phi.dtype)
        padded = phi.new_full((1 + 4 * R,), neg)
        padded[0] = 0.0
        if N == 0:
            return phi.new_zeros(B, 0, 1 + 4 * R)
        log_z = self.log_partition[:, None]  # [B, 1]
        a = self._alpha[:, :-1]  # alpha[m]   [B, N]
        b1 = self._beta[:, 1:]  # beta[m+1]  [B, N]
        # G[i, m, r] = lse_{j>m} φ[i, j, r] + beta[j+1]: a reverse logcumsumexp, shifted by one
        later = (phi + b1[:, None, :, None]).flip(2).logcumsumexp(2).flip(2)  # lse_{j>=m}
        G = torch.cat([later[:, :, 1:], phi.new_full((B, N, 1, R), neg)], 2)  # [B, N(i), N(m), R]
        before = torch.ones(N, N, dtype=torch.bool, device=phi.device).triu(1)  # [N(i), N(m)]: i < m
        before = before[None, :, :, None]
        a4 = a[:, :, None, None]  # alpha[i] [B, N(i), 1, 1]
        o = a + b1 - log_z
        s = a.unsqueeze(-1) + phi.diagonal(dim1=1, dim2=2).transpose(1, 2) + b1.unsqueeze(-1)
        begin = a.unsqueeze(-1) + G.diagonal(dim1=1, dim2=2).transpose(1, 2)
        end = b1.unsqueeze(-1) + torch.where(before, a4 + phi, neg).logsumexp(1)
        inside = torch.where(before, a4 + G, neg).logsumexp(1)  # [B, N(m), R]
        tags = torch.stack([begin, inside, end, s], -1) - log_z[:, :, None, None]  # [B, N, R, 4]
        out = torch.cat([o.unsqueeze(-1), tags.reshape(B, N, 4 * R)], -1)
        return torch.where(self.mask.unsqueeze(-1), out, padded)

    @staticmethod
    def bioes_tags(labels: Sequence[str]) -> List[str]:
        """Column names of `bioes_log_marginals` for entity labels in class order 1..R."""
        labels = list(labels)
        if len(set(labels)) != len(labels) or not all(isinstance(x, str) and x for x in labels):
            raise ValueError(Errors.E036.format(labels=labels))
        return ["O"] + [f"{p}-{label}" for label in labels for p in "BIES"]

    # -- teacher training and prediction ---------------------------------------------------------
    def loss(self, gold_spans: Sequence[Sequence[Span]], max_width: Optional[int] = None) -> torch.Tensor:
        """Softmax cross-entropy over the R+1 classes, summed over every valid span [B]; spans
        not in gold are class 0. `max_width` (None = no limit) leaves spans wider than that many
        words out of the loss, as span models usually do to save time on long sentences."""
        B, N = self.scores.shape[:2]
        if len(gold_spans) != B:
            raise ValueError(Errors.E031.format(n_gold=len(gold_spans), B=B))
        valid = self.span_mask
        if max_width is not None:
            if isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 1:
                raise ValueError(Errors.E034.format(value=max_width))
            pos = torch.arange(N, device=valid.device)
            valid = valid & (pos - pos.unsqueeze(1) < max_width)
        target = self._gold_targets(gold_spans, max_width)  # [B, N, N]
        log_p = torch.log_softmax(self.scores.masked_fill(~valid.unsqueeze(-1), 0.0), dim=-1)
        nll = -log_p.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # [B, N, N]
        return (nll * valid).sum((1, 2))

    def _gold_targets(self, gold_spans: Sequence[Sequence[Span]], max_width: Optional[int]) -> torch.Tensor:
        """Gold class of every span [B, N, N] (long), 0 = no entity; checks each triple."""
        B, N = self.scores.shape[:2]
        R = self.n_types
        seen = {}
        for b, (spans, n) in enumerate(zip(gold_spans, self.lengths.tolist())):
            for span in spans:
                start, end, label = (int(x) for x in span) if len(span) == 3 else (-1, -1, -1)
                if not (0 <= start <= end < n and 1 <= label <= R):
                    raise ValueError(Errors.E032.format(span=tuple(span), b=b, n=n, R=R))
                if max_width is not None and end - start + 1 > max_width:
                    raise ValueError(Errors.E035.format(span=tuple(span), b=b, width=end - start + 1,
                                                        max_width=max_width))
                first = seen.setdefault((b, start, end), label)
                if first != label:
                    raise ValueError(Errors.E033.format(start=start, end=end, b=b, first=first, second=label))
        target = torch.zeros(B, N, N, dtype=torch.long)
        if seen:
            idx = torch.tensor(list(seen.keys()), dtype=torch.long)
            target[idx[:, 0], idx[:, 1], idx[:, 2]] = torch.tensor(list(seen.values()), dtype=torch.long)
        return target.to(self.scores.device)

    def decode(self) -> List[List[Span]]:
        """Flat decoding (Yu et al. 2020; docs/algorithms.md §6.1): the argmax class of every span,
        non-null ones taken greedily by that class's raw score, best first, each kept only if it
        shares no word with a kept span (nested spans clash too). Returns (start, end inclusive,
        class 1..R) per sentence, sorted by start. Equal scores go to the earlier start, then
        the earlier end."""
        with torch.no_grad():
            best, label = self.scores.detach().max(-1)  # [B, N, N] each
            keep = self.span_mask & (label > 0)
            b_idx, i_idx, j_idx = keep.nonzero(as_tuple=True)  # row-major: by (b, start, end)
            order = torch.sort(best[keep], descending=True, stable=True).indices
            cand = torch.stack([b_idx, i_idx, j_idx, label[keep]], 1)[order].tolist()
        taken = [bytearray(n) for n in self.lengths.tolist()]  # 1 = word already in a kept span
        out: List[List[Span]] = [[] for _ in taken]
        for b, i, j, c in cand:
            if not any(taken[b][i:j + 1]):
                taken[b][i:j + 1] = b"\x01" * (j - i + 1)
                out[b].append((i, j, c))
        return [sorted(spans) for spans in out]


def _logaddexp(x: float, y: float) -> float:
    if x < y:
        x, y = y, x
    if y == -math.inf:
        return x
    return x + math.log1p(math.exp(y - x))


def bioes_log_marginals_reference(phi: torch.Tensor, n: int) -> torch.Tensor:
    """The recursion of `SpanNER.bioes_log_marginals` for one sentence, as plain Python loops
    over positions, spans and types (log space, float scalars): slow, but obviously the math.

    phi (Tensor): [>= n, >= n, R] span log-potentials φ[i, j, r] (only i <= j < n are read).
    RETURNS (Tensor): [n, 1+4R] log marginals in phi's dtype, log_zero for impossible tags.
    """
    R = phi.shape[-1]
    p = phi[:n, :n].tolist()  # p[i][j][r]
    neg = -math.inf
    alpha = [0.0] + [neg] * n  # alpha[m]: words [0, m)
    for m in range(1, n + 1):
        total = alpha[m - 1]
        for i in range(m):
            for r in range(R):
                total = _logaddexp(total, alpha[i] + p[i][m - 1][r])
        alpha[m] = total
    beta = [neg] * n + [0.0]  # beta[m]: words [m, n)
    for m in range(n - 1, -1, -1):
        total = beta[m + 1]
        for j in range(m, n):
            for r in range(R):
                total = _logaddexp(total, p[m][j][r] + beta[j + 1])
        beta[m] = total
    log_z = alpha[n]
    # G[i][m][r] = lse_{j>m} p[i][j][r] + beta[j+1], for i <= m
    G = [[[neg] * R for _ in range(n)] for _ in range(n)]
    for i in range(n):
        for m in range(n - 2, i - 1, -1):
            for r in range(R):
                G[i][m][r] = _logaddexp(G[i][m + 1][r], p[i][m + 1][r] + beta[m + 2])
    rows = []
    for m in range(n):
        row = [alpha[m] + beta[m + 1] - log_z]
        for r in range(R):
            end, inside = neg, neg
            for i in range(m):
                end = _logaddexp(end, alpha[i] + p[i][m][r])
                inside = _logaddexp(inside, alpha[i] + G[i][m][r])
            row += [alpha[m] + G[m][m][r] - log_z, inside - log_z, beta[m + 1] + end - log_z,
                    alpha[m] + p[m][m][r] + beta[m + 1] - log_z]
        rows.append(row)
    out = torch.tensor(rows, dtype=phi.dtype).reshape(n, 1 + 4 * R)
    return out.masked_fill(out == neg, log_zero(phi.dtype))  # impossible tags: -inf -> log_zero
