"""Run a loaded teacher on batches of words: the one place a teacher runs, so the potentials
that training and the offline pass cache cannot drift apart.

Batches are bounded by padded size, not by count: a batch of B sentences padded to its longest,
N tokens, costs B * padded_size(N), the values one sentence of N tokens takes in the largest
array of the pass (see `padded_size`). `max_batch_cost` bounds that cost, and so the memory, of
every teacher batch and of the target making that follows it; a sentence over the bound on its
own is never run (its outputs are None), and its caller warns how many it skipped.
"""
from functools import cached_property
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc

from ..errors import Errors
from ..training.cache import TeacherCache, fingerprint_pipeline
from .caches import potentials_cache, potentials_space
from .load import load_teacher
from .protocol import Arrays, KDTeacher

# 2^25 values: 128 MiB per float32 array of a batch; a 10,000-token line fits a CRF teacher alone
# (17 tags: 2.9M), a biaffine parser with 40 relations takes sentences up to ~900 tokens, MFVI ~320
DEFAULT_MAX_BATCH_COST = 2**25
# kinds whose outputs are per-token tag scores: skd taggers, SenTScore and spaCy's NER (BILUO)
TAGGER_KINDS = ("crf", "maxent", "ner_beam", "ner_greedy")


def padded_size(kind: str, n: int, width: int) -> int:
    """Values one sentence of n tokens takes in the largest array of the teacher pass, for a
    teacher of `kind` with `width` labels per slot (`output_width`): n L^2 for taggers (a CRF
    student's pair marginals [n - 1, L, L]), n (n + 1) R for biaffine parsers (relation scores
    [n, n + 1, R]), n (n + 1) max(n + 1, R) for MFVI (its sibling scores), n^2 C for span NER.

    >>> padded_size("crf", 10_000, 17), padded_size("biaffine", 3, 2)
    (2890000, 24)
    """
    if kind in TAGGER_KINDS:
        return n * width * width
    if kind == "mfvi":
        return n * (n + 1) * max(n + 1, width)
    if kind == "span":
        return n * n * width
    return n * (n + 1) * width  # biaffine


def output_width(pipe: KDTeacher) -> int:
    """Labels per slot of a teacher's outputs: tags for taggers (BIOES tags, not entity types),
    relations for parsers, entity types plus no-entity for span NER."""
    if pipe.kd_kind in TAGGER_KINDS:
        return len(pipe.tags)  # skd taggers, SenTScore and spaCy NER teachers name their tags
    return len(pipe.labels) + int(pipe.kd_kind == "span")


def plan_batches(lengths: Sequence[int], cost: Callable[[int], int], max_cost: int,
                 max_count: Optional[int] = None) -> Tuple[List[List[int]], List[int]]:
    """The indices of `lengths` grouped shortest first into batches whose padded cost
    B * cost(longest) is at most `max_cost` (and B at most `max_count`), each in its original
    order (a batch that needs no split runs exactly as given), and the indices of the sentences
    whose cost alone is over it.

    >>> plan_batches([3, 1, 2, 9], lambda n: n * n, 9)
    ([[1, 2], [0]], [3])
    """
    batches: List[List[int]] = []
    batch: List[int] = []
    too_long = [i for i, n in enumerate(lengths) if cost(n) > max_cost]
    over = set(too_long)
    for i in sorted((i for i in range(len(lengths)) if i not in over), key=lambda i: lengths[i]):
        # sorted: the newcomer is the longest
        if batch and ((len(batch) + 1) * cost(lengths[i]) > max_cost or len(batch) == max_count):
            batches.append(sorted(batch))
            batch = []
        batch.append(i)
    if batch:
        batches.append(sorted(batch))
    return batches, too_long


def check_max_batch_cost(value: object) -> int:
    """`max_batch_cost` must be an integer >= 1 (E342)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(Errors.E342.format(name="max_batch_cost", value=value, default=DEFAULT_MAX_BATCH_COST))
    return value


def docs_before(teacher: Language, component: str, docs: Sequence[Doc]) -> List[Doc]:
    """`docs` after the components that come before `component` (e.g. the tok2vec it listens
    to): what the teacher component reads."""
    docs = list(docs)
    for name, proc in teacher.pipeline:
        if name == component:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
    return docs


def run_teacher(teacher: Language, component: str, batch: Sequence[Sequence[str]],
                pipe: Optional[KDTeacher] = None) -> List[Arrays]:
    """The raw outputs of a teacher component per sentence (its `teacher_outputs`: emissions,
    logits, arc/relation or span scores), after the components before it, without gradients."""
    docs = docs_before(teacher, component, [Doc(teacher.vocab, words=list(words)) for words in batch])
    with torch.no_grad():
        return (pipe or teacher.get_pipe(component)).teacher_outputs(docs)


class TeacherRunner:
    """A loaded and checked teacher component, callable on batches of words.

    teacher (str | Path | Language): a trained teacher pipeline or its folder.
    component (str): the teacher component (an skd tagger, parser, span NER or SenTScore).
    gpu_id (int): GPU to run on (`spacy.require_gpu`); -1 runs on the CPU.
    max_batch_cost (int): bound of a batch's padded size, B * padded_size(longest).
    beam_width (Optional[int]): a spaCy transition teacher's beam; None = its own.
    beam_density (Optional[float]): that beam's pruning threshold; None = its own.

    Attributes: nlp (the pipeline), pipe (the KDTeacher component), path, component, kind (its
    kd_kind), lang, fingerprint (changes with any weight), space (its potentials namespace),
    max_batch_cost.
    """

    def __init__(self, teacher: Union[str, Path, Language], component: str = "ner", gpu_id: int = -1,
                 max_batch_cost: int = DEFAULT_MAX_BATCH_COST, beam_width: Optional[int] = None,
                 beam_density: Optional[float] = None) -> None:
        self.max_batch_cost = check_max_batch_cost(max_batch_cost)
        if gpu_id >= 0:
            spacy.require_gpu(gpu_id)
        self.nlp, self.pipe, self.path = load_teacher(teacher, component, beam_width, beam_density)
        self.pipe: KDTeacher
        self.component = component
        self.kind: str = self.pipe.kd_kind
        self.lang: str = self.nlp.lang
        self.space = potentials_space(self.kind)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the teacher (`fingerprint_pipeline`); hashed once, on first use."""
        return fingerprint_pipeline(self.nlp, self.component, extra=getattr(self.pipe, "settings", None))

    def cost(self, n: int) -> int:
        """The padded size of one sentence of n tokens (`padded_size`)."""
        return padded_size(self.kind, n, output_width(self.pipe))

    def plan(self, words_batch: Sequence[Sequence[str]],
             max_count: Optional[int] = None) -> Tuple[List[List[int]], List[int]]:
        """`plan_batches` of these sentences within `max_batch_cost`: (batches of indices,
        indices of the sentences too long alone)."""
        return plan_batches([len(words) for words in words_batch], self.cost, self.max_batch_cost, max_count)

    def too_long(self, sentences: Sequence[Sequence[str]]) -> Dict[str, int]:
        """What a warning about skipped sentences says: n, longest, its cost, the bound."""
        longest = max(map(len, sentences), default=0)
        return {"n": len(sentences), "longest": longest, "cost": self.cost(longest), "bound": self.max_batch_cost}

    def __call__(self, words_batch: Sequence[Sequence[str]]) -> List[Optional[Arrays]]:
        """Per sentence, exactly the arrays the potentials cache keeps, run in batches within
        `max_batch_cost`; None for a sentence too long for it alone (never run)."""
        outputs: List[Optional[Arrays]] = [None] * len(words_batch)
        for indices in self.plan(words_batch)[0]:
            arrays = run_teacher(self.nlp, self.component, [words_batch[i] for i in indices], self.pipe)
            for i, found in zip(indices, arrays):
                outputs[i] = found
        return outputs

    def open_cache(self, directory: Union[str, Path]) -> TeacherCache:
        """This teacher's potentials namespace in `directory`."""
        return potentials_cache(directory, self.fingerprint, self.kind)
