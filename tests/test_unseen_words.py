"""benchmarks/unseen_words.py: entity recall split by whether every word of the entity has a
teacher vector, counted by hand on small docs, and the script end to end."""
import importlib.util
import json
import subprocess
import sys

import numpy
import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from spacy.vectors import Vectors

from .conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "unseen_words.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("skd_unseen_words", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gold_docs():
    vocab = spacy.blank("en").vocab
    one = Doc(vocab, words=["John", "met", "Zorblax", "Smith", "in", "Paris"])
    one.ents = [Span(one, 0, 1, "PER"), Span(one, 2, 4, "PER"), Span(one, 5, 6, "LOC")]
    two = Doc(vocab, words=["Quuxville", "beat", "Paris"])
    two.ents = [Span(two, 0, 1, "ORG"), Span(two, 2, 3, "ORG")]
    return [one, two]


def test_recall_is_split_by_unseen_words(bench):
    seen = {"John", "met", "Smith", "in", "Paris", "beat"}
    teacher = [{(0, 1, "PER"), (2, 4, "PER"), (5, 6, "LOC")}, {(0, 1, "ORG")}]
    student = [{(0, 1, "PER"), (5, 6, "LOC")}, {(0, 1, "LOC"), (2, 3, "ORG")}]
    table = bench.recall_by_group(gold_docs(), {"teacher": teacher, "student": student}, seen.__contains__)
    seen_row, unseen_row = table["all words seen"], table["a word unseen"]
    # seen: John, Paris (LOC), Paris (ORG); unseen: Zorblax Smith, Quuxville
    assert seen_row["entities"] == 3 and unseen_row["entities"] == 2
    assert seen_row["teacher"] == pytest.approx(2 / 3) and seen_row["student"] == pytest.approx(1.0)
    assert unseen_row["teacher"] == pytest.approx(1.0) and unseen_row["student"] == 0.0
    assert unseen_row["student lost"] == 2 and unseen_row["student gained"] == 0
    assert seen_row["student lost"] == 0 and seen_row["student gained"] == 1


def test_the_script_reads_pipelines_and_refuses_a_subword_table(tmp_path):
    vocab_nlp = spacy.blank("en")
    keys = [vocab_nlp.vocab.strings.add(w) for w in ("John", "met", "in", "Paris", "beat")]
    vocab_nlp.vocab.vectors = Vectors(strings=vocab_nlp.vocab.strings, data=numpy.ones((5, 2), "f"), keys=keys)
    vocab_nlp.to_disk(tmp_path / "vectors")
    DocBin(docs=gold_docs()).to_disk(tmp_path / "test.spacy")
    for name, patterns in (("all", ["John", "Paris", "Zorblax"]), ("paris", ["Paris"])):
        nlp = spacy.blank("en")
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns([{"label": "PER" if p != "Paris" else "LOC", "pattern": p} for p in patterns])
        nlp.to_disk(tmp_path / name)
    out = tmp_path / "unseen.json"
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "vectors"), str(tmp_path / "test.spacy"),
                             "--system", f"ruler={tmp_path / 'all'}", "--system", f"paris={tmp_path / 'paris'}",
                             "--output", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    groups = json.loads(out.read_text())["groups"]
    # seen entities: John (PER), Paris (LOC), Paris (ORG, never found); unseen: Zorblax Smith, Quuxville
    assert groups["all words seen"]["ruler"] == pytest.approx(2 / 3)
    assert groups["all words seen"]["paris"] == pytest.approx(1 / 3)
    assert groups["all words seen"]["paris lost"] == 1 and groups["a word unseen"]["ruler"] == 0.0
    floret = spacy.blank("en")
    floret.vocab.vectors = Vectors(strings=floret.vocab.strings, data=numpy.ones((10, 2), "f"), mode="floret",
                                   minn=2, maxn=3, hash_count=1)
    floret.to_disk(tmp_path / "floret")
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "floret"), str(tmp_path / "test.spacy"),
                             "--system", f"ruler={tmp_path / 'all'}"], capture_output=True, text=True)
    assert result.returncode != 0 and "plain table" in result.stderr
