"""spacy_skd.report.slots and `spacy skd evaluate-slots` (SenTScore §5): slot F1, exact match and
speed of oracle pipelines on the tiny SlotGated-SLU dataset of tests/test_slot_scripts.py."""
import json
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
from spacy.cli._util import app
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.report.slots import KEYS, evaluate_slots
from spacy_skd.training.readers import create_slot_filling_reader
from tests.test_slot_scripts import N_VALID, dataset  # noqa: F401  (the fixture, and its `test_slot_oracle`)


def invoke(*args):
    return CliRunner().invoke(app, ["skd", "evaluate-slots", *map(str, args)])


def _oracle_pipeline(path: Path, split: Path, keep: int) -> Path:
    nlp = spacy.blank("en")
    nlp.add_pipe("test_slot_oracle", name="slots", config={"path": str(split), "keep": keep})
    nlp.to_disk(path)
    return path


def _evaluate(tmp_path: Path, model: Path, split: Path, *extra: str) -> Dict:
    output = tmp_path / "metrics" / "slots.json"
    result = invoke(model, split, "--output", output, "--batch-size", "2", *extra)
    assert result.exit_code == 0, result.output
    metrics = json.loads(output.read_text(encoding="utf8"))
    assert set(metrics) == set(KEYS) and "exact_match" in result.output
    return metrics


def _gold_spans(split: Path) -> List[list]:
    return [list(eg.reference.ents) for eg in create_slot_filling_reader(split)(spacy.blank("en"))]


def test_slot_eval_oracle_is_perfect(dataset, tmp_path):
    split = dataset / "test"
    metrics = _evaluate(tmp_path, _oracle_pipeline(tmp_path / "model", split, keep=-1), split)
    assert metrics["ents_p"] == metrics["ents_r"] == metrics["ents_f"] == pytest.approx(1.0)
    assert metrics["exact_match"] == 1.0
    assert metrics["n_sentences"] == 7
    assert metrics["words_per_second"] > metrics["sentences_per_second"] > 0


@pytest.mark.parametrize("keep", [0, 1])
def test_slot_eval_partial_predictions(dataset, tmp_path, keep):
    """keep=0 predicts nothing: exact match is the share of utterances without slots."""
    split = dataset / "valid"
    gold = _gold_spans(split)
    metrics = _evaluate(tmp_path, _oracle_pipeline(tmp_path / "model", split, keep=keep), split)
    assert metrics["exact_match"] == pytest.approx(sum(len(s) <= keep for s in gold) / len(gold))
    assert 0 < metrics["exact_match"] < 1
    n_gold, n_pred = sum(map(len, gold)), sum(min(len(s), keep) for s in gold)
    assert metrics["ents_r"] == pytest.approx(n_pred / n_gold)
    assert metrics["ents_p"] == pytest.approx(1.0 if keep else 0.0)
    assert metrics["n_sentences"] == N_VALID


def test_slot_eval_disable(dataset, tmp_path):
    split = dataset / "test"
    model = _oracle_pipeline(tmp_path / "model", split, keep=-1)
    metrics = _evaluate(tmp_path, model, split, "--disable", "slots")
    assert metrics["exact_match"] == pytest.approx(sum(not s for s in _gold_spans(split)) / 7)
    assert metrics["ents_f"] == 0.0


def test_slot_eval_config_overrides_at_load(dataset, tmp_path):
    """Extra arguments override the pipeline's config at load, as run_sentscore's constrained
    SenT' teacher does (`--components.slots.decoding constrained`)."""
    split = dataset / "test"
    model = _oracle_pipeline(tmp_path / "model", split, keep=-1)
    metrics = _evaluate(tmp_path, model, split, "--components.slots.keep", "0")
    assert metrics["exact_match"] == pytest.approx(sum(not s for s in _gold_spans(split)) / 7)


def test_slot_eval_errors(dataset, tmp_path):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"\[skd-E317\].*got 0"):
        evaluate_slots(nlp, dataset / "test", batch_size=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "seq.in").write_text("")
    (empty / "seq.out").write_text("")
    model = _oracle_pipeline(tmp_path / "model", dataset / "test", keep=-1)
    with pytest.warns(UserWarning, match="W331"):
        result = invoke(model, empty, "--output", tmp_path / "m.json")
    assert result.exit_code == 1 and "[skd-E316]" in result.output and "holds no" in result.output
    assert invoke(tmp_path / "no_model", dataset / "test", "--output", tmp_path / "m.json").exit_code == 2
    assert not (tmp_path / "m.json").exists()
