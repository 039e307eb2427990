"""`skd_span_ner`: biaffine span NER (Yu et al. 2020) writing `doc.ents`, the teacher of case 4.

Every span (i, j) gets a softmax over "no entity" and the entity types; the loss is its
cross-entropy on the gold entities, summed over spans and averaged over docs. Prediction is the
flat greedy decoding of `structs.span.SpanNER.decode`. As a KD teacher it gives each sentence's
span scores [n, n, R+1]; `kd.span_targets` turns them into BIOES marginals for a tagger.
"""
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..errors import Errors
from ..kd.padding import pad_outputs
from ..kd.span_targets import SpanPotentials
from ..models.span import SpanScores
from ..structs._util import log_zero
from ..structs.span import SpanNER
from ._defaults import TOK2VEC_CONFIG
from ._torch_pipe import TorchHeadPipe

DEFAULT_SPAN_NER_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.SpanNER.v1"\nhidden_width = 150\ndropout = 0.2\nnO = null\n'
    + TOK2VEC_CONFIG
)["model"]

# (start, end inclusive, class 1..R): a predicted entity, as structs.span.SpanNER.decode gives it
SpanTriple = Tuple[int, int, int]


@Language.factory(
    "skd_span_ner",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_SPAN_NER_MODEL,
        "max_width": None,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_span_ner(nlp: Language, name: str, model: Model, max_width: Optional[int],
                  scorer: Optional[Callable]) -> "SpanEntityRecognizer":
    """Create a biaffine span NER component.

    model (Model[List[Doc], SpanScores]): e.g. spacy-skd.SpanNER.v1.
    max_width (Optional[int]): longest entity in words; wider spans are left out of the loss,
        never predicted and get no teacher mass. None = no limit.
    scorer (Optional[Callable]): scores doc.ents; spaCy's NER scorer by default.
    """
    return SpanEntityRecognizer(nlp.vocab, model, name, max_width=max_width, scorer=scorer)


class SpanEntityRecognizer(TorchHeadPipe):
    """Softmax over classes per span; flat greedy decoding; span scores as KD teacher outputs.
    Class k >= 1 of the model is labels[k - 1]; class 0 is "no entity"."""

    kd_kind = "span"  # structure kind for KD adapters (case 4: span -> maxent)

    def __init__(self, vocab: Vocab, model: Model, name: str, *, max_width: Optional[int] = None,
                 scorer: Optional[Callable] = None):
        if max_width is not None and (isinstance(max_width, bool) or not isinstance(max_width, int)
                                      or max_width < 1):
            raise ValueError(Errors.E034.format(value=max_width))
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.max_width = max_width
        self.cfg: Dict = {"labels": []}

    def _n_outputs(self) -> int:
        return len(self.labels) + 1  # class 0 is "no entity"

    def _width_error(self, got: int) -> str:
        return Errors.E111.format(got=got, expected=len(self.labels) + 1, name=self.name, labels=list(self.labels))

    def _check_ready(self, action: str) -> None:
        """The head exists once `initialize` (or loading) has built it from the labels."""
        if not self.model.get_ref("head").layers:
            raise ValueError(Errors.E110.format(name=self.name, action=action))

    # -- predict / set_annotations --------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[List[SpanTriple]]:
        """Flat entities per doc: (start, end inclusive, class 1..R), sorted by start."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [[] for _ in docs]
        self._check_ready("used to predict")
        scores = self.model.predict(docs)
        return SpanNER(self._limit_width(scores.scores), scores.lengths).decode()

    def set_annotations(self, docs: Iterable[Doc], spans: List[List[SpanTriple]]) -> None:
        labels = self.labels
        for doc, triples in zip(docs, spans):
            doc.ents = [Span(doc, start, end + 1, label=labels[c - 1]) for start, end, c in triples]

    def _limit_width(self, scores: torch.Tensor) -> torch.Tensor:
        """[B, N, N, C] scores with every entity class of a span wider than `max_width` set to
        log-zero: such spans are never predicted and carry no teacher mass."""
        if self.max_width is None:
            return scores
        pos = torch.arange(scores.shape[1], device=scores.device)
        wide = (pos - pos.unsqueeze(1)) >= self.max_width  # [N(i), N(j)]: j - i + 1 > max_width
        entity = torch.arange(scores.shape[-1], device=scores.device) > 0  # [C]
        return scores.masked_fill(wide[:, :, None] & entity, log_zero(scores.dtype))

    # -- training -------------------------------------------------------------------------------
    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """Learn from a batch of examples with gold entities."""
        examples = list(examples)
        if any(len(eg.predicted) for eg in examples):
            self._check_ready("updated")
        return self._step(examples, lambda scores: self.get_loss(examples, scores), "update", drop=drop,
                          sgd=sgd, losses=losses)

    def get_loss(self, examples: Iterable[Example], scores: SpanScores) -> Tuple[float, Tuple]:
        """Span cross-entropy (`SpanNER.loss`) per doc, summed over spans and averaged over docs.

        Gold entities come from `eg.reference.ents` aligned to the predicted tokens; entities
        that do not align, have a label this component lacks, or are wider than `max_width` are
        dropped (their spans count as "no entity"). A span covering a token without NER
        annotation (missing or misaligned) has no known class and is left out of the loss, so a
        doc with no annotation adds nothing.

        RETURNS (Tuple[float, Tuple[Tensor]]): loss and the gradient for `scores.scores`.
        """
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.get_loss")
        gold, known = self._gold(examples, scores.scores.shape[1])
        unknown_cells = None if known.all() else _touches_unknown(known.to(scores.scores.device))

        def per_doc(live: SpanScores) -> torch.Tensor:
            s = live.scores
            if unknown_cells is not None:
                # class 0 with certainty and no gradient: these cells add exactly 0 to the loss
                certain = s.new_full((s.shape[-1],), log_zero(s.dtype))
                certain[0] = 0.0
                s = torch.where(unknown_cells.unsqueeze(-1), certain, s)
            return SpanNER(s, live.lengths).loss(gold, self.max_width)

        loss, grads = self._loss_and_grads(scores, scores.rebuild, per_doc, len(examples))
        return float(loss), grads

    def _gold(self, examples: List[Example], N: int) -> Tuple[List[List[SpanTriple]], torch.Tensor]:
        """Gold (start, end inclusive, class) per doc in predicted tokens, and [B, N] whether each
        token's NER annotation is known (padding counts as known)."""
        index = {label: k for k, label in enumerate(self.labels, 1)}
        gold = []
        known = torch.ones(len(examples), N, dtype=torch.bool)
        for b, eg in enumerate(examples):
            ents, tags = eg.get_aligned_ents_and_ner()
            known[b, : len(tags)] = torch.tensor([tag is not None and tag != "-" for tag in tags], dtype=torch.bool)
            gold.append([(ent.start, ent.end - 1, index[ent.label_]) for ent in ents if ent.label_ in index
                         and (self.max_width is None or len(ent) <= self.max_width)])
        return gold, known

    # -- as a teacher ---------------------------------------------------------------------------
    def teacher_outputs(self, docs: List[Doc]) -> List[Dict[str, numpy.ndarray]]:
        """Span scores per doc, {"scores": [n, n, R+1] float32} (spans wider than `max_width`
        log-zero for every entity class): the raw outputs the teacher cache keeps."""
        docs = list(docs)
        C = len(self.labels) + 1
        if not any(len(doc) for doc in docs):
            return [{"scores": numpy.zeros((0, 0, C), dtype="float32")} for _ in docs]
        self._check_ready("used as a teacher")
        scores = self._limit_width(self.model.predict(docs).scores).float().cpu().numpy()
        return [{"scores": scores[b, :n, :n].copy()} for b, n in enumerate(len(doc) for doc in docs)]

    def teacher_batch(self, arrays: Sequence[Dict[str, numpy.ndarray]], device: torch.device) -> SpanPotentials:
        """Pad cached `teacher_outputs` into a batch [B, N, N, R+1]; padded cells hold zeros."""
        C = len(self.labels) + 1
        for i, a in enumerate(arrays):
            shape = tuple(numpy.shape(a["scores"]))
            if len(shape) != 3 or shape[0] != shape[1] or shape[2] != C:
                raise ValueError(Errors.E112.format(name=self.name, i=i, shape=shape, classes=C,
                                                    labels=list(self.labels)))
        scores, lengths = pad_outputs(arrays, "scores", lambda n: (n, n, C), device=device)
        return SpanPotentials(scores, lengths, self.labels)


def _touches_unknown(known: torch.Tensor) -> torch.Tensor:
    """[B, N] known tokens -> [B, N(i), N(j)] whether span i..j covers an unknown token."""
    unknown = (~known).long().cumsum(1)  # [B, N]: unknown tokens in [0, k]
    before = unknown - (~known).long()  # in [0, k)
    return (unknown.unsqueeze(1) - before.unsqueeze(2)) > 0  # count in [i, j] > 0
