"""`[training] before_to_disk = spacy-skd.strip_kd.v1`: save the student without its KD component.

`structural_kd` only matters during training (its `__call__` is a no-op), so a saved or packaged
student should not list it: `spacy.load` of `model-best` then runs exactly the inference
components. `spacy train` calls the callback on the live training pipeline before every save, so
the callback must not change that pipeline: it returns a new `Language` sharing the vocab, the
tokenizer and every other component object (nothing is copied), with a config that no longer
names the KD components.
"""
from typing import Callable, List

from spacy.language import Language
from spacy.util import registry

from ..pipes.kd_placement import KD_FACTORY


@registry.callbacks("spacy-skd.strip_kd.v1")
def create_strip_kd() -> Callable[[Language], Language]:
    """The `before_to_disk` callback: `strip_kd`."""
    return strip_kd


def strip_kd(nlp: Language) -> Language:
    """`nlp` without its structural_kd components, for saving; `nlp` itself is left unchanged.

    nlp (Language): a student training pipeline.
    RETURNS (Language): the same components minus KD (the same objects, so averaged parameters
        set by `nlp.use_params` are what gets saved), or `nlp` itself if it has no KD component.
    """
    components = nlp.config["components"]
    kd = [name for name in nlp.component_names if components[name].get("factory") == KD_FACTORY]
    if not kd:
        return nlp
    config = nlp.config.copy()
    config["nlp"]["pipeline"] = [name for name in config["nlp"]["pipeline"] if name not in kd]
    config["nlp"]["disabled"] = [name for name in config["nlp"].get("disabled", []) if name not in kd]
    for name in kd:
        config["components"].pop(name, None)
        config["initialize"]["components"].pop(name, None)
    training = config.get("training", {})
    for key in ("frozen_components", "annotating_components"):
        if training.get(key):
            training[key] = _without(training[key], kd)
    stripped = type(nlp)(vocab=nlp.vocab, meta=nlp.meta, max_length=nlp.max_length, batch_size=nlp.batch_size)
    stripped.tokenizer = nlp.tokenizer
    stripped.config = config
    for name in nlp.component_names:
        if name not in kd:
            stripped.add_pipe(name, source=nlp)
            if name in nlp.disabled:
                stripped.disable_pipe(name)
    return stripped


def _without(names: List[str], drop: List[str]) -> List[str]:
    return [name for name in names if name not in drop]
