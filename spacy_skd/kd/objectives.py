"""Student side of KD: one loss function per objective, and the name -> function table.

Every loss returns one value per sentence, [B], with the T² factor of Hinton et al. included;
the caller sums, divides by the number of sentences (the reference's `sentence_loss`) and
weights by λ. Teacher targets come from `kd.targets` and carry no gradient.

    objective    CRF student            MaxEnt student
    structural   structural_crf_loss    token_kl_loss (case 2a: the CRF teacher's unary marginals)
    posterior    posterior_crf_loss     token_kl_loss (the same thing for a MaxEnt student)
    token        (undefined)            token_kl_loss (token KD, SenTScore)
    top1, none   None: no KD term (top1 = pseudo-labels only, handled by the caller)
"""
import warnings
from typing import Callable, Dict, Optional

import torch

from ..errors import Errors, Warnings
from ..structs._util import log_zero
from ..structs.chain import LinearChainCRF, TransitionMask
from .targets import KDTargets, check_temperature

KDLoss = Callable[..., torch.Tensor]
STUDENTS = ("crf", "maxent")
# Teacher mass on forbidden substructures above this is an error; a teacher with the student's
# mask puts exactly 0 there (its log-zero scores underflow).
LEAK_TOL = 1e-6


def structural_crf_loss(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    lengths: torch.Tensor,
    start: Optional[torch.Tensor],
    end: Optional[torch.Tensor],
    mask: Optional[TransitionMask],
    targets: KDTargets,
    *,
    temperature: float = 1.0,
    clamp_negative: bool = False,
) -> torch.Tensor:
    """Structural KD into a CRF student (case 1a; case 3 with factorised targets).

    loss_b = T² · (log Z_s(θ_s / T) - ⟨μ_t, θ_s / T⟩), with the substructures of docs/algorithms.md
    §2.1: pair i carries A[y_{i-1}, y_i] + E[i, y_i], the start slot start[y_0] + E[0, y_0],
    the end slot end[y_{n-1}]. For consistent targets (global temperature, T = 1, or a factorised
    teacher) this is exactly T² · H(P_t^T, P_s^T) >= T² · H(P_t^T) >= 0, and its gradient is
    T · (μ_s^T - μ_t^T). Only the student's log-partition is computed, not its marginals.
    Emissions E[i≥1] are weighted by the pair targets summed over the previous tag and E[0] by
    the start target, as in the reference; for consistent targets that is the unary marginal.
    Factorised targets (pairs None) use Σ_i p_{i-1}ᵀ A p_i without building [B, N-1, L, L].
    Runs in float64 and returns the emissions' dtype: the loss is a difference of two terms of
    size |log Z| (~1e3 for long, confident sentences), which float32 rounds at ~1e-4 — enough
    to make an exact cross-entropy of ~0 come out visibly negative.

    emissions (Tensor): [B, N, L] student emission scores.
    transitions (Tensor): [L, L]; transitions[a, b] scores tag a followed by tag b.
    lengths (LongTensor): [B], equal to targets.lengths.
    start, end (Optional[Tensor]): [L] first/last tag scores; zeros when None.
    mask (Optional[TransitionMask]): the student's constraints. Teacher mass on a forbidden
        substructure makes the cross-entropy infinite and raises E158.
    targets (KDTargets): teacher targets of the same [B, N, L] shape.
    temperature (float): T > 0, the temperature the targets were built with.
    clamp_negative (bool): paper parity for *locally tempered* pair targets (targets.consistent
        False). Those lie outside the marginal polytope and make this loss unbounded below
        (docs/algorithms.md §2.5); the reference clamps per-sentence losses at 0, which also zeroes
        their gradient, and so does this flag. Consistent targets are never clamped: their loss
        is >= 0 exactly, and a negative value is a bug for `check_loss` to report. Without the
        flag, local pair targets at T != 1 give warning W150.
    RETURNS (Tensor): [B] per-sentence losses.
    """
    T = check_temperature(temperature)
    _check_batch(emissions, lengths, targets)
    if emissions.shape[1] == 0:
        return _zero_loss(emissions, transitions, start, end)
    e, a, s, f = emissions.double(), transitions.double(), _double(start), _double(end)
    log_z = LinearChainCRF(e / T, a / T, lengths, _scaled(s, T), _scaled(f, T), mask).log_partition
    expected, leak = _expected_score(e, a, s, f, mask, targets)
    if leak is not None:
        _check_leak(leak, "sequences (transitions, first or last tags)")
    loss = T * T * log_z - T * expected  # = T² (log Z(θ/T) - ⟨μ_t, θ/T⟩)
    if not targets.consistent:
        if clamp_negative:
            loss = loss.clamp(min=0.0)
        else:
            warnings.warn(Warnings.W150.format(T=targets.temperature), stacklevel=2)
    return loss.to(emissions.dtype)


def token_kl_loss(logits: torch.Tensor, lengths: torch.Tensor, targets: KDTargets, *,
                  temperature: float = 1.0) -> torch.Tensor:
    """Per-token KD into a MaxEnt student (case 2a, token KD, SenTScore).

    loss_b = T² · Σ_{i<n_b} KL(targets.unary_i || softmax(logits_i / T)); the gradient with
    respect to the logits is T · (softmax(logits / T) - targets.unary). Padded positions add 0
    and are never read: the loss runs on the rows of real tokens only ([R, L], R = Σ n_b), which
    in a batch of mixed lengths is a fraction of [B, N, L] (a third on EWT batches of 64).

    logits (Tensor): [B, N, L] student scores.
    lengths (LongTensor): [B], equal to targets.lengths.
    targets (KDTargets): teacher unaries of the same shape (pairs, if any, are not used).
    temperature (float): T > 0.
    RETURNS (Tensor): [B] per-sentence losses.
    """
    T = check_temperature(temperature)
    _check_batch(logits, lengths, targets)
    B, N, L = logits.shape
    rows = _valid(logits, lengths).reshape(-1).nonzero().squeeze(1)  # [R] token rows of the flat batch
    sentence = torch.div(rows, N, rounding_mode="floor")  # [R] the sentence of each row
    log_q = torch.log_softmax(logits.reshape(B * N, L).index_select(0, rows) / T, dim=-1)  # [R, L]
    p = targets.unary.to(logits).reshape(B * N, L).index_select(0, rows)  # [R, L]
    if targets.plogp is None:
        per_row = (torch.xlogy(p, p) - p * log_q).sum(-1)  # [R]
        return T * T * logits.new_zeros(B).index_add(0, sentence, per_row)
    cross = logits.new_zeros(B).index_add(0, sentence, (p * log_q).sum(-1))  # [B] Σ p log q
    return T * T * (targets.plogp.to(logits) - cross)  # the same KL, without a dense xlogy


def posterior_crf_loss(
    emissions: torch.Tensor,
    transitions: torch.Tensor,
    lengths: torch.Tensor,
    start: Optional[torch.Tensor],
    end: Optional[torch.Tensor],
    mask: Optional[TransitionMask],
    targets: KDTargets,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Posterior KD into a CRF student (the Pos. KD baseline of Wang et al. 2020a).

    loss_b = T² · Σ_{i<n_b} KL(targets.unary_i || softmax(log q_s(y_i) / T)), where q_s are the
    student's own unary marginals at T = 1, locally tempered (as the reference does on both
    sides: use targets from crf_targets(mode="local", pairs=False)). Differentiable through the
    marginals. Runs in float64: float32 marginals underflow to 0 for tags ~100 nats behind,
    and their logarithm is needed here; the loss is returned in the emissions' dtype.

    Arguments as for `structural_crf_loss`. Teacher mass on a tag the student's mask rules out
    at that position raises E158.
    RETURNS (Tensor): [B] per-sentence losses.
    """
    T = check_temperature(temperature)
    _check_batch(emissions, lengths, targets)
    if emissions.shape[1] == 0:
        return _zero_loss(emissions, transitions, start, end)
    crf = LinearChainCRF(emissions.double(), transitions.double(), lengths, _double(start), _double(end), mask)
    q = crf.marginals  # [B, N, L], zero past each length and on forbidden tags
    possible = q > 0
    # where-then-log keeps the gradient finite at q = 0 (those entries get none)
    log_q = torch.where(possible, q, torch.ones_like(q)).log().masked_fill(~possible, log_zero(q.dtype))
    p = targets.unary.to(q) * crf.mask.unsqueeze(-1)
    if mask is not None:
        _check_leak((p * ~possible).sum((1, 2)), "tags at the positions where they occur")
    loss = T * T * _kl(p, torch.log_softmax(log_q / T, dim=-1))
    return loss.to(emissions.dtype)


def check_loss(loss: torch.Tensor, name: str, tol: float = 1e-4, *, component: bool = False) -> torch.Tensor:
    """Raise if any loss value is NaN, infinite or below -tol; return `loss` unchanged.

    KD losses are cross-entropies or KLs and a component's training loss is a negative
    log-likelihood plus such a term, so a negative value beyond rounding is a bug upstream,
    never something to clamp (the one documented exception is `clamp_negative` in
    `structural_crf_loss`). Costs one device sync. `tol` is absolute; the CRF losses here are
    computed in float64, so their rounding stays far below it.

    name (str): the KD objective (E159), or with `component` the component whose loss it is (E102).
    """
    finite = torch.isfinite(loss)
    if not bool((finite & (loss >= -tol)).all()):
        value = loss.detach().min().item() if bool(finite.all()) else loss.detach()[~finite][0].item()
        if component:
            raise ValueError(Errors.E102.format(name=name, value=value))
        raise ValueError(Errors.E159.format(name=name, value=value, n_bad=int((~finite).sum())))
    return loss


OBJECTIVES: Dict[str, Dict[str, Optional[KDLoss]]] = {
    "structural": {"crf": structural_crf_loss, "maxent": token_kl_loss},
    "posterior": {"crf": posterior_crf_loss, "maxent": token_kl_loss},
    "token": {"maxent": token_kl_loss},
    "top1": {"crf": None, "maxent": None},
    "none": {"crf": None, "maxent": None},
}


def check_objective(name: str) -> str:
    """`name` if it is a KD objective (a key of OBJECTIVES, the one list of them), else E152."""
    if name not in OBJECTIVES:
        raise ValueError(Errors.E152.format(value=name, options=", ".join(OBJECTIVES)))
    return name


def get_objective(name: str, student: str) -> Optional[KDLoss]:
    """The loss for objective `name` and a student of structure `student` ("crf" or "maxent").

    CRF losses take (emissions, transitions, lengths, start, end, mask, targets, *, temperature),
    MaxEnt losses (logits, lengths, targets, *, temperature). None means no KD term.
    """
    check_objective(name)
    if student not in STUDENTS:
        raise ValueError(Errors.E153.format(value=student, name=name, options=", ".join(STUDENTS)))
    if student not in OBJECTIVES[name]:  # only ("token", "crf")
        raise ValueError(Errors.E154)
    return OBJECTIVES[name][student]


# -- helpers ----------------------------------------------------------------------------------
def _valid(scores: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """[B, N] bool, position i < length."""
    return torch.arange(scores.shape[1], device=scores.device) < lengths.to(scores.device).unsqueeze(1)


def _check_batch(scores: torch.Tensor, lengths: torch.Tensor, targets: KDTargets) -> None:
    """Targets and student scores must describe the same padded batch."""
    if tuple(targets.unary.shape) != tuple(scores.shape):
        width = scores.shape[1] if scores.dim() == 3 else "N"
        raise ValueError(Errors.E156.format(targets=tuple(targets.unary.shape), student=tuple(scores.shape), width=width))
    if not torch.equal(targets.lengths.to(device=lengths.device, dtype=torch.long), lengths.long()):
        raise ValueError(Errors.E157.format(teacher=targets.lengths.tolist(), student=lengths.tolist()))


def _zero_loss(emissions: torch.Tensor, *others: Optional[torch.Tensor]) -> torch.Tensor:
    """[B] zeros for a batch of width 0, on the graph of every potential so that backward()
    works and gives zero gradients."""
    rest = [x.sum() for x in others if x is not None]
    return (emissions.sum((1, 2)) + sum(rest)) * 0.0


def _scaled(x: Optional[torch.Tensor], T: float) -> Optional[torch.Tensor]:
    return None if x is None else x / T


def _double(x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    return None if x is None else x.double()


def _kl(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Σ over positions and tags of p (log p - log q): [B, N, L] x 2 -> [B]. 0 log 0 = 0."""
    return (torch.xlogy(p, p) - p * log_q).sum((1, 2))


def _check_leak(leak: torch.Tensor, what: str) -> None:
    """leak [B]: teacher mass on what the student forbids."""
    worst = float(leak.max()) if leak.numel() else 0.0
    if worst > LEAK_TOL:
        raise ValueError(Errors.E158.format(mass=worst, what=what))


def _expected_score(emissions, transitions, start, end, mask, targets: KDTargets):
    """⟨μ_t, θ_s⟩ [B] at T = 1, and (with a mask) the teacher mass on forbidden substructures [B].

    Pair i carries A[a, c] + E[i, c]; the start slot start + E[0]; the end slot end. Forbidden
    entries take score 0 here: their teacher mass must be 0 (checked by the caller), and the
    student's raw parameters there must get no gradient (log Z never sees them).
    """
    B, N, L = emissions.shape
    valid = _valid(emissions, targets.lengths)  # [B, N]
    E = emissions.masked_fill(~valid.unsqueeze(-1), 0.0)  # padding may hold garbage
    A = transitions
    s = emissions.new_zeros(L) if start is None else start
    e = emissions.new_zeros(L) if end is None else end
    if mask is not None:
        A, s, e = A.masked_fill(~mask.transitions, 0.0), s.masked_fill(~mask.start, 0.0), e.masked_fill(~mask.end, 0.0)
    has = (targets.lengths > 0).unsqueeze(1)  # [B, 1]; empty sentences have no first or last tag
    first = targets.start_probs().to(emissions) * has  # [B, L]
    last = targets.end_probs().to(emissions) * has  # [B, L]
    score = (first * (s + E[:, 0])).sum(-1) + (last * e).sum(-1)  # [B]
    if targets.pairs is not None:
        pairs = targets.pairs.to(emissions) * valid[:, 1:, None, None]  # [B, N-1, L, L]
        score = score + torch.einsum("biac,ac->b", pairs, A) + (pairs.sum(2) * E[:, 1:]).sum((1, 2))
    elif targets.pair_counts is not None:  # transitions are shared by all positions: counts suffice
        counts = targets.pair_counts.to(emissions)  # [B, L, L]
        p = targets.unary.to(emissions) * valid.unsqueeze(-1)  # [B, N, L]
        score = score + torch.einsum("bac,ac->b", counts, A) + (p[:, 1:] * E[:, 1:]).sum((1, 2))
    else:
        p = targets.unary.to(emissions) * valid.unsqueeze(-1)  # [B, N, L]; zero rows end the chain
        score = score + torch.einsum("bia,ac,bic->b", p[:, :-1], A, p[:, 1:]) + (p[:, 1:] * E[:, 1:]).sum((1, 2))
    if mask is None:
        return score, None
    forbidden = (~mask.transitions).to(emissions)  # [L, L]
    leak = (first * ~mask.start).sum(-1) + (last * ~mask.end).sum(-1)
    if targets.pairs is not None:
        leak = leak + torch.einsum("biac,ac->b", pairs, forbidden)
    elif targets.pair_counts is not None:
        leak = leak + torch.einsum("bac,ac->b", counts, forbidden)
    else:
        leak = leak + torch.einsum("bia,ac,bic->b", p[:, :-1], forbidden, p[:, 1:])
    return score, leak.detach()
