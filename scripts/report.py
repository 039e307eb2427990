#!/usr/bin/env python
"""Collect every case's metrics into one report beside the papers' figures (weasel `report`).

Reads `metrics/<run>/` folders as `scripts/results_table.py` does (its `collect`, `mean_std`,
`aso_score` are reused, not copied) and writes

- `reports/results.md` and `reports/results.json`: per case the teacher, each baseline and the
  structural KD student (mean ± std over seeds, words/s, deepsig ASO of the KD student against
  each baseline), the paper's figure for the same cell from `scripts/paper_results.json`, the
  differences between our setting and the paper's, and whether "KD > baseline" holds in our run
  and in the paper; then the temperature (Table 5), teacher-marginals (Table 6) and
  unlabeled-data (Figure 1) analyses, each "not run" until its metrics exist;
- `reports/plots/*.png`: a bar chart per case, accuracy against words/s, the unlabeled-data curve.

`--readme README.md` also replaces the text between `<!-- results:start -->` and
`<!-- results:end -->` with the summary table and the plots, copied to `docs/results/` because
`reports/` is not committed.

    python scripts/report.py --metrics metrics --output reports --readme README.md
"""
import argparse
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_table import OBJECTIVE_NAMES, ORDER, aso_score, collect, mean_std, read_score  # noqa: E402

PAPER_FILE = Path(__file__).resolve().parent / "paper_results.json"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
NOT_RUN = "not run"
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
    *(Case(f"sentscore-{data}-{size}", f"SenTScore, {data.upper()} {size}/{size // 2} gold: slot filling",
           "ents_f", ("gold", "pseudo", "kd"), ((f"sentscore-{data}-{size}", _SENTSCORE),), target="kd")
      for data in ("snips", "atis") for size in (100, 300)),
)
CURVE_RUN = re.compile(r"^curve(?P<case>1a|1b)-(?P<size>\d+)k$")


def load_paper(path: Path = PAPER_FILE) -> Dict:
    return json.loads(Path(path).read_text(encoding="utf8"))


def find_run(metrics: Path, case: Case) -> Optional[Tuple[str, str]]:
    """(folder, teacher) of the first of the case's folders holding any evaluate JSON."""
    for folder, teacher in case.runs:
        if any(p.suffix == ".json" and not p.name.endswith(".inputs.json") for p in (metrics / folder).glob("*.json")):
            return folder, teacher
    return None


def _ordered(objectives: Sequence[str]) -> List[str]:
    order = ORDER + SLOT_ORDER
    return sorted(objectives, key=lambda o: (order.index(o) if o in order else len(order), o))


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
    objectives = _ordered(set(case.objectives) | set(collect(folder, metric=case.metric)["objectives"]))
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
        for obj in _ordered(extra["objectives"]):
            rows.append(_row(f"{obj}{case.companion}", "student",
                             [s for s in extra["runs"][obj].values() if s is not None], cells,
                             expected=len(extra["runs"][obj])))
    by_key = {row["key"]: row for row in rows}
    target = by_key.get(case.target)
    for row in rows:
        reference = by_key["teacher"] if row["key"] == "teacher-constrained" else target
        if row["key"] == case.target or reference is None or (row["role"] == "teacher" and reference is target):
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
    result["rows"] = rows
    return result


def _row(key: str, role: str, runs: List[Tuple[float, Optional[float]]], cells: Dict, expected: int = 1) -> Dict:
    scores = [score for score, _ in runs]
    speeds = [speed for _, speed in runs if speed is not None]
    mean, std = mean_std(scores) if scores else (None, None)
    cell = cells.get(key, {})
    return {"key": key, "label": LABELS.get(key, key), "role": role, "scores": scores, "seeds": len(scores),
            "expected": expected, "mean": mean, "std": std,
            "words_per_second": sum(speeds) / len(speeds) if speeds else None,
            "paper": cell.get("value"), "paper_ref": cell.get("ref"), "aso": None, "vs": None,
            "ours_better": None, "paper_better": None}


# --- analyses ---------------------------------------------------------------------------------


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
    """Each teacher's F1 against the F1 of its marginals' argmax (Table 6, scripts/marginals_f1.py)."""
    rows = []
    for path in sorted({*metrics.glob("*marginals*.json"), *metrics.glob("*/*marginals*.json")}):
        try:
            data = json.loads(path.read_text(encoding="utf8"))
            ours = (100 * data["teacher"]["f"], 100 * data["marginal_argmax"]["f"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
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
        model = json.loads((folder / f"{run}.inputs.json").read_text(encoding="utf8"))["model"]
        command, md5 = model["command"], model["inputs"]
        config = command[command.index("train") + 1]
        train = command[command.index("--paths.train") + 1]
        return md5[config], md5[train], command[command.index("--training.max_steps") + 1]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
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


# --- markdown ---------------------------------------------------------------------------------


def _num(value: Optional[float], std: Optional[float] = None) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ± {std:.2f}" if std is not None else f"{value:.2f}"


def _yes(flag: Optional[bool]) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def _aso(eps: Optional[float]) -> str:
    if eps is None:
        return "n/a"
    return f"{eps:.3f} ({'KD better' if eps < 0.5 else 'not better'})"


def direction(result: Dict) -> str:
    """'KD > baseline' in our run (paper), one entry per baseline: the 'reproduced?' column."""
    parts = [f"{row['key']}: {_yes(row['ours_better'])} ({_yes(row['paper_better'])})"
             for row in result["rows"] if row["vs"] and row["role"] == "student"]
    return "; ".join(parts) or "–"


def summary_table(results: Sequence[Dict]) -> str:
    lines = ["| case | run (teacher) | metric | teacher | KD student | best baseline | paper: teacher / KD | "
             "KD > baseline? ours (paper) |", "|---|---|---|---|---|---|---|---|"]
    for result in results:
        if result["run"] is None:
            lines.append(f"| {result['case']} | {NOT_RUN} | {result['metric']} | – | – | – | – | – |")
            continue
        rows = {row["key"]: row for row in result["rows"]}
        target = rows.get(result["target"], {})
        baselines = [r for r in result["rows"] if r["role"] == "student" and r["vs"] and r["mean"] is not None]
        best = max(baselines, key=lambda r: r["mean"], default=None)
        best_cell = f"{_num(best['mean'], best['std'])} (`{best['key']}`)" if best else "–"
        lines.append(
            f"| {result['case']} | `{result['run']}` ({result['teacher_used']}) | {result['metric']} | "
            f"{_num(rows['teacher']['mean'])} | {_num(target.get('mean'), target.get('std'))} | {best_cell} | "
            f"{_num(rows['teacher']['paper'])} / {_num(target.get('paper'))} | {direction(result)} |")
    return "\n".join(lines) + "\n"


def case_markdown(result: Dict, plots: Optional[Path] = None) -> str:
    lines = [f"### {result['case']}: {result['title']}", ""]
    if result["run"] is None:
        return "\n".join(lines + [f"{NOT_RUN.capitalize()}: no metrics in any of its folders.", ""])
    lines += [f"Run `metrics/{result['run']}/`, {result['teacher_used']}; test `{result['metric']}` × 100. "
              f"Paper: {result['setting']}.", "",
              f"| model | seeds | ours (mean ± std) | words/s | ASO ε_min of `{result['target']}` vs. this | "
              "paper | paper cell | better than this? ours (paper) |",
              "|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        speed = f"{row['words_per_second']:,.0f}" if row["words_per_second"] else "–"
        seeds = f"{row['seeds']}/{row['expected']}" if row["role"] == "student" else "–"
        better = f"{_yes(row['ours_better'])} ({_yes(row['paper_better'])})" if row["vs"] else "–"
        aso = _aso(row["aso"]) if row["vs"] and row["role"] == "student" else "–"
        ours = _num(row["mean"], row["std"]) if row["seeds"] else "missing"
        lines.append(f"| {row['label']} (`{row['key']}`) | {seeds} | {ours} | {speed} | {aso} | "
                     f"{_num(row['paper'])} | {row['paper_ref'] or 'no such cell'} | {better} |")
    lines += ["", "Differences from the paper: " + "; ".join(result["differences"]) + "."]
    if plots is not None:
        lines += ["", f"![{result['case']}]({plots.as_posix()}/{result['case']}.png)"]
    return "\n".join(lines) + "\n"


def analyses_markdown(temperature: Dict, marginals: Dict, curves: Dict, paper: Dict) -> str:
    lines = ["## Global vs. local temperature (Structural KD Table 5)", ""]
    if not temperature["run"]:
        lines.append(f"{NOT_RUN.capitalize()}: `spacy project run students-temperature1a` writes "
                     "`metrics/temperature1a-global/` and `metrics/temperature1a-local/`.")
    lines += ["", "| temperature | our run | seeds | ours | paper en | paper avg |", "|---|---|---|---|---|---|"]
    for row in temperature["rows"]:
        lines.append(f"| {row['label']} | `{row['run']}` | {row['seeds']} | "
                     f"{_num(row['mean'], row['std']) if row['seeds'] else NOT_RUN} | {row['paper_en']:.2f} | {row['paper_avg']:.2f} |")
    lines += ["", "## Teachers' marginals (Structural KD Table 6)", "",
              "F1 of a teacher's own decoding and of the per-token argmax of its marginals "
              "(`scripts/marginals_f1.py`); the paper averages CoNLL de/en/es/nl.", ""]
    if not marginals["rows"]:
        lines.append(f"{NOT_RUN.capitalize()}: no `metrics/*marginals*.json`.")
    else:
        lines += ["| file | teacher | teacher F1 | argmax of marginals F1 | token agreement | paper teacher / -Mrg. |",
                  "|---|---|---|---|---|---|"]
        for row in marginals["rows"]:
            agreement = f"{100 * row['agreement']:.2f}%" if row["agreement"] is not None else "–"
            lines.append(f"| `{row['file']}` | {row['kind']} | {row['teacher']:.2f} | {row['marginal_argmax']:.2f} | "
                         f"{agreement} | {_num(row['paper_teacher'])} / {_num(row['paper_marginal_argmax'])} |")
    lines += ["", "## Amount of unlabeled data (Structural KD Figure 1, Table 9)", ""]
    if not curves:
        lines.append(f"{NOT_RUN.capitalize()}: no `metrics/curve1a-<n>k/` or `metrics/curve1b-<n>k/` folders.")
    for name, curve in curves.items():
        objectives = _ordered({o for p in curve["points"] for o in p if o not in ("size", "teacher")})
        ref = paper["unlabeled_curve"].get(name, {})
        lines += [f"{name} (`{curve['metric']}`); paper: {ref.get('ref', '–')}", "",
                  "| unlabeled texts | teacher | " + " | ".join(f"`{o}`" for o in objectives) + " | paper " +
                  " / ".join(o for o in ("top1", "structural") if o in ref) + " |",
                  "|---|---|" + "---|" * len(objectives) + "---|"]
        for point in curve["points"]:
            cells = [_num(*point[o]) if point.get(o) else NOT_RUN for o in objectives]
            paper_cell = "–"
            if point["size"] in ref.get("sizes", []):
                i = ref["sizes"].index(point["size"])
                paper_cell = " / ".join(f"{ref[o][i]:.2f}" for o in ("top1", "structural") if o in ref)
            lines.append(f"| {point['size']:,} | {_num(point['teacher'])} | " + " | ".join(cells) + f" | {paper_cell} |")
        without = (f"{_num(curve['without_kd'])} (`{curve['without_kd_from']}`)" if curve["without_kd"] is not None
                   else "no gold-only run with the curve's student config, gold data and steps")
        lines += ["", f"W/o KD (gold only, no unlabeled text): {without}.", ""]
    return "\n".join(lines) + "\n"


def report_markdown(results, temperature, marginals, curves, paper, plots: Path) -> str:
    head = ["# Results", "",
            "Generated by `scripts/report.py` (`spacy project run report`) from `metrics/`. Scores are test "
            "scores × 100, mean ± sample std over seeds. The paper columns come from "
            "`scripts/paper_results.json`: " + "; ".join(paper["papers"].values()) + ". They are **not the "
            "same data or embeddings** as ours (see each case's differences): compare directions, not numbers. "
            "ASO: deepsig's ε_min of the KD student against a baseline (< 0.5: stochastically better). "
            "`KD > baseline? ours (paper)`: the KD student's mean is above the baseline's in our run (and in "
            "the paper's same-table cell).", "", "## Summary", "", summary_table(results),
            f"![accuracy vs speed]({plots.as_posix()}/speed_accuracy.png)", "", "## Cases", ""]
    body = [case_markdown(r, plots if r["run"] else None) for r in results]
    return "\n".join(head) + "\n" + "\n".join(body) + "\n" + analyses_markdown(temperature, marginals, curves, paper)


# --- README ------------------------------------------------------------------------------------


def replace_results_block(text: str, block: str) -> str:
    """`text` with the part between the results markers replaced by `block`; the rest unchanged."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"README has no '{README_START}' ... '{README_END}' markers: add them where "
                         "the generated results section should go.")
    return text[:start + len(README_START)] + "\n" + block.strip("\n") + "\n" + text[end:]


def readme_block(results: Sequence[Dict], images: Sequence[str]) -> str:
    lines = ["Generated by `python scripts/report.py --readme README.md` from `reports/results.md` "
             "(full tables, ASO scores and the papers' figures there). Test scores × 100, mean ± std over seeds.",
             "", summary_table(results)]
    lines += [f"![{Path(image).stem}]({image})" for image in images]
    return "\n".join(lines) + "\n"


# --- main --------------------------------------------------------------------------------------


def build(metrics: Path, output: Path, paper_file: Path = PAPER_FILE, readme: Optional[Path] = None,
          readme_images: Path = Path("docs/results")) -> Dict:
    """Write results.md, results.json and the plots under `output`; update `readme` if given."""
    from report_plots import plot_case, plot_speed_accuracy, plot_unlabeled_curve

    paper = load_paper(paper_file)
    results = [case_result(metrics, case, paper) for case in CASES]
    temperature, marginals = temperature_result(metrics, paper), marginals_result(metrics, paper)
    curves = curve_result(metrics)
    plots = output / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = [plot_case(r, plots / f"{r['case']}.png") for r in results if r["run"]]
    written.append(plot_speed_accuracy(results, plots / "speed_accuracy.png"))
    written.append(plot_unlabeled_curve(curves, paper["unlabeled_curve"], plots / "unlabeled_curve.png"))
    (output / "results.md").write_text(
        report_markdown(results, temperature, marginals, curves, paper, Path("plots")), encoding="utf8")
    report = {"cases": results, "temperature": temperature, "marginals": marginals, "unlabeled_curve": curves,
              "plots": [str(p) for p in written]}
    (output / "results.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf8")
    if readme is not None:
        target = readme.parent / readme_images
        target.mkdir(parents=True, exist_ok=True)
        images = []
        for png in written:
            shutil.copyfile(png, target / png.name)
            images.append((readme_images / png.name).as_posix())
        text = readme.read_text(encoding="utf8")
        readme.write_text(replace_results_block(text, readme_block(results, images)), encoding="utf8")
    return report


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--metrics", type=Path, default=Path("metrics"), help="folder of metrics/<run>/ folders")
    parser.add_argument("--output", type=Path, default=Path("reports"), help="results.md, results.json, plots/")
    parser.add_argument("--paper", type=Path, default=PAPER_FILE, help="the papers' figures (JSON)")
    parser.add_argument("--readme", type=Path, default=None, help="also update this README's results section")
    args = parser.parse_args(argv)
    report = build(args.metrics, args.output, args.paper, args.readme)
    print(summary_table(report["cases"]))
    print(f"Written to {args.output / 'results.md'}, {args.output / 'results.json'} and {len(report['plots'])} plots")
    return 0


if __name__ == "__main__":
    sys.exit(main())
