"""Load a teacher pipeline and check that one of its components can teach: one way to load, one
set of errors, used by training (`structural_kd`), the offline pass (`skd annotate`),
`skd init-config` and the reports alike."""
from pathlib import Path
from typing import Tuple, Union

import spacy
from spacy.language import Language

from ..errors import Errors
from .protocol import KDTeacher

IN_MEMORY = "<Language>"  # the `path` of a teacher given as a loaded pipeline


def load_teacher(teacher: Union[str, Path, Language], component: str) -> Tuple[Language, KDTeacher, str]:
    """The teacher pipeline, its teacher component and where it came from.

    teacher (str | Path | Language): a trained teacher pipeline's folder or installed package
        name, or the pipeline.
    component (str): the component that teaches (an skd tagger, parser, span NER or SenTScore).
    RETURNS (Tuple[Language, KDTeacher, str]): the pipeline, the component, and the path (or
        "<Language>"). Raises E224 (no such folder), E303 (it does not load), E225 (no such
        component), E226 (the component cannot teach).
    """
    nlp, path = load_pipeline(teacher)
    return nlp, check_teacher(nlp, component, path), path


def load_pipeline(teacher: Union[str, Path, Language]) -> Tuple[Language, str]:
    """The teacher pipeline and its path, before a component is chosen (`skd init-config` finds
    it in the pipeline). Raises E224 (no such folder or package), E303 (it does not load)."""
    if isinstance(teacher, Language):
        return teacher, IN_MEMORY
    path = str(teacher)
    if not Path(teacher).exists() and not spacy.util.is_package(path):
        raise ValueError(Errors.E224.format(path=path))
    try:
        return spacy.load(teacher), path
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(Errors.E303.format(path=path, err=err)) from err


def check_teacher(nlp: Language, component: str, path: str = IN_MEMORY) -> KDTeacher:
    """`nlp`'s component `component` if it can teach. Raises E225 (no such component), E226 (it
    is not a KDTeacher)."""
    if component not in nlp.pipe_names:
        raise ValueError(Errors.E225.format(path=path, component=component, pipes=", ".join(nlp.pipe_names)))
    pipe = nlp.get_pipe(component)
    if not getattr(pipe, "kd_kind", None) or not isinstance(pipe, KDTeacher):
        raise ValueError(Errors.E226.format(component=component, path=path, type=type(pipe).__name__))
    return pipe
