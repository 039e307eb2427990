"""Span NER architecture: any tok2vec -> biaffine span scores (Yu et al. 2020, "Named Entity
Recognition as Dependency Parsing").

Each word gets a start view and an end view (two feed-forward networks); every pair (i, j) is
scored for each class c by a biaffine classifier,

    scores[b, i, j, c] = h_s(i) U_c h_e(j) + W_c [h_s(i); h_e(j)] + b_c,

class 0 = no entity. The scores of spans with j < i are computed too (one batched product) and
ignored downstream (`structs.span.SpanNER` masks them).
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain
from thinc.types import Floats2d

from ..errors import Errors
from ._torch_head import torch_head


@dataclass
class SpanScores:
    """What a span NER model predicts for a batch of docs (torch, detached from the head).

    scores (Tensor): [B, N, N, R+1] scores[b, i, j, c] of words i..j (inclusive) having class c;
        class 0 = no entity, class k >= 1 = the component's k-th label. Cells with j < i or
        j >= lengths[b] are padding.
    lengths (LongTensor): [B] words per doc.
    """

    scores: torch.Tensor
    lengths: torch.Tensor

    @property
    def potentials(self) -> Tuple[torch.Tensor, ...]:
        """The differentiable outputs, in the order the head returns them."""
        return (self.scores,)

    def rebuild(self, potentials: Tuple[torch.Tensor, ...]) -> "SpanScores":
        """The same scores with `potentials` (e.g. copies that require grad) in their places."""
        return SpanScores(potentials[0], self.lengths)


def _ffnn(nI: int, nO: int, dropout: float) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(nI, nO), torch.nn.ReLU(), torch.nn.Dropout(dropout))


class BiaffineSpanHead(torch.nn.Module):
    """Start/end FFNNs over token vectors and a biaffine classifier over (start, end) pairs.

    nI (int): width of the token vectors.
    nO (int): classes C = R + 1 (no entity, then the entity types).
    hidden_width (int): width d of the start and end views.
    dropout (float): dropout on the views while training.
    Cost: O(B N d^2 C + B N^2 d C) time, O(B N^2 C) memory for the output.
    """

    def __init__(self, nI: int, nO: int, hidden_width: int, dropout: float):
        super().__init__()
        self.start = _ffnn(nI, hidden_width, dropout)
        self.end = _ffnn(nI, hidden_width, dropout)
        self.bilinear = torch.nn.Parameter(torch.empty(nO, hidden_width, hidden_width))  # U [C, d, d]
        self.linear = torch.nn.Linear(2 * hidden_width, nO)  # W [C, 2d] and b [C]
        torch.nn.init.xavier_uniform_(self.bilinear)

    def forward(self, X: torch.Tensor) -> Tuple[torch.Tensor]:  # X: [B, N, nI]
        hs, he = self.start(X), self.end(X)  # [B, N, d] each
        d = hs.shape[-1]
        W = self.linear.weight  # [C, 2d]
        left = torch.einsum("bid,cde->bice", hs, self.bilinear)  # h_s(i) U_c  [B, N, C, d]
        bilinear = torch.einsum("bice,bje->bijc", left, he)  # [B, N(i), N(j), C]
        # W [h_s(i); h_e(j)] = W_s h_s(i) + W_e h_e(j): two [B, N, C] terms broadcast over pairs
        from_start = hs @ W[:, :d].T  # [B, N(i), C]
        from_end = he @ W[:, d:].T  # [B, N(j), C]
        scores = bilinear + from_start.unsqueeze(2) + from_end.unsqueeze(1) + self.linear.bias
        return (scores,)


@registry.architectures("spacy-skd.SpanNER.v1")
def build_span_ner(tok2vec: Model[List[Doc], List[Floats2d]], hidden_width: int = 150, dropout: float = 0.2,
                   nO: Optional[int] = None) -> Model[List[Doc], SpanScores]:
    """Biaffine span NER (Yu et al. 2020): tok2vec -> start/end FFNNs -> span scores.

    tok2vec (Model[List[Doc], List[Floats2d]]): token encoder (e.g. spacy.Tok2Vec.v2 or a listener).
    hidden_width (int): width of the start and end FFNN views (150 in the paper).
    dropout (float): dropout on those views while training.
    nO (Optional[int]): classes R + 1 (no entity + R entity types); None = set by the component
        at initialize.
    RETURNS (Model[List[Doc], SpanScores]): scores [B, N, N, R+1] per batch.
    """
    if isinstance(hidden_width, bool) or not isinstance(hidden_width, int) or hidden_width < 1:
        raise ValueError(Errors.E113.format(field="hidden_width", expected="an integer >= 1", value=hidden_width))
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
        raise ValueError(Errors.E113.format(field="dropout", expected="a number in [0, 1)", value=dropout))
    def build_module(head: Model) -> BiaffineSpanHead:
        return BiaffineSpanHead(head.get_dim("nI"), head.get_dim("nO"), head.attrs["hidden_width"],
                                head.attrs["dropout"])

    head = torch_head("skd_span_ner_head", build_module, _make_scores, nO=nO,
                      attrs={"hidden_width": hidden_width, "dropout": float(dropout)})
    model = chain(tok2vec, head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("head", head)
    model.name = "skd_span_ner"
    return model


def _make_scores(lengths: torch.Tensor, outputs: Tuple[torch.Tensor, ...]) -> SpanScores:
    return SpanScores(outputs[0], lengths)
