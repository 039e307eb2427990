"""Load a teacher pipeline and check that one of its components can teach: one way to load, one
set of errors, used by training (`structural_kd`), the offline pass (`skd annotate`),
`skd init-config` and the reports alike."""
from pathlib import Path
from typing import Optional, Tuple, Union

import spacy
from spacy.language import Language

from ..errors import Errors
from .protocol import KDTeacher
from .spacy_transition import SPACY_FACTORIES, SpacyTransitionTeacher

IN_MEMORY = "<Language>"  # the `path` of a teacher given as a loaded pipeline


def load_teacher(teacher: Union[str, Path, Language], component: str, beam_width: Optional[int] = None,
                 beam_density: Optional[float] = None) -> Tuple[Language, KDTeacher, str]:
    """The teacher pipeline, its teacher component and where it came from.

    teacher (str | Path | Language): a trained teacher pipeline's folder or installed package
        name, or the pipeline.
    component (str): the component that teaches (an skd tagger, parser, span NER or SenTScore,
        or a component of spaCy's factories ner, beam_ner, parser, beam_parser, which comes
        wrapped in a SpacyTransitionTeacher).
    beam_width (Optional[int]): the beam a spaCy transition teacher scores with; None = its
        own. Only spaCy transition teachers read it.
    beam_density (Optional[float]): their beam's pruning threshold; None = their own.
    RETURNS (Tuple[Language, KDTeacher, str]): the pipeline, the component, and the path (or
        "<Language>"). Raises E224 (no such folder), E303 (it does not load), E225 (no such
        component), E226 (the component cannot teach).
    """
    nlp, path = load_pipeline(teacher)
    return nlp, check_teacher(nlp, component, path, beam_width=beam_width, beam_density=beam_density), path


def load_pipeline(teacher: Union[str, Path, Language]) -> Tuple[Language, str]:
    """The teacher pipeline and its path, before a component is chosen (`skd init-config` finds
    it in the pipeline). Raises E224 (no such folder or package), E303 (it does not load)."""
    if isinstance(teacher, Language):
        return teacher, IN_MEMORY
    path = str(teacher)
    if not Path(teacher).exists() and not spacy.util.is_package(path):  # a folder, or e.g. en_core_web_trf
        raise ValueError(Errors.E224.format(path=path))
    try:
        return spacy.load(teacher), path
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(Errors.E303.format(path=path, err=err)) from err


def check_teacher(nlp: Language, component: str, path: str = IN_MEMORY, *,
                  beam_width: Optional[int] = None, beam_density: Optional[float] = None) -> KDTeacher:
    """`nlp`'s component `component` if it can teach: an skd teacher as it is, a spaCy
    transition component wrapped. Raises E225 (no such component), E226 (it cannot teach)."""
    if component not in nlp.pipe_names:
        raise ValueError(Errors.E225.format(path=path, component=component, pipes=", ".join(nlp.pipe_names)))
    pipe = nlp.get_pipe(component)
    factory = nlp.get_pipe_meta(component).factory
    if factory in SPACY_FACTORIES:
        return SpacyTransitionTeacher(pipe, component, factory, beam_width, beam_density)
    if not getattr(pipe, "kd_kind", None) or not isinstance(pipe, KDTeacher):
        raise ValueError(Errors.E226.format(component=component, path=path, type=type(pipe).__name__,
                                            factory=factory, spacy=", ".join(SPACY_FACTORIES)))
    return pipe
