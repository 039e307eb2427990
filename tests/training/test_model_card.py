"""The distillation record (`spacy skd model-card`) of a tiny student, and `spacy package` with it."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import spacy
import srsly
from spacy.cli._util import app
from spacy.cli.evaluate import evaluate
from spacy.cli.package import package
from spacy.cli.train import train as spacy_train
from spacy.util import fix_random_seed
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.cli.convert import convert_corpus
from spacy_skd.training.cache import fingerprint_pipeline
from spacy_skd.training.model_card import distillation_card, render_notes
from spacy_skd.training.readers import create_conll_ner_reader, create_raw_text_reader
from tests.cli.test_init_config import CONLL, conll_examples
from tests.conftest import FIXTURES, train_tagger
from tests.test_packaging import fresh_venv, wheel  # noqa: F401  (the spacy-skd wheel fixture)

RAW = FIXTURES / "raw_sample.txt.gz"


def invoke(*args):
    return CliRunner().invoke(app, ["skd", *map(str, args)])


@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """A CRF teacher, a student from `init-config` trained 3 steps on gold + raw text, and both
    evaluated on the same test file."""
    root = tmp_path_factory.mktemp("card")
    fix_random_seed(0)
    teacher = train_tagger("skd_crf_tagger", conll_examples, root / "teacher", steps=3)
    assert invoke("init-config", teacher, root / "student.cfg", "--raw", RAW).exit_code == 0
    spacy_train(root / "student.cfg", root / "student", overrides={
        "paths.train": str(CONLL), "paths.dev": str(CONLL), "paths.cache": str(root / "cache"),
        "training.max_steps": 3, "training.eval_frequency": 2, "system.gpu_allocator": None})
    test = root / "test.spacy"
    convert_corpus(CONLL, test, fmt="conll", scheme="IOB1")
    for name, model in (("teacher", teacher), ("student", root / "student" / "model-last")):
        evaluate(str(model), test, output=root / f"{name}.json", silent=True)
    return root, teacher, root / "student" / "model-last"


@pytest.mark.slow
def test_card_records_teacher_objective_counts_and_scores(distilled):
    root, teacher, student = distilled
    card = distillation_card(student, teacher_metrics=root / "teacher.json", student_metrics=root / "student.json")
    assert card["teacher"]["path"] == str(teacher)
    assert card["teacher"]["name"] == "en_pipeline-0.0.0" and card["teacher"]["component"] == "ner"
    assert card["teacher"]["fingerprint"] == fingerprint_pipeline(spacy.load(teacher), "ner")
    assert (card["objective"], card["temperature"], card["temperature_mode"]) == ("structural", 2.0, "auto")
    assert card["kd_weight"].startswith("spacy-skd.teacher_annealing.v1(")
    nlp = spacy.blank("en")
    assert card["gold_sentences"] == len(list(create_conll_ner_reader(CONLL, scheme="IOB1")(nlp))) > 0
    assert card["unlabeled_sentences"] == len(list(create_raw_text_reader(RAW)(nlp))) > 0
    metrics = {who: json.loads((root / f"{who}.json").read_text()) for who in ("teacher", "student")}
    assert card["test"]["scores"]["ents_f"] == {who: metrics[who]["ents_f"] for who in metrics}
    assert card["test"]["words_per_second"] == {who: metrics[who]["speed"] for who in metrics}
    notes = render_notes(card)
    assert card["teacher"]["fingerprint"] in notes and "| teacher |" in notes and "| student |" in notes


@pytest.mark.slow
def test_card_without_teacher_metrics_or_data(distilled, tmp_path):
    """Away from the project (no teacher, no data, no metrics) the card says what it knows."""
    _, _, student = distilled
    card = distillation_card(student, teacher=tmp_path / "gone", count=True)
    assert card["teacher"]["fingerprint"] is None and card["teacher"]["name"] is None
    assert card["test"] is None and card["objective"] == "structural"
    assert "n/a" in render_notes(card)


@pytest.mark.slow
def test_model_card_cli_and_spacy_package_readme(distilled, tmp_path):
    root, teacher, student = distilled
    meta_path = tmp_path / "meta.json"
    result = invoke("model-card", student, meta_path, "--teacher-metrics", root / "teacher.json",
                    "--student-metrics", root / "student.json")
    assert result.exit_code == 0, result.output
    (tmp_path / "packages").mkdir()
    package(student, tmp_path / "packages", meta_path=meta_path, name="skd_student", version="0.0.1",
            create_sdist=False, force=True)
    built = tmp_path / "packages" / "en_skd_student-0.0.1"
    meta = srsly.read_json(built / "meta.json")
    fingerprint = fingerprint_pipeline(spacy.load(teacher), "ner")
    assert meta["distillation"]["teacher"]["fingerprint"] == fingerprint
    assert any(req.startswith("spacy-skd") for req in meta["requirements"])
    readme = (built / "README.md").read_text()
    assert "### Distillation" in readme and fingerprint in readme and "Unlabeled sentences" in readme


def test_model_card_of_a_pipeline_without_kd_errors(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "plain")
    with pytest.raises(ValueError, match=r"\[skd-E368\]"):
        distillation_card(tmp_path / "plain")


@pytest.mark.slow
def test_packaged_student_installs_offline_and_loads_without_teacher(distilled, wheel, tmp_path):
    """What `spacy project run package` leaves in packages/ (the student's wheel with its model
    card, the spacy-skd wheel) installs with no index into a fresh virtualenv, and
    `spacy.load("en_skd_student")` works with the teacher, its cache and the data gone."""
    root, teacher, student = distilled
    packages = tmp_path / "packages"
    packages.mkdir()
    assert invoke("model-card", student, packages / "meta.json").exit_code == 0
    package(student, packages, meta_path=packages / "meta.json", name="skd_student", version="0.0.1",
            create_sdist=False, force=True)
    built = packages / "en_skd_student-0.0.1"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(built),
                    "-w", str(built / "dist")], check=True, cwd=tmp_path)
    (packages / "spacy-skd" / "dist").mkdir(parents=True)
    shutil.copy(wheel, packages / "spacy-skd" / "dist")
    python = fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    wheels = sorted(str(p) for p in packages.glob("*/dist/*.whl"))
    assert len(wheels) == 2
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index", *wheels],
                   check=True, cwd=tmp_path, env=env)
    hidden = teacher.with_name("teacher-hidden")
    teacher.rename(hidden)
    shutil.rmtree(root / "cache", ignore_errors=True)
    try:
        check = ("import spacy; nlp = spacy.load('en_skd_student'); doc = nlp('John Smith lives in Paris .'); "
                 "print(len(doc), nlp.pipe_names, nlp.meta['distillation']['teacher']['fingerprint'])")
        result = subprocess.run([str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    finally:
        hidden.rename(teacher)
    assert result.returncode == 0, result.stderr[-2000:]
    fingerprint = fingerprint_pipeline(spacy.load(teacher), "ner")
    assert result.stdout.split() == ["6", "['tok2vec',", "'ner']", fingerprint]  # shipped without kd
