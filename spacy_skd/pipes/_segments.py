"""Long documents at inference: the parsers score heads per segment, never per document.

Head scores grow with the square of the sequence (the cube for MFVI), so a parser scores each
sentence on its own when the doc has sentence boundaries (a senter, a sentencizer or the
reader), and cuts longer stretches into windows of `max_length` tokens. The token vectors are
still computed for whole docs, so no segment loses its context; only arcs between segments are
impossible, and each segment becomes one tree. Segments are scored in batches whose padded
size B * L^2 stays within max_length^2, so memory is bounded by `max_length` alone.
"""
import warnings
from typing import Iterator, List, Sequence, Tuple

from spacy.tokens import Doc
from thinc.api import Model

from ..errors import Errors, Warnings

# (doc index in the batch, first token, end token)
Segment = Tuple[int, int, int]


def check_max_length(name: str, value) -> int:
    """max_length must be an integer >= 2 (a window of one word is no parse)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise ValueError(Errors.E330.format(name=name, value=value))
    return value


def segments(docs: Sequence[Doc], max_length: int, name: str) -> List[Segment]:
    """The segments of each doc: its sentences if it has sentence boundaries, else the whole
    doc; any of them longer than `max_length` is cut into windows, with a warning."""
    found: List[Segment] = []
    for b, doc in enumerate(docs):
        if not len(doc):
            continue
        has_sents = doc.has_annotation("SENT_START")
        spans = [(s.start, s.end) for s in doc.sents] if has_sents else [(0, len(doc))]
        longest = max(end - start for start, end in spans)
        if longest > max_length:
            warnings.warn(Warnings.W330.format(name=name, n=longest, max_length=max_length,
                                               what="sentence" if has_sents else "doc without sentence boundaries"))
        for start, end in spans:
            found.extend((b, s, min(s + max_length, end)) for s in range(start, end, max_length))
    return found


def padded_batches(pieces: Sequence[Segment], max_length: int) -> Iterator[List[Segment]]:
    """Segments grouped by length so that each batch's padded size B * L^2 is at most
    max_length^2 (one segment of any length at least)."""
    budget = max_length * max_length
    batch: List[Segment] = []
    for piece in sorted(pieces, key=lambda p: p[2] - p[1]):
        longest = piece[2] - piece[1]  # sorted: the newcomer is the longest
        if batch and (len(batch) + 1) * longest * longest > budget:
            yield batch
            batch = []
        batch.append(piece)
    if batch:
        yield batch


def scored_segments(model: Model, docs: Sequence[Doc], max_length: int, name: str
                    ) -> Iterator[Tuple[List[Segment], object]]:
    """(batch of segments, the head's scores for them), for every batch of `docs`' segments:
    token vectors from the model's `tok2vec` over whole docs, then its `head` per padded batch.
    Yields nothing for docs without tokens."""
    pieces = segments(docs, max_length, name)
    if not pieces:
        return
    vectors = model.get_ref("tok2vec").predict(docs)
    head = model.get_ref("head")
    for batch in padded_batches(pieces, max_length):
        yield batch, head.predict([vectors[b][start:end] for b, start, end in batch])


def doc_heads(local: Sequence[int], start: int) -> List[int]:
    """Heads within a segment starting at token `start` (0 = ROOT, else 1-based in the
    segment) -> heads in the doc (0 = ROOT, else 1-based in the doc)."""
    return [0 if h == 0 else h + start for h in local]
