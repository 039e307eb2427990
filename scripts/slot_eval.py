#!/usr/bin/env python
"""Evaluate a trained pipeline on a SNIPS/ATIS split: slot F1, exact match and speed (SenTScore §5).

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

The JSON written to `--output` holds exactly `ents_p, ents_r, ents_f, exact_match, n_sentences,
words_per_second, sentences_per_second`.

    python scripts/slot_eval.py training/snips/model-best corpus/snips-100-seed0/test \
        --output metrics/snips/student.json --batch-size 256 [--disable kd] [--gpu-id 0]
"""
import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

PathLike = Union[str, Path]
SpanSet = Set[Tuple[int, int, str]]
KEYS = ("ents_p", "ents_r", "ents_f", "exact_match", "n_sentences", "words_per_second",
        "sentences_per_second")


def evaluate_slots(nlp, split: PathLike, *, batch_size: int = 256, scheme: str = "IOB2") -> Dict:
    """Slot P/R/F1, exact-match rate and speed of `nlp` on a SlotGated-SLU split folder.

    nlp (Language): the pipeline; its tokenizer is not used.
    split (PathLike): folder with `seq.in`, `seq.out` and optionally `label`.
    batch_size (int): docs per `nlp.pipe` batch; the first batch is also the warm-up.
    scheme (str): tag scheme of `seq.out`.
    RETURNS (Dict): the metrics, keyed as in `KEYS`.
    """
    from spacy.scorer import get_ner_prf
    from spacy.training import Example
    from spacy.util import registry

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"--batch-size must be a positive integer, got {batch_size!r}")
    corpus = registry.readers.get("spacy-skd.SlotFilling.v1")(path=Path(split), scheme=scheme)
    gold = list(corpus(nlp))
    if not gold:
        raise ValueError(f"{split}: no utterances to evaluate")
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


def _span_set(doc) -> SpanSet:
    return {(ent.start, ent.end, ent.label_) for ent in doc.ents}


def _rate(count: int, seconds: float) -> Optional[float]:
    """count / seconds, or None when the clock did not advance."""
    return count / seconds if seconds > 0 else None


def _overrides(pairs: List[str], parser: argparse.ArgumentParser) -> dict:
    """KEY=VALUE pairs as a nested config dict; values are parsed as JSON when they can be."""
    from spacy.util import dot_to_dict

    flat = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            parser.error(f"--set {pair!r}: expected KEY=VALUE, e.g. components.slots.beam_size=3")
        try:
            flat[key] = json.loads(value)
        except json.JSONDecodeError:
            flat[key] = value
    return dot_to_dict(flat)


def _csv(values: Optional[List[str]]) -> List[str]:
    return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="trained pipeline folder (e.g. training/.../model-best)")
    parser.add_argument("split", type=Path, help="split folder with seq.in, seq.out (and label)")
    parser.add_argument("--output", type=Path, required=True, help="metrics JSON file")
    parser.add_argument("--batch-size", type=int, default=256, help="docs per nlp.pipe batch (256)")
    parser.add_argument("--disable", action="append", default=None, metavar="NAMES",
                        help="comma-separated components to disable, passed to spacy.load (repeatable)")
    parser.add_argument("--scheme", default="IOB2", help="tag scheme of seq.out (IOB2)")
    parser.add_argument("--gpu-id", type=int, default=-1, help="GPU to run on (-1: CPU)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override at load, e.g. components.slots.decoding=constrained (repeatable)")
    args = parser.parse_args(argv)

    import spacy

    if not args.model.is_dir():
        parser.error(f"{args.model}: pipeline folder not found")
    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)
    nlp = spacy.load(args.model, disable=_csv(args.disable), config=_overrides(args.set, parser))
    try:
        metrics = evaluate_slots(nlp, args.split, batch_size=args.batch_size, scheme=args.scheme)
    except ValueError as err:
        parser.error(str(err))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf8")
    for key in KEYS:
        print(f"{key:<22} {metrics[key]}")
    print(f"Written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
