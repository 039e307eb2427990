"""`spacy skd report`: every case found under metrics/ beside the papers' figures, the analyses
and the plots, written as reports/results.md, results.json and plots/*.png; optionally the
README's results section too (its plots copied to docs/results/, as reports/ is not committed)."""
import json
import shutil
from pathlib import Path
from typing import Dict, Optional

from .analyses import curve_result, marginals_result, temperature_result
from .cases import CASES, PAPER_FILE, case_result, load_paper
from .markdown import readme_block, replace_results_block, report_markdown
from .metrics import require_folder
from .plots import plot_case, plot_speed_accuracy, plot_unlabeled_curve


def build_report(metrics: Path, output: Path, paper_file: Path = PAPER_FILE, readme: Optional[Path] = None,
                 readme_images: Path = Path("docs/results")) -> Dict:
    """Write results.md, results.json and the plots under `output`; update `readme` if given.

    metrics (Path): folder of metrics/<run>/ folders; E310 if it does not exist (an empty one
        gives a report of cases "not run").
    readme_images (Path): where, relative to the README, its plots are copied.
    RETURNS (Dict): what results.json holds.
    """
    metrics = require_folder(metrics)
    paper = load_paper(paper_file)
    readme_text = readme.read_text(encoding="utf8") if readme is not None else None
    results = [case_result(metrics, case, paper) for case in CASES]
    temperature, marginals = temperature_result(metrics, paper), marginals_result(metrics, paper)
    curves = curve_result(metrics)
    if readme_text is not None:  # check the markers before anything is written
        replace_results_block(readme_text, "", str(readme))
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
        readme.write_text(replace_results_block(readme_text, readme_block(results, images), str(readme)),
                          encoding="utf8")
    return report
