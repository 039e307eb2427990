"""benchmarks/student_pareto.py: rows from metrics files, the retained share, the goal mark and the
parameter count (thinc weights plus the wrapped torch modules)."""
import importlib.util
import json

import pytest
import spacy

from .conftest import REPO_ROOT, examples_from


def load_benchmark():
    spec = importlib.util.spec_from_file_location("skd_student_pareto", REPO_ROOT / "benchmarks" / "student_pareto.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pareto():
    return load_benchmark()


def test_rows_read_every_seed_and_mark_the_goal(pareto, tmp_path, monkeypatch):
    metrics, training = tmp_path / "metrics", tmp_path / "training"
    for case, objective, scores in (("tv", "structural", [0.88, 0.87, 0.875]), ("hash", "none", [0.80])):
        (metrics / case).mkdir(parents=True, exist_ok=True)
        for seed, score in enumerate(scores):
            (metrics / case / f"{objective}-seed{seed}.json").write_text(json.dumps({"ents_f": score}))
            model = training / case / f"{objective}-seed{seed}" / "model-best"
            model.parent.mkdir(parents=True)
            spacy.blank("en").to_disk(model)
        (metrics / case / "structural-seed9.inputs.json").write_text("{}")  # not a score file
    (metrics / "tv" / "teacher.json").write_text(json.dumps({"ents_f": 0.8951}))
    speeds = {"teacher": 900.0, "tv": 20000.0, "hash": 25000.0}
    monkeypatch.setattr(pareto, "speed", lambda model, *a: speeds[next(k for k in speeds if k in str(model))])
    test = tmp_path / "test.spacy"
    test.write_bytes(b"")
    args = pareto.argparse.Namespace(teacher=tmp_path / "teacher", test=test, metric="ents_f", metrics=metrics,
                                     training=training, teacher_metrics=None, n_batches=30, warmup=1, batch_size=64,
                                     row=["TV=tv:structural", "hash=hash:none", "gone=nothing:top1"])
    rows = pareto.build_rows(args)
    assert [r["student"] for r in rows] == ["TV", "hash"]  # a row without metrics is skipped
    tv = rows[0]
    assert (tv["seeds"], tv["f1_mean"], tv["teacher_f1"], tv["speedup"]) == (3, 87.5, 89.51, 22.22)
    assert tv["retained"] == round(87.5 / 89.51, 4) and tv["f1_std"] == 0.5
    assert rows[1]["f1_std"] is None and rows[1]["params"] == 0
    table = pareto.markdown(rows)
    assert "97.8% **(goal)**" in table and "89.4%" in table and "**(goal)**" not in table.splitlines()[3]
    with pytest.raises(SystemExit, match="NAME=CASE:OBJECTIVE"):
        pareto.parse_row("no-colon=case")
    # --keep: an earlier table's rows stay unless this run measured the same case and objective
    earlier = tmp_path / "pareto.json"
    earlier.write_text(json.dumps([{**rows[1], "f1_mean": 1.0, "timed": "2026-01-01"},
                                   {**rows[1], "case": "old", "timed": "2026-01-01"}]))
    kept = pareto.kept_rows(earlier, rows)
    assert [(r["case"], r["timed"]) for r in kept] == [("old", "2026-01-01")]
    undated = {key: value for key, value in rows[1].items() if key != "timed"}
    earlier.write_text(json.dumps([{**undated, "case": "older"}]))  # a table written before rows had a date
    assert pareto.kept_rows(earlier, rows)[0]["timed"] == "an earlier run"
    assert pareto.kept_rows(tmp_path / "absent.json", rows) == []


def test_params_count_thinc_and_torch_weights(pareto, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_crf_tagger", name="ner")
    nlp.initialize(lambda: examples_from(nlp, [("John lives here", [(0, 1, "PER")])]))
    nlp.to_disk(tmp_path / "p")
    thinc_only = sum(node.get_param(name).size for node in nlp.get_pipe("ner").model.walk()
                     for name in node.param_names if node.has_param(name))
    assert pareto.count_params(tmp_path / "p") > thinc_only  # the CRF head's torch weights count too
