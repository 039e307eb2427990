"""The distillation record of a packaged student: where it came from and what KD kept.

`spacy package` copies `meta.json` into the package and renders its `notes` into the package's
README. `distillation_card` gathers what a user of the student should know (the teacher's name
and fingerprint, the objective and temperature, how many gold and unlabeled sentences it was
trained on, and teacher vs. student test scores and speed on the same test set) from the
trained student's own config, the teacher pipeline and `spacy evaluate` outputs;
`with_distillation` puts it into a meta.json as `distillation` plus a Markdown section in `notes`.
"""
from pathlib import Path
from typing import Any, Dict, Optional, Union

import spacy
import srsly
from spacy.language import Language
from spacy.util import load_config, registry

from ..errors import Errors
from .cache import fingerprint_pipeline
from .mixed import UNLABELED_KEY
from .strip_kd import KD_META

KD_FACTORY = "structural_kd"


def distillation_card(student_path: Union[str, Path], *, teacher: Optional[Union[str, Path]] = None,
                      teacher_metrics: Optional[Union[str, Path]] = None,
                      student_metrics: Optional[Union[str, Path]] = None, count: bool = True) -> Dict[str, Any]:
    """What the distillation of the student at `student_path` used and achieved.

    student_path (str | Path): the trained student pipeline (e.g. training/.../model-best).
    teacher (str | Path | None): the teacher pipeline; default: the one its config names.
    teacher_metrics, student_metrics (str | Path | None): `spacy evaluate --output` JSON of both
        on the same test set; scores are left out when either is missing.
    count (bool): read the student's training corpus to count gold and unlabeled sentences.
    RETURNS (Dict[str, Any]): JSON-serialisable; values that could not be found are None.
    """
    student_path = Path(student_path)
    config = load_config(student_path / "config.cfg", interpolate=True)
    nlp = spacy.load(student_path)
    kd_name = next((name for name in nlp.pipe_names if nlp.get_pipe_meta(name).factory == KD_FACTORY), None)
    if kd_name is not None:
        kd, init = config["components"][kd_name], config["initialize"]["components"].get(kd_name, {})
    else:  # saved without its KD component (strip_kd): its settings are in meta.json
        records = nlp.meta.get(KD_META) or {}
        if not records:
            raise ValueError(Errors.E368.format(path=student_path, pipes=nlp.pipe_names))
        record = next(iter(records.values()))
        kd, init = record["config"], record["initialize"]
    teacher = teacher or init.get("teacher")
    card: Dict[str, Any] = {
        "teacher": _teacher_record(teacher, kd["teacher_component"]),
        "student_component": kd["student"],
        "objective": kd["objective"],
        "temperature": kd["temperature"],
        "temperature_mode": kd["temperature_mode"],
        "kd_weight": _describe_weight(kd["kd_weight"]),
        "loss_mix": kd.get("loss_mix", "interpolate"),
        "gold_sentences": None,
        "unlabeled_sentences": None,
    }
    if count:
        card.update(_count_sentences(nlp, config))
    card["test"] = _scores(config, teacher_metrics, student_metrics)
    return card


def with_distillation(meta: Dict[str, Any], card: Dict[str, Any]) -> Dict[str, Any]:
    """A copy of `meta` with the card as `distillation` and as a section of `notes`."""
    meta = dict(meta)
    meta["distillation"] = card
    notes = meta.get("notes") or ""
    meta["notes"] = (notes + "\n\n" if notes else "") + render_notes(card)
    return meta


def render_notes(card: Dict[str, Any]) -> str:
    """The card as Markdown for the package README."""
    teacher = card["teacher"]
    na = "n/a"
    rows = [
        ("Teacher", f"`{teacher['name'] or na}` ({teacher['path'] or na}), component `{teacher['component']}`"),
        ("Teacher fingerprint", f"`{teacher['fingerprint'] or na}`"),
        ("Objective", f"`{card['objective']}`, temperature {card['temperature']} ({card['temperature_mode']})"),
        ("KD weight", f"{card['kd_weight']} ({card['loss_mix']})"),
        ("Gold sentences", _number(card["gold_sentences"])),
        ("Unlabeled sentences", _number(card["unlabeled_sentences"])),
    ]
    lines = ["### Distillation", "",
             "Distilled from the teacher below with spacy-skd (structural knowledge distillation); "
             "the teacher is not needed to load or run this pipeline.", "",
             "| Feature | Description |", "| --- | --- |"]
    lines += [f"| **{key}** | {value} |" for key, value in rows]
    test = card.get("test")
    if test:
        lines += ["", "Teacher and student on the same test set:", "",
                  "| | " + " | ".join(f"`{k}`" for k in test["scores"]) + " | words/s |",
                  "| --- |" + " --- |" * (len(test["scores"]) + 1)]
        for who in ("teacher", "student"):
            values = [_score(test["scores"][k][who]) for k in test["scores"]]
            lines.append(f"| {who} | " + " | ".join(values) + f" | {_number(test['words_per_second'][who])} |")
    return "\n".join(lines)


def _teacher_record(teacher: Optional[Union[str, Path]], component: str) -> Dict[str, Any]:
    record = {"name": None, "path": str(teacher) if teacher else None, "component": component, "fingerprint": None}
    if not teacher or not Path(teacher).exists():
        return record  # packaged elsewhere: the card says what is known
    meta = srsly.read_json(Path(teacher) / "meta.json") if (Path(teacher) / "meta.json").is_file() else {}
    if meta:
        record["name"] = f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}-{meta.get('version', '0.0.0')}"
    record["fingerprint"] = fingerprint_pipeline(spacy.load(teacher), component)
    return record


def _describe_weight(weight: Any) -> str:
    if isinstance(weight, dict):  # a schedule, e.g. teacher annealing
        args = ", ".join(f"{k}={v}" for k, v in weight.items() if not k.startswith("@"))
        return f"{weight.get('@schedules', 'schedule')}({args})"
    return str(weight)


def _count_sentences(nlp: Language, config) -> Dict[str, Optional[int]]:
    """Gold and unlabeled examples the training corpus yields (None when it cannot be read)."""
    try:
        reader = registry.resolve({"train": config["corpora"]["train"]})["train"]
        gold = unlabeled = 0
        for eg in reader(nlp):
            if eg.reference.user_data.get(UNLABELED_KEY):
                unlabeled += 1
            else:
                gold += 1
    except (OSError, ValueError):  # the training data is not on this machine
        return {"gold_sentences": None, "unlabeled_sentences": None}
    return {"gold_sentences": gold, "unlabeled_sentences": unlabeled}


def _scores(config, teacher_metrics, student_metrics) -> Optional[Dict[str, Any]]:
    """The student's weighted scores (its `[training.score_weights]`) for both, and words/s."""
    if not (teacher_metrics and student_metrics and Path(teacher_metrics).is_file() and Path(student_metrics).is_file()):
        return None
    both = {"teacher": srsly.read_json(teacher_metrics), "student": srsly.read_json(student_metrics)}
    keys = [k for k, w in config["training"]["score_weights"].items() if w and all(k in m for m in both.values())]
    return {"scores": {k: {who: both[who][k] for who in both} for k in keys},
            "words_per_second": {who: both[who].get("speed") for who in both}}


def _number(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def _score(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"
