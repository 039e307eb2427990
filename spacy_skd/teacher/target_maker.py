"""`TargetMaker`: a teacher's cached potentials -> `KDTargets` for one student.

It fixes everything the targets depend on besides the teacher's outputs (the KD case of the
pair, the objective, temperature and mode, the student's target space) and checks at
construction that the pair can be distilled at all, so a bad pairing fails before any teacher
runs. `structural_kd` and `skd annotate --store targets` both make targets through it.
"""
from typing import Iterable, List, Optional, Sequence

import torch

from ..errors import Errors
from ..kd.adapters import TeacherPotentials, make_targets, resolve_case, resolve_temperature_mode
from ..kd.parser_targets import pack_targets, unpack_targets
from ..kd.targets import KDTargets
from .caches import targets_space
from .protocol import Arrays, KDStudent, KDTeacher
from .runner import output_width, padded_size, plan_batches

PARSER_KINDS = ("biaffine", "mfvi", "parser_beam")
# Padded values per group when targets are made sentence by sentence (`make_each`): 4 MiB of
# float32. A parser teacher's [B, N, N+1, R] relation scores padded to the longest sentence of a
# random batch are mostly padding; groups of similar length keep that waste, and the step, small.
TARGET_GROUP_COST = 2**20
# The stored layout of a sequence-labelling parser's targets (`kd.parser_targets.pack_targets`),
# part of their cache namespace: a new layout gets a new folder instead of misreading an old one.
PACKED_LAYOUT = "support1"


class TargetMaker:
    """Targets of `teacher` for `student` at one objective, temperature and mode.

    teacher (KDTeacher): the teacher component (it pads its cached outputs: `teacher_batch`).
    student (KDStudent): the student component.
    objective (str): structural | posterior | token | top1 | none.
    temperature (float): T > 0.
    temperature_mode (str): auto | local | global (auto: global for CRF students, local otherwise).

    Attributes: case (the paper's case for the pair), mode (the resolved temperature mode).
    Targets are made once per sentence and stored (`to_arrays`, `from_arrays`); a training step
    only reads them. A sequence-labelling parser's are stored on its label support only
    (`PACKED_LAYOUT`), with the teacher mass its vocabulary cannot carry (`KDTargets.lost`).
    """

    def __init__(self, teacher: KDTeacher, student: KDStudent, objective: str, *, temperature: float,
                 temperature_mode: str = "auto") -> None:
        self.teacher, self.student = teacher, student
        self.objective = objective
        self.temperature = float(temperature)
        self.case = resolve_case(teacher.kd_kind, student.kd_kind, objective)
        self._check_pair()
        self.mode = resolve_temperature_mode(temperature_mode, student.kd_kind)

    @property
    def packed(self) -> bool:
        """Whether the targets are stored on the student's label support (`PACKED_LAYOUT`)."""
        return self.student.kd_kind == "seqlabel"

    @property
    def space(self) -> str:
        """The cache namespace of these targets (read when the student has its labels: a
        sequence-labelling parser's space depends on them)."""
        space = targets_space(self.teacher.kd_kind, self.student.kd_kind, self.case, self.student.kd_space_key())
        return f"{space}:{PACKED_LAYOUT}" if self.packed else space

    def to_arrays(self, item: KDTargets) -> Arrays:
        """One sentence's targets (B = 1) as the cache stores them."""
        if self.packed:
            return pack_targets(item, self.student.kd_space(self.teacher))
        return item.to_arrays()

    def from_arrays(self, arrays: Arrays) -> KDTargets:
        """The inverse of `to_arrays`: a B = 1 item (E370 for packed arrays of another label space)."""
        if self.packed:
            return self.stack([arrays], [len(arrays.get("top1", ()))])
        return KDTargets.from_arrays(arrays, temperature=self.temperature, mode=self.mode)

    def stack(self, entries: Sequence[Optional[Arrays]], lengths: Sequence[int]) -> KDTargets:
        """Stored entries of a batch (`to_arrays`; None for a sentence without targets: no mass, no
        Top-1, its KD term to be masked) as one padded KDTargets. `lengths`: the words of each
        sentence. At least one entry must be given. Packed targets go straight into the batch."""
        if self.packed:
            return unpack_targets(entries, lengths, self.student.kd_space(self.teacher),
                                  temperature=self.temperature, mode=self.mode)
        items = [None if arrays is None else KDTargets.from_arrays(arrays, temperature=self.temperature,
                                                                   mode=self.mode) for arrays in entries]
        template = next(item for item in items if item is not None)
        return KDTargets.stack([item if item is not None else template.blank(n) for item, n in zip(items, lengths)])

    def check_labels(self, extra_student: Iterable[str] = ()) -> None:
        """Teacher and student must tag the same labels (E175): KD compares distributions over
        one tag set. A sequence-labelling parser's joint labels may only use relations the
        teacher predicts (E183). `extra_student`: labels of the student's training data."""
        teacher, student = self.teacher, self.student
        if student.kd_kind == "seqlabel":
            if teacher.kd_kind == "parser_beam":  # a spaCy parser calls every root "ROOT"
                teacher.match_root(student.relations)
            missing = sorted(set(student.relations) - set(teacher.labels))
            if missing:
                raise ValueError(Errors.E183.format(student=student.name, teacher=teacher.name, missing=missing))
            return
        only_teacher = sorted(set(teacher.labels) - set(student.labels))
        only_student = sorted((set(student.labels) | set(extra_student)) - set(teacher.labels))
        if only_teacher or only_student:
            raise ValueError(Errors.E175.format(teacher=teacher.name, student=student.name,
                                                only_teacher=only_teacher or "none",
                                                only_student=only_student or "none"))

    def make(self, potentials: Sequence[Arrays], *, device: torch.device) -> KDTargets:
        """The targets of a batch of sentences from their cached potentials (one dict each), as
        they are stored: with the teacher's Top-1 and, for parser teachers, `lost` (the teacher
        mass per word the student's label vocabulary cannot represent).

        device (torch.device): where the student's scores live.
        """
        batch = self.teacher.teacher_batch(potentials, device)
        if isinstance(batch, TeacherPotentials):  # a tagger-like teacher, seen through the student
            crf = (batch.transitions, batch.start, batch.end) if batch.transitions is not None else None
            batch = self.student.teacher_view(batch.emissions, batch.lengths, crf, batch.mask)
        return make_targets(batch, self.student.kd_kind, self.objective, temperature=self.temperature,
                            mode=self.mode, space=self.student.kd_space(self.teacher),
                            scheme=self.student.cfg.get("scheme"), with_lost=True)

    def make_each(self, potentials: Sequence[Arrays], lengths: Sequence[int], *, device: torch.device
                  ) -> List[KDTargets]:
        """`make` for each sentence (B = 1 items, in the order given; `lengths`: their tokens),
        computed in groups of similar length whose padded size stays within TARGET_GROUP_COST.
        The same values as one `make` over the whole batch: a sentence's targets depend on its
        own potentials alone."""
        width = output_width(self.teacher)
        groups, alone = plan_batches(lengths, lambda n: padded_size(self.teacher.kd_kind, n, width),
                                     TARGET_GROUP_COST)
        items: List[Optional[KDTargets]] = [None] * len(potentials)
        for group in groups + [[i] for i in alone]:  # a sentence over the bound: a group of its own
            made = self.make([potentials[i] for i in group], device=device)
            for i, item in zip(group, made.split()):
                items[i] = item
        return items

    def _check_pair(self) -> None:
        """Settings of the pair that no target could fix (E321, E182, E173, E174)."""
        teacher, student = self.teacher, self.student
        if teacher.kd_kind == "ner_greedy" and self.case == "3" and student.cfg["constrained"]:
            raise ValueError(Errors.E321.format(factory=teacher.factory, teacher=teacher.name, student=student.name))
        if student.kd_kind == "seqlabel" and student.cfg["encoding"] != "offset":
            raise ValueError(Errors.E182.format(encoding=student.cfg["encoding"]))
        teacher_scheme = getattr(teacher, "cfg", {}).get("scheme")
        if teacher_scheme is None:
            return  # a span teacher maps onto the student's scheme; parsers have none
        if teacher_scheme != student.cfg["scheme"]:
            raise ValueError(Errors.E173.format(teacher=teacher_scheme, student=student.cfg["scheme"],
                                                name=student.name))
        if teacher.kd_kind == "maxent" and student.kd_kind == "crf" and student.cfg["constrained"] \
                and self.objective == "structural":
            raise ValueError(Errors.E174.format(student=student.name))
