"""A corpus reader that mixes gold examples with unlabeled text for distillation.

The reference (StructuralKD, cases 1b/2b/3/4) never special-cases unlabeled sentences in the
loss: they are pre-annotated with the teacher's Top-1 output, appended to the training set and
shuffled in. Here the reader only marks them (`reference.user_data["skd_unlabeled"] = True`,
entity annotation missing); the distillation component replaces the missing annotation with
the teacher's Top-1 pseudo-labels and computes the teacher's marginals on the same docs.
"""
import random
from itertools import islice
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, List, Optional

from spacy.training import Example
from spacy.util import registry

from ..errors import Errors

if TYPE_CHECKING:
    from spacy.language import Language

UNLABELED_KEY = "skd_unlabeled"


@registry.readers("spacy-skd.Mixed.v1")
def create_mixed_reader(
    gold: Optional[Callable[["Language"], Iterable[Example]]] = None,
    unlabeled: Optional[Callable[["Language"], Iterable[Example]]] = None,
    max_unlabeled: int = 0,
    shuffle: bool = True,
    seed: int = 0,
) -> Callable[["Language"], Iterator[Example]]:
    """Gold examples plus unlabeled ones marked for Top-1 pseudo-labelling by the teacher.

    gold (Optional[Callable[[Language], Iterable[Example]]]): the labelled corpus, always read
        in full; None trains on unlabeled text only (zero-shot students, case 3).
    unlabeled (Optional[Callable[[Language], Iterable[Example]]]): unlabeled text, e.g.
        `spacy-skd.RawText.v1`; its examples get `reference.user_data["skd_unlabeled"] = True`
        and missing entity annotation.
    max_unlabeled (int): use the first N unlabeled examples only (before shuffling); 0 uses all.
    shuffle (bool): interleave gold and unlabeled examples in a random order fixed by `seed`;
        False yields all gold examples, then the unlabeled ones.
    seed (int): seed of the order, the same in every epoch and every run.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    return MixedCorpus(gold, unlabeled, max_unlabeled=max_unlabeled, shuffle=shuffle, seed=seed)


class MixedCorpus:
    """Yield the examples of a gold corpus and of an unlabeled corpus, optionally interleaved.

    Each call reads the gold corpus and the first `max_unlabeled` unlabeled examples into
    memory (as spaCy's training loop does with any corpus when `max_epochs >= 0`) and yields
    them in one order fixed by `seed`, so the stream is the same in every epoch and every run.
    The unlabeled corpus is never read beyond `max_unlabeled` examples.

    gold (Optional[Callable]): the labelled corpus; None for unlabeled text only.
    unlabeled (Optional[Callable]): the unlabeled corpus; None for gold only.
    max_unlabeled (int): cap on the unlabeled examples; 0 means no cap.
    shuffle (bool): interleave the two parts in a seeded random order.
    seed (int): seed of that order.
    """

    def __init__(
        self,
        gold: Optional[Callable[["Language"], Iterable[Example]]],
        unlabeled: Optional[Callable[["Language"], Iterable[Example]]],
        *,
        max_unlabeled: int = 0,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        if gold is None and unlabeled is None:
            raise ValueError(Errors.E215)
        for name, corpus in (("gold", gold), ("unlabeled", unlabeled)):
            if corpus is not None and not callable(corpus):
                raise TypeError(Errors.E216.format(name=name, value=repr(corpus)))
        if (isinstance(max_unlabeled, bool) or not isinstance(max_unlabeled, int)
                or max_unlabeled < 0):
            raise ValueError(Errors.E217.format(value=max_unlabeled))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(Errors.E218.format(value=repr(seed)))
        self.gold = gold
        self.unlabeled = unlabeled
        self.max_unlabeled = max_unlabeled
        self.shuffle = bool(shuffle)
        self.seed = seed

    def __call__(self, nlp: "Language") -> Iterator[Example]:
        """Yield the examples.

        nlp (Language): passed on to the two corpora.
        YIELDS (Example): gold examples unchanged; unlabeled examples with
            `reference.user_data["skd_unlabeled"] = True` and no entity annotation.
        """
        examples: List[Example] = []
        if self.gold is not None:
            examples.extend(self.gold(nlp))
        if self.unlabeled is not None:
            stream = iter(self.unlabeled(nlp))
            if self.max_unlabeled:
                # islice stops pulling after N, so the rest of the file is never read.
                stream = islice(stream, self.max_unlabeled)
            examples.extend(_mark_unlabeled(eg) for eg in stream)
        if self.shuffle:
            # A fresh generator per call: every epoch (and every run) sees the same order.
            random.Random(self.seed).shuffle(examples)
        yield from examples


def _mark_unlabeled(eg: Example) -> Example:
    """Flag the reference as unlabeled and make its entity annotation missing (not O)."""
    reference = eg.reference
    if reference.has_annotation("ENT_IOB"):
        # Tokens set to O would be trained as "no entity"; missing leaves them to the teacher.
        reference.set_ents([], default="missing")
    reference.user_data[UNLABELED_KEY] = True
    return eg
