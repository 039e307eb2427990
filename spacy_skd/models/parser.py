"""Dependency parser architectures: any tok2vec -> biaffine arc and relation scores
(Dozat & Manning 2017), optionally with trilinear second-order scores for MFVI (Wang & Tu 2020).
The sequence-labelling parser is a MaxEnt tagger over joint (head, relation) labels.

Scores are indexed with ROOT at position 0 and words at 1..n: a learned ROOT vector is put in
front of each sentence's token vectors.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model, chain
from thinc.types import Floats2d

from ._torch_head import torch_head
from .tagger import _build_tagger


@dataclass
class ParserScores:
    """What a parser model predicts for a batch of docs (torch, detached from the head).

    arc (Tensor): [B, N+1, N+1] arc[b, d, h] scores head h for dependent d (0 = ROOT).
    rel (Tensor): [B, N+1, N+1, R] relation scores for each (dependent, head).
    lengths (LongTensor): [B] words per doc.
    sib, cop, grd (Tensor | None): [B, N+1, N+1, N+1] second-order scores in the layout of
        `structs.mfvi.SecondOrderMFVI` (siblings, co-parents, grandparents); None for biaffine.
    """

    arc: torch.Tensor
    rel: torch.Tensor
    lengths: torch.Tensor
    sib: Optional[torch.Tensor] = None
    cop: Optional[torch.Tensor] = None
    grd: Optional[torch.Tensor] = None

    @property
    def potentials(self) -> Tuple[torch.Tensor, ...]:
        return tuple(t for t in (self.arc, self.rel, self.sib, self.cop, self.grd) if t is not None)

    def rebuild(self, potentials: Tuple[torch.Tensor, ...]) -> "ParserScores":
        """The same scores with `potentials` (e.g. copies that require grad) in their places."""
        return ParserScores(*potentials[:2], self.lengths, *potentials[2:])


def _mlp(nI: int, nO: int, dropout: float) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(nI, nO), torch.nn.LeakyReLU(0.1), torch.nn.Dropout(dropout))


class BiaffineHead(torch.nn.Module):
    """MLP views of each word as dependent and as head, scored by biaffine products.

    arc[b, d, h] = dep_d W head_h + u . head_h (a per-dependent constant cancels in the softmax)
    rel[b, d, h, r] = [dep_d; 1] U_r [head_h; 1]
    With `second_order`, three more views per factor give trilinear scores
    s[b, x, y, z] = sum_k w_k a[b, x, k] b[b, y, k] c[b, z, k], w initialised to zero (as the
    biaffine weights) so training starts from the first-order parser: products of three random
    views are large and would swamp the arc scores.
    """

    def __init__(self, nI: int, n_rels: int, arc_width: int, rel_width: int, dropout: float,
                 second_order: bool = False, factor_width: int = 64):
        super().__init__()
        self.root = torch.nn.Parameter(torch.zeros(nI))
        self.arc_dep, self.arc_head = _mlp(nI, arc_width, dropout), _mlp(nI, arc_width, dropout)
        self.rel_dep, self.rel_head = _mlp(nI, rel_width, dropout), _mlp(nI, rel_width, dropout)
        self.arc_weight = torch.nn.Parameter(torch.zeros(arc_width, arc_width))
        self.arc_bias = torch.nn.Parameter(torch.zeros(arc_width))
        self.rel_weight = torch.nn.Parameter(torch.zeros(n_rels, rel_width + 1, rel_width + 1))
        self.second_order = second_order
        if second_order:  # 3 factors x 3 views
            self.views = torch.nn.ModuleList(_mlp(nI, factor_width, dropout) for _ in range(9))
            self.factor_weight = torch.nn.Parameter(torch.zeros(3, factor_width))

    def forward(self, X: torch.Tensor) -> Tuple[torch.Tensor, ...]:  # X: [B, N, nI]
        B = X.shape[0]
        X = torch.cat([self.root.expand(B, 1, -1), X], 1)  # [B, N+1, nI]
        dep, head = self.arc_dep(X), self.arc_head(X)  # [B, N+1, a]
        arc = torch.einsum("bda,ac,bhc->bdh", dep, self.arc_weight, head) + (head @ self.arc_bias).unsqueeze(1)
        ones = X.new_ones(B, X.shape[1], 1)
        rdep = torch.cat([self.rel_dep(X), ones], -1)  # [B, N+1, r+1]
        rhead = torch.cat([self.rel_head(X), ones], -1)
        rel = torch.einsum("bdi,rij,bhj->bdhr", rdep, self.rel_weight, rhead)  # [B, N+1, N+1, R]
        if not self.second_order:
            return arc, rel
        v = [view(X) for view in self.views]
        factors = tuple(torch.einsum("bxk,k,byk,bzk->bxyz", v[3 * f], self.factor_weight[f], v[3 * f + 1], v[3 * f + 2])
                        for f in range(3))  # sib, cop, grd
        return (arc, rel) + factors


@registry.architectures("spacy-skd.BiaffineParser.v1")
def build_biaffine_parser(tok2vec: Model[List[Doc], List[Floats2d]], arc_width: int = 256, rel_width: int = 64,
                          dropout: float = 0.2, nO: Optional[int] = None) -> Model[List[Doc], ParserScores]:
    """First-order graph-based parser (head selection): biaffine arc and relation scores.

    tok2vec (Model[List[Doc], List[Floats2d]]): token encoder.
    arc_width, rel_width (int): widths of the arc and relation MLP views.
    dropout (float): on the MLP outputs.
    nO (Optional[int]): number of relations; None = set by the component at initialize.
    """
    return _build_parser(tok2vec, nO, "skd_biaffine_parser", arc_width=arc_width, rel_width=rel_width,
                         dropout=dropout)


@registry.architectures("spacy-skd.MFVIParser.v1")
def build_mfvi_parser(tok2vec: Model[List[Doc], List[Floats2d]], arc_width: int = 256, rel_width: int = 64,
                      factor_width: int = 64, dropout: float = 0.2,
                      nO: Optional[int] = None) -> Model[List[Doc], ParserScores]:
    """Second-order parser: biaffine scores plus trilinear sibling, co-parent and grandparent
    scores, combined by mean-field inference in the component (`structs.mfvi`).

    factor_width (int): width of the nine MLP views of the second-order factors. Their scores
        take O(B N^3) memory: batch by padded size (spacy.batch_by_padded.v1).
    Other arguments as for spacy-skd.BiaffineParser.v1.
    """
    return _build_parser(tok2vec, nO, "skd_mfvi_parser", arc_width=arc_width, rel_width=rel_width,
                         dropout=dropout, second_order=True, factor_width=factor_width)


@registry.architectures("spacy-skd.SeqLabelParser.v1")
def build_seqlabel_parser(tok2vec: Model[List[Doc], List[Floats2d]],
                          nO: Optional[int] = None) -> Model[List[Doc], "TaggerScores"]:  # noqa: F821
    """Dependency parsing as sequence labelling (Strzyz et al. 2019): a MaxEnt tagger over
    joint (head position, relation) labels; the component encodes and decodes trees.

    tok2vec (Model[List[Doc], List[Floats2d]]): token encoder.
    nO (Optional[int]): label vocabulary size; None = set by the component at initialize.
    """
    return _build_tagger(tok2vec, nO, crf=False, name="skd_seqlabel_parser")


def _build_parser(tok2vec: Model, nO: Optional[int], name: str, **widths) -> Model:
    def build_module(head: Model) -> BiaffineHead:
        return BiaffineHead(head.get_dim("nI"), head.get_dim("nO"), **widths)

    head = torch_head(f"{name}_head", build_module, _make_scores, nO=nO)
    model = chain(tok2vec, head)
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("head", head)
    model.name = name
    return model


def _make_scores(lengths: torch.Tensor, outputs: Tuple[torch.Tensor, ...]) -> ParserScores:
    return ParserScores(outputs[0], outputs[1], lengths, *outputs[2:])
