#!/usr/bin/env python
"""Prepare the CoNLL NER corpora of the distillation experiments (weasel `prepare*` commands).

Three sub-commands, also importable as functions:

* `split INPUT GOLD RAW --fraction 0.1 --seed 0`: the low-resource setting. A fixed, seeded sample
  of `fraction` of the sentences of a CoNLL training file is kept as gold (GOLD: a CoNLL column
  file in the input's own format, the original lines unchanged, `-DOCSTART-` lines dropped); the
  other sentences become unlabeled text (RAW: one sentence per line, its tokens joined by single
  spaces). The same input, fraction and seed always give byte-identical outputs.
* `raw INPUT OUTPUT`: a whole CoNLL file as unlabeled text, e.g. the Spanish or Dutch training
  words without their labels for the zero-shot cross-lingual student (case 3).

* `head INPUT OUTPUT --limit N`: the first N non-blank lines of a raw-text file (.gz ok), e.g. a
  slice of the Reuters-21578 paragraphs as the unlabeled text of a student or of `skd vectors`.

Sentences are read with the plugin's reader (`spacy-skd.CoNLLNER.v1`), so the tag column is
validated and sentence boundaries are exactly those `spacy train` sees: a blank line or a
`-DOCSTART-` line ends a sentence (CoNLL-2002 Dutch has no blank line after its DOCSTART lines).
Outputs whose name ends in `.gz` are gzipped with a zero timestamp (reproducible bytes).

    python scripts/prepare_data.py split assets/conll2003_en/train.conll \
        corpus/conll2003_en/train-gold.conll corpus/conll2003_en/train-raw.txt.gz --fraction 0.1 --seed 0
    python scripts/prepare_data.py raw assets/conll2002_es/train.conll \
        corpus/conll2002_es/train-raw.txt.gz --scheme IOB2
"""
import argparse
import gzip
import io
import random
import re
import sys
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple, Union

DOCSTART = "-DOCSTART-"
_FIELD = re.compile(r"[^ \t\n\r\f\v]+")  # ASCII whitespace only, as in the reader

PathLike = Union[str, Path]


class Sentence(NamedTuple):
    """One sentence of a CoNLL file: its token lines verbatim (no line ending) and its words."""

    lines: Tuple[str, ...]
    words: Tuple[str, ...]


class SplitStats(NamedTuple):
    n_sentences: int
    n_gold: int
    n_raw: int


def read_sentences(path: PathLike, scheme: str = "IOB1", tag_column: int = -1) -> List[Sentence]:
    """Read the sentences of a CoNLL NER file, keeping each token line as it is.

    The file is parsed with `spacy_skd.training.readers.create_conll_ner_reader`, which validates
    the tags and fixes the sentence boundaries; the token lines are kept alongside so that a
    split can write them back unchanged. A disagreement between the two (which would mean a bug
    here) is an error rather than a silently different corpus.

    path (PathLike): a CoNLL column file, optionally gzipped.
    scheme (str): tag scheme of the NER column (IOB1 for CoNLL-2003, IOB2 for CoNLL-2002).
    tag_column (int): index of the NER column, -1 for the last one.
    RETURNS (List[Sentence]): the sentences in file order.
    """
    import spacy

    from spacy_skd.training.readers import create_conll_ner_reader

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: expected a CoNLL file (a folder of files is not split)")
    corpus = create_conll_ner_reader(path, scheme=scheme, tag_column=tag_column)
    nlp = spacy.blank("xx")  # only a vocab is needed; the words are given, not tokenized
    reference = [tuple(t.text for t in eg.reference) for eg in corpus(nlp)]
    sentences = list(_blocks(path))
    if [s.words for s in sentences] != reference:
        raise ValueError(f"{path}: sentence boundaries disagree with spacy-skd.CoNLLNER.v1; "
                         f"{len(sentences)} blocks read, {len(reference)} sentences from the reader")
    return sentences


def sample_gold(n_sentences: int, fraction: float, seed: int) -> List[int]:
    """The indices (sorted) of the gold sentences: a fixed random `fraction` of `n_sentences`.

    The sample size is `round(fraction * n_sentences)`, at least 1 when there is a sentence and
    fraction > 0; the sample depends on `seed` only, never on global random state.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], not {fraction}")
    n_gold = round(fraction * n_sentences)
    if fraction > 0 and n_sentences and n_gold == 0:
        n_gold = 1
    return sorted(random.Random(seed).sample(range(n_sentences), n_gold))


def split_corpus(input_path: PathLike, gold_path: PathLike, raw_path: PathLike, *, fraction: float = 0.1,
                 seed: int = 0, scheme: str = "IOB1", tag_column: int = -1) -> SplitStats:
    """Write a seeded `fraction` of a CoNLL file's sentences as gold and the rest as raw text.

    input_path (PathLike): the CoNLL training file.
    gold_path (PathLike): output CoNLL file with the gold sample, in input order and format.
    raw_path (PathLike): output text file, one remaining sentence per line, in input order.
    fraction (float): share of sentences kept as gold.
    seed (int): seed of the sample.
    scheme (str): tag scheme of the input, used to validate it.
    tag_column (int): NER column of the input.
    RETURNS (SplitStats): sentence counts.
    """
    sentences = read_sentences(input_path, scheme=scheme, tag_column=tag_column)
    gold = set(sample_gold(len(sentences), fraction, seed))
    gold_lines: List[str] = []
    raw_lines: List[str] = []
    for i, sentence in enumerate(sentences):
        if i in gold:
            gold_lines.extend(sentence.lines)
            gold_lines.append("")
        else:
            raw_lines.append(" ".join(sentence.words))
    _write_lines(gold_path, gold_lines)
    _write_lines(raw_path, raw_lines)
    return SplitStats(len(sentences), len(gold), len(sentences) - len(gold))


def conll_to_raw(input_path: PathLike, output_path: PathLike, *, scheme: str = "IOB1",
                 tag_column: int = -1, limit: int = 0) -> int:
    """Write the sentences of a CoNLL file as unlabeled text, one per line, tokens joined by spaces.

    limit (int): keep the first N sentences only; 0 keeps all.
    RETURNS (int): the number of sentences written.
    """
    sentences = read_sentences(input_path, scheme=scheme, tag_column=tag_column)
    if limit:
        sentences = sentences[:limit]
    _write_lines(output_path, [" ".join(s.words) for s in sentences])
    return len(sentences)


def head_lines(input_path: PathLike, output_path: PathLike, *, limit: int) -> int:
    """Write the first `limit` non-blank lines of a raw-text file (0: all). RETURNS how many."""
    path = Path(input_path)
    opener = gzip.open if path.name.endswith(".gz") else open
    lines: List[str] = []
    with opener(path, "rt", encoding="utf8") as f:
        for line in f:
            if line.strip():
                lines.append(line.rstrip("\r\n"))
                if limit and len(lines) == limit:
                    break
    _write_lines(output_path, lines)
    return len(lines)


WORDPIECE_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['.-])*")  # letters, inner ' . -; no ## piece


def vocab_words(input_path: PathLike, output_path: PathLike, *, casings: Sequence[str] = ("lower", "title", "upper"),
                min_length: int = 2) -> int:
    """The whole words of a WordPiece vocabulary (vocab.txt: one entry per line; `##` pieces,
    `[special]` entries, numbers and punctuation dropped) in each of `casings`, one per line, for
    `spacy skd vectors --extra-words`. An uncased vocabulary lists "kampala"; the student meets
    "Kampala" and "KAMPALA". RETURNS how many words were written."""
    unknown = [c for c in casings if c not in ("lower", "title", "upper", "as-is")]
    if unknown:
        raise ValueError(f"unknown casing {unknown}; choose among lower, title, upper, as-is")
    with open(input_path, encoding="utf8") as f:
        entries = [line.strip() for line in f]
    words: Dict[str, None] = {}
    for entry in entries:
        if len(entry) < min_length or not WORDPIECE_WORD.fullmatch(entry):
            continue
        for casing in casings:
            cased = {"lower": entry.lower(), "title": entry[:1].upper() + entry[1:].lower(),
                     "upper": entry.upper(), "as-is": entry}[casing]
            words.setdefault(cased, None)
    _write_lines(output_path, list(words))
    return len(words)


# --- helpers --------------------------------------------------------------------------------


def _blocks(path: Path) -> Iterator[Sentence]:
    """Token-line blocks, split as the reader splits them: lines end at b"\\n" only, fields are
    separated by ASCII whitespace, and a blank line or a -DOCSTART- line ends a sentence."""
    lines: List[str] = []
    words: List[str] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.decode("utf-8")
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            line = line.rstrip("\r\n")
            fields = _FIELD.findall(line)
            if fields and fields[0] != DOCSTART:
                lines.append(line)
                words.append(fields[0])
            elif words:
                yield Sentence(tuple(lines), tuple(words))
                lines, words = [], []
    if words:
        yield Sentence(tuple(lines), tuple(words))


def _write_lines(path: PathLike, lines: Sequence[str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(f"{line}\n" for line in lines).encode("utf-8")
    if path.name.endswith(".gz"):
        buffer = io.BytesIO()
        # filename="" and mtime=0: the header holds no name or time, so the bytes are reproducible.
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz:
            gz.write(data)
        data = buffer.getvalue()
    path.write_bytes(data)


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p_split = sub.add_parser("split", help="seeded gold sample + the rest as raw text (low-resource setting)")
    p_split.add_argument("input", type=Path, help="CoNLL training file")
    p_split.add_argument("gold", type=Path, help="output CoNLL file with the gold sample")
    p_split.add_argument("raw", type=Path, help="output raw text, one sentence per line (.gz to gzip)")
    p_split.add_argument("--fraction", type=float, default=0.1, help="share of sentences kept as gold (0.1)")
    p_split.add_argument("--seed", type=int, default=0, help="seed of the sample (0)")

    p_raw = sub.add_parser("raw", help="a CoNLL file as unlabeled text, one sentence per line")
    p_raw.add_argument("input", type=Path, help="CoNLL file")
    p_raw.add_argument("output", type=Path, help="output raw text (.gz to gzip)")
    p_raw.add_argument("--limit", type=int, default=0, help="first N sentences only (0: all)")

    p_head = sub.add_parser("head", help="the first N non-blank lines of a raw-text file")
    p_head.add_argument("input", type=Path, help="raw text, one text per line (.gz ok)")
    p_head.add_argument("output", type=Path, help="output raw text (.gz to gzip)")
    p_head.add_argument("--limit", type=int, required=True, help="lines to keep (0: all)")

    p_vocab = sub.add_parser("vocab-words", help="the whole words of a WordPiece vocab.txt, in several casings")
    p_vocab.add_argument("input", type=Path, help="vocab.txt of a transformer (one entry per line)")
    p_vocab.add_argument("output", type=Path, help="output word list, one word per line (.gz to gzip)")
    p_vocab.add_argument("--casings", default="lower,title,upper", help="comma-separated: lower, title, upper, as-is")
    p_vocab.add_argument("--min-length", type=int, default=2, help="shortest word kept (2)")

    for p in (p_split, p_raw):
        p.add_argument("--scheme", default="IOB1", help="tag scheme of the input: IOB1 (CoNLL-2003), IOB2 (CoNLL-2002)")
        p.add_argument("--tag-column", type=int, default=-1, help="NER column of the input (-1: last)")

    args = parser.parse_args(argv)
    if args.command == "split":
        stats = split_corpus(args.input, args.gold, args.raw, fraction=args.fraction, seed=args.seed,
                             scheme=args.scheme, tag_column=args.tag_column)
        print(f"{args.input}: {stats.n_sentences} sentences -> {stats.n_gold} gold ({args.gold}), "
              f"{stats.n_raw} raw ({args.raw}); fraction {args.fraction}, seed {args.seed}")
    elif args.command == "vocab-words":
        n = vocab_words(args.input, args.output, casings=args.casings.split(","), min_length=args.min_length)
        print(f"{args.input}: {n} words -> {args.output}")
    elif args.command == "head":
        n = head_lines(args.input, args.output, limit=args.limit)
        print(f"{args.input}: first {n} texts -> {args.output}")
    else:
        n = conll_to_raw(args.input, args.output, scheme=args.scheme, tag_column=args.tag_column,
                         limit=args.limit)
        print(f"{args.input}: {n} sentences -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
