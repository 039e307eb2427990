"""spaCy's own transition-based components as KD teachers: `ner`, `beam_ner`, `parser`, `beam_parser`.

A user's pipeline (e.g. `en_core_web_trf`) teaches as it is: `load_teacher` wraps the component
in `SpacyTransitionTeacher`, which implements `KDTeacher`. The teacher pipeline runs up to the
component (its tok2vec or transformer listener included), then the component's own step model
scores transitions here. What each teacher gives (`kd_kind`):

- "ner_beam" (beam width > 1; `beam_ner`'s own): the beam's K analyses with their normalised
  probabilities (spaCy's `get_beam_parses`) -> BILUO marginals, pair counts and the best parse;
  plus the greedy steps below, for token-level KD.
- "ner_greedy" (width 1; `ner`'s own): along the greedy path, the softmax over the valid actions
  at the step that labels each token (token-level KD) and the path itself (Top-1).
- "parser_beam" (`parser`, `beam_parser`): the beam's trees with their probabilities ->
  per-word (head, relation) marginals for case 1b and the best tree. At width 1 (`parser`'s
  own) that is the greedy tree alone, i.e. Top-1 as one-hot marginals; `beam_width` > 1 scores
  the same weights with a beam (spaCy's parser supports it for greedy-trained weights too,
  though such weights were never trained to rank a beam).

`beam_width` (the KD component's setting) overrides the component's own width; it is part of
the teacher's fingerprint, so cached outputs of another width are never reused.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.pipeline._parser_internals._beam_utils import BeamBatch
from spacy.pipeline._parser_internals.nonproj import DELIMITER, deprojectivize
from spacy.tokens import Doc

from ..errors import Errors
from ..kd.transition_targets import NERBeamPotentials, beam_parser_potentials, biluo_columns
from ..structs._util import log_zero
from ..structs.tag_schemes import spans_to_tags
from .protocol import Arrays

# spaCy factory -> task; `nlp.get_pipe_meta(name).factory` tells which made a component
SPACY_FACTORIES = {"ner": "ner", "beam_ner": "ner", "parser": "parser", "beam_parser": "parser"}
LOG_ZERO = log_zero(torch.float32)


class SpacyTransitionTeacher:
    """A spaCy `ner`/`beam_ner`/`parser`/`beam_parser` component, seen as a KD teacher.

    pipe: the spaCy component (an EntityRecognizer or DependencyParser).
    name (str): its name in the teacher pipeline.
    factory (str): the factory that made it (a key of SPACY_FACTORIES).
    beam_width (Optional[int]): beam to score with; None = the component's own.
    beam_density (Optional[float]): prune analyses below this share of the best one's
        probability at each step; None = the component's own (spaCy's beam_ner: 0.01), 0 keeps
        every analysis of the beam, so its marginals spread wider.

    Attributes: kd_kind, labels (entity types, or relations including the root's), settings
    (what the outputs depend on beyond the weights: part of the fingerprint).
    """

    def __init__(self, pipe, name: str, factory: str, beam_width: Optional[int] = None,
                 beam_density: Optional[float] = None) -> None:
        own = int(pipe.cfg.get("beam_width", 1))
        if beam_width is not None and (isinstance(beam_width, bool) or not isinstance(beam_width, int)
                                       or beam_width < 1):
            raise ValueError(Errors.E320.format(own=own, value=beam_width))
        own_density = float(pipe.cfg.get("beam_density", 0.0))
        if beam_density is not None and (isinstance(beam_density, bool) or not isinstance(beam_density, (int, float))
                                         or not 0.0 <= beam_density < 1.0):
            raise ValueError(Errors.E327.format(own=own_density, value=beam_density))
        if not pipe.moves.n_moves:
            raise ValueError(Errors.E325.format(name=name))
        self.pipe = pipe
        self.name = name
        self.factory = factory
        self.task = SPACY_FACTORIES[factory]
        self.beam_width = own if beam_width is None else beam_width
        self.beam_density = own_density if beam_density is None else float(beam_density)
        if self.task == "ner":
            self.kd_kind = "ner_beam" if self.beam_width > 1 else "ner_greedy"
        else:
            self.kd_kind = "parser_beam"
        self.cfg: Dict = {}  # no tag scheme: BILUO parses map onto any student scheme
        self.settings = {"factory": factory, "beam_width": self.beam_width, "beam_density": self.beam_density}
        names = [pipe.moves.get_class_name(i) for i in range(pipe.moves.n_moves)]
        self._move_names = names
        if self.task == "ner":
            self._labels = tuple(pipe.labels)
            self._column_names = biluo_columns(self._labels)
            index = {tag: c for c, tag in enumerate(self._column_names)}
            # "O" and spaCy's "U-" (a token preset as outside any entity) are both column O
            self._columns = numpy.array([index.get(name, 0) for name in names])  # [n_moves]
        else:
            self._root = pipe.vocab.strings[pipe.moves.root_label]  # spaCy's "ROOT"
            self._labels = tuple(sorted(set(pipe.labels) | {self._root}))

    def match_root(self, relations: Sequence[str]) -> None:
        """Name the root relation as a student's `relations` do: spaCy upper-cases a treebank's
        "root" when it trains (arc_eager), so a UD student's "root" is this teacher's "ROOT".
        Renamed in place, so the relation ids of cached outputs stay valid."""
        if self.task != "parser":
            return
        same = [rel for rel in relations if rel.upper() == self._root.upper() and rel not in self._labels]
        if len(same) == 1:
            self._labels = tuple(same[0] if rel == self._root else rel for rel in self._labels)
            self._root = same[0]

    @property
    def labels(self) -> Tuple[str, ...]:
        return self._labels

    @property
    def tags(self) -> Tuple[str, ...]:
        """NER: the BILUO tags its per-token outputs range over (O first); parsers have none."""
        return tuple(self._column_names) if self.task == "ner" else ()

    # -- outputs per doc (what the potentials cache keeps) ---------------------------------------
    def teacher_outputs(self, docs: List[Doc]) -> List[Arrays]:
        """Per doc, NER: {"parses": [K, n] BILUO column ids, "log_probs": [K], "steps": [n, C]};
        parser: {"heads": [K, n] (0 = ROOT, else 1 + the head's index), "rels": [K, n] ids into
        `labels`, "log_probs": [K]}. Log-probabilities in float32, normalised over the beam."""
        docs = list(docs)
        live = [doc for doc in docs if len(doc)]
        found = iter(self._ner_outputs(live) if self.task == "ner" else self._parser_outputs(live)) if live else iter(())
        return [next(found) if len(doc) else self._empty() for doc in docs]

    def _empty(self) -> Arrays:
        ids = numpy.zeros((1, 0), dtype="int64")
        arrays = {"log_probs": numpy.zeros(1, dtype="float32")}
        if self.task == "ner":
            return {"parses": ids, "steps": numpy.zeros((0, len(self._column_names)), dtype="float32"), **arrays}
        return {"heads": ids, "rels": ids.copy(), **arrays}

    def _ner_outputs(self, docs: List[Doc]) -> List[Arrays]:
        model = self.pipe.model.predict(docs)
        steps = [numpy.full((len(doc), len(self._column_names)), LOG_ZERO, dtype="float32") for doc in docs]
        greedy = self._search(model, docs, 1, 0.0, steps)
        beams = greedy if self.beam_width == 1 else self._search(model, docs, self.beam_width, self.beam_density)
        model.clear_memory()
        columns = {tag: c for c, tag in enumerate(self._column_names)}
        outputs = []
        for doc, beam, doc_steps in zip(docs, beams, steps):
            found = self.pipe.moves.get_beam_parses(beam)  # [(prob, [(start, end, label), ...])]
            parses = [[columns[tag] for tag in spans_to_tags(ents, len(doc), "BILUO")] for _, ents in found]
            outputs.append({"parses": numpy.array(parses, dtype="int64").reshape(len(found), len(doc)),
                            "log_probs": _normalised_log([prob for prob, _ in found]), "steps": doc_steps})
        return outputs

    def _parser_outputs(self, docs: List[Doc]) -> List[Arrays]:
        model = self.pipe.model.predict(docs)
        beams = self._search(model, docs, self.beam_width, self.beam_density if self.beam_width > 1 else 0.0)
        model.clear_memory()
        rel_ids = {rel: r for r, rel in enumerate(self._labels)}
        outputs = []
        for doc, beam in zip(docs, beams):
            # arc-eager's get_beam_parses skips trees without arcs (one-word sentences): all roots
            found = self.pipe.moves.get_beam_parses(beam) or [(1.0, [])]
            heads, rels = [], []
            for _, arcs in found:
                tree_heads, tree_rels = self._tree(doc, arcs)
                heads.append(tree_heads)
                rels.append([rel_ids[rel] for rel in tree_rels])
            outputs.append({"heads": numpy.array(heads, dtype="int64"), "rels": numpy.array(rels, dtype="int64"),
                            "log_probs": _normalised_log([prob for prob, _ in found])})
        return outputs

    def _tree(self, doc: Doc, arcs: Sequence[Tuple[int, int, str]]) -> Tuple[List[int], List[str]]:
        """One beam parse as heads (0 = ROOT, else 1 + index) and relations, deprojectivized as
        spaCy's parser does after decoding (a decorated label "rel||head_rel" is lifted)."""
        n = len(doc)
        heads, rels = list(range(n)), [self._root] * n  # absolute; a word without an arc is a root
        for head, child, label in arcs:
            heads[child], rels[child] = head, label
        if any(DELIMITER in rel for rel in rels):
            tree = deprojectivize(Doc(doc.vocab, words=[t.text for t in doc], heads=heads, deps=rels))
            heads, rels = [t.head.i for t in tree], [t.dep_ for t in tree]
        return [0 if h == i else h + 1 for i, h in enumerate(heads)], rels

    def _search(self, model, docs: List[Doc], width: int, density: float,
                steps: Optional[List[numpy.ndarray]] = None) -> List:
        """Run the transition system with `model` (the component's step model) over `docs` with
        a beam of `width` (1 = greedy); return one thinc Beam per doc. With `steps` (width 1),
        record at each step log softmax over the valid actions, in BILUO columns, at the token
        the step labels (NER: each action consumes the first word of the buffer)."""
        moves = self.pipe.moves
        batch = BeamBatch(moves, moves.init_batch(docs), None, width, density=density)
        while not batch.is_done:
            live = [i for i, beam in enumerate(batch.beams) if not beam.is_done]
            states = batch.get_unfinished_states()
            if not states:
                break
            scores = numpy.ascontiguousarray(self.pipe.model.ops.to_numpy(model.predict(states)), dtype="float32")
            if steps is not None:  # width 1: one unfinished state per live doc, in doc order
                for i, state, row in zip(live, states, scores):
                    steps[i][state.B(0)] = self._step_log_probs(state, row)
            batch.advance(scores)
        return list(batch.beams)

    def _step_log_probs(self, state, scores: numpy.ndarray) -> numpy.ndarray:
        """log softmax of one step's action scores [n_moves] over the valid actions, summed
        into BILUO columns [C]; log-zero for columns no valid action reaches."""
        moves = self.pipe.moves
        valid = numpy.array([moves.is_valid(state, name) for name in self._move_names])
        out = numpy.full(len(self._column_names), LOG_ZERO, dtype="float32")
        if not valid.any():
            return out
        s = scores[valid].astype("float64")
        log_p = s - (s.max() + numpy.log(numpy.exp(s - s.max()).sum()))
        probs = numpy.zeros(len(out))
        numpy.add.at(probs, self._columns[valid], numpy.exp(log_p))
        has = probs > 0
        out[has] = numpy.log(probs[has])
        return out

    # -- a padded batch of cached outputs ---------------------------------------------------------
    def teacher_batch(self, arrays: Sequence[Arrays], device: torch.device):
        """Cached `teacher_outputs` padded into NERBeamPotentials (NER) or BeamParserPotentials."""
        arrays = list(arrays)
        key = "parses" if self.task == "ner" else "heads"
        for a in arrays:
            if key not in a or a[key].ndim != 2 or a["log_probs"].shape != (a[key].shape[0],):
                shape = tuple(numpy.shape(a.get(key)))
                raise ValueError(Errors.E324.format(name=self.name, field=key, shape=shape, expected="[K, n]"))
        lengths = torch.tensor([a[key].shape[1] for a in arrays], dtype=torch.long)
        B, N = len(arrays), int(lengths.max()) if arrays else 0
        K = max((a[key].shape[0] for a in arrays), default=1)
        log_probs = torch.full((B, K), LOG_ZERO)
        for b, a in enumerate(arrays):
            log_probs[b, : a["log_probs"].shape[0]] = torch.from_numpy(numpy.asarray(a["log_probs"], dtype="float32"))
        if self.task == "ner":
            C = len(self._column_names)
            steps = torch.zeros(B, N, C)
            for b, a in enumerate(arrays):
                if a["steps"].shape != (a[key].shape[1], C):
                    raise ValueError(Errors.E324.format(name=self.name, field="steps", shape=a["steps"].shape,
                                                        expected=f"[n, {C}]"))
                steps[b, : a["steps"].shape[0]] = torch.from_numpy(numpy.asarray(a["steps"], dtype="float32"))
            return NERBeamPotentials(self.kd_kind, _pad_ids(arrays, "parses", K, N).to(device), log_probs.to(device),
                                     steps.to(device), lengths.to(device), self._labels)
        return beam_parser_potentials(_pad_ids(arrays, "heads", K, N), _pad_ids(arrays, "rels", K, N), log_probs,
                                      lengths, len(self._labels), kind=self.kd_kind, device=device)


def _pad_ids(arrays: Sequence[Arrays], name: str, K: int, N: int) -> torch.Tensor:
    """Per-sentence [K_b, n_b] ids as one LongTensor [B, K, N], -1 elsewhere."""
    ids = torch.full((len(arrays), K, N), -1, dtype=torch.long)
    for b, a in enumerate(arrays):
        value = torch.from_numpy(numpy.asarray(a[name], dtype="int64"))
        ids[b, : value.shape[0], : value.shape[1]] = value
    return ids


def _normalised_log(probs: Sequence[float]) -> numpy.ndarray:
    """log(p / sum p) [K] in float32: the beam's final analyses only (spaCy's probabilities may
    include states that never finished)."""
    p = numpy.asarray(probs, dtype="float64")
    return numpy.maximum(numpy.log(p / p.sum()), LOG_ZERO).astype("float32")

