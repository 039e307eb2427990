"""The PNG figures of `spacy skd report`, drawn with matplotlib's Agg backend (no display needed).

Each figure carries its own title, axis labels with units and legend, so it reads without the
report's text (the README shows them alone). matplotlib is in the `eval` extra, so `cli/report.py`
imports this module only when the report is built.
"""
import math
from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRIC_NAMES = {"ents_f": "test F1 × 100", "dep_las": "test LAS × 100", "exact_match": "exact match × 100"}
CURVE_COLOURS = {"top1": "#1f77b4", "posterior": "#ff7f0e", "structural": "#d1495b"}
ROLE_COLOURS = {"teacher": "#4d4d4d", "student": "#7fa7d1", "target": "#d1495b"}


def plot_case(result: Dict, path: Path) -> Path:
    """Teacher, each baseline and the KD student of one case: bars of the mean, error bars of the std."""
    rows = [row for row in result["rows"] if row["mean"] is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(rows) + 3), 4.2))
    colours = [ROLE_COLOURS["target"] if row["key"] == result["target"] else ROLE_COLOURS[row["role"]] for row in rows]
    x = range(len(rows))
    ax.bar(x, [row["mean"] for row in rows], yerr=[row["std"] or 0.0 for row in rows], color=colours,
           capsize=4, edgecolor="black", linewidth=0.5)
    for i, row in enumerate(rows):
        ax.text(i, row["mean"] + (row["std"] or 0.0) + 0.3, f"{row['mean']:.1f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(list(x))
    ax.set_xticklabels([_wrap(row["label"]) for row in rows], fontsize=8)
    low = min(row["mean"] - (row["std"] or 0.0) for row in rows)
    high = max(row["mean"] + (row["std"] or 0.0) for row in rows)
    ax.set_ylim(max(0.0, low - 0.25 * (high - low) - 2), min(100.0, high + 0.15 * (high - low) + 2))
    ax.set_ylabel(METRIC_NAMES.get(result["metric"], result["metric"]))
    ax.set_title(f"{result['title']}\nrun {result['run']}: {result['teacher_used']}", fontsize=9)
    seeds = max((row["seeds"] for row in rows if row["role"] == "student"), default=0)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in ROLE_COLOURS.values()]
    ax.legend(handles, ["teacher", "student baseline", f"student `{result['target']}` (KD)"], fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), title=f"error bars: std\nover ≤{seeds} seeds",
              title_fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_speed_accuracy(results: List[Dict], path: Path) -> Path:
    """Every teacher and student: words per second (log scale) against its test score."""
    fig, ax = plt.subplots(figsize=(8, 5.5))
    cmap = plt.get_cmap("tab10")
    plotted = [r for r in results if r["run"] and any(row["words_per_second"] for row in r["rows"])]
    labels: List[List] = []
    for i, result in enumerate(plotted):
        for row in result["rows"]:
            if row["mean"] is None or not row["words_per_second"] or row["key"] == "teacher-constrained":
                continue  # the constrained SenT' teacher is the same model decoded another way
            marker = "^" if row["role"] == "teacher" else ("*" if row["key"] == result["target"] else "o")
            ax.scatter(row["words_per_second"], row["mean"], marker=marker, s=130 if marker == "*" else 50,
                       color=cmap(i % 10), edgecolor="black", linewidth=0.4, zorder=3)
            if row["role"] == "teacher" or row["key"] == result["target"]:
                _add_label(labels, row["words_per_second"], row["mean"], row["role"],
                           result["case"].replace("sentscore-", ""))
    for x, y, cases, role in labels:
        ax.annotate(f"{', '.join(cases)} {'teacher' if role == 'teacher' else 'KD'}", (x, y),
                    textcoords="offset points", xytext=(6, -3 if role == "teacher" else 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("words per second (spacy evaluate / skd evaluate-slots, CPU; log scale)")
    ax.set_ylabel("test score × 100 (F1; LAS for cases 1b/2b)")
    ax.set_title("Accuracy vs. speed of every teacher and student")
    case_handles = [plt.Line2D([], [], marker="s", linestyle="", color=cmap(i % 10), label=r["case"])
                    for i, r in enumerate(plotted)]
    role_handles = [plt.Line2D([], [], marker=m, linestyle="", color="grey", label=label)
                    for m, label in (("^", "teacher"), ("o", "student baseline"), ("*", "KD student"))]
    ax.legend(handles=case_handles + role_handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_unlabeled_curve(curves: Dict, paper_curves: Dict, path: Path) -> Path:
    """Score against the number of unlabeled texts: our runs (left) and the paper's Figure 1 (right)."""
    names = sorted(set(curves) | {"case1a"})
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 3.8 * len(names)), squeeze=False)
    for (ours, theirs), name in zip(axes, names):
        curve, ref = curves.get(name), paper_curves.get(name)
        if curve is None or not curve["points"]:
            ours.text(0.5, 0.5, "not run", ha="center", va="center", fontsize=14, transform=ours.transAxes)
        else:
            points = curve["points"]
            objectives = sorted({o for p in points for o in p if o not in ("size", "teacher")}, key=_curve_order)
            for obj in objectives:
                xs = [p["size"] for p in points if p.get(obj)]
                ys = [p[obj][0] for p in points if p.get(obj)]
                errs = [p[obj][1] or 0.0 for p in points if p.get(obj)]
                ours.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=f"student `{obj}`",
                              color=CURVE_COLOURS.get(obj))
                below = obj == "top1"  # top1 and structural are close: one label under, one over
                for x_, y_ in zip(xs, ys):
                    ours.annotate(f"{y_:.1f}", (x_, y_), textcoords="offset points", xytext=(0, -12 if below else 6),
                                  fontsize=7, ha="center", color=CURVE_COLOURS.get(obj))
            teachers = [p["teacher"] for p in points if p["teacher"] is not None]
            if teachers:
                ours.axhline(teachers[0], linestyle="--", color="grey", label="teacher")
            if curve.get("without_kd") is not None:
                ours.axhline(curve["without_kd"], linestyle=":", color="black", label="w/o KD (gold only)")
        sizes = sorted({p["size"] for p in (curve or {}).get("points", [])} | set((ref or {}).get("sizes", [])))
        _curve_axes(ours, f"{name}, ours", curve["metric"] if curve else "ents_f", sizes)
        if ref:
            for obj in ("top1", "posterior", "structural"):
                if obj in ref:
                    theirs.plot(ref["sizes"], ref[obj], marker="o", color=CURVE_COLOURS[obj],
                                label=f"`{obj}` (+ Top-1)" if obj != "top1" else "`top1`")
            theirs.axhline(ref["teacher"], linestyle="--", color="grey", label="teacher")
        _curve_axes(theirs, f"{name}, paper ({ref['ref'] if ref else '–'})", curve["metric"] if curve else "ents_f",
                    ref["sizes"] if ref else [])
    fig.suptitle("Effect of the amount of unlabeled data (Structural KD, Figure 1)")
    return _save(fig, path)


def _add_label(labels: List[List], x: float, y: float, role: str, case: str) -> None:
    """One label for points of one role that would print on top of each other (a shared teacher)."""
    for label in labels:
        if label[3] == role and abs(math.log10(label[0] / x)) < 0.2 and abs(label[1] - y) < 1.5:
            label[2].append(case)
            return
    labels.append([x, y, [case], role])


def _curve_axes(ax, title: str, metric: str, sizes: List[int]) -> None:
    ax.set_xscale("log")
    if sizes:
        ax.set_xticks(sizes)
        ax.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
    ax.set_xlabel("number of unlabeled texts (log scale)")
    ax.set_ylabel(METRIC_NAMES.get(metric, metric))
    ax.set_title(title, fontsize=8)
    ax.margins(y=0.15)  # room for the value labels under the lowest point
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v / 1000:g}k"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)


def _curve_order(objective: str) -> int:
    return list(CURVE_COLOURS).index(objective) if objective in CURVE_COLOURS else len(CURVE_COLOURS)


def _wrap(label: str, width: int = 14) -> str:
    words, lines = label.split(), [""]
    for word in words:
        if len(lines[-1]) + len(word) > width and lines[-1]:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
