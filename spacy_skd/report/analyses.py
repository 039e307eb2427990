"""The analyses beside the cases: global vs. local temperature (Structural KD Table 5), teachers'
marginals (Table 6, from `spacy skd marginals` files) and the amount of unlabeled data (Figure 1)."""
import re
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..errors import Errors
from .cases import CASES, find_run
from .metrics import collect, mean_std, read_json

CURVE_RUN = re.compile(r"^curve(?P<case>1a|1b)-(?P<size>\d+)k$")


def temperature_result(metrics: Path, paper: Dict) -> Dict:
    """Global vs local temperature (Table 5): structural students of metrics/temperature1a-{mode}/."""
    rows = []
    case1a = find_run(metrics, next(case for case in CASES if case.name == "case1a"))
    for mode, cell in paper["temperature"]["rows"].items():
        if mode == "none":  # w/o KD: case 1a's own baseline, under whichever name it ran
            folder, objective = (case1a[0] if case1a else "case1a"), "none"
        elif mode == "global" and not (metrics / "temperature1a-global").is_dir() and case1a:
            # case 1a's own structural students: `auto` resolves to global for CRF students
            folder, objective = case1a[0], "structural"
        else:
            folder, objective = f"temperature1a-{mode}", "structural"
        runs = collect(metrics / folder, [objective])["runs"][objective]
        scores = [s[0] for s in runs.values() if s is not None]
        mean, std = mean_std(scores) if scores else (None, None)
        rows.append({"mode": mode, "label": cell["label"], "run": f"{folder}/{objective}", "seeds": len(scores),
                     "mean": mean, "std": std, "paper_en": cell["en"], "paper_avg": cell["avg"]})
    return {"ref": paper["temperature"]["ref"], "rows": rows,
            "run": any(r["mean"] is not None for r in rows if r["mode"] != "none")}


def marginals_result(metrics: Path, paper: Dict) -> Dict:
    """Each teacher's F1 against the F1 of its marginals' argmax (Table 6): every
    metrics/*marginals*.json and metrics/<run>/*marginals*.json that `spacy skd marginals` wrote."""
    rows = []
    for path in sorted({*metrics.glob("*marginals*.json"), *metrics.glob("*/*marginals*.json")}):
        data = read_json(path)
        try:
            ours = (100 * data["teacher"]["f"], 100 * data["marginal_argmax"]["f"])
        except (KeyError, TypeError) as err:
            raise ValueError(Errors.E313.format(path=path, missing=f"the F1 {err}")) from err
        cell = paper["marginals"]["rows"].get(data.get("kind"), {})
        rows.append({"file": str(path.relative_to(metrics)), "kind": data.get("kind"), "teacher": ours[0],
                     "marginal_argmax": ours[1], "agreement": data.get("agreement"),
                     "paper_label": cell.get("label"), "paper_teacher": cell.get("teacher"),
                     "paper_marginal_argmax": cell.get("marginal_argmax")})
    return {"ref": paper["marginals"]["ref"], "rows": rows}


def gold_only_setting(folder: Path, run: str) -> Optional[Tuple[str, str, str]]:
    """What a gold-only student must share with a curve run to be its "w/o KD" line: the student
    config and the gold train file (by MD5) and the step budget, from `<run>.inputs.json`; None
    when the run recorded no inputs."""
    try:
        model = read_json(folder / f"{run}.inputs.json")["model"]
        command, md5 = model["command"], model["inputs"]
        config = command[command.index("train") + 1]
        train = command[command.index("--paths.train") + 1]
        return md5[config], md5[train], command[command.index("--training.max_steps") + 1]
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def curve_result(metrics: Path) -> Dict:
    """F1 (or LAS) per number of unlabeled texts from metrics/curve1a-<n>k/ and curve1b-<n>k/."""
    curves: Dict[str, Dict] = {}
    settings: Dict[str, set] = {}
    for folder in sorted(metrics.glob("curve*")):
        m = CURVE_RUN.match(folder.name)
        if not m:
            continue
        metric = "dep_las" if m.group("case") == "1b" else "ents_f"
        data = collect(folder, metric=metric)
        curve = curves.setdefault("case" + m.group("case"), {"metric": metric, "points": []})
        point = {"size": int(m.group("size")) * 1000, "teacher": data["teacher"] and data["teacher"][0]}
        for obj, runs in data["runs"].items():
            scores = [s[0] for s in runs.values() if s is not None]
            point[obj] = mean_std(scores) if scores else None
            settings.setdefault("case" + m.group("case"), set()).update(
                gold_only_setting(folder, f"{obj}-seed{seed}") for seed in runs)
        curve["points"].append(point)
    for name, curve in curves.items():
        curve["points"].sort(key=lambda p: p["size"])
        # the dotted line of Figure 1: gold-only students of the case's own folders trained with
        # the curve's student config, gold data and steps (a longer-trained one is not comparable)
        curve["without_kd"] = curve["without_kd_from"] = None
        case = next((c for c in CASES if c.name == name), None)
        wanted = settings.get(name, set()) - {None}
        for folder, _ in case.runs if case else ():
            runs = collect(metrics / folder, ["none"], metric=curve["metric"])["runs"]["none"]
            scores = [s[0] for seed, s in runs.items()
                      if s is not None and gold_only_setting(metrics / folder, f"none-seed{seed}") in wanted]
            if scores:
                seeds = f"{len(scores)} seed" + ("" if len(scores) == 1 else "s")
                curve["without_kd"], curve["without_kd_from"] = mean_std(scores)[0], f"{folder} ({seeds})"
                break
    return curves
