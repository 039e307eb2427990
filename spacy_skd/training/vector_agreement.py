"""How well one set of word vectors stands in for another: the mean row-wise cosine, and the
seeded held-out split that both ways of reaching unseen words (`subword_vectors`,
`lexicon_vectors`) are measured on."""
from typing import Tuple

import numpy


def mean_cosine(a: numpy.ndarray, b: numpy.ndarray) -> float:
    """Mean over rows of the cosine between a[i] and b[i] (0 where either is all zeros)."""
    norms = numpy.linalg.norm(a, axis=1) * numpy.linalg.norm(b, axis=1)
    cosines = numpy.where(norms > 0, (a * b).sum(axis=1) / numpy.maximum(norms, 1e-30), 0.0)
    return float(cosines.mean())


def held_out_split(n: int, fraction: float, seed: int) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """A seeded random `fraction` of range(n) (at least one) and the rest: (held, kept)."""
    order = numpy.random.RandomState(seed).permutation(n)
    n_held = max(1, int(n * fraction))
    return order[:n_held], order[n_held:]
