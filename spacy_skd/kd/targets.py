"""Teacher side of KD: a teacher's outputs as a distribution in the student's substructure space.

A CRF student factorises over adjacent tag pairs plus a start and an end tag, a MaxEnt student
over single tags. `KDTargets` holds the teacher's probabilities for all of these slots for one
padded batch; `crf_targets` and `maxent_targets` build it from teacher potentials, at a
temperature T applied in one of two ways (docs/algorithms.md §0):

- global: P^T(y) ∝ exp(Score(y) / T). Every slot marginal comes from this one distribution.
- local: per slot u, q(u) ∝ μ(u)^(1/T) with μ the T = 1 marginal (what StructuralKD does).
  Adjacent locally tempered pair marginals disagree on their shared tag, so they are not the
  marginals of any distribution; a CRF student fitted to them has a loss unbounded below
  (docs/algorithms.md §2.5). For unaries alone (MaxEnt students) each slot is independent and
  local tempering is safe.

Everything is computed without gradients, in float64, and returned in `dtype`.
"""
from dataclasses import dataclass, fields, replace
from typing import Dict, List, Optional, Sequence

import numpy

import torch

from ..errors import Errors
from ..structs._util import check_shape
from ..structs.chain import LinearChainCRF, TransitionMask

MODES = ("global", "local")


@dataclass
class KDTargets:
    """Teacher distribution in the student's substructure space for one padded batch.

    lengths (LongTensor): [B] sentence lengths.
    unary (Tensor): [B, N, L] P_t(y_i = c); zero past each length.
    pairs (Optional[Tensor]): [B, N-1, L, L], index i-1 holds P_t(y_{i-1} = a, y_i = b) (CRF
        teacher); zero past each length. None: the teacher is factorised (a product of unaries).
    pair_counts (Optional[Tensor]): [B, L, L] Σ_i P_t(y_{i-1} = a, y_i = b), the expected
        transition counts: all a CRF student with position-independent transitions needs of the
        pairs (exact for consistent targets, O(L^2) per sentence instead of O(N L^2), so cheap
        to cache). Used when `pairs` is None; both None means a factorised teacher.
    start (Optional[Tensor]): [B, L] P_t(y_0); None means unary[:, 0].
    end (Optional[Tensor]): [B, L] P_t(y_{n-1}); None means the unary at the last position.
    top1 (Optional[LongTensor]): [B, N] the teacher's best sequence at T = 1, -1 past each
        length (pseudo-labels).
    lost (Optional[Tensor]): [B, N] parser teachers: the teacher mass per word (at T = 1) that no
        student label can carry, zero past each length; kept with the targets so that a run on
        stored targets still reports it. No loss reads it.
    plogp (Optional[Tensor]): [B] Σ_i Σ_c unary log unary per sentence (the negated entropy of
        the unaries), when it came cheaply (stored parser targets: from their values on the label
        support, a fraction of the padded [B, N, L]); `token_kl_loss` then skips a dense xlogy.
        Not stored.
    temperature (float): the T the targets were tempered with.
    mode (str): "global" or "local", how T was applied (see the module docstring).
    """

    lengths: torch.Tensor
    unary: torch.Tensor
    pairs: Optional[torch.Tensor] = None
    pair_counts: Optional[torch.Tensor] = None
    start: Optional[torch.Tensor] = None
    end: Optional[torch.Tensor] = None
    top1: Optional[torch.Tensor] = None
    lost: Optional[torch.Tensor] = None
    plogp: Optional[torch.Tensor] = None
    temperature: float = 1.0
    mode: str = "global"

    def __post_init__(self):
        if self.unary.dim() != 3:
            raise ValueError(Errors.E155.format(field="unary", shape=tuple(self.unary.shape), unary=tuple(self.unary.shape),
                                                expected="[B, N, L]"))
        B, N, L = self.unary.shape
        expected = {"lengths": (B,), "pairs": (B, max(N - 1, 0), L, L), "pair_counts": (B, L, L), "start": (B, L),
                    "end": (B, L), "top1": (B, N), "lost": (B, N),
                    "plogp": (B,)}
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(Errors.E155.format(field=name, shape=tuple(value.shape), unary=(B, N, L), expected=shape))
        if self.mode not in MODES:
            raise ValueError(Errors.E151.format(value=self.mode, options=", ".join(MODES)))

    @property
    def consistent(self) -> bool:
        """Whether the targets are the marginals of one distribution over sequences, so that a
        CRF student's structural loss is a true cross-entropy (>= 0). False only for locally
        tempered pair marginals with T != 1."""
        return self.pairs is None or self.mode == "global" or self.temperature == 1.0

    @property
    def valid(self) -> torch.Tensor:
        """[B, N] bool, position i < length."""
        N = self.unary.shape[1]
        return torch.arange(N, device=self.unary.device) < self.lengths.unsqueeze(1)

    def start_probs(self) -> torch.Tensor:
        """P_t(y_0) [B, L]: `start`, or unary[:, 0] (zero for length-0 sentences)."""
        if self.start is not None:
            return self.start
        B, N, L = self.unary.shape
        return self.unary[:, 0] if N else self.unary.new_zeros(B, L)

    def end_probs(self) -> torch.Tensor:
        """P_t(y_{n-1}) [B, L]: `end`, or the unary at each last position (zero for length 0)."""
        if self.end is not None:
            return self.end
        B, N, L = self.unary.shape
        if not N:
            return self.unary.new_zeros(B, L)
        last = (self.lengths - 1).clamp(min=0)
        rows = self.unary[torch.arange(B, device=self.unary.device), last]  # [B, L]
        return rows * (self.lengths > 0).unsqueeze(1)

    def to(self, device) -> "KDTargets":
        """The same targets on `device`."""
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, torch.Tensor):
                moved[name] = value.to(device)
        return KDTargets(**moved)

    def pad_to(self, N: int) -> "KDTargets":
        """Pad (zeros; -1 for top1) or truncate the token axis to width N >= the longest length."""
        B, width, L = self.unary.shape
        max_len = int(self.lengths.max()) if B else 0
        if N < max_len:
            raise ValueError(Errors.E162.format(width=N, max_len=max_len))
        if N == width:
            return self
        return replace(
            self,
            unary=_fit(self.unary, 1, N, 0),
            pairs=None if self.pairs is None else _fit(self.pairs, 1, max(N - 1, 0), 0),
            top1=None if self.top1 is None else _fit(self.top1, 1, N, -1),
            lost=None if self.lost is None else _fit(self.lost, 1, N, 0),
        )

    @staticmethod
    def stack(items: Sequence["KDTargets"]) -> "KDTargets":
        """Concatenate targets (e.g. one cached B = 1 item per sentence, of different widths) into
        one batch padded to the widest. All items must share labels, temperature, mode, and
        whether they carry pairs and top1; missing start/end are filled from the unaries."""
        if not items:
            raise ValueError(Errors.E160)
        first = items[0]
        for i, item in enumerate(items[1:], 1):
            checks = {
                "labels": (item.unary.shape[-1], first.unary.shape[-1]),
                "temperature": (item.temperature, first.temperature),
                "mode": (item.mode, first.mode),
                "pairs is None": (item.pairs is None, first.pairs is None),
                "pair_counts is None": (item.pair_counts is None, first.pair_counts is None),
                "top1 is None": (item.top1 is None, first.top1 is None),
                "lost is None": (item.lost is None, first.lost is None),
            }
            for field, (value, expected) in checks.items():
                if value != expected:
                    raise ValueError(Errors.E161.format(i=i, field=field, value=value, first=expected))
        N = max(item.unary.shape[1] for item in items)
        padded = [item.pad_to(N) for item in items]
        any_start = any(item.start is not None for item in items)
        any_end = any(item.end is not None for item in items)
        return KDTargets(
            lengths=torch.cat([t.lengths for t in padded]),
            unary=torch.cat([t.unary for t in padded]),
            pairs=None if first.pairs is None else torch.cat([t.pairs for t in padded]),
            pair_counts=None if first.pair_counts is None else torch.cat([t.pair_counts for t in padded]),
            start=torch.cat([t.start_probs() for t in padded]) if any_start else None,
            end=torch.cat([t.end_probs() for t in padded]) if any_end else None,
            top1=None if first.top1 is None else torch.cat([t.top1 for t in padded]),
            lost=None if first.lost is None else torch.cat([t.lost for t in padded]),
            plogp=torch.cat([t.plogp for t in padded]) if all(t.plogp is not None for t in padded) else None,
            temperature=first.temperature,
            mode=first.mode,
        )

    def split(self) -> List["KDTargets"]:
        """One B = 1 item per sentence, trimmed to its length (the inverse of `stack`)."""
        items = []
        for b, n in enumerate(self.lengths.tolist()):
            rows = slice(b, b + 1)
            items.append(replace(
                self,
                lengths=self.lengths[rows],
                unary=self.unary[rows, :n],
                pairs=None if self.pairs is None else self.pairs[rows, : max(n - 1, 0)],
                pair_counts=None if self.pair_counts is None else self.pair_counts[rows],
                start=None if self.start is None else self.start[rows],
                end=None if self.end is None else self.end[rows],
                top1=None if self.top1 is None else self.top1[rows, :n],
                lost=None if self.lost is None else self.lost[rows, :n],
                plogp=None if self.plogp is None else self.plogp[rows],
            ))
        return items


    def blank(self, n: int) -> "KDTargets":
        """A B = 1 item of n tokens with this item's fields, no mass and no Top-1 (-1): the
        stand-in for a sentence the teacher never saw, whose KD term the student masks
        (`KDBatch.taught`)."""
        L = self.unary.shape[-1]
        zeros = self.unary.new_zeros
        return replace(
            self,
            lengths=self.lengths.new_tensor([n]),
            unary=zeros(1, n, L),
            pairs=None if self.pairs is None else zeros(1, max(n - 1, 0), L, L),
            pair_counts=None if self.pair_counts is None else zeros(1, L, L),
            start=None if self.start is None else zeros(1, L),
            end=None if self.end is None else zeros(1, L),
            top1=None if self.top1 is None else self.top1.new_full((1, n), -1),
            lost=None if self.lost is None else zeros(1, n),
            plogp=None if self.plogp is None else zeros(1),
        )

    def to_arrays(self) -> Dict[str, numpy.ndarray]:
        """One sentence's targets (B = 1, trimmed to its length) as numpy arrays for a cache."""
        if self.unary.shape[0] != 1:
            raise ValueError(Errors.E164.format(B=self.unary.shape[0]))
        arrays = {}
        for name in _ARRAY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                value = value[0].detach().cpu()
                arrays[name] = value.numpy() if name == "top1" else value.float().numpy()
        return arrays

    @staticmethod
    def from_arrays(arrays: Dict[str, numpy.ndarray], *, temperature: float, mode: str) -> "KDTargets":
        """The inverse of `to_arrays`: a B = 1 item."""
        tensors = {name: torch.from_numpy(numpy.asarray(arrays[name])).unsqueeze(0)
                   for name in _ARRAY_FIELDS if name in arrays}
        lengths = torch.tensor([tensors["unary"].shape[1]], dtype=torch.long)
        return KDTargets(lengths=lengths, temperature=temperature, mode=mode, **tensors)


_ARRAY_FIELDS = ("unary", "pairs", "pair_counts", "start", "end", "top1", "lost")


def _fit(x: torch.Tensor, dim: int, size: int, fill) -> torch.Tensor:
    """Truncate or pad `x` along `dim` to `size` with `fill`."""
    if x.shape[dim] >= size:
        return x.narrow(dim, 0, size)
    shape = list(x.shape)
    shape[dim] = size - x.shape[dim]
    return torch.cat([x, x.new_full(shape, fill)], dim)


def check_temperature(temperature: float) -> float:
    """T must be a finite number > 0."""
    T = float(temperature)
    if not (0.0 < T < float("inf")):
        raise ValueError(Errors.E150.format(value=temperature))
    return T


def crf_targets(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    lengths: torch.Tensor,
    start: Optional[torch.Tensor] = None,
    end: Optional[torch.Tensor] = None,
    mask: Optional[TransitionMask] = None,
    *,
    temperature: float = 1.0,
    mode: str = "global",
    pairs: bool = True,
    counts: bool = False,
    dtype: torch.dtype = torch.float32,
) -> KDTargets:
    """Targets from a linear-chain CRF teacher (cases 1a and 2a, the posterior baseline).

    emissions (Tensor): [B, N, L] teacher emission scores.
    transitions (Tensor): [L, L]; transitions[a, b] scores tag a followed by tag b.
    lengths (LongTensor): [B].
    start, end (Optional[Tensor]): [L] scores of the first and last tag; zeros when None.
    mask (Optional[TransitionMask]): the teacher's forbidden starts/transitions/ends. A
        constrained student needs targets built with its own mask (no teacher mass on sequences
        it forbids).
    temperature (float): T > 0.
    mode (str): "global" runs the CRF on all potentials / T (a real distribution P^T); "local"
        takes the T = 1 marginals and applies softmax(log μ / T) per slot: per position over L
        for unaries, per position over the L*L joint for pairs, per slot for start and end.
    pairs (bool): build pair, start and end targets (CRF students, case 1a). False: unary only
        (MaxEnt and posterior students); no [B, N-1, L, L] tensor is built. (Given to
        structural_crf_loss, unary-only targets stand for the product of the teacher's unary
        marginals, not for the teacher itself.)
    counts (bool): with `pairs`, return the expected transition counts (`pair_counts`) instead
        of the [B, N-1, L, L] pair marginals whenever that is exact (consistent targets);
        locally tempered pairs at T != 1 are kept whole.
    dtype (torch.dtype): of the returned probabilities (computed in float64).
    RETURNS (KDTargets): top1 is the Viterbi sequence at T = 1.
    Cost: O(B N L^2) time; O(B N L^2) memory only when pairs=True.
    """
    T = check_temperature(temperature)
    if mode not in MODES:
        raise ValueError(Errors.E151.format(value=mode, options=", ".join(MODES)))
    with torch.no_grad():
        e, a = emissions.detach().double(), transitions.detach().double()
        s = None if start is None else start.detach().double()
        f = None if end is None else end.detach().double()
        crf = LinearChainCRF(e, a, lengths, s, f, mask)  # T = 1
        if mode == "global" and T != 1.0:
            tempered = LinearChainCRF(e / T, a / T, lengths, _div(s, T), _div(f, T), mask)
            unary, pair, first, last = _slot_marginals(tempered, pairs)
        else:
            unary, pair, first, last = _slot_marginals(crf, pairs)
            if T != 1.0:  # local
                valid = crf.mask  # [B, N]
                unary = _temper(unary, valid, T)
                if pair is not None:
                    B, M, L, _ = pair.shape
                    pair = _temper(pair.reshape(B, M, L * L), valid[:, 1:], T).reshape(B, M, L, L)
                    has = crf.lengths > 0
                    first, last = _temper(first, has, T), _temper(last, has, T)
        pair_counts = None
        if pair is not None and counts and (mode == "global" or T == 1.0):
            pair_counts, pair = pair.sum(1), None
        return KDTargets(
            lengths=crf.lengths,
            unary=unary.to(dtype),
            pairs=None if pair is None else pair.to(dtype),
            pair_counts=None if pair_counts is None else pair_counts.to(dtype),
            start=None if first is None else first.to(dtype),
            end=None if last is None else last.to(dtype),
            top1=crf.argmax,
            temperature=T,
            mode=mode,
        )


def maxent_targets(logits: torch.Tensor, lengths: torch.Tensor, *, temperature: float = 1.0,
                   dtype: torch.dtype = torch.float32) -> KDTargets:
    """Targets from a MaxEnt (per-token softmax) teacher: token KD and case 3.

    logits (Tensor): [B, N, L] teacher scores.
    lengths (LongTensor): [B].
    temperature (float): T > 0; unary = softmax(logits / T) per token. Tempering a factorised
        teacher per token equals tempering it globally, so the targets are consistent at any T.
    dtype (torch.dtype): of the returned probabilities (computed in float64).
    RETURNS (KDTargets): factorised (pairs None); top1 is the per-token argmax.
    """
    T = check_temperature(temperature)
    if logits.dim() != 3:
        raise ValueError(Errors.E155.format(field="logits", shape=tuple(logits.shape), unary=tuple(logits.shape),
                                            expected="[B, N, L]"))
    B, N, _ = logits.shape
    check_shape("lengths", lengths, (B,))
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
        raise ValueError(Errors.E003.format(max_len=N, lengths=lengths.tolist()))
    with torch.no_grad():
        lengths = lengths.to(device=logits.device, dtype=torch.long)
        valid = torch.arange(logits.shape[1], device=logits.device) < lengths.unsqueeze(1)  # [B, N]
        logits = logits.detach().double().masked_fill(~valid.unsqueeze(-1), 0.0)
        unary = torch.softmax(logits / T, dim=-1) * valid.unsqueeze(-1)
        top1 = logits.argmax(-1).masked_fill(~valid, -1)
        return KDTargets(lengths=lengths, unary=unary.to(dtype), top1=top1, temperature=T, mode="local")


def target_entropy(targets: KDTargets) -> torch.Tensor:
    """Entropy [B] of the teacher distribution the targets describe: a Markov chain when they
    carry pairs (H = Σ_{i≥1} H(y_{i-1}, y_i) - Σ_{0<i<n-1} H(y_i)), a product of unaries when
    factorised. T² times it is the floor of the structural loss; loss - T²·H is a KL, for logging.
    Undefined for locally tempered pairs (raises)."""
    if not targets.consistent:
        raise ValueError(Errors.E163.format(T=targets.temperature))
    valid = targets.valid.to(targets.unary.dtype)  # [B, N]
    token_h = -torch.xlogy(targets.unary, targets.unary).sum(-1) * valid  # [B, N]
    if targets.pairs is None:
        return token_h.sum(-1)
    pair_h = -torch.xlogy(targets.pairs, targets.pairs).sum((-2, -1))  # [B, N-1], zero past length
    idx = torch.arange(valid.shape[1], device=valid.device)
    interior = (idx > 0) & (idx < (targets.lengths - 1).unsqueeze(1))  # [B, N], 0 < i < n-1
    chain_h = pair_h.sum(-1) - (token_h * interior).sum(-1)
    return torch.where(targets.lengths == 1, token_h.sum(-1), chain_h)


def _div(x: Optional[torch.Tensor], T: float) -> Optional[torch.Tensor]:
    return None if x is None else x / T


def _slot_marginals(crf: LinearChainCRF, with_pairs: bool):
    """unary [B, N, L], and if `with_pairs`: pairs [B, N-1, L, L], start [B, L], end [B, L]."""
    if not with_pairs:
        return crf.marginals, None, None, None
    pairs = crf.pair_marginals  # first: one backward pass gives the unary marginals too
    return crf.marginals, pairs, crf.start_marginals, crf.end_marginals


def _temper(probs: torch.Tensor, valid: torch.Tensor, T: float) -> torch.Tensor:
    """softmax(log p / T) over the last axis (p^(1/T) renormalised), in log space so small T
    cannot underflow every entry. Zero-probability entries stay zero; rows outside `valid`, or
    with no mass at all (a mask forbidding everything), are zero."""
    has_mass = probs > 0
    ok = valid & has_mass.any(-1)  # [...]
    log_p = torch.where(has_mass, probs, torch.ones_like(probs)).log().masked_fill(~has_mass, float("-inf"))
    log_p = log_p.masked_fill(~ok.unsqueeze(-1), 0.0)  # keep empty rows finite; zeroed below
    return torch.softmax(log_p / T, dim=-1) * ok.unsqueeze(-1)
