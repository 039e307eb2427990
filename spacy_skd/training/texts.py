"""Reading, deduplicating and sharding the texts of the offline teacher pass.

Texts are read and tokenized as the student reads them (`RawTextCorpus` with a blank pipeline
of the teacher's language, or a `.spacy` DocBin), deduplicated (first occurrence wins), and
text k goes to shard k % N, so every worker derives the same split from the same file. The
input's hash names it in the shard manifests.
"""
import hashlib
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
from spacy.tokens import DocBin

from ..errors import Errors
from ..teacher.protocol import Words
from .cache import sentence_key
from .conllu import CoNLLUCorpus
from .readers import RawTextCorpus, _walk


def read_texts(path: Union[str, Path], lang: str) -> Iterator[Words]:
    """The words of every text in order, duplicates included: a `.spacy` DocBin's docs, a CoNLL-U
    file's sentences (`.conllu`, `.conllu.gz`: the syntactic words, as `spacy-skd.CoNLLU.v1`
    gives them to a parser student), or a raw-text file or folder read exactly as
    `spacy-skd.RawText.v1` reads it in a student pipeline (stripped lines, blank ones skipped,
    `spacy.blank(lang).make_doc`). A treebank must not be read as raw text: its columns would
    become words."""
    path = Path(path)
    if not path.exists():
        raise ValueError(Errors.E227.format(path=path))
    nlp = spacy.blank(lang)
    if is_docbin(path):
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
            yield tuple(token.text for token in doc)
        return
    if is_conllu(path):
        for eg in CoNLLUCorpus(path)(nlp):
            yield tuple(token.text for token in eg.predicted)
        return
    for eg in RawTextCorpus(path)(nlp):
        yield tuple(token.text for token in eg.predicted)


def split_texts(texts: Iterator[Words], n_shards: int,
                keep: Optional[Sequence[int]] = None) -> Tuple[Dict[int, List[Words]], int]:
    """The deduplicated texts of the shards in `keep` (default all; text k goes to shard k % N),
    in one pass, and the number of distinct texts in the whole input. Only the kept shards'
    words are held in memory."""
    parts: Dict[int, List[Words]] = {i: [] for i in (range(n_shards) if keep is None else keep)}
    seen = set()
    for words in texts:
        key = sentence_key(words)
        if key in seen:
            continue
        part = parts.get(len(seen) % n_shards)
        if part is not None:
            part.append(words)
        seen.add(key)
    return parts, len(seen)


class InputSplit:
    """One input read once for the shards of one call (`--shard all/N` in one process): the texts
    are read, tokenized and deduplicated on the first shard that needs them, and the input is
    hashed once, instead of once per shard. Holds the words of the shards in `keep` (default
    all) in memory."""

    def __init__(self, texts_path: Union[str, Path], n_shards: int, lang: str,
                 keep: Optional[Sequence[int]] = None) -> None:
        self.texts_path, self.n_shards, self.lang, self.keep = Path(texts_path), n_shards, lang, keep
        self._sha256: Optional[str] = None
        self._split: Optional[Tuple[Dict[int, List[Words]], int]] = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hash_input(self.texts_path)
        return self._sha256

    def shard(self, i: int) -> Tuple[List[Words], int]:
        """The texts of shard i and the number of distinct texts in the whole input."""
        if self._split is None:
            self._split = split_texts(read_texts(self.texts_path, self.lang), self.n_shards, keep=self.keep)
        parts, n_distinct = self._split
        return parts[i], n_distinct

    def check(self, texts_path: Union[str, Path], n_shards: int, lang: str) -> None:
        """Refuse a split of another input, shard count or tokenizer (a caller's mistake)."""
        if (Path(texts_path), n_shards, lang) != (self.texts_path, self.n_shards, self.lang):
            raise ValueError(Errors.E250.format(split=(str(self.texts_path), self.n_shards, self.lang),
                                                call=(str(texts_path), n_shards, lang)))


def hash_input(path: Union[str, Path]) -> str:
    """SHA-256 of the input: the file's bytes, or a folder's files (names and bytes, sorted)."""
    path, digest = Path(path), hashlib.sha256()
    for loc in _walk(path):
        if path.is_dir():
            digest.update(loc.name.encode("utf8") + b"\0")
        with open(loc, "rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


def is_docbin(path: Path) -> bool:
    """A `.spacy` DocBin file (else raw text)."""
    return path.is_file() and path.suffix == ".spacy"


def is_conllu(path: Path) -> bool:
    """A CoNLL-U treebank file, `.conllu` or `.conllu.gz` (else raw text)."""
    return path.is_file() and path.name.endswith((".conllu", ".conllu.gz"))


def input_format(path: Union[str, Path]) -> str:
    """How `read_texts` reads `path`: "docbin", "conllu" or "text" (recorded in manifests, so
    work done on one reading of a file is never reused for another)."""
    path = Path(path)
    return "docbin" if is_docbin(path) else "conllu" if is_conllu(path) else "text"
