"""spacy_skd.report.table and `spacy skd results-table`: one case's table from fake metric files."""
import json
import sys
import types
from pathlib import Path

import pytest
from spacy.cli._util import app
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.report.metrics import collect, mean_std, read_score
from spacy_skd.report.significance import aso_score
from spacy_skd.report.table import case_table, make_table


def _write_metrics(folder: Path, runs: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, f in runs.items():
        (folder / f"{name}.json").write_text(json.dumps({"ents_f": f, "ents_p": f, "ents_r": f, "speed": 1000.0}))


@pytest.fixture
def fake_deepsig(monkeypatch):
    calls = []

    def aso(scores_a, scores_b, **kwargs):
        calls.append((list(scores_a), list(scores_b), kwargs))
        return 0.125

    monkeypatch.setitem(sys.modules, "deepsig", types.SimpleNamespace(aso=aso))
    return calls


@pytest.fixture
def case1a(tmp_path) -> Path:
    metrics = tmp_path / "metrics" / "case1a"
    _write_metrics(metrics, {
        "teacher": 0.91,
        "none-seed0": 0.80, "none-seed1": 0.82, "none-seed2": 0.84,
        "top1-seed0": 0.83,  # seeds 1 and 2 missing
        "structural-seed0": 0.85, "structural-seed1": 0.86, "structural-seed2": 0.87,
    })
    (metrics / "structural-seed0.inputs.json").write_text("{}")  # run_case's records are ignored
    return metrics


def invoke(*args):
    return CliRunner().invoke(app, ["skd", "results-table", *map(str, args)])


def test_results_table_mean_std_aso_and_missing(case1a, tmp_path, fake_deepsig):
    output = tmp_path / "reports" / "case1a.md"
    result = invoke(case1a, "--objectives", "none,top1,posterior,structural", "--seeds", "0,1,2", "--output", output)
    assert result.exit_code == 0, result.output
    table = output.read_text(encoding="utf8")
    assert table in result.output
    assert table.startswith("## case1a: test F1 (ents_f x 100)\n")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "91.00" in rows["teacher"] and "1,000" in rows["teacher"]
    assert "82.00 ± 2.00" in rows["student, w/o KD (`none`)"]
    assert "86.00 ± 1.00" in rows["student, Struct. KD (`structural`)"]
    assert "0.125" in rows["student, w/o KD (`none`)"]
    top1 = rows["student, Top-1 (`top1`)"]
    assert "1/3" in top1 and "83.00" in top1 and "n/a" in top1 and "2: missing" in top1
    posterior = rows["student, Pos. KD (`posterior`)"]
    assert "missing" in posterior and "0/3" in posterior
    assert "Missing runs: `top1`: missing seed(s) 1, 2." in table  # posterior: its row says so
    # ASO only where both sides have 2+ seeds: structural vs none, with the documented settings
    assert len(fake_deepsig) == 1
    scores_a, scores_b, kwargs = fake_deepsig[0]
    assert scores_a == pytest.approx([85.0, 86.0, 87.0]) and scores_b == pytest.approx([80.0, 82.0, 84.0])
    assert kwargs == {"confidence_level": 0.95, "seed": 0, "show_progress": False, "num_jobs": 1}


def test_results_table_default_output_and_objectives_found(case1a, tmp_path, fake_deepsig, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert invoke(case1a, "--case", "mine", "--target", "top1").exit_code == 0
    table = (tmp_path / "reports" / "mine.md").read_text(encoding="utf8")
    students = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| student")]
    assert students == ["student, w/o KD (`none`)", "student, Top-1 (`top1`)", "student, Struct. KD (`structural`)"]
    assert fake_deepsig == []  # the target top1 has one seed: no ASO


def test_results_table_empty_folder_and_single_seed(tmp_path, fake_deepsig):
    (tmp_path / "nothing").mkdir()
    table = case_table(tmp_path / "nothing", objectives=["none", "structural"], seeds=[0])
    assert "| teacher | – | missing |" in table and "| student, w/o KD (`none`) | 0/1 | missing |" in table
    _write_metrics(tmp_path / "demo", {"teacher": 0.8, "none-seed0": 0.7, "structural-seed0": 0.75})
    table = make_table("demo", collect(tmp_path / "demo"))
    rows = [line for line in table.splitlines() if line.startswith("| student")]
    assert len(rows) == 2 and "| 70.00 | n/a |" in rows[0] and "| 75.00 | – |" in rows[1]
    assert not any("±" in row for row in rows)  # one seed: no deviation
    assert fake_deepsig == []


def test_results_table_other_metric_and_null_scores(tmp_path, fake_deepsig):
    folder = tmp_path / "sentscore"
    folder.mkdir()
    for name, value in {"teacher": 0.5, "kd-seed0": 0.6, "kd-seed1": None}.items():
        (folder / f"{name}.json").write_text(json.dumps({"exact_match": value, "words_per_second": 10.0}))
    table = case_table(folder, target="kd", metric="exact_match")
    assert table.startswith("## sentscore: test exact_match (exact_match x 100)")
    assert "| student, kd (`kd`) | 1/2 | 60.00 | – | 10 | 0: 60.00, 1: missing |" in table  # null: nothing scored
    assert read_score(folder / "absent.json") is None


def test_mean_std():
    assert mean_std([1.0]) == (1.0, None)
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0)


@pytest.mark.parametrize("bad, code", [("missing", "E310"), ("corrupt", "E311"), ("metric", "E312"), ("seeds", "E314")])
def test_results_table_errors(bad, code, case1a, tmp_path, fake_deepsig):
    folder, args = case1a, ["--output", tmp_path / "out.md"]
    if bad == "missing":
        folder = tmp_path / "metrics" / "case1b"
    elif bad == "corrupt":
        (case1a / "posterior-seed1.json").write_text("not json")
    elif bad == "metric":
        args += ["--metric", "dep_las"]
    else:
        args += ["--seeds", "0,one"]
    result = invoke(folder, *args)
    assert result.exit_code == 1 and f"[skd-{code}]" in result.output, result.output
    assert not (tmp_path / "out.md").exists()


@pytest.mark.slow
def test_results_table_real_aso():
    pytest.importorskip("deepsig")
    eps = aso_score([85.0, 86.0, 87.0], [80.0, 81.0, 82.0])
    assert 0.0 <= eps < 0.5
    assert aso_score([85.0], [80.0, 81.0]) is None
