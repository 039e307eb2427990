"""What KD needs from a teacher component and from a student component, as protocols.

Every skd component that can teach (taggers, parsers, span NER, SenTScore) implements
`KDTeacher`; the students (the skd taggers and the sequence-labelling parser) implement
`KDStudent`. The teacher layer is written against these, never against a component class.
"""
from typing import Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy
import torch
from spacy.tokens import Doc

Arrays = Dict[str, numpy.ndarray]
Words = Tuple[str, ...]


@runtime_checkable
class KDTeacher(Protocol):
    """A component that can teach: its raw outputs per doc, and those outputs as one padded batch.

    kd_kind (str): the structure its outputs describe: crf, maxent, biaffine, mfvi or span.
    """

    kd_kind: str
    name: str

    @property
    def labels(self) -> Tuple[str, ...]: ...

    def teacher_outputs(self, docs: List[Doc]) -> List[Arrays]:
        """Per doc, the float32 arrays the potentials cache keeps (shapes set by the length n)."""
        ...

    def teacher_batch(self, arrays: Sequence[Arrays], device: torch.device):
        """Cached outputs of several sentences, padded once into the kd adapters' potentials
        (TeacherPotentials, ParserPotentials or SpanPotentials)."""
        ...


@runtime_checkable
class KDStudent(Protocol):
    """A component that learns from a teacher's targets (set by structural_kd before its update).

    kd_kind (str): crf, maxent or seqlabel.  cfg (dict): its settings (scheme, constrained, ...).
    """

    kd_kind: str
    name: str
    cfg: Dict

    @property
    def labels(self) -> Tuple[str, ...]: ...

    def kd_space(self, teacher=None):
        """Its target space for a teacher of another structure (tag list or parser LabelSpace)."""
        ...

    def kd_space_key(self) -> str:
        """What, besides the teacher, its targets depend on (part of the cache namespace)."""
        ...

    def teacher_view(self, emissions: torch.Tensor, lengths: torch.Tensor,
                     crf: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
                     teacher_mask=None):
        """A tagger teacher's potentials as this student distils them (its own mask, if any)."""
        ...

    def set_kd_batch(self, batch) -> None: ...
