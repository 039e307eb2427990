"""What every skd component with a torch head shares: one forward/backward per batch with a
torch loss, and serialization of `cfg` plus a lazily built head.

The heads are built only once their output width is known (from the labels at `initialize`,
or from `cfg` on load), so loading must size and build the head before reading weights.
"""
from itertools import islice
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import srsly
import torch
from spacy import util
from spacy.pipeline import TrainablePipe
from spacy.training import Example, validate_examples, validate_get_examples
from thinc.api import set_dropout_rate

from ..errors import Errors
from ..kd.objectives import check_loss

# scores -> (loss, gradients for scores.potentials)
LossOf = Callable[[object], Tuple[float, Tuple]]


class TorchHeadPipe(TrainablePipe):
    """Base class: labels in `cfg["labels"]`, head sizing, `_step` (forward, loss, backward,
    optimiser) and (de)serialization. A subclass sets `self.cfg` and says how many outputs the
    head has (`_n_outputs`) and what to say when a configured width disagrees (`_width_error`)."""

    # cfg keys that are run-time choices of the factory (how to decode), not learned state:
    # loading keeps the factory's value, so `spacy.load(path, config=...)` can change them
    factory_settings: Tuple[str, ...] = ()

    # -- labels ---------------------------------------------------------------------------------
    @property
    def labels(self) -> Tuple[str, ...]:
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label:
            raise ValueError(Errors.E104.format(label=label, name=self.name))
        if label in self.cfg["labels"]:
            return 0
        if self.model.get_ref("head").layers:
            raise ValueError(Errors.E101.format(name=self.name, label=label))
        self.cfg["labels"] = sorted(self.cfg["labels"] + [label])
        self.vocab.strings.add(label)
        return 1

    def initialize(self, get_examples: Callable[[], Iterable[Example]], *, nlp=None,
                   labels: Optional[Sequence[str]] = None) -> None:
        """Take labels from `labels` or from the examples (`labels_in`), size the head, and
        initialise the model on a few examples.

        labels (Optional[Sequence[str]]): e.g. from `spacy init labels`.
        """
        validate_get_examples(get_examples, f"{type(self).__name__}.initialize")
        if labels is None:
            labels = self.labels_in(get_examples)
        for label in labels:
            self.add_label(label)
        if not self.labels:
            raise ValueError(self._no_labels_error())
        self._size_head()
        docs = [eg.x for eg in islice(get_examples(), 10)]
        self.model.initialize(X=docs or None)
        # Kept for loading: a tok2vec whose width is known only from data (a transformer
        # listener) cannot tell the head its input width before the weights are read.
        self.cfg["nI"] = self.model.get_ref("head").get_dim("nI")

    def labels_in(self, get_examples: Callable[[], Iterable[Example]]) -> List[str]:
        """The labels of the training examples: their entity types, sorted (parsers override)."""
        return sorted({ent.label_ for eg in get_examples() for ent in eg.reference.ents})

    def _no_labels_error(self) -> str:
        return Errors.E100.format(name=self.name)

    def _n_outputs(self) -> int:
        """Width of the head's output (tags, relations, classes)."""
        raise NotImplementedError

    def _width_error(self, got: int) -> str:
        """The message when a configured `nO` is not `_n_outputs()`."""
        raise NotImplementedError

    def _size_head(self) -> None:
        head = self.model.get_ref("head")
        n = self._n_outputs()
        if head.has_dim("nO") and head.get_dim("nO") not in (None, n):
            raise ValueError(self._width_error(head.get_dim("nO")))
        head.set_dim("nO", n, force=True)
        tok2vec = self.model.get_ref("tok2vec")
        if tok2vec.has_dim("nO") and tok2vec.get_dim("nO"):
            head.set_dim("nI", tok2vec.get_dim("nO"), force=True)

    def _step(self, examples: List[Example], loss_of: LossOf, where: str, *, drop: float, sgd,
              losses: Optional[Dict[str, float]]) -> Dict[str, float]:
        """One forward/backward through the model with the loss `loss_of(scores)`."""
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        validate_examples(examples, f"{type(self).__name__}.{where}")
        if not any(len(eg.predicted) for eg in examples):
            return losses
        set_dropout_rate(self.model, drop)
        scores, backprop = self.model.begin_update([eg.predicted for eg in examples])
        loss, d_scores = loss_of(scores)
        backprop(d_scores)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _loss_and_grads(self, scores, rebuild: Callable[[Tuple[torch.Tensor, ...]], object],
                        per_doc: Callable[[object], torch.Tensor], n_docs: int) -> Tuple[torch.Tensor, Tuple]:
        """Sum of `per_doc(live)` over docs / n_docs and its gradients for `scores.potentials`,
        computed on detached copies (`live = rebuild(copies)`): the model's backprop receives
        them as output gradients. Every loss here is a negative log-likelihood or a
        cross-entropy: a NaN, infinite or negative one raises E102, never clamped."""
        with torch.enable_grad():
            potentials = tuple(p.detach().requires_grad_() for p in scores.potentials)
            loss = per_doc(rebuild(potentials)).sum() / max(n_docs, 1)
            check_loss(loss.detach(), self.name, component=True)
            grads = torch.autograd.grad(loss, potentials, allow_unused=True)
        return loss.detach(), grads

    # -- serialization --------------------------------------------------------------------------
    def _ensure_model(self) -> None:
        """The torch head is created lazily, so build it from cfg before loading weights."""
        head = self.model.get_ref("head")
        if not head.layers:
            self._size_head()
            if not head.has_dim("nI") and self.cfg.get("nI"):
                head.set_dim("nI", self.cfg["nI"])
            self.model.initialize()

    def _restore_cfg(self, stored: Dict) -> None:
        """The saved cfg (labels, scheme, head width), except the factory's run-time settings."""
        chosen = {key: self.cfg[key] for key in self.factory_settings if key in self.cfg}
        self.cfg.update(stored)
        self.cfg.update(chosen)

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "vocab": lambda: self.vocab.to_bytes(exclude=exclude),
            "model": lambda: self.model.to_bytes(),
        }
        return util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "TorchHeadPipe":
        def load_model(b: bytes) -> None:
            self._ensure_model()
            self.model.from_bytes(b)

        deserialize = {
            "cfg": lambda b: self._restore_cfg(srsly.json_loads(b)),
            "vocab": lambda b: self.vocab.from_bytes(b, exclude=exclude),
            "model": load_model,
        }
        util.from_bytes(bytes_data, deserialize, exclude)
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "vocab": lambda p: self.vocab.to_disk(p, exclude=exclude),
            "model": lambda p: p.write_bytes(self.model.to_bytes()),
        }
        util.to_disk(path, serialize, exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "TorchHeadPipe":
        def load_model(p) -> None:
            self._ensure_model()
            self.model.from_bytes(p.read_bytes())

        deserialize = {
            "cfg": lambda p: self._restore_cfg(srsly.read_json(p)),
            "vocab": lambda p: self.vocab.from_disk(p, exclude=exclude),
            "model": load_model,
        }
        util.from_disk(path, deserialize, exclude)
        return self
