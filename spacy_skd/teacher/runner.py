"""Run a loaded teacher on batches of words: the one place a teacher runs, so the potentials
that training and the offline pass cache cannot drift apart."""
from functools import cached_property
from pathlib import Path
from typing import List, Optional, Sequence, Union

import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc

from ..training.cache import TeacherCache, fingerprint_pipeline
from .caches import potentials_cache, potentials_space
from .load import load_teacher
from .protocol import Arrays, KDTeacher


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
    logits, arc/relation or span scores), after the components before it, without gradients.
    `pipe`: the KDTeacher (a spaCy transition component's wrapper); default the component."""
    docs = docs_before(teacher, component, [Doc(teacher.vocab, words=list(words)) for words in batch])
    with torch.no_grad():
        return (pipe or teacher.get_pipe(component)).teacher_outputs(docs)


class TeacherRunner:
    """A loaded and checked teacher component, callable on batches of words.

    teacher (str | Path | Language): a trained teacher pipeline or its folder.
    component (str): the teacher component (an skd tagger, parser, span NER or SenTScore).
    gpu_id (int): GPU to run on (`spacy.require_gpu`); -1 runs on the CPU.
    beam_width (Optional[int]): a spaCy transition teacher's beam; None = its own.

    Attributes: nlp (the pipeline), pipe (the KDTeacher component), path, component, kind (its
    kd_kind), lang, fingerprint (changes with any weight), space (its potentials namespace).
    """

    def __init__(self, teacher: Union[str, Path, Language], component: str = "ner", gpu_id: int = -1,
                 beam_width: Optional[int] = None) -> None:
        if gpu_id >= 0:
            spacy.require_gpu(gpu_id)
        self.nlp, self.pipe, self.path = load_teacher(teacher, component, beam_width)
        self.pipe: KDTeacher
        self.component = component
        self.kind: str = self.pipe.kd_kind
        self.lang: str = self.nlp.lang
        self.space = potentials_space(self.kind)

    @cached_property
    def fingerprint(self) -> str:
        """SHA-256 of the teacher (`fingerprint_pipeline`); hashed once, on first use."""
        return fingerprint_pipeline(self.nlp, self.component, extra=getattr(self.pipe, "settings", None))

    def __call__(self, words_batch: Sequence[Sequence[str]]) -> List[Arrays]:
        """Per sentence, exactly the arrays the potentials cache keeps."""
        return run_teacher(self.nlp, self.component, words_batch, self.pipe)

    def open_cache(self, directory: Union[str, Path]) -> TeacherCache:
        """This teacher's potentials namespace in `directory`."""
        return potentials_cache(directory, self.fingerprint, self.kind)
