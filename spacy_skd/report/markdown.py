"""The report as markdown: the summary table, one table per case, the analyses, and the results
block of README.md (between its results markers)."""
from pathlib import Path
from typing import Dict, Optional, Sequence

from ..errors import Errors
from .cases import ordered

NOT_RUN = "not run"
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


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
    """One line per case: teacher, KD student, best baseline, the paper's pair, KD > baseline?"""
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
    """One case's table (`cases.case_result`), its differences from the paper and its plot."""
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
    """The temperature, marginals and unlabeled-data sections, each "not run" until its metrics exist."""
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
              "(`spacy skd marginals`); the paper averages CoNLL de/en/es/nl.", ""]
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
        objectives = ordered({o for p in curve["points"] for o in p if o not in ("size", "teacher")})
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
    """reports/results.md: how to read it, the summary, every case, then the analyses."""
    head = ["# Results", "",
            "Generated by `spacy skd report` (`spacy project run report`) from `metrics/`. Scores are test "
            "scores × 100, mean ± sample std over seeds. The paper columns come from "
            "`spacy_skd/report/paper_results.json`: " + "; ".join(paper["papers"].values()) + ". They are **not the "
            "same data or embeddings** as ours (see each case's differences): compare directions, not numbers. "
            "ASO: deepsig's ε_min of the KD student against a baseline (< 0.5: stochastically better). "
            "`KD > baseline? ours (paper)`: the KD student's mean is above the baseline's in our run (and in "
            "the paper's same-table cell).", "", "## Summary", "", summary_table(results),
            f"![accuracy vs speed]({plots.as_posix()}/speed_accuracy.png)", "", "## Cases", ""]
    body = [case_markdown(r, plots if r["run"] else None) for r in results]
    return "\n".join(head) + "\n" + "\n".join(body) + "\n" + analyses_markdown(temperature, marginals, curves, paper)


def replace_results_block(text: str, block: str, path: str = "README.md") -> str:
    """`text` with the part between the results markers replaced by `block`; the rest unchanged.
    E318 when `text` (read from `path`) has no markers."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(Errors.E318.format(path=path, start=README_START, end=README_END))
    return text[:start + len(README_START)] + "\n" + block.strip("\n") + "\n" + text[end:]


def readme_block(results: Sequence[Dict], images: Sequence[str]) -> str:
    """The README's results section: the summary table and the plots (paths relative to the README)."""
    lines = ["Generated by `python -m spacy skd report --readme README.md` from `reports/results.md` "
             "(full tables, ASO scores and the papers' figures there). Test scores × 100, mean ± std over seeds.",
             "", summary_table(results)]
    lines += [f"![{Path(image).stem}]({image})" for image in images]
    return "\n".join(lines) + "\n"
