"""spacy_skd.report: the whole report (`spacy skd report`) on fake metric folders; nothing trains."""
import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from spacy.cli._util import app
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.report.analyses import curve_result
from spacy_skd.report.build import build_report
from spacy_skd.report.cases import CASES, PAPER_FILE, case_result
from spacy_skd.report.markdown import README_END, README_START, analyses_markdown, case_markdown, replace_results_block
from tests.conftest import REPO_ROOT

PAPER = json.loads(PAPER_FILE.read_text(encoding="utf8"))


@pytest.fixture
def aso_calls(monkeypatch):
    """A fake deepsig (fixed ε_min 0.125) recording the scores it is given."""
    calls = []

    def aso(scores_a, scores_b, **kwargs):
        calls.append((list(scores_a), list(scores_b)))
        return 0.125

    monkeypatch.setitem(sys.modules, "deepsig", types.SimpleNamespace(aso=aso))
    return calls


def _write(folder: Path, runs: dict, metric: str = "ents_f") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in runs.items():
        (folder / f"{name}.json").write_text(json.dumps({metric: value, "speed": 1000.0 + 100 * value}))


@pytest.fixture
def metrics(tmp_path) -> Path:
    """case1a under its CPU name (case1a_cnn), case1b, one sentscore split, a marginals file."""
    root = tmp_path / "metrics"
    _write(root / "case1a_cnn", {"teacher": 0.82, "none-seed0": 0.70, "none-seed1": 0.72,
                                 "structural-seed0": 0.80, "structural-seed1": 0.81, "top1-seed0": 0.79})
    _write(root / "case1b", {"teacher": 0.75, "none-seed0": 0.72, "structural-seed0": 0.71}, metric="dep_las")
    _write(root / "sentscore-snips-300", {"teacher": 0.64, "teacher-constrained": 0.63, "gold-seed0": 0.60,
                                          "gold-seed1": 0.62, "kd-seed0": 0.66, "kd-seed1": 0.66})
    _write(root / "curve1a-3k", {"teacher": 0.82, "top1-seed0": 0.74, "structural-seed0": 0.75})
    (root / "teacher_span_marginals.json").write_text(json.dumps(
        {"kind": "span", "teacher": {"f": 0.745}, "marginal_argmax": {"f": 0.759}, "agreement": 0.98}))
    return root


def _rows(markdown: str, heading: str) -> dict:
    """Table rows of the section under `heading`, keyed by their first cell."""
    section = markdown.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| ")}


def test_report_tables_paper_figures_and_not_run(aso_calls, metrics, tmp_path):
    out = tmp_path / "reports"
    build_report(metrics, out)
    md = (out / "results.md").read_text(encoding="utf8")
    case1a = _rows(md, "### case1a:")
    assert "`case1a_cnn`" in md and "CNN CRF teacher" in md  # the alias found, and its teacher named
    assert "82.00" in case1a["teacher (`teacher`)"] and "92.25" in case1a["teacher (`teacher`)"]
    none = case1a["w/o KD (`none`)"]
    assert "71.00 ± 1.41" in none and "2/2" in none and "91.21" in none and "Table 8" in none
    assert "0.125 (KD better)" in none and none.rstrip(" |").endswith("yes (yes)")
    top1 = case1a["Top-1 (`top1`)"]
    assert "| 79.00 |" in top1 and "n/a" in top1 and "79.85" in top1  # one seed: no std, no ASO
    assert "Struct. KD (`structural`)" in case1a and "80.50 ± 0.71" in case1a["Struct. KD (`structural`)"]
    assert "missing" in case1a["Pos. KD (`posterior`)"] and "0/0" not in case1a["Pos. KD (`posterior`)"]
    assert "no (yes)" in _rows(md, "### case1b:")["w/o KD (`none`)"]  # 71 < 72: direction not reproduced
    slots = _rows(md, "### sentscore-snips-300:")
    assert "63.00" in slots["teacher, constrained SenT' (`teacher-constrained`)"]
    assert "79.84" in slots["KD (λ_KL = 1) (`kd`)"] and "69.19" in slots["gold only (`gold`)"]
    summary = _rows(md, "## Summary")
    for absent in ("case2a", "case3-es", "case3-nl", "case2b", "case4", "sentscore-atis-100"):
        assert "not run" in summary[absent], absent
    assert "none: yes (yes); top1: yes (yes); posterior: – (yes)" in summary["case1a"]
    assert "Differences from the paper" in md and "EWT instead of PTB" in md
    assert "not run" in md.split("Global vs. local temperature")[1].split("##")[0]
    marginals = md.split("Teachers' marginals")[1].split("## ")[0]
    assert "74.50" in marginals and "75.90" in marginals and "88.57 / 87.40" in marginals
    curve = md.split("Amount of unlabeled data")[1]
    assert "| 3,000 | 82.00 | 74.00 | 75.00 | 84.19 / 85.24 |" in curve
    # ASO only where both sides have 2+ seeds: case1a none, sentscore gold
    assert aso_calls == [([80.0, 81.0], [70.0, 72.0]), ([66.0, 66.0], [60.0, 62.0])]
    data = json.loads((out / "results.json").read_text(encoding="utf8"))
    assert [c["case"] for c in data["cases"]] == [c.name for c in CASES]
    assert data["cases"][0]["run"] == "case1a_cnn" and data["cases"][1]["run"] is None


def test_report_writes_readable_plots(aso_calls, metrics, tmp_path):
    out = tmp_path / "reports"
    build_report(metrics, out)
    names = {p.name for p in (out / "plots").iterdir()}
    assert names == {"case1a.png", "case1b.png", "sentscore-snips-300.png", "speed_accuracy.png",
                     "unlabeled_curve.png"}
    for png in (out / "plots").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, png


def test_companion_folder_joins_its_case_table(aso_calls, tmp_path):
    """case2a's Token KD from a MaxEnt teacher lives in metrics/case2a-maxent/ and joins case2a."""
    root = tmp_path / "metrics"
    _write(root / "case2a", {"teacher": 0.89, "none-seed0": 0.68, "none-seed1": 0.70,
                             "structural-seed0": 0.82, "structural-seed1": 0.81})
    _write(root / "case2a-maxent", {"teacher": 0.88, "token-seed0": 0.83, "token-seed1": 0.79})
    _write(root / "case2a_cnn-maxent", {"teacher": 0.10})  # another run's companion: not read
    result = case_result(root, next(c for c in CASES if c.name == "case2a"), PAPER)
    rows = {row["key"]: row for row in result["rows"]}
    assert [row["key"] for row in result["rows"]] == ["teacher", "teacher-maxent", "none", "top1", "token",
                                                      "structural", "token-maxent"]
    assert rows["teacher-maxent"]["mean"] == 88.0 and rows["teacher-maxent"]["paper"] == 92.03
    assert rows["teacher-maxent"]["vs"] is None and rows["teacher-maxent"]["aso"] is None
    token = rows["token-maxent"]
    assert token["role"] == "student" and token["mean"] == 81.0 and token["seeds"] == 2
    assert token["vs"] == "structural" and token["ours_better"] is True  # 81.5 > 81.0
    assert token["aso"] == 0.125 and token["paper"] == 90.95 and token["paper_better"] is True
    assert rows["token"]["seeds"] == 0  # the CRF teacher's token run is still expected, and missing
    md = case_markdown(result)
    assert "Token KD from the MaxEnt teacher (`token-maxent`)" in md and "MaxEnt teacher (`teacher-maxent`)" in md
    # no companion folder: the table is the case's own
    shutil.rmtree(root / "case2a-maxent")
    keys = [row["key"] for row in case_result(root, CASES[1], PAPER)["rows"]]
    assert keys == ["teacher", "none", "top1", "token", "structural"]


def test_report_with_no_metrics_at_all(aso_calls, tmp_path):
    out = tmp_path / "reports"
    (tmp_path / "empty").mkdir()
    build_report(tmp_path / "empty", out)
    md = (out / "results.md").read_text(encoding="utf8")
    summary = _rows(md, "## Summary")
    assert [name for name, row in summary.items() if "| not run |" in row] == [c.name for c in CASES]
    assert "Not run" in md.split("Teachers' marginals")[1] and "Not run" in md.split("unlabeled data")[1]
    assert (out / "plots" / "unlabeled_curve.png").stat().st_size > 0


def test_readme_block_is_replaced_idempotently(aso_calls, metrics, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n\n{README_START}\nold text\n{README_END}\n\nafter\n",
                      encoding="utf8")
    build_report(metrics, tmp_path / "reports", readme=readme)
    first = readme.read_text(encoding="utf8")
    assert first.startswith("# Title\n\nbefore\n\n") and first.endswith(f"{README_END}\n\nafter\n")
    assert "old text" not in first and "| case1a |" in first
    assert "![speed_accuracy](docs/results/speed_accuracy.png)" in first
    assert (tmp_path / "docs" / "results" / "case1a.png").stat().st_size > 0
    build_report(metrics, tmp_path / "reports", readme=readme)
    assert readme.read_text(encoding="utf8") == first
    with pytest.raises(ValueError, match=r"\[skd-E318\].*markers"):
        replace_results_block("no markers here", "x")


def test_repo_readme_has_the_results_markers():
    text = (REPO_ROOT / "README.md").read_text(encoding="utf8")
    assert text.index(README_START) < text.index(README_END)


def test_paper_figures_cover_every_case_with_a_reference():
    report_cases = {"case1a", "case2a", "case1a-full", "case2a-full", "case3-es", "case3-nl", "case1b", "case2b", "case4",
                    *(f"sentscore-{d}-{n}" for d in ("snips", "atis") for n in (100, 300))}
    assert set(PAPER["cases"]) == report_cases
    for name, case in PAPER["cases"].items():
        assert case["paper"] in PAPER["papers"] and case["differences"] and case["setting"], name
        for key, cell in case["cells"].items():
            assert 0 < cell["value"] < 100 and "Table" in cell["ref"], (name, key)
    # spot checks against the papers' text
    assert PAPER["cases"]["case1a"]["cells"]["structural"]["value"] == 91.41  # SKD Table 8, en
    assert PAPER["cases"]["case1b"]["cells"]["teacher"]["value"] == 94.24  # SKD Table 11, LAS
    assert PAPER["cases"]["sentscore-snips-100"]["cells"]["kd"]["value"] == 57.18  # SenTScore Table 4a
    assert PAPER["temperature"]["rows"]["local"]["avg"] == 85.35  # SKD Table 5


def _write_inputs(folder: Path, run: str, steps: int, train_md5: str = "t0") -> None:
    """A run's `.inputs.json` as run_case.py records it: the spacy train command and input MD5s."""
    command = ["-m", "spacy", "train", "student.cfg", "-o", "out", "--paths.train", "train.conll",
               "--training.max_steps", str(steps)]
    (folder / f"{run}.inputs.json").write_text(json.dumps(
        {"model": {"command": command, "inputs": {"student.cfg": "c0", "train.conll": train_md5}}}))


def test_curve_without_kd_line_comes_from_gold_only_runs_of_the_same_setting(aso_calls, tmp_path):
    """Figure 1's dotted line: a gold-only student with the curve's config, gold data and steps,
    taken from the first of the case's folders that has one; longer-trained ones are skipped."""
    root = tmp_path / "metrics"
    _write(root / "curve1b-3k", {"teacher": 0.85, "top1-seed0": 0.70, "structural-seed0": 0.72}, metric="dep_las")
    _write(root / "curve1b-30k", {"top1-seed0": 0.71, "structural-seed0": 0.725}, metric="dep_las")
    for folder in ("curve1b-3k", "curve1b-30k"):
        for run in ("top1-seed0", "structural-seed0"):
            _write_inputs(root / folder, run, 2000)
    _write(root / "case1b-minilm-5000", {"none-seed0": 0.74}, metric="dep_las")  # 5,000 steps: skipped
    _write_inputs(root / "case1b-minilm-5000", "none-seed0", 5000)
    _write(root / "case1b-minilm", {"none-seed0": 0.72, "none-seed1": 0.73, "none-seed2": 0.99}, metric="dep_las")
    _write_inputs(root / "case1b-minilm", "none-seed0", 2000)
    _write_inputs(root / "case1b-minilm", "none-seed1", 2000)
    _write_inputs(root / "case1b-minilm", "none-seed2", 2000, train_md5="other")  # other gold data: skipped
    curve = curve_result(root)["case1b"]
    assert [p["size"] for p in curve["points"]] == [3000, 30000] and curve["metric"] == "dep_las"
    assert curve["without_kd"] == pytest.approx(72.5) and curve["without_kd_from"] == "case1b-minilm (2 seeds)"
    md = analyses_markdown({"run": None, "rows": []}, {"rows": []}, {"case1b": curve}, PAPER)
    assert "W/o KD (gold only, no unlabeled text): 72.50 (`case1b-minilm (2 seeds)`)" in md
    assert "| 30,000 | – | 71.00 | 72.50 | 91.44 / 92.63 |" in md
    # no run of the same setting: no line, and the report says why
    (root / "case1b-minilm" / "none-seed0.inputs.json").unlink()
    (root / "case1b-minilm" / "none-seed1.inputs.json").unlink()
    curve = curve_result(root)["case1b"]
    assert curve["without_kd"] is None
    md = analyses_markdown({"run": None, "rows": []}, {"rows": []}, {"case1b": curve}, PAPER)
    assert "no gold-only run with the curve's student config" in md


def invoke(*args):
    return CliRunner().invoke(app, ["skd", *map(str, args)])


def test_report_command_writes_the_report_and_the_readme(aso_calls, metrics, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\n{README_END}\n", encoding="utf8")
    out = tmp_path / "reports"
    result = invoke("report", "--metrics", metrics, "--output", out, "--readme", readme)
    assert result.exit_code == 0, result.output
    assert "| case1a | `case1a_cnn`" in result.output and "6 plots" not in result.output  # 5 plots here
    assert "5 plots" in result.output
    data = json.loads((out / "results.json").read_text(encoding="utf8"))
    none = next(row for row in data["cases"][0]["rows"] if row["key"] == "none")
    assert none["mean"] == pytest.approx(71.0) and none["aso"] == 0.125 and none["ours_better"] is True
    assert "| case1a | `case1a_cnn`" in readme.read_text(encoding="utf8")
    assert sorted(p.name for p in (tmp_path / "docs" / "results").iterdir()) == sorted(
        p.name for p in (out / "plots").iterdir())


@pytest.mark.parametrize("bad, code", [
    ("missing_folder", "E310"), ("corrupt_run", "E311"), ("wrong_type", "E311"), ("no_metric", "E312"),
    ("corrupt_marginals", "E311"), ("foreign_marginals", "E313"), ("no_markers", "E318"), ("bad_paper", "E319"),
])
def test_report_command_errors(bad, code, aso_calls, metrics, tmp_path):
    """Bad input stops the report with a coded error, before any file is written."""
    args = ["--metrics", metrics, "--output", tmp_path / "reports"]
    if bad == "missing_folder":
        args[1] = tmp_path / "metrix"
    elif bad == "corrupt_run":
        (metrics / "case1a_cnn" / "none-seed2.json").write_text('{"ents_f": 0.7', encoding="utf8")  # half written
    elif bad == "wrong_type":
        (metrics / "case1b" / "teacher.json").write_text("[0.75]", encoding="utf8")
    elif bad == "no_metric":
        (metrics / "case1b" / "none-seed1.json").write_text('{"ents_f": 0.7}', encoding="utf8")  # not a parser's
    elif bad == "corrupt_marginals":
        (metrics / "teacher_span_marginals.json").write_text("", encoding="utf8")
    elif bad == "foreign_marginals":
        (metrics / "case1b" / "marginals.json").write_text('{"teacher": 0.9}', encoding="utf8")
    elif bad == "no_markers":
        readme = tmp_path / "README.md"
        readme.write_text("no results section\n", encoding="utf8")
        args += ["--readme", readme]
    else:
        (tmp_path / "paper.json").write_text('{"cases": {}}', encoding="utf8")
        args += ["--paper", tmp_path / "paper.json"]
    result = invoke("report", *args)
    assert result.exit_code == 1 and f"[skd-{code}]" in result.output, result.output
    assert not (tmp_path / "reports").exists()
