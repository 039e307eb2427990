"""Teacher vectors for every word, seen or not: a floret table of character n-grams fitted to the
teacher's word vectors (`spacy skd vectors --subwords`).

The teacher's vectors (`teacher_vectors`) exist only for the words of the raw text. A student that
reads them matches its teacher on entities made of those words, and falls behind it on entities
with a word the text never had (on CoNLL-2003 test, the default student found 73% of those against
the teacher's 88%, and as many as the teacher of the others). The teacher itself reads unseen
words through word pieces. This module gives the student the same kind of access: every word's
vector becomes the mean of the rows of its character n-grams in a hashed table (spaCy's floret
mode, the layout floret trains), and the rows are solved for so that the words with a teacher
vector get it back (Pinter et al., EMNLP 2017, "Mimicking Word Embeddings using Subword RNNs",
with a linear n-gram model in place of the RNN). An unseen word then gets a vector built from the
n-grams it shares with the words the teacher saw, in the teacher's space.

The fit is ridge regression, min ||A X - V||^2 + l2 ||X||^2, where row w of the sparse matrix A
averages the table rows of word w's n-grams and V holds the teacher's vectors; it is solved by
conjugate gradients on the normal equations, all columns at once. With more table rows than words
the system is underdetermined and the words the teacher saw are fitted almost exactly.

The n-gram rows are computed here as spaCy's `Vectors` computes them in floret mode (the padded
word and its n-grams of `minn`..`maxn` characters, MurmurHash3 x64 128-bit with `hash_seed`, up
to 4 32-bit hashes each, modulo the row count); `tests/training/test_subword_vectors.py` checks
the two against each other through `Vectors.get_batch`.
"""
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence, Tuple

import mmh3
import numpy
import scipy.sparse
from spacy.strings import StringStore
from spacy.vectors import Vectors
from tqdm import tqdm

from ..errors import Errors
from .vector_agreement import held_out_split, mean_cosine


@dataclass(frozen=True)
class FloretHashing:
    """Where a word's character n-grams live in a floret table (spaCy's `Vectors` floret settings).

    bucket (int): rows of the table.
    minn, maxn (int): shortest and longest n-gram, counted with the `bow`/`eow` padding.
    hash_count (int): rows per n-gram (1-4).
    hash_seed (int): MurmurHash seed.
    """

    bucket: int = 50000
    minn: int = 3
    maxn: int = 5
    hash_count: int = 2
    hash_seed: int = 0
    bow: str = "<"
    eow: str = ">"

    def __post_init__(self) -> None:
        if self.bucket < 1 or not 1 <= self.minn <= self.maxn or not 1 <= self.hash_count <= 4:
            raise ValueError(Errors.E398.format(bucket=self.bucket, minn=self.minn, maxn=self.maxn,
                                                hash_count=self.hash_count))

    def ngrams(self, word: str) -> List[str]:
        """The padded word itself, then its n-grams, shortest first."""
        padded = self.bow + word + self.eow
        return [padded] + [padded[start:start + n] for n in range(self.minn, self.maxn + 1)
                           for start in range(len(padded) - n + 1)]

    def rows(self, word: str) -> List[int]:
        """The table rows whose mean is the word's vector (repeats count twice, as in spaCy)."""
        rows: List[int] = []
        for ngram in self.ngrams(word):
            low, high = mmh3.hash64(ngram.encode("utf8"), self.hash_seed, signed=False)
            hashes = (low & 0xFFFFFFFF, low >> 32, high & 0xFFFFFFFF, high >> 32)[: self.hash_count]
            rows.extend(h % self.bucket for h in hashes)
        return rows

    def lookup_matrix(self, words: Sequence[str]) -> scipy.sparse.csr_matrix:
        """A [n_words, bucket] matrix whose row w averages word w's table rows: A @ table is what
        spaCy's floret `Vectors.get_batch(words)` returns for that table."""
        indptr, indices = [0], []
        for word in words:
            indices.extend(self.rows(word))
            indptr.append(len(indices))
        lengths = numpy.diff(indptr)
        data = numpy.repeat(1.0 / numpy.maximum(lengths, 1), lengths)
        matrix = scipy.sparse.csr_matrix((data, indices, indptr), shape=(len(words), self.bucket))
        matrix.sum_duplicates()
        return matrix

    def vectors(self, table: numpy.ndarray, strings: StringStore) -> Vectors:
        """spaCy floret-mode vectors over `table` [bucket, width]."""
        if table.shape[0] != self.bucket:
            raise ValueError(Errors.E398.format(bucket=f"{self.bucket} (table has {table.shape[0]} rows)",
                                                minn=self.minn, maxn=self.maxn, hash_count=self.hash_count))
        return Vectors(strings=strings, data=numpy.ascontiguousarray(table, dtype="float32"), mode="floret",
                       minn=self.minn, maxn=self.maxn, hash_count=self.hash_count, hash_seed=self.hash_seed,
                       bow=self.bow, eow=self.eow)

    def settings(self) -> Dict[str, object]:
        return asdict(self)


def fit_subword_table(words: Sequence[str], targets: numpy.ndarray, hashing: FloretHashing, *,
                      l2: float = 1e-3, max_iter: int = 300, tol: float = 1e-4, progress: bool = True
                      ) -> Tuple[numpy.ndarray, Dict[str, float]]:
    """Solve for the table [bucket, width] whose n-gram means give back `targets` [n_words, width]
    (ridge regression by conjugate gradients on (A^T A + l2 I) X = A^T V, every column at once).
    Stops when the residual of the normal equations falls below `tol` times its start, or after
    `max_iter` steps. RETURNS (table float32, stats: the mean cosine between each word's fitted and
    target vector, iterations, relative residual)."""
    targets = numpy.asarray(targets, dtype="float64")
    if len(words) != len(targets) or len(words) == 0:
        raise ValueError(Errors.E399.format(n_words=len(words), n_targets=len(targets)))
    lookup = hashing.lookup_matrix(words)
    lookup_t = lookup.T.tocsr()

    def normal(x: numpy.ndarray) -> numpy.ndarray:  # (A^T A + l2 I) x
        return lookup_t @ (lookup @ x) + l2 * x

    table = numpy.zeros((hashing.bucket, targets.shape[1]))
    residual = lookup_t @ targets  # b - normal(0)
    direction = residual.copy()
    rho = (residual * residual).sum(axis=0)  # one CG per column, vectorised
    start = float(numpy.sqrt(rho.sum())) or 1.0
    step = 0
    with tqdm(total=max_iter, desc="Fitting n-gram table", disable=not progress, leave=False) as bar:
        for step in range(1, max_iter + 1):
            q = normal(direction)
            alpha = rho / numpy.maximum((direction * q).sum(axis=0), 1e-30)
            table += direction * alpha
            residual -= q * alpha
            rho_next = (residual * residual).sum(axis=0)
            bar.update(1)
            if numpy.sqrt(rho_next.sum()) <= tol * start:
                break
            direction = residual + direction * (rho_next / numpy.maximum(rho, 1e-30))
            rho = rho_next
    fitted = lookup @ table
    stats = {"fit_cosine": mean_cosine(fitted, targets), "iterations": step,
             "relative_residual": float(numpy.sqrt((residual * residual).sum())) / start}
    return table.astype("float32"), stats


def held_out_cosine(words: Sequence[str], targets: numpy.ndarray, hashing: FloretHashing, *,
                    fraction: float = 0.1, seed: int = 0, **fit_args) -> Dict[str, float]:
    """Fit on all words but a random `fraction`, then compare the held-out words' n-gram vectors
    with their teacher vectors: how well the table stands in for the teacher on unseen words.
    RETURNS {"held_out_cosine", "fit_cosine", "held_out_words"}."""
    held, kept = held_out_split(len(words), fraction, seed)
    table, stats = fit_subword_table([words[i] for i in kept], targets[kept], hashing, **fit_args)
    predicted = hashing.lookup_matrix([words[i] for i in held]) @ table
    return {"held_out_cosine": mean_cosine(predicted, numpy.asarray(targets)[held]),
            "fit_cosine": stats["fit_cosine"], "held_out_words": len(held)}
