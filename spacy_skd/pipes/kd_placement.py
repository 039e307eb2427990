"""Where a `structural_kd` component may sit: before its student, neither of them frozen.

The KD component hands the student its teacher targets inside the same `nlp.update`, so it has
to run first; a frozen KD component or student is skipped by `spacy train`, which would leave a
run that reports scores but never used the teacher. Both sides call `check_kd_placement` at
`initialize` (whichever runs first refuses), reading only the pipeline's config: a student need
not import the KD component.
"""
from typing import List

from spacy.language import Language

from ..errors import Errors

KD_FACTORY = "structural_kd"


def kd_components(nlp: Language, student: str) -> List[str]:
    """The names of the structural_kd components that distil into `student`."""
    components = nlp.config.get("components", {})
    return [name for name in nlp.component_names
            if components.get(name, {}).get("factory") == KD_FACTORY
            and components[name].get("student") == student]


def check_kd_placement(nlp: Language, student: str) -> None:
    """Raise E300 if a KD component for `student` comes after it, E301 if either is frozen.

    nlp (Language): the pipeline being initialized; `component_names` keeps the order of
        `[nlp] pipeline`, frozen components included (spaCy disables them during initialize).
    student (str): the student component's name.
    """
    names = nlp.component_names
    if student not in names:
        return  # the KD component reports a missing student itself (E170)
    frozen = list(nlp.config.get("training", {}).get("frozen_components", None) or [])
    for kd in kd_components(nlp, student):
        if names.index(kd) > names.index(student):
            fixed = [kd] + [name for name in names if name != kd]
            raise ValueError(Errors.E300.format(kd=kd, student=student, pipes=names, fixed=fixed))
        for name, role in ((kd, "KD component"), (student, "student")):
            if name in frozen:
                raise ValueError(Errors.E301.format(name=name, frozen=frozen, kd=kd, student=student,
                                                    role=role))
