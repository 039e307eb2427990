"""Corpus readers for `[corpora]`: CoNLL NER columns, SNIPS/ATIS slot filling and raw text,
plus the helpers every reader shares. The CoNLL-U reader (dependency trees) lives in `conllu.py`.

Each `create_*` factory follows spaCy's `Corpus` convention: it validates its arguments when the
config is resolved (a missing path fails at once, not at the first epoch) and returns a callable
object; `corpus(nlp)` streams `Example`s lazily and can be called again for every epoch.

Entity annotation is read as tags in a tag scheme (`structs.tag_schemes`) and stored as
`reference.ents` (slot types are entity labels too), so spaCy's `Scorer` and the NER-style
components consume every corpus the same way. Invalid tag *sequences* are repaired leniently
(the first repair in each file is reported once as W001); malformed tag *strings* raise E052.

All files are read as UTF-8 (a leading BOM is dropped) and transparently gunzipped when their
name ends in `.gz`. Columns and tokens are split on ASCII whitespace only, so a token holding
a non-breaking space stays one token.
"""
import gzip
import re
import warnings
import zlib
from contextlib import ExitStack, closing
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy import util
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from ..errors import Errors, Warnings
from ..structs.tag_schemes import check_scheme, first_repair, tags_to_spans

if TYPE_CHECKING:
    from spacy.language import Language

SpanTuple = Tuple[int, int, str]

DOCSTART = "-DOCSTART-"
_FIELD = re.compile(r"[^ \t\n\r\f\v]+")


# --- registered factories -------------------------------------------------------------------


@registry.readers("spacy-skd.CoNLLNER.v1")
def create_conll_ner_reader(
    path: Path, scheme: str = "IOB1", tag_column: int = -1, limit: int = 0
) -> Callable[["Language"], Iterator[Example]]:
    """CoNLL-2002/2003 NER column files: one token per line, a blank line between sentences.

    path (Path): a file, or a folder whose non-hidden files are all read (sorted, not recursive).
    scheme (str): tag scheme of the NER column: IOB1 for CoNLL-2003, IOB2 for CoNLL-2002.
    tag_column (int): index of the NER column (column 0 is the token); -1 is the last one.
    limit (int): maximum number of sentences; 0 reads everything.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    return CoNLLNERCorpus(path, scheme=scheme, tag_column=tag_column, limit=limit)


@registry.readers("spacy-skd.SlotFilling.v1")
def create_slot_filling_reader(
    path: Optional[Path], scheme: str = "IOB2", limit: int = 0
) -> Callable[["Language"], Iterator[Example]]:
    """SNIPS/ATIS slot filling: a folder with line-aligned `seq.in`, `seq.out` and optional `label`.

    path (Optional[Path]): the split's folder, e.g. `snips/train`; None yields no examples (as
        the unlabeled part of `spacy-skd.Mixed.v1` when there is no silver data).
    scheme (str): tag scheme of `seq.out` (IOB2 for the SlotGated-SLU copies).
    limit (int): maximum number of utterances; 0 reads everything.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    return SlotFillingCorpus(path, scheme=scheme, limit=limit)


@registry.readers("spacy-skd.RawText.v1")
def create_raw_text_reader(
    path: Optional[Path], limit: int = 0, min_length: int = 1
) -> Callable[["Language"], Iterator[Example]]:
    """Unlabeled text for distillation: one text per line, gzipped if the name ends in `.gz`.

    path (Optional[Path]): a file, or a folder whose non-hidden files are all read (sorted, not
        recursive). None (`path = null`) reads nothing, so a KD config can keep its unlabeled
        corpus block and leave `${paths.raw}` empty to train on gold data only.
    limit (int): maximum number of texts; 0 reads everything.
    min_length (int): skip lines with fewer whitespace-separated tokens (blank lines always).
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    return RawTextCorpus(path, limit=limit, min_length=min_length)


# --- corpora --------------------------------------------------------------------------------


class CoNLLNERCorpus:
    """Stream one `Example` per sentence of CoNLL NER column files, entities in `reference.ents`.

    Every `-DOCSTART-` line is dropped, whether a blank line follows it (CoNLL-2003) or it opens
    the next sentence (CoNLL-2002 Dutch); it also ends any sentence still open. All token lines
    of a file must have as many columns as its first token line (E051).

    path (Path): a file or a folder of files.
    scheme (str): tag scheme of the NER column.
    tag_column (int): index of the NER column.
    limit (int): maximum number of sentences; 0 means no limit.
    """

    def __init__(
        self,
        path: Union[str, Path],
        *,
        scheme: str = "IOB1",
        tag_column: int = -1,
        limit: int = 0,
    ) -> None:
        self.path = _check_path(path)
        self.scheme = check_scheme(scheme)
        self.tag_column = tag_column
        self.limit = _check_limit(limit)

    def __call__(self, nlp: "Language") -> Iterator[Example]:
        """Yield the examples.

        nlp (Language): provides the vocab.
        YIELDS (Example): predicted Doc with the words only, reference Doc with the entities.
        """
        n = 0
        for loc in _walk(self.path):
            for words, spans in self._read_file(loc):
                yield _make_example(nlp, words, spans)
                n += 1
                if n == self.limit:
                    return
        warn_if_empty(n, self.path, "sentences")

    def _read_file(self, loc: Path) -> Iterator[Tuple[List[str], List[SpanTuple]]]:
        decode = _TagDecoder(loc, self.scheme)
        n_columns: Optional[int] = None
        words: List[str] = []
        tags: List[str] = []
        lines: List[int] = []
        for lineno, line in _read_lines(loc):
            fields = _split(line)
            if fields and fields[0] != DOCSTART:
                if n_columns is None:
                    n_columns = len(fields)
                    self._check_tag_column(loc, n_columns)
                elif len(fields) != n_columns:
                    raise ValueError(Errors.E051.format(
                        path=loc, line=lineno, expected=n_columns, found=len(fields),
                        text=line.rstrip("\r\n")))
                words.append(fields[0])
                tags.append(fields[self.tag_column])
                lines.append(lineno)
            elif words:  # a blank line or -DOCSTART- ends the sentence
                yield words, decode(tags, lines)
                words, tags, lines = [], [], []
        if words:
            yield words, decode(tags, lines)

    def _check_tag_column(self, loc: Path, n_columns: int) -> None:
        col = self.tag_column
        if isinstance(col, bool) or not isinstance(col, int) or not (
            1 <= col < n_columns or -n_columns < col <= -1
        ):
            raise ValueError(Errors.E059.format(
                path=loc, tag_column=col, n_columns=n_columns, last=n_columns - 1))


class SlotFillingCorpus:
    """Stream one `Example` per utterance of a SNIPS/ATIS split folder.

    `seq.in` holds the whitespace-tokenised utterances, `seq.out` one tag per token (slot types
    become entity labels) and the optional `label` the intent, stored as
    `reference.user_data["intent"]` (ATIS multi-intents stay joined: "atis_flight#atis_airfare").
    Lines blank in both files are skipped. Line-count mismatches (E054, E060) are found when the
    shorter file runs out, so a `limit` below the line count does not see them.

    path (Path): the split's folder.
    scheme (str): tag scheme of `seq.out`.
    limit (int): maximum number of utterances; 0 means no limit.
    """

    def __init__(self, path: Union[str, Path, None], *, scheme: str = "IOB2", limit: int = 0) -> None:
        self.path = None if path is None else _check_path(path)
        self.scheme = check_scheme(scheme)
        self.limit = _check_limit(limit)
        missing = [] if self.path is None else \
            [name for name in ("seq.in", "seq.out") if not (self.path / name).is_file()]
        if missing:
            raise ValueError(Errors.E055.format(path=self.path, missing=", ".join(missing)))

    def __call__(self, nlp: "Language") -> Iterator[Example]:
        """Yield the examples.

        nlp (Language): provides the vocab.
        YIELDS (Example): predicted Doc with the words only, reference Doc with slots and intent.
        """
        if self.path is None:
            return
        in_path, out_path, label_path = (self.path / n for n in ("seq.in", "seq.out", "label"))
        decode = _TagDecoder(out_path, self.scheme)
        n = 0
        with ExitStack() as stack:
            ins = stack.enter_context(closing(_read_lines(in_path)))
            outs = stack.enter_context(closing(_read_lines(out_path)))
            labels = None
            if label_path.is_file():
                labels = stack.enter_context(closing(_read_lines(label_path)))
            n_in = 0
            for n_in, line_in in ins:
                out = next(outs, None)
                if out is None:
                    raise ValueError(Errors.E054.format(
                        path=self.path, n_in=n_in + _count(ins), n_out=n_in - 1))
                label = None
                if labels is not None:
                    label = next(labels, None)
                    if label is None:
                        raise ValueError(Errors.E060.format(
                            path=self.path, n_in=n_in + _count(ins), n_label=n_in - 1))
                words, tags = _split(line_in), _split(out[1])
                if len(words) != len(tags):
                    raise ValueError(Errors.E053.format(
                        path=out_path, line=n_in, n_words=len(words), n_tags=len(tags)))
                if not words:
                    continue
                user_data = {"intent": label[1].strip()} if label is not None else None
                yield _make_example(nlp, words, decode(tags, [n_in] * len(tags)), user_data)
                n += 1
                if n == self.limit:
                    return
            extra = _count(outs)
            if extra:
                raise ValueError(Errors.E054.format(path=self.path, n_in=n_in, n_out=n_in + extra))
            extra = _count(labels) if labels is not None else 0
            if extra:
                raise ValueError(Errors.E060.format(
                    path=self.path, n_in=n_in, n_label=n_in + extra))
        warn_if_empty(n, in_path, "sentences")


class RawTextCorpus:
    """Stream unlabeled texts, one per line, as `Example(doc, doc.copy())` like spaCy's
    `PlainTextCorpus`; the texts are stripped and tokenized with `nlp.make_doc`.

    path (Optional[Path]): a file or a folder of files; `.gz` files are gunzipped. None yields
        no examples (no unlabeled data); a path that does not exist is an error (E050).
    limit (int): maximum number of texts; 0 means no limit.
    min_length (int): minimum number of whitespace-separated tokens; blank lines are always skipped.
    """

    def __init__(self, path: Union[str, Path, None], *, limit: int = 0, min_length: int = 1) -> None:
        self.path = None if path is None else _check_path(path)
        self.limit = _check_limit(limit)
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
            raise ValueError(Errors.E061.format(min_length=min_length))
        self.min_length = min_length

    def __call__(self, nlp: "Language") -> Iterator[Example]:
        """Yield the examples.

        nlp (Language): tokenizes the texts (`nlp.make_doc`).
        YIELDS (Example): the same unannotated Doc as predicted and reference.
        """
        if self.path is None:
            return
        n = 0
        for loc in _walk(self.path):
            for _, line in _read_lines(loc):
                text = line.strip()
                if not text or len(_split(text)) < self.min_length:
                    continue
                doc = nlp.make_doc(text)
                yield Example(doc, doc.copy())
                n += 1
                if n == self.limit:
                    return
        warn_if_empty(n, self.path, f"texts of at least {self.min_length} tokens")


# --- helpers --------------------------------------------------------------------------------
def warn_if_empty(n: int, path: Path, what: str) -> None:
    """A corpus that yields nothing trains or scores to 0.00 in silence: say which file it was."""
    if n == 0:
        warnings.warn(Warnings.W331.format(path=path, what=what))



class _TagDecoder:
    """Tags -> spans for one file: E052 names the line of a malformed tag; W001 reports the
    file's first repaired sequence (once, so noisy files do not flood the log)."""

    def __init__(self, path: Path, scheme: str) -> None:
        self.path = path
        self.scheme = scheme
        self.warned = False

    def __call__(self, tags: List[str], lines: Sequence[int]) -> List[SpanTuple]:
        try:
            if not self.warned:
                repair = first_repair(tags, self.scheme)
                if repair is not None:
                    self.warned = True
                    warnings.warn(Warnings.W001.format(
                        tags=tags, scheme=self.scheme, i=repair[0], rule=repair[1]), stacklevel=2)
            return tags_to_spans(tags, self.scheme)
        except ValueError as err:
            for tag, line in zip(tags, lines):
                try:
                    tags_to_spans([tag], self.scheme)
                except ValueError:
                    raise ValueError(Errors.E052.format(
                        path=self.path, line=line, tag=tag, scheme=self.scheme)) from err
            raise


def _make_example(
    nlp: "Language", words: List[str], spans: List[SpanTuple], user_data: Optional[Dict] = None
) -> Example:
    predicted = Doc(nlp.vocab, words=words)
    reference = Doc(nlp.vocab, words=words)
    # The setter marks every token outside the spans as O (annotated), not as missing.
    reference.ents = [Span(reference, start, end, label=label) for start, end, label in spans]
    if user_data:
        reference.user_data.update(user_data)
    return Example(predicted, reference)


def _check_path(path: Union[str, Path, None]) -> Path:
    loc = util.ensure_path(path)
    if loc is None or not loc.exists():
        raise ValueError(Errors.E050.format(path=path))
    return loc


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(Errors.E058.format(limit=limit))
    return limit


def _walk(path: Path) -> List[Path]:
    """The file itself, or a folder's non-hidden files, sorted (not recursive)."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())


def _split(line: str) -> List[str]:
    """Split on ASCII whitespace (`str.split()` would also split on e.g. U+00A0)."""
    return line.split() if line.isascii() else _FIELD.findall(line)


def _count(lines: Iterator) -> int:
    return sum(1 for _ in lines)


def _read_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """Stream (1-based line number, text) from a UTF-8 file, gunzipping `*.gz` (E056, E057)."""
    gz = path.name.endswith(".gz")
    with (gzip.open(path, "rb") if gz else open(path, "rb")) as f:
        lines = iter(f)
        lineno = 0
        while True:
            try:
                raw = next(lines)
            except StopIteration:
                return
            except (EOFError, zlib.error, gzip.BadGzipFile) as err:
                raise ValueError(Errors.E057.format(path=path, err=err)) from err
            lineno += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(Errors.E056.format(
                    path=path, line=lineno, encoding="UTF-8", err=err)) from err
            if lineno == 1 and text.startswith("\ufeff"):
                text = text[1:]
            yield lineno, text
