"""The cells of the study (case -> metrics folders, metric, objectives) and one case's rows:
ours (mean ± std, words/s, ASO of the KD student) beside the paper's figure for the same cell."""
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from ..errors import Errors
from .metrics import OBJECTIVE_NAMES, ORDER, Score, collect, mean_std, order_objectives, read_json, read_score
from .significance import aso_score

PAPER_FILE = Path(__file__).parent / "paper_results.json"
LABELS = {**OBJECTIVE_NAMES, "gold": "gold only", "pseudo": "pseudo-labels (λ_KL = 0)",
          "kd": "KD (λ_KL = 1)", "kdt2": "KD, KL × τ² (ours)", "teacher-constrained": "teacher, constrained SenT'",
          "teacher-maxent": "MaxEnt teacher", "token-maxent": "Token KD from the MaxEnt teacher"}
SLOT_ORDER = ["gold", "pseudo", "kdt2", "kd"]


class Case(NamedTuple):
    """One cell of the study: where its metrics may live and what they are scored by."""
    name: str                              # project.yml case name, key of paper_results.json
    title: str                             # task and dataset, as the plots title them
    metric: str                            # key of the evaluate JSON
    objectives: Tuple[str, ...]            # runs the workflow makes, in table order
    runs: Tuple[Tuple[str, str], ...]      # (metrics folder, teacher used), first found wins
    target: str = "structural"
    # suffix of a companion folder `<run><companion>` whose teacher and students join the table
    # as `teacher<companion>`, `<objective><companion>` (case 2a: Token KD from a MaxEnt teacher)
    companion: str = ""


# The one place that maps a case to its metrics folders: CPU runs used CNN teachers under
# suffixed names, so a report of either kind finds them and says which teacher it shows.
_MINILM_CRF = "MiniLM CRF teacher"
_SENTSCORE = "MiniLM BERT2BERT SenTScore teacher"
CASES = (
    Case("case1a", "Case 1a, CRF → CRF: CoNLL-2003 en NER", "ents_f", ("none", "top1", "posterior", "structural"),
         (("case1a", _MINILM_CRF), ("case1a_cnn", "CNN CRF teacher (benchmarks/ner_conll03.py), 1,500 student steps"))),
    Case("case2a", "Case 2a, CRF → MaxEnt: CoNLL-2003 en NER", "ents_f", ("none", "top1", "token", "structural"),
         (("case2a", _MINILM_CRF), ("case2a_cnn", "CNN CRF teacher (benchmarks/ner_conll03.py), 1,500 student steps")),
         companion="-maxent"),
    Case("case1a-full", "Case 1a, CRF → CRF, full labeled train: CoNLL-2003 en NER", "ents_f",
         ("none", "top1", "posterior", "structural"), (("case1a-full", _MINILM_CRF),)),
    Case("case2a-full", "Case 2a, CRF → MaxEnt, full labeled train: CoNLL-2003 en NER", "ents_f",
         ("none", "top1", "token", "structural"), (("case2a-full", _MINILM_CRF),), companion="-maxent"),
    Case("case3-es", "Case 3, MaxEnt → CRF, zero-shot en → es NER", "ents_f", ("none", "top1", "structural"),
         (("case3-es", "MiniLM MaxEnt teacher (English)"),)),
    Case("case3-nl", "Case 3, MaxEnt → CRF, zero-shot en → nl NER", "ents_f", ("none", "top1", "structural"),
         (("case3-nl", "MiniLM MaxEnt teacher (English)"),)),
    Case("case1b", "Case 1b, biaffine → seq. labelling: UD EWT parsing", "dep_las", ("none", "structural"),
         (("case1b-minilm-5000", "MiniLM biaffine parser teacher (configs/teacher_biaffine_minilm.cfg), "
                                 "5,000 student steps"),
          ("case1b-minilm", "MiniLM biaffine parser teacher (configs/teacher_biaffine_minilm.cfg), 2,000 student steps"),
          ("case1b", "CNN biaffine parser teacher"))),
    Case("case2b", "Case 2b, MFVI → seq. labelling: UD EWT parsing", "dep_las", ("none", "structural"),
         (("case2b", "CNN second-order MFVI parser teacher"),)),
    Case("case4", "Case 4, span NER → MaxEnt: CoNLL-2003 en NER", "ents_f", ("none", "top1", "structural"),
         (("case4", "CNN span-NER (biaffine) teacher"),)),
    *(Case(f"spacy-teacher-{student}{full}", f"spaCy beam_ner → {title}{part}: CoNLL-2003 en NER", "ents_f",
           objectives, ((f"spacy-teacher-{student}{full}", "spaCy beam_ner on MiniLM (configs/teacher_beam_ner_minilm.cfg)"),
                        (f"spacy-teacher-{student}{full}_cnn", "spaCy beam_ner on a CNN (configs/teacher_beam_ner_cnn.cfg), "
                                                               "1,500 student steps")))
      for student, title, objectives in (("maxent", "MaxEnt", ("none", "top1", "token", "structural")),
                                          ("crf", "CRF", ("none", "top1", "posterior", "structural")))
      for full, part in (("", ""), ("-full", ", full labeled train"))),
    *(Case(f"sentscore-{data}-{size}", f"SenTScore, {data.upper()} {size}/{size // 2} gold: slot filling",
           "ents_f", ("gold", "pseudo", "kd"), ((f"sentscore-{data}-{size}", _SENTSCORE),), target="kd")
      for data in ("snips", "atis") for size in (100, 300)),
)


def load_paper(path: Path = PAPER_FILE) -> Dict:
    """The papers' figures (spacy_skd/report/paper_results.json or a file in its format); E319."""
    try:
        paper = read_json(Path(path))
    except ValueError as err:
        raise ValueError(Errors.E319.format(path=path, err=err)) from err
    missing = [key for key in ("papers", "cases", "temperature", "marginals", "unlabeled_curve") if key not in paper]
    if missing:
        raise ValueError(Errors.E319.format(path=path, err=f"no {', '.join(missing)}"))
    return paper


def ordered(objectives: Sequence[str]) -> List[str]:
    """Objectives of the NER/parsing cases, then those of the SenTScore students, in table order."""
    return order_objectives(objectives, ORDER + SLOT_ORDER)


def find_run(metrics: Path, case: Case) -> Optional[Tuple[str, str]]:
    """(folder, teacher) of the first of the case's folders holding any evaluate JSON."""
    for folder, teacher in case.runs:
        if any(p.suffix == ".json" and not p.name.endswith(".inputs.json") for p in (metrics / folder).glob("*.json")):
            return folder, teacher
    return None


def case_result(metrics: Path, case: Case, paper: Dict) -> Dict:
    """Rows of one case (teacher first), ours beside the paper's; `run` is None when not run."""
    cells = paper["cases"].get(case.name, {}).get("cells", {})
    found = find_run(metrics, case)
    result = {"case": case.name, "title": case.title, "metric": case.metric, "target": case.target,
              "run": found and found[0], "teacher_used": found and found[1],
              "setting": paper["cases"].get(case.name, {}).get("setting", ""),
              "differences": paper["cases"].get(case.name, {}).get("differences", []), "rows": []}
    if found is None:
        return result
    folder = metrics / found[0]
    objectives = ordered(set(case.objectives) | set(collect(folder, metric=case.metric)["objectives"]))
    data = collect(folder, objectives, metric=case.metric)
    rows = [_row("teacher", "teacher", [data["teacher"]] if data["teacher"] else [], cells)]
    constrained = read_score(folder / "teacher-constrained.json", case.metric)
    if constrained:
        rows.append(_row("teacher-constrained", "teacher", [constrained], cells))
    for obj in objectives:
        rows.append(_row(obj, "student", [s for s in data["runs"][obj].values() if s is not None], cells,
                         expected=len(data["runs"][obj])))
    companion = metrics / f"{found[0]}{case.companion}"
    if case.companion and companion.is_dir():
        extra = collect(companion, metric=case.metric)
        if extra["teacher"]:
            rows.insert(1, _row(f"teacher{case.companion}", "teacher", [extra["teacher"]], cells))
        for obj in ordered(extra["objectives"]):
            rows.append(_row(f"{obj}{case.companion}", "student",
                             [s for s in extra["runs"][obj].values() if s is not None], cells,
                             expected=len(extra["runs"][obj])))
    _compare(rows, case.target, cells)
    result["rows"] = rows
    return result


def _compare(rows: List[Dict], target_key: str, cells: Dict) -> None:
    """Each row against its reference (the KD student; the teacher for the constrained teacher):
    which is better in our run and in the paper, and the ASO of the KD student over a baseline."""
    by_key = {row["key"]: row for row in rows}
    target = by_key.get(target_key)
    for row in rows:
        reference = by_key["teacher"] if row["key"] == "teacher-constrained" else target
        if row["key"] == target_key or reference is None or (row["role"] == "teacher" and reference is target):
            continue
        row["vs"] = reference["key"]
        if reference["mean"] is not None and row["mean"] is not None:
            row["ours_better"] = reference["mean"] > row["mean"]
        cell = cells.get(row["key"], {})
        paper_ref = cell.get("structural", cells.get(reference["key"], {}).get("value"))
        if paper_ref is not None and cell.get("value") is not None:
            row["paper_better"] = paper_ref > cell["value"]
        if row["role"] == "student":
            row["aso"] = aso_score(target["scores"], row["scores"]) if target["scores"] else None


def _row(key: str, role: str, runs: List[Score], cells: Dict, expected: int = 1) -> Dict:
    scores = [score for score, _ in runs]
    speeds = [speed for _, speed in runs if speed is not None]
    mean, std = mean_std(scores) if scores else (None, None)
    cell = cells.get(key, {})
    return {"key": key, "label": LABELS.get(key, key), "role": role, "scores": scores, "seeds": len(scores),
            "expected": expected, "mean": mean, "std": std,
            "words_per_second": sum(speeds) / len(speeds) if speeds else None,
            "paper": cell.get("value"), "paper_ref": cell.get("ref"), "aso": None, "vs": None,
            "ours_better": None, "paper_better": None}
