"""`[training] before_to_disk = spacy-skd.strip_kd.v1`: save the student without its KD component.

`structural_kd` only matters during training (its `__call__` is a no-op), so a saved or packaged
student should not list it: `spacy.load` of `model-best` then runs exactly the inference
components. `spacy train` calls the callback on the live training pipeline before every save, so
the callback must not change that pipeline: it returns a new `Language` sharing the vocab, the
tokenizer and every other component object (nothing is copied), with a config that no longer
names the KD components.
"""
from typing import Any, Callable, Dict, List

import srsly
from spacy.language import Language
from thinc.api import Config
from spacy.util import registry

from ..pipes.kd_placement import KD_FACTORY

# meta.json key of the stripped KD components' settings (their config and initialize blocks), so
# a saved student still says how it was distilled (`spacy skd model-card` reads it)
KD_META = "skd_distilled_with"


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
    filled = config.interpolate()  # the values trained with, not `${paths.teacher}`
    record = {name: {"config": filled["components"][name], "position": config["nlp"]["pipeline"].index(name),
                     "initialize": filled["initialize"]["components"].get(name, {})} for name in kd}
    meta = {**nlp.meta, KD_META: srsly.json_loads(srsly.json_dumps(record))}
    config["nlp"]["pipeline"] = [name for name in config["nlp"]["pipeline"] if name not in kd]
    config["nlp"]["disabled"] = [name for name in config["nlp"].get("disabled", []) if name not in kd]
    for name in kd:
        config["components"].pop(name, None)
        config["initialize"]["components"].pop(name, None)
    training = config.get("training", {})
    for key in ("frozen_components", "annotating_components"):
        if training.get(key):
            training[key] = _without(training[key], kd)
    stripped = type(nlp)(vocab=nlp.vocab, meta=meta, max_length=nlp.max_length, batch_size=nlp.batch_size)
    stripped.tokenizer = nlp.tokenizer
    stripped.config = config
    for name in nlp.component_names:
        if name not in kd:
            stripped.add_pipe(name, source=nlp)
            if name in nlp.disabled:
                stripped.disable_pipe(name)
    return stripped


def restore_kd(config: Config, meta: Dict[str, Any]) -> Config:
    """The training config of a student saved by `strip_kd`: its KD components back in their
    blocks and at their places in the pipeline, read from `meta` (the saved meta.json). A config
    that still has them, or a meta without the record, is returned unchanged."""
    records = meta.get(KD_META) or {}
    if not records or any(name in config["components"] for name in records):
        return config
    config = config.copy()
    pipeline = list(config["nlp"]["pipeline"])
    for name, record in sorted(records.items(), key=lambda item: item[1].get("position", 0)):
        pipeline.insert(min(int(record.get("position", 0)), len(pipeline)), name)
        config["components"][name] = dict(record["config"])
        config["initialize"]["components"][name] = dict(record.get("initialize", {}))
    config["nlp"]["pipeline"] = pipeline
    return config


def _without(names: List[str], drop: List[str]) -> List[str]:
    return [name for name in names if name not in drop]
