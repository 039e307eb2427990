"""Tagger architectures: any tok2vec -> linear emissions [-> CRF potentials].

The head is a torch module wrapped with thinc's PyTorchWrapper. It returns torch tensors
(`TaggerScores`) rather than thinc arrays because every loss and KD objective downstream is a
torch structure (`structs.chain.LinearChainCRF`); the pipe hands gradients for all outputs
(emissions and, for a CRF, transitions/start/end) back through the wrapper in one backward.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain
from thinc.types import Floats2d

from ._torch_head import torch_head


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
    def build_module(head: Model) -> TaggerHead:
        return TaggerHead(head.get_dim("nI"), head.get_dim("nO"), crf=crf)

    head = torch_head(f"{name}_head", build_module, _make_scores, nO=nO, attrs={"crf": crf})
    model = chain(tok2vec, head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("head", head)
    model.name = name
    return model


def _make_scores(lengths: torch.Tensor, outputs: Tuple[torch.Tensor, ...]) -> TaggerScores:
    return TaggerScores(outputs[0], lengths, *outputs[1:])
