"""spaCy transition-based teachers' beams as targets: NER (`ner`, `beam_ner`) for a tagger
student, and parsers (`parser`, `beam_parser`) as case-1b potentials for a sequence-labelling one.

A beam parser's K trees become per-word P(head) and P(relation | head) (`BeamParserPotentials`),
which `parser_targets` maps onto the student's joint labels exactly as for a biaffine teacher;
its Top-1 is the beam's best tree, not an MST over the marginals.

Such a teacher gives two signals (`teacher/spacy_transition.py` computes them):
- a beam: K whole BILUO analyses with their normalised probabilities (spaCy's
  `get_beam_parses`), a distribution over sequences with K points of support. Its per-token
  marginals, adjacent-pair counts and best parse are exact in any student scheme, because each
  parse is converted as a whole (spans -> the student's tags). A CRF student fitted to the pair
  counts minimises the true cross-entropy to the beam distribution (case "beam").
- steps: along the teacher's greedy path, the softmax over the valid actions at the step that
  labels each token (token-level KD, what spaCy v4's `distill` matches). A product of unaries;
  mapped onto the student's tags position by position (BILUO -> the same position in BIOES,
  IOB2 or sBIO; IOB1 is refused, its B- depends on the previous chunk).

Temperature (docs/algorithms.md §0), T > 0:
- beam, global: parse k weighs p_k^(1/T), renormalised over the beam. spaCy scores a parse by the
  sum of its action scores and p_k is their softmax over the beam, so this is exactly the beam
  distribution at scores / T.
- beam, local: every slot (token, adjacent pair) q ∝ μ^(1/T), as for CRF teachers; pairs so
  tempered are no distribution's marginals (KDTargets.consistent is False).
- steps: q ∝ p^(1/T) per token, which equals the softmax of the valid action scores / T.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

from ..errors import Errors
from ..structs._util import log_zero
from ..structs.tag_schemes import spans_to_tags, tags_to_spans
from .parser_targets import ParserPotentials
from .span_targets import bioes_to_tags
from .targets import MODES, KDTargets, check_temperature

STEP_CASES = ("token", "3")  # cases read from the greedy steps; every other case reads the beam


def biluo_columns(labels: Sequence[str]) -> List[str]:
    """The teacher's BILUO tags in column order: O, then B, I, L, U of each label."""
    return ["O"] + [f"{prefix}-{label}" for label in labels for prefix in "BILU"]


@dataclass
class NERBeamPotentials:
    """A padded batch of transition-NER teacher outputs.

    kind (str): "ner_beam" (a beam of K analyses and the greedy steps) or "ner_greedy" (the
        greedy path, K = 1, and its steps).
    parses (LongTensor): [B, K, N] BILUO column ids (`biluo_columns(labels)`), -1 past each
        length and on padding parses.
    log_probs (Tensor): [B, K] log-probabilities of the parses, normalised over each beam;
        log-zero on padding parses.
    steps (Tensor): [B, N, C] log-probabilities of the BILUO columns at each greedy step (C =
        1 + 4 * len(labels)); zero past each length.
    lengths (LongTensor): [B].
    labels (Tuple[str, ...]): the teacher's entity types.
    """

    kind: str
    parses: torch.Tensor
    log_probs: torch.Tensor
    steps: torch.Tensor
    lengths: torch.Tensor
    labels: Tuple[str, ...]


@dataclass
class BeamParserPotentials(ParserPotentials):
    """ParserPotentials (kind "parser_beam") from a beam of trees, with the beam's best tree.

    best_heads (LongTensor): [B, N] head of each word in the most probable tree (0 = ROOT),
        -1 past each length.  best_rels (LongTensor): [B, N] its relation ids, -1 past lengths.
    """

    best_heads: torch.Tensor = None
    best_rels: torch.Tensor = None

    def top1(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The beam's most probable tree (a spaCy parse may have several roots)."""
        return self.best_heads, self.best_rels


def beam_parser_potentials(heads: torch.Tensor, rels: torch.Tensor, log_probs: torch.Tensor,
                           lengths: torch.Tensor, R: int, *, kind: str = "parser_beam",
                           device: torch.device = torch.device("cpu")) -> BeamParserPotentials:
    """K trees per sentence -> the beam's per-word (head, relation) marginals.

    heads (LongTensor): [B, K, N] 0 = ROOT, h >= 1 the word h - 1; -1 past lengths and on
        padding trees.  rels (LongTensor): [B, K, N] relation ids in [0, R).
    log_probs (Tensor): [B, K] normalised log-probabilities of the trees (log-zero on padding).
    RETURNS (BeamParserPotentials): arc [B, N, N+1] = log Σ_k p_k [head_k(i) = h]; rel
        [B, N, N+1, R] = log P(r | h) from the same sums; log-zero where the beam has no mass.
    """
    B, K, N = heads.shape
    weights = torch.softmax(log_probs.double(), -1)  # [B, K]
    joint = torch.zeros(B, N, N + 1, R, dtype=torch.float64)
    keep = heads >= 0  # [B, K, N]
    b, k, i = keep.nonzero(as_tuple=True)
    joint.index_put_((b, i, heads[b, k, i], rels[b, k, i]), weights[b, k], accumulate=True)
    neg = log_zero(torch.float32)
    arc_p = joint.sum(-1)  # [B, N, N+1]
    arc = torch.where(arc_p > 0, arc_p.clamp_min(1e-300).log(), torch.full_like(arc_p, neg))
    rel_p = joint / arc_p.clamp_min(1e-300).unsqueeze(-1)
    rel = torch.where(rel_p > 0, rel_p.clamp_min(1e-300).log(), torch.full_like(rel_p, neg))
    best = log_probs.argmax(-1)  # [B]
    rows = torch.arange(B)
    return BeamParserPotentials(kind, arc.float().to(device), rel.float().to(device), lengths.to(device),
                                best_heads=heads[rows, best].to(device), best_rels=rels[rows, best].to(device))


def parses_in_tags(teacher: NERBeamPotentials, tags: Sequence[str], scheme: str) -> torch.Tensor:
    """Each parse written in the student's tags: ids [B, K, N], -1 past lengths and on padding
    parses. Whole-parse conversion (BILUO -> spans -> `scheme`), so it is exact in every scheme."""
    columns = biluo_columns(teacher.labels)
    index = {tag: i for i, tag in enumerate(tags)}
    B, K, N = teacher.parses.shape
    ids = torch.full((B, K, N), -1, dtype=torch.long)
    rows = teacher.parses.cpu().tolist()
    for b, n in enumerate(teacher.lengths.tolist()):
        for k in range(K):
            row = rows[b][k][:n]
            if n and row[0] < 0:
                continue  # a padding parse
            spans = tags_to_spans([columns[c] for c in row], "BILUO")
            student = spans_to_tags(spans, n, scheme)
            missing = [tag for tag in student if tag not in index]
            if missing:
                raise ValueError(Errors.E322.format(tag=missing[0], scheme=scheme, labels=list(teacher.labels)))
            ids[b, k, :n] = torch.tensor([index[tag] for tag in student], dtype=torch.long)
    return ids.to(teacher.parses.device)


def ner_transition_targets(teacher: NERBeamPotentials, tags: Sequence[str], scheme: str, *, case: str,
                           temperature: float = 1.0, mode: str = "local", pairs: bool = False,
                           dtype: torch.dtype = torch.float32) -> KDTargets:
    """Targets in the student's tag space `tags` (scheme `scheme`).

    case (str): the KD case (kd.adapters): "token" or "3" read the greedy steps (factorised
        targets); every other case reads the beam (unary marginals; with `pairs`, also the
        expected transition counts, or per-position pairs when locally tempered at T != 1).
    temperature, mode: see the module docstring.
    pairs (bool): a CRF student's structural targets (case "beam").
    RETURNS (KDTargets): top1 = the beam's most probable parse (the greedy path when K = 1).
    Cost: O(B K N L) time plus O(B K N) Python for the scheme conversion.
    """
    T = check_temperature(temperature)
    if mode not in MODES:
        raise ValueError(Errors.E151.format(value=mode, options=", ".join(MODES)))
    with torch.no_grad():
        lengths = teacher.lengths.to(device=teacher.parses.device, dtype=torch.long)
        N = teacher.parses.shape[2]
        valid = torch.arange(N, device=lengths.device) < lengths.unsqueeze(1)  # [B, N]
        ids = parses_in_tags(teacher, tags, scheme)  # [B, K, N]
        log_w = teacher.log_probs.double()  # [B, K]
        best = log_w.argmax(-1)  # [B]
        top1 = ids[torch.arange(ids.shape[0], device=ids.device), best]  # [B, N]
        if case in STEP_CASES:
            unary = _step_unaries(teacher, tags, scheme, T) * valid.unsqueeze(-1)
            return KDTargets(lengths=lengths, unary=unary.to(dtype), top1=top1, temperature=T, mode="local")
        tempered = mode == "global" and T != 1.0
        weights = torch.softmax(log_w / T if tempered else log_w, -1)  # [B, K]
        onehot = _one_hot(ids, len(tags)) * weights[:, :, None, None]  # [B, K, N, L]
        unary = onehot.sum(1)  # [B, N, L]
        pair, counts = None, None
        if pairs:  # rows of `plain` past a length are zero, so pairs there get no mass
            L = len(tags)
            plain = _one_hot(ids, L)
            if mode == "local" and T != 1.0:
                pair = torch.einsum("bkia,bkic->biac", onehot[:, :, :-1], plain[:, :, 1:])  # [B, N-1, L, L]
                M = pair.shape[1]
                pair = _temper(pair.reshape(-1, M, L * L), valid[:, 1:], T).reshape(-1, M, L, L)
            else:
                counts = torch.einsum("bkia,bkic->bac", onehot[:, :, :-1], plain[:, :, 1:])  # [B, L, L]
        if mode == "local" and T != 1.0:
            unary = _temper(unary, valid, T)
        return KDTargets(lengths=lengths, unary=unary.to(dtype),
                         pairs=None if pair is None else pair.to(dtype),
                         pair_counts=None if counts is None else counts.to(dtype), top1=top1, temperature=T,
                         mode="global" if tempered else "local")


def _step_unaries(teacher: NERBeamPotentials, tags: Sequence[str], scheme: str, T: float) -> torch.Tensor:
    """The greedy steps' distributions in the student's tags, tempered: [B, N, L]."""
    if scheme == "IOB1":
        raise ValueError(Errors.E323.format(scheme=scheme))
    probs = teacher.steps.double().exp()  # [B, N, C]; padding rows hold exp(0) = 1, masked by the caller
    matrix = bioes_to_tags(teacher.labels, tags, scheme).to(probs)  # [C, L]: BILUO and BIOES share positions
    mapped = probs @ matrix  # [B, N, L]
    valid = torch.arange(mapped.shape[1], device=mapped.device) < teacher.lengths.to(mapped.device).unsqueeze(1)
    return _temper(mapped, valid, T)


def _one_hot(ids: torch.Tensor, L: int) -> torch.Tensor:
    """ids [..., N] (-1 = none) -> float64 [..., N, L], zero rows for -1."""
    return torch.nn.functional.one_hot(ids.clamp(min=0), L).double() * (ids >= 0).unsqueeze(-1)


def _temper(probs: torch.Tensor, valid: torch.Tensor, T: float) -> torch.Tensor:
    """p^(1/T) renormalised over the last axis, in log space; zeros stay zero, rows outside
    `valid` (or without mass) are zero."""
    has_mass = probs > 0
    ok = valid & has_mass.any(-1)
    log_p = torch.where(has_mass, probs, torch.ones_like(probs)).log()
    log_p = log_p.masked_fill(~has_mass, log_zero(log_p.dtype))
    return torch.softmax(log_p / T, -1).masked_fill(~has_mass, 0.0) * ok.unsqueeze(-1)

