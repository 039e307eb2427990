"""Entity F1 of a teacher and of the argmax of its unary marginals (Structural KD, Table 6).

Struct. KD into a MaxEnt student (cases 2a and 4) trains on the teacher's per-token marginals
P_t(y_i | x); taking each token's most probable tag as the prediction shows how much of the
teacher's accuracy those marginals keep (the paper: CRF 89.15 vs CRF-Mrg. 89.08, NER-as-parsing
88.57 vs NER-Par.-Mrg. 87.40 on CoNLL). For one teacher component it scores entity P/R/F1
(spaCy's `get_ner_prf`, as `spacy evaluate` computes `ents_f`) of

- `teacher`: the component's own decoding (`predict` + `set_annotations`);
- `marginal_argmax`: per-token argmax of the unary marginals in the teacher's tag space, decoded
  to entities with `tags_to_spans` (lenient repair):
  - `skd_span_ner` (kd_kind "span"): BIOES marginals of the span DP (`SpanNER.bioes_log_marginals`);
  - `skd_crf_tagger` ("crf"): forward-backward marginals of its linear-chain CRF (with its
    transition mask when constrained), in its `tags` and scheme;
  - `skd_maxent_tagger` ("maxent"): the softmax argmax, which *is* its decoding when it is
    unconstrained (agreement 1.0); a constrained MaxEnt decodes by Viterbi and may differ;

and `agreement`, the share of tokens whose two tags are equal: the raw argmax tag against the
teacher's decoded tag (a tagger's predicted tag ids; a span teacher's entities in BIOES).

The teacher reads the gold tokens of each reference doc, words only, exactly as `structural_kd`
runs it (`Doc(vocab, words=...)`, then the components before the teacher component), so its
score can differ slightly from `spacy evaluate`, which re-tokenizes the text.
"""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc, DocBin, Span
from spacy.training import Example
from tqdm import tqdm

from ..errors import Errors
from ..structs.chain import LinearChainCRF
from ..structs.span import SpanNER
from ..structs.tag_schemes import spans_to_tags, tags_to_spans
from ..teacher.load import load_teacher
from ..teacher.protocol import KDTeacher
from ..teacher.runner import docs_before

KINDS = {"span": "skd_span_ner", "crf": "skd_crf_tagger", "maxent": "skd_maxent_tagger"}
PRF = Dict[str, Optional[float]]
CPU = torch.device("cpu")
DOCBIN = ("a .spacy DocBin with gold entities, e.g. corpus/conll2003_en/test.spacy (`spacy skd convert` "
          "writes one from CoNLL files)")


def teacher_marginals(teacher: Union[str, Path, Language], test: Path, component: str = "ner", *,
                      batch_size: int = 64, device: torch.device = CPU) -> Dict:
    """Load and check the teacher (`load_teacher`), read the gold test docs and score both.

    teacher (str | Path | Language): a trained teacher pipeline or its folder.
    test (Path): a .spacy DocBin with gold entities (E316 if absent).
    RETURNS (Dict): {"component", "kind", **evaluate(...)}: what `spacy skd marginals` writes.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(Errors.E317.format(value=batch_size))
    nlp, pipe, path = load_teacher(teacher, component)
    if pipe.kd_kind not in KINDS:
        raise ValueError(Errors.E315.format(component=component, path=path, factory=nlp.get_pipe_meta(component).factory,
                                            factories=", ".join(KINDS.values())))
    if not Path(test).is_file():
        raise ValueError(Errors.E316.format(path=test, problem="does not exist", expected=DOCBIN))
    references = list(DocBin().from_disk(test).get_docs(nlp.vocab))
    return {"component": component, "kind": pipe.kd_kind,
            **evaluate(nlp, component, references, batch_size=batch_size, device=device)}


def tag_space(pipe: KDTeacher) -> Tuple[List[str], str]:
    """The tags the teacher's unary marginals are over, and their scheme."""
    if pipe.kd_kind == "span":
        return SpanNER.bioes_tags(pipe.labels), "BIOES"  # O, then B, I, E, S per label
    return list(pipe.tags), pipe.cfg["scheme"]


def marginal_argmax(pipe: KDTeacher, docs: Sequence[Doc], device: torch.device) -> List[List[int]]:
    """Per doc, the index in `tag_space(pipe)` of each token's most probable tag under the
    teacher's unary marginals. `docs` must be non-empty and already processed by the components
    before `pipe`. Marginals are computed in float64."""
    with torch.no_grad():
        batch = pipe.teacher_batch(pipe.teacher_outputs(list(docs)), device)  # padded as KD pads them
        if pipe.kd_kind == "span":
            scores = SpanNER(batch.scores.double(), batch.lengths).bioes_log_marginals  # [B, N, 1+4R]
        elif pipe.kd_kind == "crf":
            transitions, start, end = (t.double() for t in (batch.transitions, batch.start, batch.end))
            scores = LinearChainCRF(batch.emissions.double(), transitions, batch.lengths, start, end,
                                    mask=batch.mask).marginals  # [B, N, L]
        else:  # MaxEnt: softmax is monotone in the logits
            scores = batch.emissions
        best = scores.argmax(-1).tolist()
    return [row[: len(doc)] for row, doc in zip(best, docs)]


def teacher_tags(pipe: KDTeacher, docs: Sequence[Doc], predicted: List, tags: Sequence[str]) -> List[List[int]]:
    """The teacher's own decoding as indices in `tag_space(pipe)`: a tagger's predicted tag ids,
    a span teacher's flat entities written in BIOES."""
    if pipe.kd_kind != "span":
        return [list(ids) for ids in predicted]
    index = {tag: i for i, tag in enumerate(tags)}
    labels = pipe.labels
    return [[index[t] for t in spans_to_tags([(i, j + 1, labels[c - 1]) for i, j, c in triples], len(doc), "BIOES")]
            for doc, triples in zip(docs, predicted)]


def evaluate(nlp: Language, component: str, references: Sequence[Doc], *, batch_size: int = 64,
             device: torch.device = CPU) -> Dict:
    """Scores of the teacher and of its marginals' argmax on `references` (gold entities).

    RETURNS (Dict): {"teacher": {"p", "r", "f"}, "marginal_argmax": {...}, "n_docs", "n_tokens",
        "agreement"}; P/R/F and agreement are None when there is nothing to score.
    """
    pipe = nlp.get_pipe(component)
    tags, scheme = tag_space(pipe)
    teacher_egs, marginal_egs = [], []
    agree = total = 0
    with tqdm(total=len(references), desc=f"[{component}] teacher and marginals", unit="doc") as bar:
        for start in range(0, len(references), batch_size):
            refs = references[start : start + batch_size]
            docs = docs_before(nlp, component, [Doc(nlp.vocab, words=[t.text for t in ref]) for ref in refs])
            live = [doc for doc in docs if len(doc)]  # empty docs have no tags and no entities
            with torch.no_grad():
                predicted = pipe.predict(live)
            pipe.set_annotations(live, predicted)
            best = iter(marginal_argmax(pipe, live, device) if live else [])
            own = iter(teacher_tags(pipe, live, predicted, tags))
            for doc, ref in zip(docs, refs):
                ids, decoded = (next(best), next(own)) if len(doc) else ([], [])
                agree += sum(a == b for a, b in zip(ids, decoded))
                total += len(ids)
                argmax_doc = Doc(nlp.vocab, words=[t.text for t in doc])
                argmax_doc.ents = [Span(argmax_doc, i, j, label=label)
                                   for i, j, label in tags_to_spans([tags[k] for k in ids], scheme)]
                teacher_egs.append(Example(doc, ref))
                marginal_egs.append(Example(argmax_doc, ref))
            bar.update(len(refs))
    return {"teacher": _prf(teacher_egs), "marginal_argmax": _prf(marginal_egs), "n_docs": len(references),
            "n_tokens": total, "agreement": agree / total if total else None}


def _prf(examples: List[Example]) -> PRF:
    scores = get_ner_prf(examples)
    return {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"]}
