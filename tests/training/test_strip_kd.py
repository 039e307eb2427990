"""spacy-skd.strip_kd.v1: what `spacy train` saves has no kd; the pipeline it trains keeps it."""
import spacy
from spacy.util import registry

from spacy_skd.training.strip_kd import KD_META, restore_kd, strip_kd
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


def test_stripped_settings_travel_in_meta_and_restore_the_training_config(tmp_path):
    """The saved student still says how it was distilled: restore_kd puts the kd block, its
    initialize settings and its place in the pipeline back from meta.json."""
    nlp = spacy.blank("en")
    nlp.add_pipe("tok2vec")
    nlp.add_pipe("structural_kd", name="kd", config={"student": "ner", "objective": "top1", "temperature": 3.0})
    nlp.add_pipe("skd_maxent_tagger", name="ner")
    nlp.config["initialize"]["components"]["kd"] = {"teacher": "somewhere"}
    with nlp.select_pipes(enable=["tok2vec", "ner"]):
        nlp.initialize(lambda: examples_from(nlp, DATA))
    strip_kd(nlp).to_disk(tmp_path / "student")
    loaded = spacy.load(tmp_path / "student")
    assert "kd" not in loaded.config["components"] and "kd" not in nlp.meta.get(KD_META, {})
    restored = restore_kd(loaded.config, loaded.meta)
    assert restored["nlp"]["pipeline"] == ["tok2vec", "kd", "ner"]
    assert restored["components"]["kd"]["objective"] == "top1" and restored["components"]["kd"]["temperature"] == 3.0
    assert restored["initialize"]["components"]["kd"] == {"teacher": "somewhere"}
    assert restore_kd(nlp.config, loaded.meta) is nlp.config  # still has kd: unchanged
