"""Corpus readers for `[corpora]`: CoNLL NER columns, SNIPS/ATIS slot filling, CoNLL-U
dependency trees and raw text.

Each `create_*` factory follows spaCy's `Corpus` convention: it validates its arguments when the
config is resolved (a missing path fails at once, not at the first epoch) and returns a callable
object; `corpus(nlp)` streams `Example`s lazily and can be called again for every epoch.

Entity annotation is read as tags in a tag scheme (`structs.tag_schemes`) and stored as
`reference.ents` (slot types are entity labels too), so spaCy's `Scorer` and the NER-style
components consume every corpus the same way. Invalid tag *sequences* are repaired leniently
(the first repair in each file is reported once as W001); malformed tag *strings* raise E052.
CoNLL-U trees are stored as spaCy's `heads`/`deps` (plus `pos`, `tag_`, `lemma_`), the
attributes `Scorer.score_deps` reads.

All files are read as UTF-8 (a leading BOM is dropped) and transparently gunzipped when their
name ends in `.gz`. Columns and tokens are split on ASCII whitespace only, so a token holding
a non-breaking space stays one token.
"""
import gzip
import io
import re
import warnings
import zlib
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import conllu
from conllu.exceptions import ParseException
from spacy import util
from spacy.parts_of_speech import IDS as POS_IDS
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
# conllu.parser.parse_line splits a stripped line on this; a CoNLL-U word line has 10 columns.
_CONLLU_SEP = re.compile(r"\t| {2,}")
_CONLLU_COLUMNS = 10
_HEAD = re.compile(r"0|-?[1-9][0-9]*")  # what conllu reads as an integer HEAD
_UPOS = frozenset(tag for tag in POS_IDS if tag)  # spaCy's POS symbols; "" (unset) is "_"


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
    path: Path, scheme: str = "IOB2", limit: int = 0
) -> Callable[["Language"], Iterator[Example]]:
    """SNIPS/ATIS slot filling: a folder with line-aligned `seq.in`, `seq.out` and optional `label`.

    path (Path): the split's folder, e.g. `snips/train`.
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


@registry.readers("spacy-skd.CoNLLU.v1")
def create_conllu_reader(
    path: Path, limit: int = 0, strip_subtypes: bool = False, min_length: int = 1
) -> Callable[["Language"], Iterator[Example]]:
    """Universal Dependencies CoNLL-U files: one basic dependency tree per sentence.

    path (Path): a `.conllu` / `.conllu.gz` file, or a folder whose non-hidden `*.conllu` and
        `*.conllu.gz` files are read (sorted, not recursive).
    limit (int): maximum number of sentences; 0 reads everything.
    strip_subtypes (bool): keep only the universal relation, the part of DEPREL before ':'
        ("nmod:poss" -> "nmod").
    min_length (int): skip sentences with fewer syntactic words.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    return CoNLLUCorpus(path, limit=limit, strip_subtypes=strip_subtypes, min_length=min_length)


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

    def __init__(self, path: Union[str, Path], *, scheme: str = "IOB2", limit: int = 0) -> None:
        self.path = _check_path(path)
        self.scheme = check_scheme(scheme)
        self.limit = _check_limit(limit)
        missing = [name for name in ("seq.in", "seq.out") if not (self.path / name).is_file()]
        if missing:
            raise ValueError(Errors.E055.format(path=self.path, missing=", ".join(missing)))

    def __call__(self, nlp: "Language") -> Iterator[Example]:
        """Yield the examples.

        nlp (Language): provides the vocab.
        YIELDS (Example): predicted Doc with the words only, reference Doc with slots and intent.
        """
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


class CoNLLUCorpus:
    """Stream one `Example` per sentence of CoNLL-U files, parsed with the `conllu` library.

    Only syntactic words are kept: multiword-token ranges (`3-4 don't`) and empty nodes (`8.1`,
    enhanced graphs only) are skipped. The reference Doc holds FORM as the words, HEAD as
    `heads` (absolute indices; the root is its own head, as spaCy requires), DEPREL as `deps`
    (the root's "root" kept as read), UPOS as `pos`, XPOS as `tag_` and LEMMA as `lemma_` ('_'
    leaves a value unset), and `sent_starts` marks the Doc as one sentence (the single-root
    tree agrees; spaCy re-derives the starts from the heads when DEPREL is given). Spaces come
    from `SpaceAfter=No` in MISC; inside a multiword token the words are joined and the range
    line's MISC decides the space after its last word, so `doc.text` is the `# text` comment
    whenever the words spell the token (as in English). `# sent_id` goes to
    `reference.user_data["sent_id"]`. The predicted Doc has the same words and spaces, so the
    two align one to one. DEPS, FEATS and the rest of MISC are not read.

    Errors name the file and line: wrong column count (E062), a line conllu rejects (E063), a
    HEAD that is not a word of the sentence (E064), word IDs out of order (E065), an unknown
    UPOS (E066), heads that are not one tree (E067). CoNLL-U Plus files are read only when their
    columns are the standard ten.

    path (Path): a file or a folder of `*.conllu` / `*.conllu.gz` files.
    limit (int): maximum number of sentences; 0 means no limit.
    strip_subtypes (bool): cut DEPREL subtypes ("obl:tmod" -> "obl").
    min_length (int): minimum number of syntactic words; sentences without words (a block of
        comments only) are always skipped.
    """

    def __init__(
        self,
        path: Union[str, Path],
        *,
        limit: int = 0,
        strip_subtypes: bool = False,
        min_length: int = 1,
    ) -> None:
        self.path = _check_path(path)
        self.limit = _check_limit(limit)
        if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 0:
            raise ValueError(Errors.E068.format(min_length=min_length))
        self.min_length = min_length
        self.strip_subtypes = strip_subtypes
        if self.path.is_dir() and not _conllu_files(self.path):
            raise ValueError(Errors.E069.format(path=self.path))

    def __call__(self, nlp: "Language") -> Iterator[Example]:
        """Yield the examples.

        nlp (Language): provides the vocab (the words are not re-tokenized).
        YIELDS (Example): predicted Doc with words and spaces, reference Doc with the tree.
        """
        n = 0
        for loc in _conllu_files(self.path) if self.path.is_dir() else [self.path]:
            for sentence in self._read_file(loc):
                if len(sentence.words) < max(self.min_length, 1):
                    continue
                yield sentence.to_example(nlp)
                n += 1
                if n == self.limit:
                    return

    def _read_file(self, loc: Path) -> Iterator["_Sentence"]:
        with closing(_read_lines(loc)) as lines:
            stream = _BlockStream(lines)
            sentences = iter(conllu.parse_incr(stream))
            index = 0
            while True:
                try:
                    tokens = next(sentences)
                except StopIteration:
                    return
                except ParseException as err:
                    raise _diagnose(loc, stream.block, err) from err
                index += 1
                yield _Sentence.from_tokens(loc, index, tokens, stream.block, self.strip_subtypes)


# --- helpers --------------------------------------------------------------------------------


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


@dataclass
class _Sentence:
    """One CoNLL-U sentence's syntactic words, checked to form a tree; `heads` are 0-based
    absolute indices with the root pointing to itself, "" leaves pos/tag/lemma unset and None
    a dependency label."""

    words: List[str]
    spaces: List[bool]
    heads: List[int]
    deps: List[Optional[str]]
    pos: List[str]
    tags: List[str]
    lemmas: List[str]
    sent_id: Optional[str]

    @classmethod
    def from_tokens(
        cls,
        path: Path,
        index: int,
        tokens: "conllu.TokenList",
        block: List[Tuple[int, str]],
        strip_subtypes: bool,
    ) -> "_Sentence":
        """Check and convert the tokens conllu parsed from `block`, the sentence's numbered lines
        (comments included); `index` is the sentence's 1-based position in the file."""
        token_lines = [(lineno, text) for lineno, text in block if not _is_comment(text)]
        for lineno, text in token_lines:
            _check_columns(path, lineno, text)
        assert len(token_lines) == len(tokens), "conllu and _BlockStream disagree on the block"
        words: List[str] = []
        spaces: List[bool] = []
        heads: List[int] = []
        lines: List[int] = []
        deps: List[Optional[str]] = []
        pos: List[str] = []
        tags: List[str] = []
        lemmas: List[str] = []
        range_end, range_space = 0, True  # the open multiword token: its last word and space
        for (lineno, text), token in zip(token_lines, tokens):
            word_id = token["id"]
            if isinstance(word_id, tuple):
                if word_id[1] == "-":  # multiword token: only its SpaceAfter is used
                    range_end, range_space = word_id[2], _space_after(token)
                continue  # ranges and empty nodes (word_id[1] == ".") are not syntactic words
            expected = len(words) + 1
            if word_id != expected:
                raise ValueError(Errors.E065.format(
                    path=path, line=lineno, found=_field(text, 0), expected=expected))
            head = token["head"]
            if not isinstance(head, int):  # '_'; non-integers are diagnosed by _diagnose
                raise ValueError(Errors.E064.format(
                    path=path, line=lineno, head=_field(text, 6), word=word_id,
                    n=_count_words(token_lines)))
            upos = token["upos"]
            if upos != "_" and upos not in _UPOS:
                raise ValueError(Errors.E066.format(path=path, line=lineno, upos=upos,
                                                    word=word_id, options=", ".join(sorted(_UPOS))))
            deprel = token["deprel"]
            if strip_subtypes:
                deprel = deprel.split(":", 1)[0]
            form = token["form"]
            lemma = token["lemma"]
            words.append(form)
            if word_id < range_end:
                spaces.append(False)
            elif word_id == range_end:
                spaces.append(range_space)
            else:
                spaces.append(_space_after(token))
            heads.append(head)
            lines.append(lineno)
            deps.append(None if deprel in ("_", "") else deprel)
            pos.append("" if upos == "_" else upos)
            tags.append(token["xpos"] or "")
            # LEMMA '_' means "unspecified", except for the word '_' itself.
            lemmas.append("" if lemma == "_" and form != "_" else lemma)
        n = len(words)
        for word, (head, lineno) in enumerate(zip(heads, lines), start=1):
            if not 0 <= head <= n:
                raise ValueError(Errors.E064.format(
                    path=path, line=lineno, head=head, word=word, n=n))
        sent_id = tokens.metadata.get("sent_id")
        if n:
            problem = _tree_problem(heads)
            if problem is not None:
                sentence = repr(sent_id) if sent_id else f"#{index} of the file"
                raise ValueError(Errors.E067.format(
                    path=path, line=block[0][0], sentence=sentence, problem=problem))
        # CoNLL-U heads are 1-based with 0 = root; spaCy's are 0-based and the root is its own.
        heads = [head - 1 if head else i for i, head in enumerate(heads)]
        return cls(words, spaces, heads, deps, pos, tags, lemmas, sent_id)

    def to_example(self, nlp: "Language") -> Example:
        predicted = Doc(nlp.vocab, words=self.words, spaces=self.spaces)
        reference = Doc(
            nlp.vocab, words=self.words, spaces=self.spaces, heads=self.heads, deps=self.deps,
            pos=self.pos, tags=self.tags, lemmas=self.lemmas,
            sent_starts=[True] + [False] * (len(self.words) - 1))
        if self.sent_id is not None:
            reference.user_data["sent_id"] = self.sent_id
        return Example(predicted, reference)


class _BlockStream(io.TextIOBase):
    """A text stream over numbered lines for `conllu.parse_incr` that remembers the lines of the
    sentence block read last (`block`, as (line number, text) pairs).

    parse_incr reads a block up to the blank line that ends it and parses it before reading on,
    so while a sentence is being parsed or handed out, `block` holds exactly its lines.
    """

    def __init__(self, lines: Iterator[Tuple[int, str]]) -> None:
        super().__init__()
        self._lines = lines
        self._ended = True  # the next non-blank line opens a new block
        self.block: List[Tuple[int, str]] = []

    def readable(self) -> bool:
        return True

    def readline(self, size: Optional[int] = -1) -> str:  # type: ignore[override]
        lineno, text = next(self._lines, (0, ""))
        if text.strip():  # conllu's own test for a blank line
            if self._ended:
                self.block, self._ended = [], False
            self.block.append((lineno, text))
        elif text:
            self._ended = True
        return text


def _diagnose(path: Path, block: List[Tuple[int, str]], err: ParseException) -> ValueError:
    """Find the line of `block` that made conllu raise `err` and describe it (E062-E064)."""
    token_lines = [(lineno, text) for lineno, text in block if not _is_comment(text)]
    for lineno, text in block:
        if not _is_comment(text):
            _check_columns(path, lineno, text)
            fields = _CONLLU_SEP.split(text.strip())
            if fields[0].isdigit() and not _HEAD.fullmatch(fields[6]):
                return ValueError(Errors.E064.format(
                    path=path, line=lineno, head=fields[6], word=fields[0],
                    n=_count_words(token_lines)))
        try:
            conllu.parse_token_and_metadata(text.strip())
        except ParseException as line_err:
            return ValueError(Errors.E063.format(
                path=path, line=lineno, err=line_err, text=text.rstrip("\r\n")))
    line, text = block[0] if block else ("?", "")
    return ValueError(Errors.E063.format(path=path, line=line, err=err, text=text.rstrip("\r\n")))


def _check_columns(path: Path, lineno: int, text: str) -> None:
    # conllu pads a short line with missing fields and drops extra ones without a word.
    stripped = text.strip()
    if stripped.count("\t") == _CONLLU_COLUMNS - 1 and "  " not in stripped:
        return
    found = len(_CONLLU_SEP.split(stripped))
    if found != _CONLLU_COLUMNS:
        raise ValueError(Errors.E062.format(
            path=path, line=lineno, found=found, text=text.rstrip("\r\n")))


def _is_comment(text: str) -> bool:
    return text.lstrip().startswith("#")  # as conllu decides: on the stripped line


def _field(text: str, i: int) -> str:
    fields = _CONLLU_SEP.split(text.strip())
    return fields[i] if i < len(fields) else ""


def _count_words(token_lines: List[Tuple[int, str]]) -> int:
    return sum(1 for _, text in token_lines if _field(text, 0).isdigit())


def _space_after(token: "conllu.Token") -> bool:
    misc = token.get("misc") or {}
    return misc.get("SpaceAfter") != "No"


def _tree_problem(heads: List[int]) -> Optional[str]:
    """Why 1-based `heads` (0 = root) are not a tree with one root, or None if they are."""
    roots = [i for i, head in enumerate(heads, start=1) if head == 0]
    if not roots:
        return "no word has HEAD 0"
    if len(roots) > 1:
        return f"{len(roots)} words have HEAD 0 (words {', '.join(map(str, roots))})"
    # Follow each word's heads; a word is settled once its path is known to reach the root.
    settled = [False] * (len(heads) + 1)
    settled[0] = True
    for start in range(1, len(heads) + 1):
        path: List[int] = []
        on_path = set()
        word = start
        while not settled[word] and word not in on_path:
            path.append(word)
            on_path.add(word)
            word = heads[word - 1]
        if not settled[word]:  # came back to a word on the path
            cycle = path[path.index(word):]
            return f"words {', '.join(map(str, sorted(cycle)))} form a cycle without the root"
        for word in path:
            settled[word] = True
    return None


def _conllu_files(path: Path) -> List[Path]:
    return sorted(
        p for p in path.iterdir()
        if not p.name.startswith(".") and p.is_file() and p.name.endswith((".conllu", ".conllu.gz"))
    )


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
