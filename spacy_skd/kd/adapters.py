"""Which KD case applies to a (teacher, student) pair, and how teacher outputs become targets.

The case is chosen from the pair of structure kinds, never written by the user:

    teacher   student   objective "structural" means
    crf       crf       case 1a: pair + start/end marginals, student loss log Z_s - <mu_t, theta_s>
    crf       maxent    case 2a: unary marginals, per-token KL
    maxent    crf       case 3:  products of the teacher's unaries (no [N, L, L] tensor)
    maxent    maxent    token-level KD (the teacher's softmax)
    biaffine  seqlabel  case 1b: P(h) P(r | h) in the student's joint label space (parser_targets)
    mfvi      seqlabel  case 2b: the same with MFVI's approximate arc marginals
    span      maxent    case 4:  BIOES marginals of the span dynamic program (span_targets)
    ner_beam  maxent    "beam":  a spaCy beam's BILUO marginals in the student's scheme
    ner_beam  crf       "beam":  the beam's pair counts + unaries: the exact cross-entropy
    ner_greedy maxent   token:   a greedy spaCy ner's per-step action softmax (transition_targets)
    ner_greedy crf      case 3:  products of those per-step unaries
    parser_beam seqlabel case 1b: the beam's (head, relation) marginals

Teacher outputs arrive as *potentials* (a CRF's emissions plus its transition scores, or a
MaxEnt tagger's logits). Targets at any temperature, in either temperature mode, are derived
from them exactly, so one cached teacher pass serves every objective and temperature.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy
import torch

from ..errors import Errors
from ..structs.chain import LinearChainCRF, TransitionMask
from .objectives import check_objective
from .padding import pad_outputs
from .parser_targets import ParserPotentials, parser_targets
from .span_targets import SpanPotentials, span_targets
from .targets import KDTargets, crf_targets, maxent_targets
from .transition_targets import NERBeamPotentials, ner_transition_targets

KINDS = ("crf", "maxent")  # tagger structures; parser and span teachers are in _CASES below
TEMPERATURE_MODES = ("auto", "local", "global")

# (teacher kind, student kind, objective) combinations that are defined
_CASES = {
    ("crf", "crf"): {"structural": "1a", "posterior": "posterior", "top1": "top1", "none": "none"},
    ("crf", "maxent"): {"structural": "2a", "posterior": "2a", "token": "token", "top1": "top1", "none": "none"},
    ("maxent", "crf"): {"structural": "3", "top1": "top1", "none": "none"},
    ("maxent", "maxent"): {"structural": "token", "token": "token", "top1": "top1", "none": "none"},
    ("biaffine", "seqlabel"): {"structural": "1b", "top1": "top1", "none": "none"},
    ("mfvi", "seqlabel"): {"structural": "2b", "top1": "top1", "none": "none"},
    ("span", "maxent"): {"structural": "4", "top1": "top1", "none": "none"},
    # spaCy's own transition teachers (teacher/spacy_transition.py): beam and greedy-step signals
    ("ner_beam", "maxent"): {"structural": "beam", "posterior": "beam", "token": "token", "top1": "top1",
                             "none": "none"},
    ("ner_beam", "crf"): {"structural": "beam", "posterior": "posterior", "top1": "top1", "none": "none"},
    ("ner_greedy", "maxent"): {"structural": "token", "token": "token", "top1": "top1", "none": "none"},
    ("ner_greedy", "crf"): {"structural": "3", "top1": "top1", "none": "none"},
    ("parser_beam", "seqlabel"): {"structural": "1b", "top1": "top1", "none": "none"},
}


@dataclass
class TeacherPotentials:
    """A padded batch of teacher outputs.

    kind (str): "crf" or "maxent".
    emissions (Tensor): [B, N, L] CRF emissions or MaxEnt logits.
    lengths (LongTensor): [B].
    transitions, start, end (Tensor | None): [L, L], [L], [L] for a CRF teacher.
    mask (TransitionMask | None): sequences the teacher (or the constrained student) allows.
    """

    kind: str
    emissions: torch.Tensor
    lengths: torch.Tensor
    transitions: Optional[torch.Tensor] = None
    start: Optional[torch.Tensor] = None
    end: Optional[torch.Tensor] = None
    mask: Optional[TransitionMask] = None

    def top1(self) -> torch.Tensor:
        """The teacher's best sequence [B, N] (-1 past each length): Viterbi for a CRF, and for
        MaxEnt the per-token argmax, or the best sequence the mask allows when there is one."""
        if self.kind == "maxent" and self.mask is None:
            best = self.emissions.argmax(-1)
            keep = torch.arange(best.shape[1], device=best.device) < self.lengths.unsqueeze(1)
            return best.masked_fill(~keep, -1)
        L = self.emissions.shape[-1]
        transitions = self.transitions if self.transitions is not None else self.emissions.new_zeros(L, L)
        return LinearChainCRF(self.emissions, transitions, self.lengths, self.start, self.end, mask=self.mask).argmax


def pad_emissions(arrays: Sequence[Dict[str, numpy.ndarray]], n_tags: int,
                  device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Cached per-sentence tagger outputs ({"emissions": [n, L]}) as one zero-padded batch.

    RETURNS (Tuple[Tensor, LongTensor]): emissions [B, N, L] (float32) and lengths [B].
    """
    return pad_outputs(arrays, "emissions", lambda n: (n, n_tags), device=device)


def resolve_case(teacher: str, student: str, objective: str) -> str:
    """The paper's case for this pair and objective, or a coded error saying what is supported."""
    check_objective(objective)
    cases = _CASES.get((teacher, student))
    if cases is None or objective not in cases:
        supported = ", ".join(sorted(cases)) if cases else "none"
        raise ValueError(Errors.E166.format(teacher=teacher, student=student, objective=objective, supported=supported))
    return cases[objective]


def resolve_temperature_mode(mode: str, student: str) -> str:
    """auto = global for CRF students (local tempering makes their loss unbounded below,
    docs/algorithms.md §2.5) and local for MaxEnt and sequence-labelling students (paper parity; each
    slot is independent)."""
    if mode not in TEMPERATURE_MODES:
        raise ValueError(Errors.E167.format(value=mode, options=", ".join(TEMPERATURE_MODES)))
    if mode == "auto":
        return "global" if student == "crf" else "local"
    return mode


def make_targets(teacher, student: str, objective: str, *, temperature: float, mode: str,
                 space=None, scheme: Optional[str] = None, with_lost: bool = False) -> KDTargets:
    """Teacher targets in the student's substructure space at temperature T, with the
    teacher's Top-1 structure (under the mask, when there is one) as pseudo-labels.

    teacher (TeacherPotentials | ParserPotentials | SpanPotentials | NERBeamPotentials): a padded
        teacher batch.
    space: the student's label space where the teacher's structure differs from the student's:
        a `LabelSpace` for a sequence-labelling parser, the tag list for a span or spaCy NER teacher.
    scheme (Optional[str]): the student's tag scheme (span and spaCy NER teachers only).
    with_lost (bool): parser teachers: also set `targets.lost` [B, N], the teacher mass the
        student's label vocabulary cannot represent (an exp over every (head, relation) pair).
    """
    case = resolve_case(teacher.kind, student, objective)
    if isinstance(teacher, ParserPotentials):
        targets, _ = parser_targets(teacher, space, temperature=temperature, mode=mode, with_lost=with_lost)
        return targets
    if isinstance(teacher, SpanPotentials):
        return span_targets(teacher, space, scheme, temperature=temperature, mode=mode)
    if isinstance(teacher, NERBeamPotentials):
        return ner_transition_targets(teacher, space, scheme, case=case, temperature=temperature, mode=mode,
                                      pairs=student == "crf" and case == "beam")
    if teacher.kind == "crf" and case != "token":
        # case 1a keeps only expected transition counts of the pairs: exact for a CRF student
        return crf_targets(teacher.emissions, teacher.transitions, teacher.lengths, teacher.start, teacher.end,
                           teacher.mask, temperature=temperature, mode=mode, pairs=(case == "1a"), counts=True)
    # a MaxEnt teacher, or token-level KD from a CRF teacher's emission softmax
    targets = maxent_targets(teacher.emissions, teacher.lengths, temperature=temperature)
    if teacher.kind == "crf" or teacher.mask is not None:
        targets.top1 = teacher.top1()
    return targets
