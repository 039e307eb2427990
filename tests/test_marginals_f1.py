"""scripts/marginals_f1.py (Structural KD, Table 6): a teacher's F1 against the F1 of its unary
marginals' argmax, on tiny teachers trained on the CoNLL-2003 fixture."""
import json

import pytest
import spacy
import torch
from spacy.tokens import Doc, DocBin
from spacy.util import fix_random_seed

from spacy_skd.cli.convert import convert_corpus
from spacy_skd.structs.chain import LinearChainCRF
from spacy_skd.structs.span import SpanNER
from spacy_skd.training.readers import create_conll_ner_reader
from tests.conftest import FIXTURES, load_script, train_tagger

CONLL = FIXTURES / "conll2003_sample.conll"  # 4 sentences, LOC/MISC/ORG/PER, IOB1
SMALL = {"model": {"tok2vec": {"embed": {"width": 32, "rows": [500, 100, 250, 250]},
                               "encode": {"width": 32, "depth": 2}}}}
FACTORIES = {"span": "skd_span_ner", "crf": "skd_crf_tagger", "maxent": "skd_maxent_tagger"}
STEPS = {"span": 30, "crf": 30, "maxent": 3}  # the MaxEnt teacher is left undertrained on purpose



script = load_script("marginals_f1")


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """Tiny teachers: span NER and CRF overfit the fixture, the MaxEnt one does not."""
    root = tmp_path_factory.mktemp("marginals_teachers")
    reader = create_conll_ner_reader(CONLL, scheme="IOB1")
    paths = {}
    for kind, factory in FACTORIES.items():
        fix_random_seed(0)
        paths[kind] = train_tagger(factory, lambda nlp: list(reader(nlp)), root / kind, steps=STEPS[kind], **SMALL)
    return paths


@pytest.fixture(scope="module")
def test_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("marginals_data") / "test.spacy"
    assert convert_corpus(CONLL, path, scheme="IOB1") == 4
    return path


def run(teacher, test_data, tmp_path, *args):
    out = tmp_path / "metrics" / "marginals.json"
    assert script.main([str(teacher), str(test_data), "--output", str(out), *args]) == 0
    return json.loads(out.read_text(encoding="utf8"))


def check_ranges(result):
    for key in ("teacher", "marginal_argmax"):
        assert set(result[key]) == {"p", "r", "f"}
        assert all(0.0 <= result[key][m] <= 1.0 for m in "prf"), result
    assert 0.0 <= result["agreement"] <= 1.0
    assert result["n_docs"] == 4 and result["n_tokens"] == 27


@pytest.mark.parametrize("kind", ["span", "crf"])
def test_marginals_f1_overfitted_teacher_and_argmax_are_perfect(kind, teachers, test_data, tmp_path, capsys):
    result = run(teachers[kind], test_data, tmp_path, "--batch-size", "3")  # two batches
    check_ranges(result)
    assert result["kind"] == kind
    assert result["teacher"]["f"] == 1.0 and result["marginal_argmax"]["f"] == 1.0
    assert result["agreement"] == 1.0
    assert "Marginal argmax" in capsys.readouterr().out


def test_marginals_f1_maxent_argmax_is_its_decoding(teachers, test_data, tmp_path):
    result = run(teachers["maxent"], test_data, tmp_path)
    check_ranges(result)
    assert result["marginal_argmax"] == result["teacher"] and result["agreement"] == 1.0


@pytest.mark.parametrize("kind", ["span", "crf"])
def test_marginals_f1_argmax_matches_direct_marginals(kind, teachers):
    """The script's argmax equals the argmax of marginals computed from the model's own scores."""
    nlp = spacy.load(teachers[kind])
    pipe = nlp.get_pipe("ner")
    docs = [Doc(nlp.vocab, words=w.split()) for w in ("Anna Berg visited Velmora .", "ZURICH voters")]
    got = script.marginal_argmax(pipe, docs, torch.device("cpu"))
    scores = pipe.model.predict(docs)
    if kind == "crf":
        marginals = LinearChainCRF(scores.emissions.double(), scores.transitions.double(), scores.lengths,
                                   scores.start.double(), scores.end.double(),
                                   mask=pipe.transition_mask(torch.device("cpu"))).marginals
    else:
        marginals = SpanNER(scores.scores.double(), scores.lengths).bioes_log_marginals
    expected = marginals.argmax(-1)
    assert got == [expected[0].tolist(), expected[1, :2].tolist()]
    tags, scheme = script.tag_space(pipe)
    assert scheme == "BIOES" and len(tags) == marginals.shape[-1] == 17  # O + 4 x (B, I, E, S)


def test_marginals_f1_errors(teachers, test_data, tmp_path, capsys):
    other = tmp_path / "sentencizer"
    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")
    blank.to_disk(other)
    cases = [
        ([str(teachers["crf"]), str(test_data), "--component", "tagger"], "No component 'tagger'"),
        ([str(other), str(test_data), "--component", "sentencizer"], "factory 'sentencizer'"),
        ([str(tmp_path / "missing"), str(test_data)], "Teacher pipeline not found"),
        ([str(teachers["crf"]), str(tmp_path / "missing.spacy")], "Test data not found"),
        ([str(teachers["crf"]), str(test_data), "--batch-size", "0"], "--batch-size"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as excinfo:
            script.main(argv)
        assert excinfo.value.code == 1
        assert message in capsys.readouterr().out


def test_marginals_f1_evaluate_skips_empty_docs(teachers, test_data):
    nlp = spacy.load(teachers["crf"])
    references = list(DocBin().from_disk(test_data).get_docs(nlp.vocab))
    full = script.evaluate(nlp, "ner", references, batch_size=2)
    padded = script.evaluate(nlp, "ner", [Doc(nlp.vocab, words=[])] + references, batch_size=2)
    assert padded == {**full, "n_docs": 5}
