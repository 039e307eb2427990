"""`spacy skd model-card`: a student's meta.json with its distillation record, for `spacy package`."""
from pathlib import Path
from typing import Optional

import srsly
import typer
from wasabi import msg

from ..training.model_card import distillation_card, with_distillation
from . import skd_cli


@skd_cli.command("model-card")
def model_card_cli(
    student: Path = typer.Argument(..., help="Trained student pipeline, e.g. training/case1a/structural-seed0/model-best", exists=True),
    output_path: Path = typer.Argument(..., help="meta.json to write; pass it to `spacy package --meta-path`"),
    teacher: Optional[str] = typer.Option(None, "--teacher", "-t", help="Teacher pipeline; default: the one the student's config names"),
    teacher_metrics: Optional[Path] = typer.Option(None, "--teacher-metrics", help="`spacy evaluate --output` JSON of the teacher on the test set"),
    student_metrics: Optional[Path] = typer.Option(None, "--student-metrics", help="The same for the student, on the same test set"),
    no_count: bool = typer.Option(False, "--no-count", help="Do not read the training corpus to count gold and unlabeled sentences"),
) -> None:
    """Write the student's meta.json plus `distillation` (teacher name and fingerprint, objective,
    temperature, sentence counts, teacher vs. student test scores and words/s) and a README section."""
    card = distillation_card(student, teacher=teacher, teacher_metrics=teacher_metrics,
                             student_metrics=student_metrics, count=not no_count)
    meta = with_distillation(srsly.read_json(student / "meta.json"), card)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    srsly.write_json(output_path, meta)
    msg.good(f"Wrote {output_path}: teacher {card['teacher']['name'] or card['teacher']['path']}, "
             f"objective {card['objective']}, {card['gold_sentences']} gold + {card['unlabeled_sentences']} unlabeled sentences")
