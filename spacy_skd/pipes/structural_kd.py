"""`structural_kd`: first in a student pipeline, it hands the teacher's targets to the student.

At `initialize` it loads the teacher pipeline (`[initialize.components.kd] teacher`), checks that
teacher and student tag the same label space, and makes the targets of every training sentence
(with a progress bar). In `update` it reads each example's targets and gives them to the student
component, which computes `(1 - lambda) * gold + lambda * KD` in its own single
forward/backward. `__call__` is a no-op: a packaged student runs no KD code and needs no teacher.

The on-disk cache has two levels, both keyed by the teacher's fingerprint and the tokens:
- the teacher's raw potentials (CRF emissions or MaxEnt logits, O(n L) per sentence): the one
  expensive pass, shared by every objective and temperature, so baseline and KD runs share it;
- targets in the student's substructure space at one temperature and mode (unary marginals,
  expected transition counts, start/end, Top-1; a sequence-labelling parser's on its label
  support, with the teacher mass its labels cannot carry), derived from the potentials without
  the teacher and reused in every epoch and run with the same settings: a training step only
  reads them.

The teacher pass is batched by padded size within `max_batch_cost` (`teacher.runner`). A
sentence too long for that bound on its own never reaches the teacher (W340): the student
trains on it without KD, on its gold alone; an unlabeled one, whose gold would be the teacher's
Top-1, adds no loss. With `objective = "none"` the teacher is loaded and checked but runs only
for unlabeled sentences (their Top-1 pseudo-gold): on labelled data it never runs.
"""
import itertools
import math
import os
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy
import torch
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from tqdm import tqdm
from wasabi import msg

from ..errors import Errors, Warnings
from ..kd.batch import KDBatch
from ..kd.targets import KDTargets
from ..teacher.caches import MemoryStore, default_cache_dir, potentials_cache, targets_cache
from ..teacher.runner import DEFAULT_MAX_BATCH_COST, TeacherRunner, check_max_batch_cost
from ..teacher.target_maker import TargetMaker
from ..training.cache import TeacherCache
from ..training.strip_kd import create_strip_kd  # noqa: F401  registers spacy-skd.strip_kd.v1 with the factory
from .kd_placement import check_kd_placement
from .tagger import SequenceTagger

KDWeight = Union[float, Iterable[float]]
Store = Union[TeacherCache, MemoryStore]
LOSS_MIXES = ("interpolate", "add")
# share of the teacher's mass outside a parser student's label vocabulary worth a warning
LOST_MASS_WARN = 0.01
# below it the tempered targets are one-hot in float32 and the T^2-scaled KD term vanishes
MIN_TEMPERATURE = 0.05


@Language.factory(
    "structural_kd",
    default_config={
        "student": "ner",
        "teacher_component": "ner",
        "objective": "structural",
        "temperature": 1.0,
        "temperature_mode": "auto",
        "kd_weight": 1.0,
        "cache": True,
        "batch_size": 64,
        "loss_mix": "interpolate",
        "scale_t2": True,
        "max_batch_cost": DEFAULT_MAX_BATCH_COST,
        "beam_width": None,
        "beam_density": None,
    },
)
def make_structural_kd(nlp: Language, name: str, student: str, teacher_component: str, objective: str,
                       temperature: float, temperature_mode: str, kd_weight: KDWeight, cache: bool,
                       batch_size: int, loss_mix: str, scale_t2: bool,
                       max_batch_cost: int = DEFAULT_MAX_BATCH_COST,
                       beam_width: Optional[int] = None, beam_density: Optional[float] = None) -> "StructuralKD":
    """Create the distillation component.

    student (str): name of the student component in this pipeline.
    teacher_component (str): name of the matching component in the teacher pipeline.
    objective (str): structural | posterior | token | top1 | none.
    temperature (float): finite T >= MIN_TEMPERATURE (0.05); KD terms are scaled by T^2.
    temperature_mode (str): auto | local | global (auto: global for CRF students, local for MaxEnt).
    kd_weight (float | Iterable[float]): lambda, or a schedule such as spacy-skd.teacher_annealing.v1.
    cache (bool): keep teacher outputs on disk across epochs and runs.
    batch_size (int): sentences per teacher batch in the initial teacher pass.
    loss_mix (str): "interpolate": (1 - lambda) * gold + lambda * KD on every example (Wang et al.);
        "add": gold + lambda * KD with the KD term on unlabeled examples only, whose gold is the
        teacher's Top-1 (SenTScore's Eq. 2, lambda = lambda_KL; kd_weight 0 = pseudo-labels only).
    scale_t2 (bool): multiply the KD term by T^2 (default, Hinton et al.); False leaves it out.
    max_batch_cost (int): bound of a teacher batch's padded size, B * padded_size(longest)
        (`teacher.runner.padded_size`: tokens x tags^2 for taggers, tokens^2 x relations for
        biaffine parsers); a sentence over it alone trains without KD (W340).
    beam_width (Optional[int]): the beam a spaCy ner/beam_ner/parser/beam_parser teacher scores
        with (> 1: beam marginals; 1: the greedy path); null = the teacher's own. Other teachers
        ignore it.
    beam_density (Optional[float]): that beam's pruning: an analysis below this share of the
        best one's probability is dropped at each step; null = the teacher's own (spaCy's
        beam_ner: 0.01), 0 keeps all `beam_width` analyses, so the marginals spread wider.
    """
    return StructuralKD(nlp, name, student=student, teacher_component=teacher_component, objective=objective,
                        temperature=temperature, temperature_mode=temperature_mode, kd_weight=kd_weight,
                        cache=cache, batch_size=batch_size, loss_mix=loss_mix, scale_t2=scale_t2,
                        max_batch_cost=max_batch_cost, beam_width=beam_width, beam_density=beam_density)


class StructuralKD(Pipe):
    """Runs (or reads) the teacher and hands targets to the student; inert outside training."""

    def __init__(self, nlp: Language, name: str, *, student: str, teacher_component: str, objective: str,
                 temperature: float, temperature_mode: str, kd_weight: KDWeight, cache: bool, batch_size: int,
                 loss_mix: str = "interpolate", scale_t2: bool = True,
                 max_batch_cost: int = DEFAULT_MAX_BATCH_COST, beam_width: Optional[int] = None,
                 beam_density: Optional[float] = None):
        if not _is_number(temperature) or not MIN_TEMPERATURE <= temperature < math.inf:
            raise ValueError(Errors.E332.format(value=temperature, minimum=MIN_TEMPERATURE))
        if loss_mix not in LOSS_MIXES:
            raise ValueError(Errors.E184.format(value=loss_mix, mixes=LOSS_MIXES))
        self.name = name
        self.nlp = nlp
        self.student_name = student
        self.teacher_component = teacher_component
        self.objective = objective
        self.temperature = float(temperature)
        self.temperature_mode = temperature_mode
        self.use_cache = cache
        self.batch_size = batch_size
        self.loss_mix = loss_mix
        self.scale_t2 = bool(scale_t2)
        self.max_batch_cost = check_max_batch_cost(max_batch_cost)
        self.beam_width = beam_width
        self.beam_density = beam_density
        self._weights = _as_schedule(kd_weight)
        self.teacher: Optional[Language] = None
        self.runner: Optional[TeacherRunner] = None  # the loaded teacher, set at initialize
        self.target_maker: Optional[TargetMaker] = None  # potentials -> this student's targets
        # the teacher's raw potentials and the student's targets: on disk, or in memory
        self.potentials_store: Optional[Store] = None
        self.targets_store: Optional[Store] = None
        self._lost = [0.0, 0]
        self.lost_mass: Optional[float] = None  # parser teachers: mean mass per word outside the vocabulary
        self.too_long: Set[tuple] = set()  # sentences over max_batch_cost alone: no teacher, no KD
        self._unwarned: List[tuple] = []  # of those, the ones no W340 has counted yet

    def __call__(self, doc: Doc) -> Doc:
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        yield from stream

    # -- initialize -----------------------------------------------------------------------------
    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None,
                   teacher: Optional[Union[str, Path, Language]] = None, cache_dir: Optional[str] = None,
                   keep_potentials: bool = True) -> None:
        """Load the teacher, match label spaces, and make the training corpus's targets.

        teacher (str | Path | Language): path to a trained teacher pipeline (or the pipeline).
        cache_dir (Optional[str]): where teacher outputs are kept; default $SKD_CACHE_DIR or
            ~/.cache/spacy-skd.
        keep_potentials (bool): also store the teacher's raw potentials in `cache_dir`; False
            keeps them in memory for this run only and stores the targets alone (what
            `skd annotate --store targets` writes: the student's targets and no more).
        """
        nlp = nlp or self.nlp
        if teacher is None:
            raise ValueError(Errors.E169.format(name=self.name))
        if self.student_name not in nlp.component_names:
            raise ValueError(Errors.E170.format(name=self.name, student=self.student_name, pipes=nlp.pipe_names))
        check_kd_placement(nlp, self.student_name)  # before the student, neither frozen
        self.runner = TeacherRunner(teacher, self.teacher_component, max_batch_cost=self.max_batch_cost,
                                   beam_width=self.beam_width, beam_density=self.beam_density)
        self.teacher = self.runner.nlp
        student = self._get_student(nlp)
        teacher_pipe = self.runner.pipe
        maker = TargetMaker(teacher_pipe, student, self.objective, temperature=self.temperature,
                            temperature_mode=self.temperature_mode)
        if maker.mode == "local" and student.kd_kind == "crf" and teacher_pipe.kd_kind == "crf" \
                and self.objective == "structural" and self.temperature != 1.0:
            warnings.warn(Warnings.W151.format(name=self.name, T=self.temperature))
        if not student.labels:  # runs before the student's own initialize: give it its labels
            # a tagger takes the teacher's entity types; a parser's joint labels come from the trees
            labels = student.labels_in(get_examples) if student.kd_kind == "seqlabel" else teacher_pipe.labels
            for label in labels:
                student.add_label(label)
        gold_labels = set()
        if student.kd_kind != "seqlabel":
            gold_labels = {ent.label_ for eg in get_examples() for ent in eg.reference.ents}
        maker.check_labels(extra_student=gold_labels)
        self._lost = [0.0, 0]  # parser teachers: teacher mass outside the student's vocabulary, words
        self.too_long, self._unwarned = set(), []
        self.close()
        # the sentences whose targets training reads: none of the labelled ones without a KD term
        words = list(dict.fromkeys(_words(eg.predicted) for eg in get_examples() if self._wants_targets(eg)))
        # objective "none" on labelled data reads no targets: no cache folder, no fingerprint
        if self.use_cache and (words or self.objective != "none"):
            directory = Path(cache_dir) if cache_dir else default_cache_dir()
            fingerprint = self.runner.fingerprint
            # as `skd annotate` writes them
            self.potentials_store = potentials_cache(directory, fingerprint, teacher_pipe.kd_kind) \
                if keep_potentials else MemoryStore()
            self.targets_store = targets_cache(directory, fingerprint, maker.space, self.temperature, maker.mode)
        else:
            self.potentials_store, self.targets_store = MemoryStore(), MemoryStore()
        self.target_maker = maker
        self._prepare_corpus(words)
        self._warn_too_long()
        if self._lost[1]:
            lost = self._lost[0] / self._lost[1]
            self.lost_mass = lost
            if lost > LOST_MASS_WARN:
                warnings.warn(Warnings.W152.format(name=self.name, student=self.student_name, mass=lost))
            else:
                msg.info(f"[{self.name}] teacher mass outside the student's label vocabulary: {lost:.3%} per word")

    def close(self) -> None:
        """Close the caches opened at initialize (their entries stay on disk) and drop them."""
        for store in (self.potentials_store, self.targets_store):
            if store is not None:
                store.close()
        self.potentials_store = self.targets_store = None

    # -- update ---------------------------------------------------------------------------------
    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Give the student this batch's teacher targets and the current KD weight."""
        if losses is None:
            losses = {}
        examples = list(examples)
        validate_examples(examples, "StructuralKD.update")
        if self.teacher is None:
            raise ValueError(Errors.E169.format(name=self.name))
        weight = next(self._weights)
        student = self._get_student(self.nlp)
        self.target_maker.check_labels()
        losses.setdefault(self.name, 0.0)
        unlabeled = torch.tensor([bool(eg.reference.user_data.get("skd_unlabeled")) for eg in examples])
        words = [_words(eg.predicted) for eg in examples]
        wanted = [i for i, eg in enumerate(examples) if self._wants_targets(eg)]
        entries: List[Optional[Dict[str, numpy.ndarray]]] = [None] * len(examples)
        for i, arrays in zip(wanted, self._entries_for([words[i] for i in wanted])):
            entries[i] = arrays
        self._warn_too_long()
        if all(arrays is None for arrays in entries):  # no sentence of the batch has targets: gold only
            student.set_kd_batch(None)
            return losses
        taught = torch.tensor([arrays is not None for arrays in entries])
        # a sentence without targets has no mass in the batch, its KD term masked by `taught`
        targets = self.target_maker.stack(entries, [len(w) for w in words])
        student.set_kd_batch(KDBatch(
            examples=[id(eg) for eg in examples], targets=targets, objective=self.objective,
            weight=float(weight),
            temperature=self.temperature, unlabeled=unlabeled, mix=self.loss_mix, scale_t2=self.scale_t2,
            taught=taught,
        ))
        return losses

    def _wants_targets(self, eg: Example) -> bool:
        """Whether training reads this example's targets: always with a KD term; with objective
        "none" only for an unlabeled example (its gold is the teacher's Top-1)."""
        return self.objective != "none" or bool(eg.reference.user_data.get("skd_unlabeled"))

    # -- teacher and cache ----------------------------------------------------------------------
    def targets_for(self, batch: Sequence[tuple]) -> List[Optional[KDTargets]]:
        """Targets (B = 1 items) for each sentence: stored ones are read; the rest are made from
        cached potentials (running the teacher only for sentences it has never seen) and stored;
        None for a sentence too long for `max_batch_cost` alone."""
        return [None if arrays is None else self.target_maker.from_arrays(arrays)
                for arrays in self._entries_for(batch)]

    def _entries_for(self, batch: Sequence[tuple]) -> List[Optional[Dict[str, numpy.ndarray]]]:
        """`targets_for` as the stored arrays, which `TargetMaker.stack` turns into a batch."""
        found = self.targets_store.get_many(batch)
        missing = list(dict.fromkeys(w for w, hit in zip(batch, found) if hit is None and w not in self.too_long))
        made: Dict[tuple, Dict[str, numpy.ndarray]] = {}
        for chunk, arrays in self._make_targets(missing):
            made.update(zip(chunk, arrays))
        return [hit if hit is not None else made.get(w) for w, hit in zip(batch, found)]

    def _prepare_corpus(self, words: Sequence[tuple]) -> None:
        """The pass at initialize, with a progress bar: make and store the targets of every
        sentence without stored ones (running the teacher over those it has never seen), and
        count the teacher mass the student's labels cannot take (parsers: stored with the
        targets, so a run on stored targets reports it too). Chunk by chunk, keeping nothing: a
        parser's potentials for a corpus with unlabeled text take more memory than the machine has."""
        with tqdm(total=len(words), desc=f"[{self.name}] teacher targets", unit="sent", disable=None) as bar:
            for start in range(0, len(words), self.batch_size):
                chunk = words[start : start + self.batch_size]
                missing = []
                for w, hit in zip(chunk, self.targets_store.get_many(chunk)):
                    if hit is None:
                        missing.append(w)
                    else:
                        self._count_lost(hit)
                for _, arrays in self._make_targets(missing):
                    for entry in arrays:
                        self._count_lost(entry)
                bar.update(len(chunk))

    def _make_targets(self, missing: Sequence[tuple]) -> Iterator[Tuple[List[tuple], List[Dict[str, numpy.ndarray]]]]:
        """(sentences, their stored target arrays) per chunk of at most `batch_size` distinct
        sentences within `max_batch_cost`, made from the cached potentials chunk by chunk (the
        teacher runs for the unseen ones). Sentences too long for the bound alone join `too_long`."""
        maker = self.target_maker
        device = student_device(maker.student) if missing else None
        chunks, too_long = self.runner.plan(missing, max_count=self.batch_size)
        for i in too_long:
            self.too_long.add(missing[i])
            self._unwarned.append(missing[i])
        for indices in chunks:
            chunk = [missing[i] for i in indices]
            potentials = list(self.potentials_store.get_many(chunk))
            todo = [i for i, found in enumerate(potentials) if found is None]
            if todo:
                outputs = self.runner([chunk[i] for i in todo])
                self.potentials_store.put_many([chunk[i] for i in todo], outputs)
                for i, output in zip(todo, outputs):
                    potentials[i] = output
            targets = maker.make_each(potentials, [len(words) for words in chunk], device=device)
            arrays = [maker.to_arrays(item) for item in targets]
            self.targets_store.put_many(chunk, arrays)
            yield chunk, arrays

    def _warn_too_long(self) -> None:
        """W340 counting the sentences found too long since the last warning."""
        if self._unwarned:
            warnings.warn(Warnings.W340.format(name=self.name, **self.runner.too_long(self._unwarned)))
            self._unwarned = []

    def _count_lost(self, arrays: Dict[str, numpy.ndarray]) -> None:
        """Add a sentence's stored `lost` mass (parser teachers; [n], one value per word)."""
        lost = arrays.get("lost")
        if lost is not None:
            self._lost[0] += float(lost.sum())
            self._lost[1] += len(lost)

    def _get_student(self, nlp: Language) -> SequenceTagger:
        if self.student_name not in nlp.component_names:
            raise ValueError(Errors.E170.format(name=self.name, student=self.student_name, pipes=nlp.pipe_names))
        student = nlp.get_pipe(self.student_name)
        if not isinstance(student, SequenceTagger):
            raise ValueError(Errors.E171.format(student=self.student_name, type=type(student).__name__))
        return student


def student_device(student: SequenceTagger) -> torch.device:
    head = student.model.get_ref("head")
    if head.layers:
        return head.layers[0].shims[0].device
    return torch.device("cpu")


def _as_schedule(kd_weight: KDWeight) -> Iterator[float]:
    """The KD weights, one per update, each checked in [0, 1] when drawn; a schedule's first
    weight is drawn here, so a bad constant fails when the config is loaded."""
    if isinstance(kd_weight, (int, float)):
        if not 0.0 <= kd_weight <= 1.0:
            raise ValueError(Errors.E178.format(value=kd_weight))
        return _constant(float(kd_weight))
    weights = _checked_weights(iter(kd_weight))
    return itertools.chain([next(weights)], weights)


def _checked_weights(weights: Iterator[float]) -> Iterator[float]:
    for step, weight in enumerate(weights):
        if not _is_number(weight) or not 0.0 <= weight <= 1.0:
            raise ValueError(Errors.E333.format(value=weight, step=step))
        yield float(weight)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _constant(value: float) -> Iterator[float]:
    while True:
        yield value


def _words(doc: Doc) -> tuple:
    return tuple(token.text for token in doc)
