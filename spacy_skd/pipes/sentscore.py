"""`skd_sentscore`: a seq2seq slot-filling/NER teacher decoded with SenTScore (Farina et al. 2023).

The component fine-tunes an encoder-decoder (`spacy-skd.SenTScore.v1`) on SenT' targets through
spaCy's training loop and writes `doc.ents`. As a KD teacher it hands out, for every word, the
log-likelihoods l_i(t) of the sBIO tags along its own greedy prefix (`teacher_outputs`): a
MaxEnt student over the same sBIO tags distils softmax(l_i / T) with the `token` objective.
Weights, tokenizer and tag tokens are made at `initialize` (they depend on the labels and, for a
scratch T5, on the training text) and saved with the pipeline, so loading needs no network.
"""
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy
import srsly
import torch
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span
from spacy.training import Example, validate_examples
from spacy.util import ensure_path
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..errors import Errors, Warnings
from ..kd.adapters import TeacherPotentials, pad_emissions
from ..models.sentscore import (Decoded, SenTScorer, attach_bundle, build_bundle, make_batch, max_window,
                                noisy_history, windows)
from ..structs.tag_schemes import spans_to_tags, tag_set, tags_to_spans

DECODINGS = ("sentscore", "constrained")
SCHEME = "sBIO"

DEFAULT_SENTSCORE_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.SenTScore.v1"\ninit = "minilm"\npath = null\nn_sentinels = 100\n'
)["model"]


@Language.factory(
    "skd_sentscore",
    assigns=["doc.ents", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_SENTSCORE_MODEL,
        "decoding": "sentscore",
        "beam_size": 1,
        "batch_size": 32,
        "history_noise": 0.0,
        "scorer": {"@scorers": "spacy.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_sentscore(nlp: Language, name: str, model: Model, decoding: str, beam_size: int, batch_size: int,
                   history_noise: float, scorer: Optional[Callable]) -> "SenTScoreTagger":
    """Create a SenTScore tagger.

    model (Model): spacy-skd.SenTScore.v1.
    decoding (str): "sentscore" (tag-wise scoring with the closing sentinel) or "constrained"
        (SenT' generation restricted to valid tags, the paper's baseline).
    beam_size (int): K; 1 is greedy (the paper's setting, and what the KD targets use).
    batch_size (int): sentence windows per decoder batch.
    history_noise (float): in training, the probability that a tag the decoder reads as history
        is replaced by a random tag (the targets are untouched); 0 is plain teacher forcing.
    scorer (Optional[Callable]): scores doc.ents; spaCy's NER scorer by default.
    """
    return SenTScoreTagger(nlp.vocab, model, name, decoding=decoding, beam_size=beam_size,
                           batch_size=batch_size, history_noise=history_noise, scorer=scorer)


class SenTScoreTagger(TrainablePipe):
    """Seq2seq tagger over the sBIO tags of its labels; a MaxEnt-like KD teacher."""

    kd_kind = "maxent"  # per-word distributions, like a MaxEnt tagger's softmax

    def __init__(self, vocab: Vocab, model: Model, name: str = "skd_sentscore", *, decoding: str = "sentscore",
                 beam_size: int = 1, batch_size: int = 32, history_noise: float = 0.0,
                 scorer: Optional[Callable] = None):
        if decoding not in DECODINGS:
            raise ValueError(Errors.E137.format(decoding=decoding, decodings=DECODINGS))
        if beam_size < 1 or batch_size < 1:
            raise ValueError(Errors.E132.format(beam_size=beam_size, batch_size=batch_size))
        if not 0.0 <= history_noise < 1.0:
            raise ValueError(Errors.E143.format(value=history_noise))
        self.history_noise = float(history_noise)
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        # decoding settings are not saved in cfg: the factory's config decides them on load
        self.cfg: Dict = {"labels": [], "scheme": SCHEME}
        self.decoding, self.beam_size, self.batch_size = decoding, beam_size, batch_size
        self._scorer: Optional[SenTScorer] = None

    # -- labels ---------------------------------------------------------------------------------
    @property
    def labels(self) -> tuple:
        return tuple(self.cfg["labels"])

    @property
    def tags(self) -> List[str]:
        """sBIO tags: "O", "I", then the sorted labels (the column order of the scores)."""
        return tag_set(self.labels, SCHEME)

    def add_label(self, label: str) -> int:
        if self._scorer is not None:
            raise ValueError(Errors.E138.format(name=self.name, label=label))
        if label in self.cfg["labels"]:
            return 0
        tag_set([label], SCHEME)  # validates the label
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        return 1

    # -- initialize -----------------------------------------------------------------------------
    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None,
                   labels: Optional[Sequence[str]] = None) -> None:
        """Collect the labels, then build the model and tokenizer with one token per sentinel
        and per tag (for a scratch T5 the tokenizer is trained on the examples' text)."""
        examples = list(get_examples())
        validate_examples(examples, "SenTScoreTagger.initialize")
        found = labels if labels is not None else {ent.label_ for eg in examples for ent in eg.reference.ents}
        for label in found:
            self.add_label(label)
        if not self.labels:
            raise ValueError(Errors.E139.format(name=self.name))
        texts = [" ".join(t.text for t in eg.predicted) for eg in examples if len(eg.predicted)]
        self._attach(build_bundle(self.model.attrs["spec"], texts, self.tags))

    def _attach(self, bundle) -> None:
        attach_bundle(self.model, bundle)
        self._scorer = SenTScorer(bundle, self.tags)

    @property
    def sentscorer(self) -> SenTScorer:
        """The decoder over the trained model (not spaCy's metric `scorer`)."""
        if self._scorer is None:
            raise ValueError(Errors.E136)
        return self._scorer

    # -- predict / set_annotations --------------------------------------------------------------
    def predict(self, docs: Iterable[Doc]) -> List[Decoded]:
        """Best sBIO tags and the per-word tag log-likelihoods l_i(t) [n, |T|] of every doc."""
        docs = list(docs)
        return self.sentscorer.decode([[t.text for t in doc] for doc in docs], beam_size=self.beam_size,
                                   closing=self.decoding == "sentscore", batch_size=self.batch_size)

    def set_annotations(self, docs: Iterable[Doc], decoded: List[Decoded]) -> None:
        tags = self.tags
        for doc, result in zip(docs, decoded):
            spans = tags_to_spans([tags[i] for i in result.tags], SCHEME)
            doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]

    # -- training -------------------------------------------------------------------------------
    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        """One step of the language-modelling loss on the gold SenT' targets. Dropout comes from
        the model's own config; unlabeled examples (no gold entities) are skipped."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "SenTScoreTagger.update")
        bundle = self.sentscorer.bundle  # raises if not initialized
        words, targets = [], []
        for eg in examples:
            tags = self._gold_tags(eg)
            if tags is None:
                continue
            for start, end in windows(len(tags), max_window(bundle)):
                words.append([t.text for t in eg.predicted[start:end]])
                targets.append(tags[start:end])
        if not words:
            return losses
        batch = noisy_history(make_batch(bundle, words, targets), bundle.tag_ids.values(), self.history_noise)
        loss, backprop = self.model.begin_update(batch)
        backprop(1.0)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _gold_tags(self, eg: Example) -> Optional[List[str]]:
        """The example's sBIO tags on its predicted tokens, or None if it has no full annotation
        (unlabeled text, or tokens the gold does not align to)."""
        if eg.reference.user_data.get("skd_unlabeled") or not len(eg.predicted):
            return None
        biluo = eg.get_aligned_ner()
        if any(tag is None or tag == "-" for tag in biluo):
            return None
        spans = tags_to_spans(biluo, "BILUO")
        unknown = sorted({label for _, _, label in spans} - set(self.labels))
        if unknown:
            warnings.warn(Warnings.W153.format(name=self.name, labels=unknown))
            spans = [s for s in spans if s[2] in self.labels]
        return spans_to_tags(spans, len(biluo), SCHEME)

    def get_loss(self, examples, scores):
        raise NotImplementedError(Errors.E140.format(name=self.name))

    # -- as a KD teacher ------------------------------------------------------------------------
    def teacher_outputs(self, docs: List[Doc]) -> List[Dict[str, numpy.ndarray]]:
        """l_i(t) [n, |T|] per doc along the greedy prefix: softmax over t is the teacher's
        per-word distribution, its argmax the greedy (K = 1) tags."""
        decoded = self.sentscorer.decode([[t.text for t in doc] for doc in docs], beam_size=1, closing=True,
                                      batch_size=self.batch_size)
        return [{"emissions": d.scores.astype("float32")} for d in decoded]

    def teacher_batch(self, arrays: Sequence[Dict[str, numpy.ndarray]], device: torch.device) -> TeacherPotentials:
        """Pad cached `teacher_outputs` into MaxEnt potentials [B, N, |T|]."""
        T = len(self.tags)
        for i, a in enumerate(arrays):
            shape = tuple(numpy.shape(a["emissions"]))
            if len(shape) != 2 or shape[1] != T:
                raise ValueError(Errors.E141.format(name=self.name, i=i, shape=shape, n_tags=T))
        return TeacherPotentials("maxent", *pad_emissions(arrays, T, device))

    # -- serialization --------------------------------------------------------------------------
    def to_disk(self, path, *, exclude=tuple()) -> None:
        from ..models.seq2seq import save_bundle

        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)
        if self._scorer is not None:
            save_bundle(self._scorer.bundle, path / "seq2seq")

    def from_disk(self, path, *, exclude=tuple()) -> "SenTScoreTagger":
        from ..models.seq2seq import load_bundle

        path = ensure_path(path)
        self.cfg.update(srsly.read_json(path / "cfg"))
        if (path / "seq2seq").exists():
            self._attach(load_bundle(path / "seq2seq"))
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "SenTScoreTagger":
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in srsly.msgpack_loads(bytes_data).items():
                target = Path(tmp) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            self.from_disk(tmp, exclude=exclude)
        return self
