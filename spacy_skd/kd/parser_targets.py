"""Cases 1b and 2b: a graph-based parser teacher's head and relation distributions as targets
for a dependency-parsing-as-sequence-labelling student (docs/algorithms.md §5.1).

The student tags each word with one joint label ("+1_det", "ROOT_root", ...). The teacher's
probability of a label is P_t(head | word) * P_t(rel | word, head) for the label's head and
relation; heads outside the sentence and labels the student's vocabulary lacks get no mass.
Unlike the reference there is no probability floor on impossible labels: they are masked
exactly, and the mass the vocabulary cannot represent is reported (`lost`), not hidden.

Temperature, the two meanings of docs/algorithms.md §0:
- local (the reference): q(label) ∝ (P(h) P(r | h))^(1/T), renormalised per word;
- global: the teacher's arc and relation scores are divided by T (P_T(h) P_T(r | h)), then
  renormalised over the labels the student has.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy
import torch

from ..errors import Errors
from ..structs._util import log_zero
from ..structs.tree import mst
from .targets import KDTargets, check_temperature

# A stored sentence's targets on the labels of `LabelSpace.support(n)`, row-major: every other
# label has exactly zero mass, so the layout is exact, and on EWT it is 2.3x smaller than the
# dense [n, V] unary (and than the teacher's [n, n+1, R] potentials). `top1` [n] gives n.
SUPPORT_VALUES = "unary_support"


@dataclass
class ParserPotentials:
    """A padded batch of parser-teacher outputs (biaffine or MFVI), rows for words 1..n.

    kind (str): "biaffine" or "mfvi".
    arc (Tensor): [B, N, N+1] log P_t(head = h | word i+1), h = 0 is ROOT.
    rel (Tensor): [B, N, N+1, R] log P_t(rel = r | word i+1, head h).
    lengths (LongTensor): [B].
    """

    kind: str
    arc: torch.Tensor
    rel: torch.Tensor
    lengths: torch.Tensor

    def top1(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The teacher's best tree: heads [B, N] (0 = ROOT) and relation ids [B, N], -1 past each
        length. MST over the arc log-probabilities, so it is always a well-formed tree."""
        B, N, _ = self.arc.shape
        scores = torch.cat([self.arc.new_zeros(B, 1, N + 1), self.arc], 1)  # [B, N+1, N+1], row 0 unused
        heads = mst(scores, self.lengths)[:, 1:]  # [B, N]
        rels = self.rel.gather(2, heads.clamp(min=0)[:, :, None, None].expand(-1, -1, 1, self.rel.shape[-1]))
        rels = rels.squeeze(2).argmax(-1).masked_fill(heads < 0, -1)
        return heads, rels


def parser_targets(teacher: ParserPotentials, space, *, temperature: float = 1.0, mode: str = "local",
                   dtype: torch.dtype = torch.float32,
                   with_lost: bool = True) -> Tuple[KDTargets, Optional[torch.Tensor]]:
    """Targets over the student's label vocabulary `space` (a `structs.parse_labels.LabelSpace`),
    made once per sentence and stored (`pack_targets`), so their cost is paid at initialize.

    with_lost (bool): also return the mass outside the vocabulary (an exp over every (head,
        relation) pair, the costliest step); None if False.
    RETURNS (Tuple[KDTargets, Tensor]): the targets (unary [B, N, V], top1 = the teacher's best
        tree, one MST per sentence, encoded in the vocabulary, -1 where its label is missing;
        lost as below), and the teacher mass per word that no student label can carry [B, N] (at
        T = 1) or None.
    """
    T = check_temperature(temperature)
    with torch.no_grad():
        arc, rel = teacher.arc, teacher.rel
        log_q, lost = space.teacher_log_probs(arc, rel, teacher.lengths, with_lost=with_lost,
                                              dtype=torch.float64)  # [B, N, V], [B, N]
        neg = log_zero(log_q.dtype)
        # labels with teacher mass, decided at T = 1: tempering keeps zeros at zero, but log_zero / T
        # is no longer "log-zero" (T > 2 lifts it above neg / 2; tiny T overflows it to -inf)
        possible = log_q > neg / 2  # [B, N, V]
        if T != 1.0:
            if mode == "global":
                log_q, _ = space.teacher_log_probs(arc.double().div(T).log_softmax(-1),
                                                   rel.double().div(T).log_softmax(-1), teacher.lengths,
                                                   with_lost=False)
            else:
                log_q = log_q / T
            log_q = log_q.masked_fill(~possible, neg)
        valid = torch.arange(log_q.shape[1], device=log_q.device) < teacher.lengths.unsqueeze(1)  # [B, N]
        # a word whose whole teacher mass falls outside the vocabulary has no target at all
        has_mass = possible.any(-1) & valid
        unary = torch.softmax(log_q, -1) * has_mass.unsqueeze(-1)
        heads, rels = teacher.top1()
        best = _encode_top1(space, heads, rels, teacher.lengths).to(log_q.device)
        targets = KDTargets(lengths=teacher.lengths, unary=unary.to(dtype), top1=best, temperature=T,
                            mode="local" if mode == "local" or T == 1.0 else "global",
                            lost=None if lost is None else lost.to(dtype))
        return targets, lost


def _encode_top1(space, heads: torch.Tensor, rels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The teacher's best trees as student label ids [B, N] (-1 past lengths and where the label
    is not in the vocabulary: such words then count as unannotated in the pseudo-gold)."""
    ids = torch.full(heads.shape, -1, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        names = [space.rels[r] for r in rels[b, :n].tolist()]
        ids[b, :n] = torch.tensor(space.label_ids(heads[b, :n].tolist(), names), dtype=torch.long)
    return ids


def pack_targets(item: KDTargets, space) -> Dict[str, numpy.ndarray]:
    """One sentence's targets (B = 1, with its Top-1) as cache arrays: the unary on the labels of
    `space.support(n)` only (`SUPPORT_VALUES`, float32 [K]), `top1` [n] and `lost` [n] if any."""
    n = item.unary.shape[1]
    assert item.unary.shape[0] == 1 and item.top1 is not None, "one sentence with its Top-1"
    unary = item.unary[0].detach().cpu().float()  # [n, V]
    # parser_targets masks every label off the support to exactly zero; a value there is a bug
    assert not bool(unary.masked_fill(space.support(n), 0.0).any()), "target mass off the label support"
    arrays = {SUPPORT_VALUES: unary.reshape(-1)[space.support_index(n)].numpy(),
              "top1": item.top1[0].detach().cpu().numpy()}
    if item.lost is not None:
        arrays["lost"] = item.lost[0].detach().cpu().float().numpy()
    return arrays


def unpack_targets(entries: Sequence[Optional[Dict[str, numpy.ndarray]]], lengths: Sequence[int], space, *,
                   temperature: float, mode: str) -> KDTargets:
    """The inverse of `pack_targets` for a batch: one padded KDTargets (unary [B, N, V], zeros off
    each support; top1 [B, N]; lost [B, N] when stored; plogp [B] from the stored values alone,
    so that the loss needs no dense xlogy), each sentence's values placed straight
    into the batch tensor, without a dense copy per sentence. An entry None is a sentence without
    targets: no mass, Top-1 -1 (the caller masks its KD term). An entry that does not fit its
    length's support was written for another label space or layout: E370, never a silent misread.

    lengths (Sequence[int]): the words of each sentence (the entries are keyed by them).
    """
    B, N, V = len(entries), max(lengths, default=0), len(space)
    unary = torch.zeros(B * N * V, dtype=torch.float32)
    top1 = torch.full((B, N), -1, dtype=torch.long)
    lost = torch.zeros(B, N) if any(e is not None and "lost" in e for e in entries) else None
    plogp = torch.zeros(B, dtype=torch.float32)  # [B] Σ p log p, over the stored values alone
    for b, (arrays, n) in enumerate(zip(entries, lengths)):
        if arrays is None:
            continue
        index = space.support_index(n)  # [K] into the [n, V] block, whose rows have the batch's stride V
        best, values = arrays.get("top1"), arrays.get(SUPPORT_VALUES)
        problem = None
        if best is None or best.shape != (n,):
            problem = "no Top-1" if best is None else f"a Top-1 of shape {tuple(best.shape)}"
        elif values is None or values.shape != tuple(index.shape):
            problem = "no values" if values is None else f"{values.size} values"
        if problem is not None:
            raise ValueError(Errors.E370.format(n=n, problem=problem, expected=index.shape[0]))
        values = torch.from_numpy(numpy.asarray(values, "float32"))
        unary.narrow(0, b * N * V, n * V).index_copy_(0, index, values)
        plogp[b] = torch.xlogy(values, values).sum()
        top1[b, :n] = torch.from_numpy(numpy.asarray(best, dtype="int64"))
        if lost is not None and "lost" in arrays:
            lost[b, :n] = torch.from_numpy(numpy.asarray(arrays["lost"], dtype="float32"))
    return KDTargets(lengths=torch.tensor(list(lengths), dtype=torch.long), unary=unary.view(B, N, V), top1=top1,
                     lost=lost, plogp=plogp, temperature=temperature, mode=mode)
