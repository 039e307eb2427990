"""`skd_biaffine_parser` and `skd_mfvi_parser`: graph-based dependency parsers (the teachers of
cases 1b and 2b) writing `token.head` and `token.dep_`.

Both are head-selection parsers: each word picks a head with its own softmax and a relation
given that head; the loss is their cross-entropy on the gold tree, summed over words and
averaged over docs. The MFVI parser refines the head distributions with K mean-field
iterations over sibling, co-parent and grandparent scores, trained end to end through the
unrolled iterations. Decoding is MST, so every prediction is a well-formed single-root tree.
As KD teachers they give each word's log P(head) [n, n+1] and log P(rel | head) [n, n+1, R].
"""
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.attrs import DEP, HEAD
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..errors import Errors
from ..kd.padding import pad_outputs
from ..kd.parser_targets import ParserPotentials
from ..models.parser import ParserScores
from ..structs._util import log_zero
from ..structs.dependency import HeadSelection
from ..structs.mfvi import SecondOrderMFVI
from ._defaults import TOK2VEC_CONFIG
from ._segments import check_max_length, doc_heads, scored_segments
from ._torch_pipe import TorchHeadPipe

DEFAULT_BIAFFINE_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.BiaffineParser.v1"\nnO = null\n' + TOK2VEC_CONFIG
)["model"]
DEFAULT_MFVI_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.MFVIParser.v1"\nnO = null\n' + TOK2VEC_CONFIG
)["model"]
PARSER_SCORES = {"dep_uas": 0.5, "dep_las": 0.5, "dep_las_per_type": None, "sents_p": None, "sents_r": None,
                 "sents_f": 0.0}


@Language.factory(
    "skd_biaffine_parser",
    assigns=["token.head", "token.dep", "token.is_sent_start", "doc.sents"],
    default_config={"model": DEFAULT_BIAFFINE_MODEL, "max_length": 512,
                    "scorer": {"@scorers": "spacy.parser_scorer.v1"}},
    default_score_weights=PARSER_SCORES,
)
def make_biaffine_parser(nlp: Language, name: str, model: Model, max_length: int,
                         scorer: Optional[Callable]) -> "DependencyParser":
    """Create a biaffine (first-order head-selection) dependency parser.

    model (Model[List[Doc], ParserScores]): e.g. spacy-skd.BiaffineParser.v1.
    max_length (int): at inference, the longest stretch scored at once: each sentence is parsed
        on its own, and a longer sentence or a doc without sentence boundaries in windows of
        this many tokens (with a warning). Memory grows with its square.
    scorer (Optional[Callable]): scores heads and relations; spaCy's parser scorer by default.
    """
    return DependencyParser(nlp.vocab, model, name, iterations=0, max_length=max_length, scorer=scorer)


@Language.factory(
    "skd_mfvi_parser",
    assigns=["token.head", "token.dep", "token.is_sent_start", "doc.sents"],
    default_config={"model": DEFAULT_MFVI_MODEL, "iterations": 3, "max_length": 256,
                    "scorer": {"@scorers": "spacy.parser_scorer.v1"}},
    default_score_weights=PARSER_SCORES,
)
def make_mfvi_parser(nlp: Language, name: str, model: Model, iterations: int, max_length: int,
                     scorer: Optional[Callable]) -> "DependencyParser":
    """Create a second-order dependency parser with mean-field variational inference.

    model (Model[List[Doc], ParserScores]): e.g. spacy-skd.MFVIParser.v1 (with factor scores).
    iterations (int): mean-field iterations K (3 in Wang & Tu 2020).
    max_length (int): as for skd_biaffine_parser; memory grows with its cube here.
    scorer (Optional[Callable]): scores heads and relations; spaCy's parser scorer by default.
    """
    return DependencyParser(nlp.vocab, model, name, iterations=iterations, max_length=max_length, scorer=scorer)


class DependencyParser(TorchHeadPipe):
    """Head-selection parser; `iterations > 0` with second-order scores makes it MFVI."""

    factory_settings = ("iterations",)  # mean-field iterations at inference: a load-time override wins

    def __init__(self, vocab: Vocab, model: Model, name: str, *, iterations: int, max_length: int = 512,
                 scorer: Optional[Callable] = None):
        self.vocab = vocab
        self.model = model
        self.name = name
        self.scorer = scorer
        self.cfg: Dict = {"labels": [], "iterations": iterations}
        # not in cfg: a run-time choice of the factory, like the seqlabel parser's decoder
        self.max_length = check_max_length(name, max_length)

    @property
    def kd_kind(self) -> str:
        return "mfvi" if self.cfg["iterations"] > 0 else "biaffine"

    # -- labels ---------------------------------------------------------------------------------
    def labels_in(self, get_examples: Callable[[], Iterable[Example]]) -> List[str]:
        """The relations of the gold trees, sorted."""
        return sorted({t.dep_ for eg in get_examples() for t in eg.reference if t.dep_})

    def _no_labels_error(self) -> str:
        return Errors.E107.format(name=self.name)

    def _n_outputs(self) -> int:
        return len(self.labels)

    def _width_error(self, got: int) -> str:
        return Errors.E114.format(got=got, expected=len(self.labels), name=self.name)

    # -- predict / set_annotations --------------------------------------------------------------
    def distribution(self, scores: ParserScores) -> HeadSelection:
        """The parser's distribution over heads and relations for these scores."""
        if self.cfg["iterations"] > 0 and scores.sib is not None:
            return SecondOrderMFVI(scores.arc, scores.rel, scores.lengths, sib=scores.sib, cop=scores.cop,
                                   grd=scores.grd, iterations=self.cfg["iterations"])
        return HeadSelection(scores.arc, scores.rel, scores.lengths)

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[List[int], List[int]]]:
        """Per doc: heads (0 = ROOT, else 1-based word index) and relation ids of words 1..n.
        Token vectors come from whole docs; heads are scored and decoded per sentence, or per
        window of `max_length` tokens (`_segments`), so each segment is one tree."""
        docs = list(docs)
        trees = [([0] * len(doc), [0] * len(doc)) for doc in docs]
        for batch, scores in scored_segments(self.model, docs, self.max_length, self.name):
            with torch.no_grad():
                heads, rels = self.distribution(scores).argmax  # [S, L+1]
            for (b, start, end), h, r in zip(batch, heads.tolist(), rels.tolist()):
                n = end - start
                trees[b][0][start:end] = doc_heads(h[1:n + 1], start)
                trees[b][1][start:end] = r[1:n + 1]
        return trees

    def set_annotations(self, docs: Iterable[Doc], trees: List[Tuple[List[int], List[int]]]) -> None:
        labels = self.labels
        for doc, (heads, rels) in zip(docs, trees):
            set_tree(doc, heads, [labels[r] for r in rels])

    # -- training -------------------------------------------------------------------------------
    def update(self, examples: Iterable[Example], *, drop: float = 0.0, sgd=None,
               losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
        examples = list(examples)
        return self._step(examples, lambda scores: self.get_loss(examples, scores), "update", drop=drop,
                          sgd=sgd, losses=losses)

    def get_loss(self, examples: Iterable[Example], scores: ParserScores) -> Tuple[float, Tuple]:
        """Cross-entropy of the gold heads and relations, summed over words, averaged over docs.
        Words whose gold head is unknown or misaligned are skipped; an unknown relation keeps
        only the head term."""
        examples = list(examples)
        validate_examples(examples, f"{type(self).__name__}.get_loss")
        heads, rels = self._gold(examples, scores.arc.shape[1], scores.arc.device)
        loss, grads = self._loss_and_grads(scores, scores.rebuild,
                                           lambda live: self.distribution(live).loss(heads, rels), len(examples))
        return float(loss), grads

    def _gold(self, examples: List[Example], H: int, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """Gold heads and relation ids [B, N+1] in the ROOT-0 layout, -1 where unknown."""
        heads = torch.full((len(examples), H), -1, dtype=torch.long)
        rels = torch.full((len(examples), H), -1, dtype=torch.long)
        index = {label: i for i, label in enumerate(self.labels)}
        for b, eg in enumerate(examples):
            gold_heads, gold_deps = eg.get_aligned_parse(projectivize=False)
            for i, (h, dep) in enumerate(zip(gold_heads, gold_deps)):
                if h is None:
                    continue
                heads[b, i + 1] = 0 if h == i else h + 1
                rels[b, i + 1] = index.get(dep, -1) if dep else -1
        return heads.to(device), rels.to(device)

    # -- as a teacher ---------------------------------------------------------------------------
    def teacher_outputs(self, docs: List[Doc]) -> List[Dict[str, numpy.ndarray]]:
        """log P(head | word) [n, n+1] and log P(rel | word, head) [n, n+1, R] per doc, float32."""
        if not any(len(doc) for doc in docs):
            R = len(self.labels)
            return [{"arc": numpy.zeros((0, 1), "f"), "rel": numpy.zeros((0, 1, R), "f")} for _ in docs]
        arc, rel = self.distribution(self.model.predict(docs)).word_log_probs()
        arc, rel = arc.float().cpu().numpy(), rel.float().cpu().numpy()
        return [{"arc": arc[b, :n, : n + 1].copy(), "rel": rel[b, :n, : n + 1].copy()}
                for b, n in enumerate(len(doc) for doc in docs)]

    def teacher_batch(self, arrays: Sequence[Dict[str, numpy.ndarray]], device: torch.device) -> ParserPotentials:
        """Pad cached `teacher_outputs` into a batch: padded heads get log-zero."""
        R = len(self.labels)
        arc, lengths = pad_outputs(arrays, "arc", lambda n: (n, n + 1), device=device, fill=log_zero(torch.float32))
        rel, _ = pad_outputs(arrays, "rel", lambda n: (n, n + 1, R), device=device)
        return ParserPotentials(self.kd_kind, arc, rel, lengths)


def set_tree(doc: Doc, heads: Sequence[int], deps: Sequence[str]) -> None:
    """Write a tree given as heads (0 = ROOT, else 1-based word index) and relation names. spaCy
    stores heads as offsets, a root pointing at itself; the doc becomes one sentence per root."""
    n = len(doc)
    if not n:
        return
    offsets = [0 if h == 0 else (h - 1) - i for i, h in enumerate(heads)]
    array = numpy.zeros((n, 2), dtype="uint64")
    array[:, 0] = numpy.array(offsets, dtype="int64").astype("uint64")
    array[:, 1] = [doc.vocab.strings.add(dep) for dep in deps]
    doc.from_array([HEAD, DEP], array)
