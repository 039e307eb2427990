"""Tagger architectures: any tok2vec -> linear emissions [-> CRF potentials].

The head is a torch module wrapped with thinc's PyTorchWrapper. It returns torch tensors
(`TaggerScores`) rather than thinc arrays because every loss and KD objective downstream is a
torch structure (`structs.chain.LinearChainCRF`); the pipe hands gradients for all outputs
(emissions and, for a CRF, transitions/start/end) back through the wrapper in one backward.
"""
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import ArgsKwargs, Model, PyTorchWrapper_v2, chain, torch2xp, xp2torch
from thinc.types import Floats2d


@dataclass
class TaggerScores:
    """What a tagger model predicts for a batch of docs (all torch, detached from the head).

    emissions (Tensor): [B, N, L] per-token tag scores; entries past each length are padding.
    lengths (LongTensor): [B] tokens per doc.
    transitions (Tensor | None): [L, L] CRF scores of tag a followed by tag b; None for MaxEnt.
    start, end (Tensor | None): [L] CRF scores of the first/last tag; None for MaxEnt.
    """

    emissions: torch.Tensor
    lengths: torch.Tensor
    transitions: Optional[torch.Tensor] = None
    start: Optional[torch.Tensor] = None
    end: Optional[torch.Tensor] = None

    @property
    def potentials(self) -> Tuple[torch.Tensor, ...]:
        """The differentiable outputs, in the order the head returns them."""
        if self.transitions is None:
            return (self.emissions,)
        return (self.emissions, self.transitions, self.start, self.end)


class TaggerHead(torch.nn.Module):
    """Linear emissions over token vectors, plus CRF transition/start/end scores if `crf`."""

    def __init__(self, nI: int, nO: int, crf: bool):
        super().__init__()
        self.emit = torch.nn.Linear(nI, nO)
        self.crf = crf
        if crf:
            self.transitions = torch.nn.Parameter(torch.zeros(nO, nO))
            self.start = torch.nn.Parameter(torch.zeros(nO))
            self.end = torch.nn.Parameter(torch.zeros(nO))

    def forward(self, X: torch.Tensor) -> Tuple[torch.Tensor, ...]:  # X: [B, N, nI]
        emissions = self.emit(X)  # [B, N, L]
        if not self.crf:
            return (emissions,)
        return emissions, self.transitions, self.start, self.end


@registry.architectures("spacy-skd.CRFTagger.v1")
def build_crf_tagger(tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None) -> Model[List[Doc], TaggerScores]:
    """Linear-chain CRF tagger: tok2vec -> emissions + learned transition/start/end scores.

    tok2vec (Model[List[Doc], List[Floats2d]]): token encoder (e.g. spacy.Tok2Vec.v2 or a listener).
    nO (Optional[int]): number of tags; None = set by the component at initialize.
    """
    return _build_tagger(tok2vec, nO, crf=True, name="skd_crf_tagger")


@registry.architectures("spacy-skd.MaxEntTagger.v1")
def build_maxent_tagger(tok2vec: Model[List[Doc], List[Floats2d]], nO: Optional[int] = None) -> Model[List[Doc], TaggerScores]:
    """MaxEnt (softmax) tagger: tok2vec -> independent per-token tag scores.

    tok2vec (Model[List[Doc], List[Floats2d]]): token encoder.
    nO (Optional[int]): number of tags; None = set by the component at initialize.
    """
    return _build_tagger(tok2vec, nO, crf=False, name="skd_maxent_tagger")


def _build_tagger(tok2vec: Model, nO: Optional[int], crf: bool, name: str) -> Model:
    head = Model(
        f"{name}_head",
        _head_forward,
        init=_head_init,
        dims={"nI": None, "nO": nO},
        attrs={"crf": crf},
    )
    model = chain(tok2vec, head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("head", head)
    model.name = name
    return model


def _head_init(model: Model, X: Optional[List[Floats2d]] = None, Y=None) -> None:
    """Build the torch module once both widths are known: nI from sample vectors or the
    tok2vec's declared width, nO from the component's tag inventory. Called again on load
    (before the weights are read), so it only builds once."""
    if model.layers:
        return
    if X:
        model.set_dim("nI", int(X[0].shape[1]), force=True)
    if not model.has_dim("nI"):
        raise ValueError(f"Cannot infer the input width of layer '{model.name}': pass sample data to initialize.")
    module = TaggerHead(model.get_dim("nI"), model.get_dim("nO"), crf=model.attrs["crf"])
    model._layers.append(PyTorchWrapper_v2(module, convert_inputs=_pad_inputs, convert_outputs=_scores_outputs))


def _head_forward(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[TaggerScores, Callable]:
    return model.layers[0](X, is_train)


def _pad_inputs(model: Model, X: List[Floats2d], is_train: bool) -> Tuple[ArgsKwargs, Callable]:
    """List of [n_i, nI] arrays -> one zero-padded torch tensor [B, N, nI]."""
    lengths = [len(x) for x in X]
    width = X[0].shape[1] if X else 0
    if max(lengths, default=0) == 0:
        padded = model.ops.alloc3f(len(X), 0, width)
    else:
        padded = model.ops.pad(X)  # [B, N, nI]
    Xtorch = xp2torch(padded, requires_grad=is_train, device=model.shims[0].device)

    def backprop(dX: ArgsKwargs) -> List[Floats2d]:
        d_padded = torch2xp(dX.args[0])
        return [d_padded[i, :n] for i, n in enumerate(lengths)]

    return ArgsKwargs(args=(Xtorch,), kwargs={}), backprop


def _scores_outputs(model: Model, X_Ytorch, is_train: bool) -> Tuple[TaggerScores, Callable]:
    X, Ytorch = X_Ytorch
    emissions = Ytorch[0]
    lengths = torch.tensor([len(x) for x in X], dtype=torch.long, device=emissions.device)
    scores = TaggerScores(emissions.detach(), lengths, *(t.detach() for t in Ytorch[1:]))

    def backprop(d_potentials: Tuple[Optional[torch.Tensor], ...]) -> ArgsKwargs:
        pairs = [(y, d) for y, d in zip(Ytorch, d_potentials) if d is not None]
        return ArgsKwargs(args=(tuple(y for y, _ in pairs),), kwargs={"grad_tensors": tuple(d for _, d in pairs)})

    return scores, backprop
