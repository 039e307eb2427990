"""The markdown table of one case (`spacy skd results-table`): teacher, then per objective the
mean ± std over seeds, the ASO of the target objective over it, words/s and each seed's score."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .metrics import OBJECTIVE_NAMES, collect, mean_std, require_folder
from .significance import aso_score


def case_table(metrics_dir: Path, case: Optional[str] = None, objectives: Optional[Sequence[str]] = None,
               seeds: Optional[Sequence[int]] = None, target: str = "structural", metric: str = "ents_f") -> str:
    """The table of the runs in `metrics_dir` (E310 if it does not exist); runs expected but not
    there are listed as missing, so the table can be written while a case is running.

    case (Optional[str]): name in the title; default: the folder's name.
    objectives, seeds: the runs expected; None takes those found.
    """
    results = collect(require_folder(metrics_dir), objectives, seeds, metric=metric)
    return make_table(case or Path(metrics_dir).name, results, target=target, metric=metric)


def make_table(case: str, results: Dict, target: str = "structural", metric: str = "ents_f") -> str:
    """The markdown report of one case from `metrics.collect`'s result."""
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
