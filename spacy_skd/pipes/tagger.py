"""Shared anatomy of the sequence-tagging components (`skd_crf_tagger`, `skd_maxent_tagger`).

Both write `doc.ents` from a tag sequence in a chosen scheme (BIOES by default). Labels are
entity types; the tag inventory is derived from them and the scheme, and both live in `cfg`.
Gold is read as a *partial* annotation: each token either has a known tag or is open (missing
or misaligned), and the loss is -log p(sequence agrees with the known tags), exact for the CRF
and per-token for MaxEnt. Subclasses say how to score (`_log_likelihood`) and decode.
"""
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Model

from ..errors import Errors
from ..kd.adapters import TeacherPotentials, make_targets, pad_emissions, resolve_case, resolve_temperature_mode
from ..kd.batch import KDBatch
from ..kd.objectives import get_objective
from ..models.tagger import TaggerScores
from ..structs.chain import TransitionMask
from ..structs.tag_schemes import allowed_transitions, check_scheme, spans_to_tags, tag_set, tags_to_spans
from ._torch_pipe import TorchHeadPipe
from .kd_placement import check_kd_placement


class SequenceTagger(TorchHeadPipe):
    """Base class: labels, gold tags, annotations, loss plumbing and (de)serialization."""

    kd_kind: str = ""  # structure kind for KD adapters: "crf", "maxent" or "seqlabel"
    kd_structure: str = ""  # the structure the KD losses see: "crf" or "maxent"
    factory_settings = ("constrained",)  # a decoding choice: a load-time override wins

    def __init__(self, vocab: Vocab, model: Model, name: str, *, scheme: str, constrained: bool,
                 scorer: Optional[Callable] = None):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {"labels": [], "scheme": check_scheme(scheme), "constrained": constrained}
        self._tag_cache: Optional[Tuple[Tuple[str, ...], List[str]]] = None
        self._kd: Optional[KDBatch] = None

    # -- labels and tags ------------------------------------------------------------------------
    @property
    def tags(self) -> List[str]:
        """Tag inventory, e.g. O, B-LOC, I-LOC, E-LOC, S-LOC, ... for BIOES."""
        key = (self.labels, self.cfg["scheme"])
        if self._tag_cache is None or self._tag_cache[0] != key:
            self._tag_cache = (key, tag_set(self.labels, self.cfg["scheme"]))
        return self._tag_cache[1]

    def transition_mask(self, device: torch.device) -> Optional[TransitionMask]:
        """Sequences the scheme allows (e.g. no O -> I-PER in BIOES), or None if unconstrained."""
        if not self.cfg["constrained"]:
            return None
        start, trans, end = allowed_transitions(self.tags, self.cfg["scheme"])
        return TransitionMask(start.to(device), trans.to(device), end.to(device))

    # -- initialize -----------------------------------------------------------------------------
    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp=None,
                   labels: Optional[Sequence[str]] = None) -> None:
        """As TorchHeadPipe.initialize; first refuses a KD component placed where it could not
        reach this student (after it, or frozen: E300, E301)."""
        if nlp is not None:
            check_kd_placement(nlp, self.name)
        super().initialize(get_examples, nlp=nlp, labels=labels)

    def _n_outputs(self) -> int:
        return len(self.tags)

    def _width_error(self, got: int) -> str:
        return Errors.E103.format(got=got, expected=len(self.tags), name=self.name, scheme=self.cfg["scheme"],
                                  labels=list(self.labels))

    # -- predict / set_annotations --------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[List[int]]:
        """Best tag indices per doc."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        scores = self.model.predict(docs)
        with torch.no_grad():
            best = self._decode(scores)  # [B, N]
        return [row[: len(doc)] for row, doc in zip(best.tolist(), docs)]

    def set_annotations(self, docs: Iterable[Doc], tag_ids: List[List[int]]) -> None:
        tags = self.tags
        scheme = self.cfg["scheme"]
        for doc, ids in zip(docs, tag_ids):
            spans = tags_to_spans([tags[i] for i in ids], scheme)
            doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]

    # -- training -------------------------------------------------------------------------------
    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Learn from a batch: gold NLL, plus KD when structural_kd handed over targets."""
        examples = list(examples)
        try:
            return self._step(examples, lambda scores: self.get_loss(examples, scores), "update",
                              drop=drop, sgd=sgd, losses=losses)
        finally:
            self._kd = None  # targets belong to this batch only, even one skipped as empty

    def set_kd_batch(self, batch: Optional[KDBatch]) -> None:
        """Teacher targets for the next `update` (set by the structural_kd component)."""
        self._kd = batch

    def get_loss(self, examples: Iterable[Example], scores: TaggerScores) -> Tuple[float, Tuple]:
        """(1 - lambda) * gold NLL + lambda * KD per doc, summed over tokens and averaged over docs
        (the sentence-level reduction of the reference implementations). Without a KD batch it
        is the plain gold NLL. Unlabeled examples take the teacher's Top-1 as their gold. With
        the KD batch's mix "add": gold NLL + lambda * KD, the KD term on unlabeled docs only.

        RETURNS (Tuple[float, Tuple[Tensor, ...]]): loss and gradients for `scores.potentials`.
        """
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.get_loss")
        kd = self._kd
        if kd is not None and not kd.matches(examples):  # never drop the teacher silently
            raise ValueError(Errors.E302.format(name=self.name, n_kd=len(kd.examples), n=len(examples)))
        device = scores.emissions.device
        allowed = self._gold_allowed(examples, scores.emissions.shape, device)
        if kd is not None:
            targets = kd.targets.to(device).pad_to(scores.emissions.shape[1])
            if kd.unlabeled.any():  # their gold is the teacher's Top-1
                top1 = self._one_hot(targets.top1, scores.emissions.shape)
                allowed = torch.where(kd.unlabeled.to(device)[:, None, None], top1, allowed)

        def per_doc(live: TaggerScores) -> torch.Tensor:
            gold = -self._log_likelihood(live, allowed)  # [B]
            if kd is None or kd.objective == "none":
                return gold
            term = self._kd_term(live, targets, kd.objective, kd.temperature)
            if not kd.scale_t2 and kd.objective != "top1":
                term = term / (kd.temperature * kd.temperature)
            weight = kd.kd_weights().to(term.device, term.dtype)  # [B]; 0 without teacher targets
            if kd.mix == "add":
                return gold + weight * term * kd.unlabeled.to(term.device, term.dtype)
            return (1.0 - weight) * gold + weight * term

        loss, grads = self._tagger_loss_and_grads(scores, per_doc, len(examples))
        return float(loss), grads

    def _tagger_loss_and_grads(self, scores: TaggerScores, per_doc: Callable[[TaggerScores], torch.Tensor],
                               n_docs: int) -> Tuple[torch.Tensor, Tuple]:
        """`_loss_and_grads` for tagger scores (emissions first, then any CRF scores)."""
        return self._loss_and_grads(scores, lambda p: TaggerScores(p[0], scores.lengths, *p[1:]), per_doc, n_docs)

    def _kd_term(self, live: TaggerScores, targets, objective: str, temperature: float) -> torch.Tensor:
        """The KD loss per doc [B]: NLL of the teacher's Top-1 for `top1`, else the objective."""
        if objective == "top1":
            return -self._log_likelihood(live, self._one_hot(targets.top1, live.emissions.shape))
        return self._kd_loss(live, targets, get_objective(objective, self.kd_structure or self.kd_kind), temperature)

    @staticmethod
    def _one_hot(tags: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """[B, N] tag ids (-1 = padding) -> [B, N, L] bool, all-True on padding."""
        B, N, L = shape
        onehot = torch.nn.functional.one_hot(tags.clamp(min=0), L).bool()
        return onehot | (tags < 0).unsqueeze(-1)

    def _gold_allowed(self, examples: List[Example], shape: torch.Size, device: torch.device) -> torch.Tensor:
        """[B, N, L] bool: the gold tag where known, every tag where the token is unannotated
        or misaligned (the loss then marginalises over it)."""
        B, N, L = shape
        ids = torch.full((B, N), -1, dtype=torch.long)
        index = {tag: i for i, tag in enumerate(self.tags)}
        scheme = self.cfg["scheme"]
        for b, eg in enumerate(examples):
            biluo = eg.get_aligned_ner()
            if not biluo:
                continue
            known = [t is not None and t != "-" for t in biluo]
            spans = tags_to_spans([t if k else "O" for t, k in zip(biluo, known)], "BILUO")
            # unknown labels (not in the component) and unannotated tokens stay open (-1)
            row = [index.get(tag, -1) if k else -1
                   for tag, k in zip(spans_to_tags(spans, len(biluo), scheme), known)]
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        return self._one_hot(ids.to(device), shape)

    # -- subclass hooks -------------------------------------------------------------------------
    def _log_likelihood(self, scores: TaggerScores, allowed: torch.Tensor) -> torch.Tensor:
        """log p(tags agree with `allowed`) per doc [B]; differentiable in `scores`."""
        raise NotImplementedError

    def _decode(self, scores: TaggerScores) -> torch.Tensor:
        """Best tag index per token [B, N]."""
        raise NotImplementedError

    def _kd_loss(self, scores: TaggerScores, targets, loss: Callable, temperature: float) -> torch.Tensor:
        """The KD objective `loss` per doc [B], called with this structure's potentials."""
        raise NotImplementedError

    def crf_parameters(self) -> Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(transitions, start, end) of a CRF, detached; None for a MaxEnt tagger."""
        return None

    # -- teachers -------------------------------------------------------------------------------
    def teacher_outputs(self, docs: List[Doc]) -> List[Dict[str, numpy.ndarray]]:
        """This tagger as a KD teacher: its emissions (CRF) or logits (MaxEnt) per doc, [n, L]
        float32, the raw outputs the teacher cache keeps. CRF scores come from the live pipe."""
        scores = self.model.predict(docs)
        emissions = scores.emissions.float().cpu().numpy()
        return [{"emissions": emissions[b, : len(doc)].copy()} for b, doc in enumerate(docs)]

    def teacher_batch(self, arrays: Sequence[Dict[str, numpy.ndarray]], device: torch.device) -> TeacherPotentials:
        """Cached `teacher_outputs` padded into this tagger's potentials: the emissions, a CRF's
        live transition scores, and its own transition mask (a student may replace it:
        `teacher_view`)."""
        emissions, lengths = pad_emissions(arrays, len(self.tags), device)
        crf = self.crf_parameters()
        mask = self.transition_mask(device)
        if crf is None:
            return TeacherPotentials("maxent", emissions, lengths, mask=mask)
        transitions, start, end = (t.to(device) for t in crf)
        return TeacherPotentials("crf", emissions, lengths, transitions, start, end, mask)

    def kd_space(self, teacher=None) -> List[str]:
        """This student's target space for teachers of another structure (a span teacher): its tags."""
        return self.tags

    def kd_space_key(self) -> str:
        """What, besides the teacher, the targets of this student depend on (a cache key part)."""
        view = "constrained" if self.kd_kind == "crf" and self.cfg["constrained"] else "free"
        return f"{self.cfg['scheme']}:{view}"

    def teacher_view(self, emissions: torch.Tensor, lengths: torch.Tensor,
                     crf: Optional[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None,
                     teacher_mask: Optional[TransitionMask] = None) -> TeacherPotentials:
        """A teacher's outputs as this student distils them: a CRF teacher (given `crf` =
        transitions, start, end) or a MaxEnt one. A constrained CRF student's mask replaces the
        teacher's, so the teacher never puts mass on sequences the student cannot represent."""
        device = emissions.device
        mask = self.transition_mask(device) if self.kd_kind == "crf" else None
        if mask is None:
            mask = teacher_mask
        if crf is None:
            return TeacherPotentials("maxent", emissions, lengths, mask=mask)
        transitions, start, end = (t.to(device) for t in crf)
        return TeacherPotentials("crf", emissions, lengths, transitions, start, end, mask)

    # -- spaCy v4 distillation API ------------------------------------------------------------------
    @property
    def is_distillable(self) -> bool:
        return True

    def distill(self, teacher_pipe: "SequenceTagger", examples: Iterable[Example], *, drop: float = 0.0,
                sgd=None, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """One step of pure distillation from `teacher_pipe`, with spaCy v4's signature: the
        teacher reads `eg.reference`, the student `eg.predicted` (same tokens), structural KD
        at T = 1. Within spaCy 3.8 training, use the structural_kd component instead."""
        examples = list(examples)

        def loss_of(scores: TaggerScores) -> Tuple[float, Tuple]:
            teacher_scores = teacher_pipe.model.predict([eg.reference for eg in examples])
            return self.get_teacher_student_loss(teacher_scores, scores)

        return self._step(examples, loss_of, "distill", drop=drop, sgd=sgd, losses=losses)

    def get_teacher_student_loss(self, teacher_scores: TaggerScores, student_scores: TaggerScores, *,
                                 objective: str = "structural", temperature: float = 1.0,
                                 temperature_mode: str = "auto") -> Tuple[float, Tuple]:
        """KD loss of the student's scores against a teacher's (spaCy v4's signature, plus the
        objective and temperature), averaged over docs; gradients for `student_scores.potentials`."""
        crf = (teacher_scores.transitions, teacher_scores.start, teacher_scores.end) \
            if teacher_scores.transitions is not None else None
        teacher = self.teacher_view(teacher_scores.emissions, teacher_scores.lengths, crf)
        resolve_case(teacher.kind, self.kd_kind, objective)
        if objective == "none":
            raise ValueError(Errors.E179.format(name=self.name))
        mode = resolve_temperature_mode(temperature_mode, self.kd_kind)
        targets = make_targets(teacher, self.kd_kind, objective, temperature=temperature, mode=mode)
        targets = targets.to(student_scores.emissions.device).pad_to(student_scores.emissions.shape[1])
        loss, grads = self._tagger_loss_and_grads(
            student_scores, lambda live: self._kd_term(live, targets, objective, temperature),
            len(student_scores.lengths))
        return float(loss), grads
