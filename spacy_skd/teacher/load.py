"""Load a teacher pipeline and check that one of its components can teach: one function, one
set of errors, used by training (`structural_kd`) and the offline pass (`skd annotate`) alike."""
from pathlib import Path
from typing import Optional, Tuple, Union

import spacy
from spacy.language import Language

from ..errors import Errors
from .protocol import KDTeacher
from .spacy_transition import SPACY_FACTORIES, SpacyTransitionTeacher

IN_MEMORY = "<Language>"  # the `path` of a teacher given as a loaded pipeline


def load_teacher(teacher: Union[str, Path, Language], component: str,
                 beam_width: Optional[int] = None) -> Tuple[Language, KDTeacher, str]:
    """The teacher pipeline, its teacher component and where it came from.

    teacher (str | Path | Language): a trained teacher pipeline's folder or installed package
        name, or the pipeline.
    component (str): the component that teaches (an skd tagger, parser, span NER or SenTScore,
        or a component of spaCy's factories ner, beam_ner, parser, beam_parser, which comes
        wrapped in a SpacyTransitionTeacher).
    beam_width (Optional[int]): the beam a spaCy transition teacher scores with; None = its
        own. Only spaCy transition teachers read it.
    RETURNS (Tuple[Language, KDTeacher, str]): the pipeline, the component, and the path (or
        "<Language>"). Raises E224 (no such folder), E303 (it does not load), E225 (no such
        component), E226 (the component cannot teach).
    """
    if isinstance(teacher, Language):
        nlp, path = teacher, IN_MEMORY
    else:
        path = str(teacher)
        if not Path(teacher).exists() and not spacy.util.is_package(path):  # a folder, or e.g. en_core_web_trf
            raise ValueError(Errors.E224.format(path=path))
        try:
            nlp = spacy.load(teacher)
        except (OSError, ValueError) as err:
            raise ValueError(Errors.E303.format(path=path, err=err)) from err
    if component not in nlp.pipe_names:
        raise ValueError(Errors.E225.format(path=path, component=component, pipes=", ".join(nlp.pipe_names)))
    pipe = nlp.get_pipe(component)
    factory = nlp.get_pipe_meta(component).factory
    if factory in SPACY_FACTORIES:
        return nlp, SpacyTransitionTeacher(pipe, component, factory, beam_width), path
    if not getattr(pipe, "kd_kind", None) or not isinstance(pipe, KDTeacher):
        raise ValueError(Errors.E226.format(component=component, path=path, type=type(pipe).__name__,
                                            factory=factory, spacy=", ".join(SPACY_FACTORIES)))
    return nlp, pipe, path
