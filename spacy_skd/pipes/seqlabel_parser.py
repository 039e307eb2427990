"""`skd_seqlabel_parser`: dependency parsing as sequence labelling (Strzyz et al. 2019), the
student of cases 1b and 2b.

A MaxEnt tagger over joint labels "<head>_<relation>" (`structs.parse_labels`): with the
default "offset" encoding, "+1_det" (head one word to the right), "ROOT_root"; with "relpos",
"-1@NOUN_nsubj" (the first NOUN to the left; needs PoS tags on the doc). The vocabulary is
the set of labels in the gold trees. Decoding turns the label distribution into head scores and
runs MST ("mst", always a well-formed tree), or reads the best label per word and repairs
("heuristic", the pure sequence-labelling decoder). Writes `token.head` and `token.dep_`.
"""
import hashlib
from functools import cached_property
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.vocab import Vocab
from thinc.api import Config, Model

from ..errors import Errors
from ..models.tagger import TaggerScores
from ..structs.parse_labels import LabelSpace, get_encoding
from ._defaults import TOK2VEC_CONFIG
from ._segments import Segment, check_max_length, doc_heads, scored_segments
from .dependency_parser import PARSER_SCORES, set_tree
from .maxent_tagger import MaxEntTagger

DEFAULT_SEQLABEL_MODEL = Config().from_str(
    '[model]\n@architectures = "spacy-skd.SeqLabelParser.v1"\nnO = null\n' + TOK2VEC_CONFIG
)["model"]
DECODERS = ("mst", "heuristic")
# the Universal PoS tags spaCy stores in token.pos_ (relpos labels name the head's)
UPOS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT",
        "SCONJ", "SYM", "VERB", "X")


@Language.factory(
    "skd_seqlabel_parser",
    assigns=["token.head", "token.dep", "token.is_sent_start", "doc.sents"],
    default_config={"model": DEFAULT_SEQLABEL_MODEL, "encoding": "offset", "decoder": "mst",
                    "decode_top_k": 32, "max_length": 512, "scorer": {"@scorers": "spacy.parser_scorer.v1"}},
    default_score_weights=PARSER_SCORES,
)
def make_seqlabel_parser(nlp: Language, name: str, model: Model, encoding: str, decoder: str,
                         decode_top_k: Optional[int], max_length: int,
                         scorer: Optional[Callable]) -> "SeqLabelParser":
    """Create a sequence-labelling dependency parser.

    model (Model[List[Doc], TaggerScores]): e.g. spacy-skd.SeqLabelParser.v1.
    encoding (str): "offset" (relative position, what StructuralKD uses) or "relpos" (relative
        PoS, needs `token.pos_` from a tagger earlier in the pipeline or the corpus).
    decoder (str): "mst" or "heuristic".
    decode_top_k (Optional[int]): the MST decoder builds head scores from each word's k most
        probable labels (null: all labels, exact). On EWT, k = 32 decodes 5x faster than all
        1,336 labels and changes UAS by -0.02.
    max_length (int): at inference, the longest stretch decoded as one tree: each sentence is
        decoded on its own, and a longer sentence or a doc without sentence boundaries in
        windows of this many tokens (with a warning).
    scorer (Optional[Callable]): spaCy's parser scorer by default.
    """
    return SeqLabelParser(nlp.vocab, model, name, encoding=encoding, decoder=decoder, decode_top_k=decode_top_k,
                          max_length=max_length, scorer=scorer)


class SeqLabelParser(MaxEntTagger):
    """A MaxEnt tagger whose tags are tree labels; gold and output are trees."""

    kd_kind = "seqlabel"
    kd_structure = "maxent"

    def __init__(self, vocab: Vocab, model: Model, name: str, *, encoding: str, decoder: str,
                 decode_top_k: Optional[int] = 32, max_length: int = 512, scorer: Optional[Callable] = None):
        super().__init__(vocab, model, name, scheme="BIOES", constrained=False, scorer=scorer)
        get_encoding(encoding)  # validates the name
        if decoder not in DECODERS:
            raise ValueError(Errors.E109.format(name=name, value=decoder, options=", ".join(DECODERS)))
        self.cfg = {"labels": [], "encoding": encoding, "constrained": False}
        # not in cfg: loading restores cfg, and the decoder is a run-time choice of the factory
        self.decoder = decoder
        if decode_top_k is not None and (isinstance(decode_top_k, bool) or not isinstance(decode_top_k, int)
                                         or decode_top_k < 1):
            raise ValueError(Errors.E115.format(name=name, value=decode_top_k))
        self.decode_top_k = decode_top_k
        self.max_length = check_max_length(name, max_length)
        self._spaces: Dict[Tuple, LabelSpace] = {}

    @property
    def tags(self) -> List[str]:
        return list(self.labels)

    @property
    def relations(self) -> List[str]:
        """The relations the labels use."""
        parsed = (self.encoding.parse(label) for label in self.labels)
        return sorted({p[1] for p in parsed if p})

    @cached_property
    def encoding(self):
        return get_encoding(self.cfg["encoding"])

    def space(self, rels: Optional[Sequence[str]] = None) -> LabelSpace:
        """The label vocabulary as a LabelSpace over relations `rels` (a teacher's, in its order;
        default: this parser's own relations)."""
        rels = tuple(rels if rels is not None else self.relations)
        key = (tuple(self.labels), rels)
        if key not in self._spaces:
            # the student's own space (decoding) and a teacher's (KD) alternate in training: keep
            # both, so that neither is rebuilt at every switch; new labels drop the old spaces
            self._spaces = {k: v for k, v in self._spaces.items() if k[0] == key[0]}
            pos = UPOS if self.encoding.needs_pos else None
            self._spaces[key] = LabelSpace(self.labels, rels, self.cfg["encoding"], pos_tags=pos)
        return self._spaces[key]

    # -- initialize -----------------------------------------------------------------------------
    def labels_in(self, get_examples: Callable[[], Iterable[Example]]) -> List[str]:
        """Every label of the examples' complete gold trees, sorted."""
        found = set()
        for eg in get_examples():
            tree = self._gold_tree(eg)
            if tree is not None:
                found.update(self.encoding.encode(*tree))
        if not found:
            raise ValueError(Errors.E108.format(name=self.name))
        return sorted(found)

    def _gold_tree(self, eg: Example) -> Optional[Tuple[List[int], List[str], Optional[List[str]]]]:
        """(heads with 0 = ROOT, relations, PoS) of the reference, aligned to the predicted
        tokens; None when some word has no aligned head (a partial tree cannot be encoded)."""
        heads, deps = eg.get_aligned_parse(projectivize=False)
        if not heads or any(h is None for h in heads) or not all(deps):
            return None
        tree = [0 if h == i else h + 1 for i, h in enumerate(heads)]
        return tree, list(deps), self._pos(eg.predicted, eg.reference)

    def _pos(self, doc, fallback: Optional[Doc] = None) -> Optional[List[str]]:
        """The PoS tags of a doc or span (relpos only)."""
        if not self.encoding.needs_pos:
            return None
        pos = [t.pos_ for t in doc]
        if not all(pos) and fallback is not None and len(fallback) == len(doc):
            pos = [t.pos_ for t in fallback]
        return pos

    # -- gold, predict, annotate ----------------------------------------------------------------
    def _gold_allowed(self, examples: List[Example], shape: torch.Size, device: torch.device) -> torch.Tensor:
        """[B, N, V] bool: the gold label where the tree is known and its label is in the
        vocabulary, every label elsewhere (marginalised, as for the taggers)."""
        B, N, V = shape
        ids = torch.full((B, N), -1, dtype=torch.long)
        index = {label: v for v, label in enumerate(self.labels)}
        for b, eg in enumerate(examples):
            tree = self._gold_tree(eg)
            if tree is not None:
                row = [index.get(label, -1) for label in self.encoding.encode(*tree)]
                ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        return self._one_hot(ids.to(device), shape)

    def predict(self, docs: Iterable[Doc]) -> List[Tuple[List[int], List[str]]]:
        """Per doc: heads (0 = ROOT, else 1-based word index) and relations. Token vectors come
        from whole docs; labels are decoded per sentence, or per window of `max_length` tokens
        (`_segments`), so each segment is one tree."""
        docs = list(docs)
        trees = [([0] * len(doc), [""] * len(doc)) for doc in docs]
        for batch, scores in scored_segments(self.model, docs, self.max_length, self.name):
            for (b, start, end), (heads, rels) in zip(batch, self._decode_segments(scores, batch, docs)):
                trees[b][0][start:end] = doc_heads(heads, start)
                trees[b][1][start:end] = rels
        return trees

    def _decode_segments(self, scores: TaggerScores, batch: List[Segment], docs: List[Doc]
                         ) -> List[Tuple[List[int], List[str]]]:
        """Heads (0 = ROOT, else 1-based in the segment) and relations of each segment."""
        pos = [self._pos(docs[b][start:end]) for b, start, end in batch]
        with torch.no_grad():
            log_probs = scores.emissions.log_softmax(-1)
            if self.decoder == "heuristic":
                labels = self.labels
                best = log_probs.argmax(-1).tolist()
                return [self.encoding.decode([labels[v] for v in row[: end - start]], p)
                        for row, (_, start, end), p in zip(best, batch, pos)]
            pos_ids = self._pos_ids(pos, scores.emissions.shape[1]) if self.encoding.needs_pos else None
            heads, rels = self.space().decode(log_probs, scores.lengths, pos_ids, top_k=self.decode_top_k)
        return [(h[1: end - start + 1], r) for h, r, (_, start, end) in zip(heads.tolist(), rels, batch)]

    def _pos_ids(self, pos: List[List[str]], N: int) -> torch.Tensor:
        index = {p: j for j, p in enumerate(self.space().pos_tags)}
        ids = torch.full((len(pos), N + 1), -1, dtype=torch.long)
        for b, tags in enumerate(pos):
            ids[b, 1: len(tags) + 1] = torch.tensor([index.get(t, -1) for t in tags], dtype=torch.long)
        return ids

    def set_annotations(self, docs: Iterable[Doc], trees: List[Tuple[List[int], List[str]]]) -> None:
        for doc, (heads, rels) in zip(docs, trees):
            set_tree(doc, heads, rels)

    # -- as a KD student ------------------------------------------------------------------------
    def kd_space(self, teacher=None) -> LabelSpace:
        """The map from a parser teacher's (head, relation) distributions onto these labels."""
        return self.space(teacher.labels if teacher is not None else None)

    def kd_space_key(self) -> str:
        digest = hashlib.sha1("\n".join(self.labels).encode("utf8")).hexdigest()[:12]
        return f"{self.cfg['encoding']}:{digest}"
