"""Teacher vectors for the words of a word list that the raw text never had
(`spacy skd vectors --extra-words FILE`).

The mean-over-occurrences table (`teacher_vectors`) holds only the words of the raw text. The
teacher knows many more: a transformer teacher's own tokenizer vocabulary is a list of some 20,000
whole words it was pretrained on, names of places, people and clubs among them. On CoNLL-2003 test,
28% of the entity words that the default table lacks are in all-MiniLM-L6-v2's vocabulary.

Each listed word is run through the teacher's encoder alone, a one-word text. Such a vector is not
a mean over contexts, so it is mapped into the means' space by a linear map (ridge regression with
a bias) fitted on the table's own words, each encoded alone as well. The map is checked on a
held-out tenth of those words first (mean cosine between mapped and true mean, both centred on the
means' centre), then refitted on all of them. On the CoNLL MiniLM teacher that held-out cosine
is 0.88, against 0.77 for the unmapped vectors and 0.02 for another word's mean.
"""
import gzip
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy
from tqdm import tqdm

from ..errors import Errors
from .vector_agreement import held_out_split, mean_cosine

MAP_L2 = 1.0  # the held-out cosine hardly moves between 0.01 and 100 on the CoNLL MiniLM teacher
HELD_OUT = 0.1


def read_word_list(lines: Sequence[str]) -> List[str]:
    """The distinct words of a word list (one per line, blank lines and surrounding space
    dropped), in first-seen order. Words with inner spaces cannot be one token: refused."""
    words: Dict[str, None] = {}
    for line in lines:
        word = line.strip()
        if not word:
            continue
        if any(c.isspace() for c in word):
            raise ValueError(Errors.E409.format(word=word))
        words.setdefault(word, None)
    return list(words)


def read_word_list_file(path: Path) -> List[str]:
    """`read_word_list` of a text file (.gz ok)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(Errors.E407.format(path=path, problem="does not exist"))
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf8") as f:
        words = read_word_list(f.read().splitlines())
    if not words:
        raise ValueError(Errors.E407.format(path=path, problem="holds no word"))
    return words


def encode_alone(encoder, words: Sequence[str], *, batch_size: int = 256, progress: bool = True
                 ) -> numpy.ndarray:
    """The teacher encoder's vector of each word as a one-word text: [n_words, width] float64."""
    rows = numpy.zeros((len(words), encoder.width))
    bar = tqdm(total=len(words), desc="Encoding listed words alone", unit="word", disable=not progress,
               leave=False)
    for start in range(0, len(words), batch_size):
        batch = words[start:start + batch_size]
        for i, vectors in enumerate(encoder([[word] for word in batch])):
            rows[start + i] = vectors[0]
        bar.update(len(batch))
    bar.close()
    return rows


def fit_map(alone: numpy.ndarray, means: numpy.ndarray, l2: float = MAP_L2
            ) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Ridge regression from one-word vectors to means, with an unpenalised bias.
    RETURNS (weights [width, width], bias [width]): mapped = alone @ weights + bias."""
    x_centre, y_centre = alone.mean(axis=0), means.mean(axis=0)
    x, y = alone - x_centre, means - y_centre
    weights = numpy.linalg.solve(x.T @ x + l2 * numpy.eye(x.shape[1]), x.T @ y)
    return weights, y_centre - x_centre @ weights


def centred_cosine(predicted: numpy.ndarray, target: numpy.ndarray, centre: numpy.ndarray) -> float:
    """Mean cosine between rows, both taken relative to `centre` (raw cosines of means that share
    a large common component would look good for any word)."""
    return mean_cosine(predicted - centre, target - centre)


def lexicon_vectors(encoder, words: Sequence[str], means: numpy.ndarray, extra_words: Sequence[str], *,
                    l2: float = MAP_L2, seed: int = 0, batch_size: int = 256, progress: bool = True
                    ) -> Tuple[List[str], numpy.ndarray, Dict[str, object]]:
    """Vectors in the space of `means` [n, width] (the table's words `words`) for the words of
    `extra_words` that `words` lacks. RETURNS (new words, their vectors [m, width] float64, stats:
    how many listed words were new, the map's held-out centred cosine and its unmapped baseline)."""
    known = set(words)
    extra_words = list(dict.fromkeys(extra_words))  # distinct, first-seen order
    new = [word for word in extra_words if word not in known]
    if len(words) < 2:
        raise ValueError(Errors.E408.format(n_words=len(words)))
    alone = encode_alone(encoder, list(words), batch_size=batch_size, progress=progress)
    held, kept = held_out_split(len(words), HELD_OUT, seed)
    weights, bias = fit_map(alone[kept], means[kept], l2)
    centre = means[kept].mean(axis=0)
    stats: Dict[str, object] = {
        "extra_words_listed": len(extra_words), "extra_words_added": len(new),
        "extra_words_map_cosine": centred_cosine(alone[held] @ weights + bias, means[held], centre),
        "extra_words_unmapped_cosine": centred_cosine(alone[held] - alone[kept].mean(axis=0) + centre,
                                                      means[held], centre),
    }
    if not new:
        return [], numpy.zeros((0, means.shape[1])), stats
    weights, bias = fit_map(alone, means, l2)
    mapped = encode_alone(encoder, new, batch_size=batch_size, progress=progress) @ weights + bias
    return new, mapped, stats
