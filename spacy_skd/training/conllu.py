"""The CoNLL-U reader for `[corpora]`: Universal Dependencies treebanks, one basic dependency
tree per sentence, stored as spaCy's `heads`/`deps` (plus `pos`, `tag_`, `lemma_`), the
attributes `Scorer.score_deps` and the parsers read.

Parsing is left to the `conllu` library, which already handles CoNLL-U's comments, multiword
token ranges and empty nodes; this module checks what conllu accepts silently (column counts,
word order, heads forming one tree, UPOS values) and reports each problem with its file and
line. Arguments, file reading (UTF-8, `.gz`) and path errors are those of the other readers:
the helpers come from `readers.py`.
"""
import io
import re
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, List, Optional, Tuple, Union

import conllu
from conllu.exceptions import ParseException
from spacy.parts_of_speech import IDS as POS_IDS
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..errors import Errors
from .readers import _check_limit, _check_path, _read_lines, warn_if_empty

if TYPE_CHECKING:
    from spacy.language import Language

# conllu.parser.parse_line splits a stripped line on this; a CoNLL-U word line has 10 columns.
_CONLLU_SEP = re.compile(r"\t| {2,}")
_CONLLU_COLUMNS = 10
_HEAD = re.compile(r"0|-?[1-9][0-9]*")  # what conllu reads as an integer HEAD
_UPOS = frozenset(tag for tag in POS_IDS if tag)  # spaCy's POS symbols; "" (unset) is "_"


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
        warn_if_empty(n, self.path, f"sentences of at least {max(self.min_length, 1)} words")

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
