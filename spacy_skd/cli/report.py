"""`spacy skd report`, `results-table`, `marginals` and `evaluate-slots`: the experiments' reports
from the metrics files under metrics/, and the metrics only spacy-skd computes (`spacy_skd.report`)."""
import json
from pathlib import Path
from typing import List, Optional

import spacy
import torch
import typer
from spacy.cli._util import parse_config_overrides
from spacy.util import dot_to_dict
from wasabi import msg

from ..errors import Errors
from ..report.cases import PAPER_FILE
from ..report.markdown import summary_table
from ..report.marginals import teacher_marginals
from ..report.slots import KEYS, evaluate_slots
from ..report.table import case_table
from . import skd_cli


@skd_cli.command("report")
def report_cli(
    metrics: Path = typer.Option(Path("metrics"), "--metrics", "-m", help="Folder of metrics/<run>/ folders"),
    output: Path = typer.Option(Path("reports"), "--output", "-o", help="Folder for results.md, results.json, plots/"),
    paper: Path = typer.Option(PAPER_FILE, "--paper", help="The papers' figures (JSON)"),
    readme: Optional[Path] = typer.Option(None, "--readme", help="Also update this README's results section", exists=True, dir_okay=False),
) -> None:
    """Every case and analysis found under METRICS beside the papers' figures: OUTPUT/results.md,
    results.json and plots/*.png; with --readme, its results section and docs/results/ plots."""
    # matplotlib is in the `eval` extra: loaded only when a report is built, never at `spacy` start-up
    from ..report.build import build_report

    try:
        report = build_report(metrics, output, paper, readme)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    print(summary_table(report["cases"]))
    msg.good(f"Written to {output / 'results.md'}, {output / 'results.json'} and {len(report['plots'])} plots")


@skd_cli.command("results-table")
def results_table_cli(
    metrics_dir: Path = typer.Argument(..., help="metrics/<case> folder of `spacy evaluate --output` JSON files"),
    case: Optional[str] = typer.Option(None, "--case", help="Name in the title (default: the folder's name)"),
    objectives: Optional[str] = typer.Option(None, "--objectives", help="Comma-separated objectives expected (default: those found)"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Comma-separated seeds expected (default: those found)"),
    target: str = typer.Option("structural", "--target", help="Objective compared with each baseline by ASO"),
    metric: str = typer.Option("ents_f", "--metric", help="Key of the evaluate JSON (ents_f, dep_las, exact_match, ...)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Markdown file (default: reports/<case>.md)"),
) -> None:
    """One case's table: per objective the test score's mean ± std over seeds, the ASO of TARGET
    over it, words/s and each seed; runs not there yet are listed as missing."""
    try:
        table = case_table(metrics_dir, case, _csv(objectives), _seeds(seeds), target=target, metric=metric)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    output = output or Path("reports") / f"{case or metrics_dir.name}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(table, encoding="utf8")
    print(table)
    msg.good(f"Written to {output}")


@skd_cli.command("marginals")
def marginals_cli(
    teacher: Path = typer.Argument(..., help="Trained teacher pipeline folder"),
    test: Path = typer.Argument(..., help=".spacy DocBin with gold entities"),
    component: str = typer.Option("ner", "--component", "-c", help="Teacher component in the pipeline"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSON file for the scores (metrics/<run>/marginals.json)"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Docs per teacher batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for the CPU"),
) -> None:
    """Entity P/R/F1 of the teacher's own decoding and of the per-token argmax of its unary
    marginals (Structural KD, Table 6), and how often the two tag sequences agree."""
    device = torch.device("cpu")
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
        device = torch.device("cuda", gpu_id)
    try:
        results = teacher_marginals(teacher, test, component, batch_size=batch_size, device=device)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    if results["kind"] == "maxent":
        msg.info("MaxEnt teacher: its marginals' argmax is the softmax argmax, the same as its "
                 "decoding unless the component is constrained.")
    msg.divider(f"Teacher vs its marginals' argmax: {teacher} ({results['kind']}), {results['n_docs']} docs")
    rows = [(name, *(_pct(results[key][m]) for m in "prf"))
            for name, key in (("Teacher", "teacher"), ("Marginal argmax", "marginal_argmax"))]
    msg.table(rows, header=("", "P", "R", "F"), divider=True, aligns=("l", "r", "r", "r"))
    msg.text(f"Token agreement of the two tag sequences: {_pct(results['agreement'])}%")
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
        msg.good(f"Written to {output}")


@skd_cli.command("evaluate-slots", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def evaluate_slots_cli(
    ctx: typer.Context,  # extra arguments: config overrides at load, e.g. --components.slots.decoding constrained
    model: Path = typer.Argument(..., help="Trained pipeline folder, e.g. training/.../model-best", exists=True, file_okay=False),
    split: Path = typer.Argument(..., help="Split folder with seq.in, seq.out (and label)", exists=True, file_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Metrics JSON file to write"),
    batch_size: int = typer.Option(256, "--batch-size", "-b", help="Docs per nlp.pipe batch"),
    disable: List[str] = typer.Option([], "--disable", help="Comma-separated components to disable at load (repeatable)"),
    scheme: str = typer.Option("IOB2", "--scheme", help="Tag scheme of seq.out"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for the CPU"),
) -> None:
    """Slot P/R/F1 (spaCy's NER scorer), exact match and words/s of MODEL on a SNIPS/ATIS split:
    the metrics files of the SenTScore students, read by `skd results-table` and `skd report`."""
    overrides = dot_to_dict(parse_config_overrides(ctx.args))
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model, disable=[name for value in disable for name in _csv(value)], config=overrides)
    try:
        metrics = evaluate_slots(nlp, split, batch_size=batch_size, scheme=scheme)
    except ValueError as err:
        msg.fail(str(err), exits=1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf8")
    msg.table([(key, metrics[key]) for key in KEYS], aligns=("l", "r"))
    msg.good(f"Written to {output}")


def _csv(value: Optional[str]) -> Optional[List[str]]:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _seeds(value: Optional[str]) -> Optional[List[int]]:
    try:
        return None if value is None else [int(v) for v in _csv(value)]
    except ValueError:
        raise ValueError(Errors.E314.format(value=value)) from None


def _pct(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.2f}"
