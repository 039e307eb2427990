"""spacy-skd.strip_kd.v1: what `spacy train` saves has no kd; the pipeline it trains keeps it."""
import spacy
from spacy.util import registry

from spacy_skd.training.strip_kd import strip_kd
from tests.conftest import examples_from

DATA = [("Peter lives in Berlin .", [(0, 1, "PER"), (3, 4, "LOC")])]


def test_strip_kd_saves_a_student_without_kd_and_leaves_training_alone(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd")
    nlp.add_pipe("skd_maxent_tagger", name="ner")
    nlp.config["initialize"]["components"]["kd"] = {"teacher": "somewhere"}
    nlp.config["training"]["annotating_components"] = ["kd"]
    with nlp.select_pipes(enable="ner"):
        nlp.initialize(lambda: examples_from(nlp, DATA))
    strip = registry.resolve({"cb": {"@callbacks": "spacy-skd.strip_kd.v1"}})["cb"]
    saved = strip(nlp)
    assert nlp.component_names == ["kd", "ner"]  # the training pipeline is unchanged
    assert "kd" in nlp.config["initialize"]["components"]
    assert saved.component_names == ["ner"] and saved.get_pipe("ner") is nlp.get_pipe("ner")
    assert saved.config["training"]["annotating_components"] == []
    saved.to_disk(tmp_path / "student")
    loaded = spacy.load(tmp_path / "student")
    assert loaded.component_names == ["ner"] and "kd" not in loaded.config["initialize"]["components"]
    assert [e.text for e in loaded(DATA[0][0]).ents] == [e.text for e in nlp(DATA[0][0]).ents]


def test_strip_kd_returns_a_pipeline_without_kd_as_it_is():
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_maxent_tagger", name="ner")
    assert strip_kd(nlp) is nlp
