"""Case 4: an NER-as-parsing (biaffine span) teacher's BIOES marginals as targets for a MaxEnt
tagger (docs/algorithms.md §6).

The teacher scores every span independently; restricted to flat structures it is a
semi-Markov distribution whose per-token BIOES marginals come from the span dynamic program
(`structs.span.SpanNER.bioes_log_marginals`). They are tempered (local: per token, the
reference; global: span scores / T before the DP) and summed into the student's tags. BIOES
tags map position by position onto BILUO, IOB2 and sBIO (an IOB2 "B-PER" is a BIOES "B-PER" or
"S-PER"), so the student's unary marginals are exact in any of those schemes; IOB1 is not
position-local (its B- depends on the previous chunk) and is refused.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import torch

from ..errors import Errors
from ..structs.span import SpanNER
from ..structs.tag_schemes import spans_to_tags
from .targets import MODES, KDTargets, check_temperature

# BIOES prefix -> the tag of the same position in each scheme ("{}" is the label)
_SAME_POSITION = {
    "BIOES": {"B": "B-{}", "I": "I-{}", "E": "E-{}", "S": "S-{}"},
    "BILUO": {"B": "B-{}", "I": "I-{}", "E": "L-{}", "S": "U-{}"},
    "IOB2": {"B": "B-{}", "I": "I-{}", "E": "I-{}", "S": "B-{}"},
    "sBIO": {"B": "{}", "I": "I", "E": "I", "S": "{}"},
}
SCHEMES = tuple(_SAME_POSITION)


@dataclass
class SpanPotentials:
    """A padded batch of span-NER teacher scores.

    scores (Tensor): [B, N, N, R+1] score of words i..j (inclusive) having class c; class 0 =
        no entity, class k >= 1 = labels[k-1].
    lengths (LongTensor): [B].
    labels (Tuple[str, ...]): the teacher's entity types.
    """

    scores: torch.Tensor
    lengths: torch.Tensor
    labels: Tuple[str, ...]

    kind = "span"


def bioes_to_tags(labels: Sequence[str], tags: Sequence[str], scheme: str) -> torch.Tensor:
    """[1 + 4R, L] 0/1 matrix: BIOES column (O, then B, I, E, S per label) -> the student's tag at
    the same position. A label missing from `tags` is an error (checked at initialize)."""
    if scheme not in _SAME_POSITION:
        raise ValueError(Errors.E180.format(scheme=scheme, options=", ".join(SCHEMES)))
    index = {tag: i for i, tag in enumerate(tags)}
    columns = [("O", None)] + [(p, label) for label in labels for p in "BIES"]
    matrix = torch.zeros(len(columns), len(tags))
    for c, (prefix, label) in enumerate(columns):
        tag = "O" if label is None else _SAME_POSITION[scheme][prefix].format(label)
        if tag not in index:
            raise ValueError(Errors.E181.format(tag=tag, scheme=scheme))
        matrix[c, index[tag]] = 1.0
    return matrix


def span_targets(teacher: SpanPotentials, tags: Sequence[str], scheme: str, *, temperature: float = 1.0,
                 mode: str = "local", dtype: torch.dtype = torch.float32) -> KDTargets:
    """Targets in the student's tag space `tags` (scheme `scheme`) from span scores.

    teacher (SpanPotentials): the padded teacher batch; any device (lengths follow the scores).
    tags (Sequence[str]): the student's tag inventory; every tag the mapping needs must be in it.
    scheme (str): BIOES, BILUO, IOB2 or sBIO (IOB1 raises E180).
    temperature (float): T > 0.
    mode (str): "global" runs the span DP on scores / T (p(Y)^(1/T) renormalised); "local" (the
        reference) tempers each word's BIOES marginals, softmax(log m / T). Others raise E151.
    dtype (torch.dtype): of the returned probabilities (computed in float64).
    RETURNS (KDTargets): unary [B, N, L] (factorised: a MaxEnt student), top1 = the teacher's
        flat decoding written in the student's scheme.
    """
    T = check_temperature(temperature)
    if mode not in MODES:
        raise ValueError(Errors.E151.format(value=mode, options=", ".join(MODES)))
    with torch.no_grad():
        scores = teacher.scores.double()
        lengths = teacher.lengths.to(device=scores.device, dtype=torch.long)
        teacher_ner = SpanNER(scores, lengths)  # T = 1
        if mode == "global" and T != 1.0:
            log_m = SpanNER(scores / T, lengths).bioes_log_marginals  # [B, N, 1+4R]
        else:
            log_m = teacher_ner.bioes_log_marginals
            if T != 1.0:
                log_m = torch.log_softmax(log_m / T, -1)
        valid = teacher_ner.mask  # [B, N]
        matrix = bioes_to_tags(teacher.labels, tags, scheme).to(log_m)
        unary = (log_m.exp() @ matrix) * valid.unsqueeze(-1)  # [B, N, L]
        top1 = _top1(teacher_ner.decode(), teacher, tags, scheme).to(log_m.device)
        return KDTargets(lengths=lengths, unary=unary.to(dtype), top1=top1, temperature=T,
                         mode="global" if mode == "global" and T != 1.0 else "local")


def _top1(decoded: List[List[Tuple[int, int, int]]], teacher: SpanPotentials, tags: Sequence[str],
          scheme: str) -> torch.Tensor:
    """The teacher's flat decoding as student tag ids [B, N], -1 past each length."""
    index = {tag: i for i, tag in enumerate(tags)}
    B, N = teacher.scores.shape[:2]
    ids = torch.full((B, N), -1, dtype=torch.long)
    for b, (spans, n) in enumerate(zip(decoded, teacher.lengths.tolist())):
        named = [(start, end + 1, teacher.labels[c - 1]) for start, end, c in spans]
        ids[b, :n] = torch.tensor([index[t] for t in spans_to_tags(named, n, scheme)], dtype=torch.long)
    return ids
