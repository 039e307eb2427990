"""Slot filling scores of a trained pipeline on a SNIPS/ATIS split (SenTScore §5): slot P/R/F1,
exact match and speed, the metrics files of the SenTScore students (`spacy skd evaluate-slots`).

The split folder (`seq.in`, `seq.out`, optional `label`) is read with `spacy-skd.SlotFilling.v1`,
so the pipeline sees the dataset's own tokens (no tokenizer runs). The predicted docs go through
`nlp.pipe` and are scored with

* `ents_p`, `ents_r`, `ents_f`: micro P/R/F1 over slot spans with spaCy's NER scorer
  (`spacy.scorer.get_ner_prf`, as `spacy evaluate` computes them): a span counts only with exact
  boundaries and label, the CoNLL convention. They are null when neither side has a slot;
* `exact_match`: the share of utterances whose predicted span set equals the gold span set
  (an utterance without slots matches when nothing is predicted);
* `words_per_second`, `sentences_per_second`: timed over the `nlp.pipe` call only, after one
  warm-up batch run on copies of the first docs (model loading and reading are not timed).
"""
import time
from pathlib import Path
from typing import Dict, Optional, Set, Tuple, Union

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from ..errors import Errors
from ..training.readers import create_slot_filling_reader

PathLike = Union[str, Path]
SpanSet = Set[Tuple[int, int, str]]
# exactly what a metrics file of `spacy skd evaluate-slots` holds
KEYS = ("ents_p", "ents_r", "ents_f", "exact_match", "n_sentences", "words_per_second",
        "sentences_per_second")


def evaluate_slots(nlp: Language, split: PathLike, *, batch_size: int = 256, scheme: str = "IOB2") -> Dict:
    """Slot P/R/F1, exact-match rate and speed of `nlp` on a SlotGated-SLU split folder.

    nlp (Language): the pipeline; its tokenizer is not used.
    split (PathLike): folder with `seq.in`, `seq.out` and optionally `label`.
    batch_size (int): docs per `nlp.pipe` batch; the first batch is also the warm-up.
    scheme (str): tag scheme of `seq.out`.
    RETURNS (Dict): the metrics, keyed as in `KEYS`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(Errors.E317.format(value=batch_size))
    gold = list(create_slot_filling_reader(Path(split), scheme=scheme)(nlp))
    if not gold:
        raise ValueError(Errors.E316.format(path=split, problem="holds no utterances",
                                            expected="a split folder with line-aligned seq.in and seq.out"))
    # Warm-up on copies: the timed call below must annotate the untouched predicted docs.
    list(nlp.pipe([eg.predicted.copy() for eg in gold[:batch_size]], batch_size=batch_size))
    start = time.perf_counter()
    docs = list(nlp.pipe([eg.predicted for eg in gold], batch_size=batch_size))
    seconds = time.perf_counter() - start
    examples = [Example(doc, eg.reference) for doc, eg in zip(docs, gold)]
    scores = get_ner_prf(examples)
    n_words = sum(len(doc) for doc in docs)
    matches = sum(_span_set(eg.predicted) == _span_set(eg.reference) for eg in examples)
    return {
        "ents_p": scores["ents_p"],
        "ents_r": scores["ents_r"],
        "ents_f": scores["ents_f"],
        "exact_match": matches / len(examples),
        "n_sentences": len(examples),
        "words_per_second": _rate(n_words, seconds),
        "sentences_per_second": _rate(len(examples), seconds),
    }


def _span_set(doc: Doc) -> SpanSet:
    return {(ent.start, ent.end, ent.label_) for ent in doc.ents}


def _rate(count: int, seconds: float) -> Optional[float]:
    """count / seconds, or None when the clock did not advance."""
    return count / seconds if seconds > 0 else None
