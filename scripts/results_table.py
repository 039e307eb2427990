#!/usr/bin/env python
"""Summarise one case's test scores as a markdown table (weasel `report-*` commands).

Reads the `spacy evaluate --output` JSON files that `scripts/run_case.py` leaves in
`metrics/<case>/`: `teacher.json` and `<objective>-seed<k>.json`. For every objective it reports
the mean ± sample standard deviation of the test score over the seeds found (F1 x 100, spaCy's
`ents_f` by default) and, when the target objective (`structural`) and a baseline both have at
least 2 seeds, the ASO score of the target over that baseline (Almost Stochastic Order,
Dror et al. 2019, via deepsig: epsilon_min < 0.5 means the target is stochastically better, and
the smaller the stronger; the paper reports significance at a 0.05 level). Runs not found are
listed as missing rather than failing the report, so it can be written while a case is running.

    python scripts/results_table.py metrics/case1a --objectives none,top1,posterior,structural \
        --seeds 0,1,2 --output reports/case1a.md
"""
import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

RUN_FILE = re.compile(r"^(?P<objective>[A-Za-z0-9_]+)-seed(?P<seed>\d+)\.json$")
TEACHER_FILE = "teacher.json"
OBJECTIVE_NAMES = {
    "none": "w/o KD",
    "top1": "Top-1",
    "token": "Token KD",
    "posterior": "Pos. KD",
    "structural": "Struct. KD",
}
ORDER = ["none", "top1", "token", "posterior", "structural"]


def read_score(path: Path, metric: str = "ents_f") -> Optional[Tuple[float, Optional[float]]]:
    """(score x 100, words per second) from a `spacy evaluate` JSON; None when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    value = data.get(metric)
    if not isinstance(value, (int, float)):
        return None
    speed = data.get("speed", data.get("words_per_second"))  # spacy evaluate | slot_eval.py
    return float(value) * 100.0, float(speed) if isinstance(speed, (int, float)) else None


def collect(metrics_dir: Path, objectives: Optional[Sequence[str]] = None,
            seeds: Optional[Sequence[int]] = None, metric: str = "ents_f") -> Dict:
    """Scores found in `metrics_dir`, keyed by objective then seed; missing runs are None.

    objectives, seeds: the runs expected; None takes those present in the folder.
    """
    found: Dict[str, Dict[int, Path]] = {}
    if metrics_dir.is_dir():
        for path in sorted(metrics_dir.iterdir()):
            m = RUN_FILE.match(path.name)
            if m:
                found.setdefault(m.group("objective"), {})[int(m.group("seed"))] = path
    if objectives is None:
        objectives = sorted(found, key=lambda o: (ORDER.index(o) if o in ORDER else len(ORDER), o))
    if seeds is None:
        seeds = sorted({s for runs in found.values() for s in runs})
    runs = {
        obj: {seed: (read_score(found[obj][seed], metric) if seed in found.get(obj, {}) else None)
              for seed in seeds}
        for obj in objectives
    }
    return {"teacher": read_score(metrics_dir / TEACHER_FILE, metric), "runs": runs,
            "objectives": list(objectives), "seeds": list(seeds)}


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (n - 1); the deviation is None for fewer than 2 values."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def aso_score(target: Sequence[float], baseline: Sequence[float], seed: int = 0) -> Optional[float]:
    """deepsig's ASO epsilon_min of target over baseline, or None with fewer than 2 runs each."""
    if len(target) < 2 or len(baseline) < 2:
        return None
    from deepsig import aso  # heavy import (pandas, scipy), so only when needed

    return float(aso(list(target), list(baseline), confidence_level=0.95, seed=seed,
                     show_progress=False, num_jobs=1))


def make_table(case: str, results: Dict, target: str = "structural", metric: str = "ents_f") -> str:
    """The markdown report of one case."""
    label = "F1" if metric.endswith("_f") else metric
    lines = [
        f"## {case}: test {label} ({metric} x 100)",
        "",
        f"| model | seeds | test {label} (mean ± std) | ASO ε_min of {target} vs. this | words/s | per seed |",
        "|---|---|---|---|---|---|",
    ]
    teacher = results["teacher"]
    if teacher is None:
        lines.append("| teacher | – | missing | – | – | – |")
    else:
        lines.append(f"| teacher | – | {teacher[0]:.2f} | – | {_fmt_speed([teacher[1]])} | – |")
    target_scores = [s[0] for s in results["runs"].get(target, {}).values() if s is not None]
    notes: List[str] = []
    for obj in results["objectives"]:
        runs = results["runs"][obj]
        scores = [s[0] for s in runs.values() if s is not None]
        missing = [seed for seed, s in runs.items() if s is None]
        name = f"student, {OBJECTIVE_NAMES.get(obj, obj)} (`{obj}`)"
        per_seed = ", ".join(f"{seed}: {'missing' if s is None else f'{s[0]:.2f}'}" for seed, s in runs.items())
        if not scores:
            lines.append(f"| {name} | 0/{len(runs)} | missing | n/a | – | {per_seed} |")
            continue
        mean, std = mean_std(scores)
        cell = f"{mean:.2f} ± {std:.2f}" if std is not None else f"{mean:.2f}"
        if obj == target:
            aso_cell = "–"
        else:
            eps = aso_score(target_scores, scores)
            aso_cell = "n/a" if eps is None else f"{eps:.3f}"
        lines.append(f"| {name} | {len(scores)}/{len(runs)} | {cell} | {aso_cell} | "
                     f"{_fmt_speed([s[1] for s in runs.values() if s is not None])} | {per_seed} |")
        if missing:
            notes.append(f"`{obj}`: missing seed(s) {', '.join(map(str, missing))}")
    lines.append("")
    lines.append("Mean ± sample standard deviation over seeds. ASO (Dror et al., 2019; deepsig, "
                 "confidence 0.95): ε_min < 0.5 means the target is stochastically better than the "
                 "baseline (the smaller, the stronger); n/a with fewer than 2 seeds on either side.")
    if notes:
        lines.append("")
        lines.append("Missing runs: " + "; ".join(notes) + ".")
    return "\n".join(lines) + "\n"


def _fmt_speed(speeds: Sequence[Optional[float]]) -> str:
    speeds = [s for s in speeds if s is not None]
    return f"{sum(speeds) / len(speeds):,.0f}" if speeds else "–"


def _csv(value: Optional[str], cast=str) -> Optional[List]:
    if value is None:
        return None
    return [cast(v.strip()) for v in str(value).split(",") if v.strip()]


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("metrics_dir", type=Path, help="metrics/<case> folder of evaluate JSON files")
    parser.add_argument("--case", default=None, help="name in the title (default: the folder's name)")
    parser.add_argument("--objectives", default=None, help="comma-separated objectives expected (default: found)")
    parser.add_argument("--seeds", default=None, help="comma-separated seeds expected (default: found)")
    parser.add_argument("--target", default="structural", help="objective compared with each baseline by ASO")
    parser.add_argument("--metric", default="ents_f", help="key of the evaluate JSON (ents_f, dep_las, ...)")
    parser.add_argument("--output", type=Path, default=None, help="markdown file (default: reports/<case>.md)")
    args = parser.parse_args(argv)
    case = args.case or args.metrics_dir.name
    results = collect(args.metrics_dir, _csv(args.objectives), _csv(args.seeds, int), metric=args.metric)
    table = make_table(case, results, target=args.target, metric=args.metric)
    output = args.output or Path("reports") / f"{case}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(table, encoding="utf8")
    print(table)
    print(f"Written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
