"""spacy_skd.report.marginals and `spacy skd marginals` (Structural KD, Table 6): a teacher's F1
against the F1 of its unary marginals' argmax, on tiny teachers trained on the CoNLL-2003 fixture."""
import json

import pytest
import spacy
import torch
from spacy.cli._util import app
from spacy.tokens import Doc, DocBin
from spacy.util import fix_random_seed
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)

from spacy_skd.cli.convert import convert_corpus
from spacy_skd.report.analyses import marginals_result
from spacy_skd.report.cases import load_paper
from spacy_skd.report.marginals import evaluate, marginal_argmax, tag_space, teacher_marginals
from spacy_skd.structs.chain import LinearChainCRF
from spacy_skd.structs.span import SpanNER
from spacy_skd.training.readers import create_conll_ner_reader
from tests.conftest import FIXTURES, train_tagger

CONLL = FIXTURES / "conll2003_sample.conll"  # 4 sentences, LOC/MISC/ORG/PER, IOB1
SMALL = {"model": {"tok2vec": {"embed": {"width": 32, "rows": [500, 100, 250, 250]},
                               "encode": {"width": 32, "depth": 2}}}}
FACTORIES = {"span": "skd_span_ner", "crf": "skd_crf_tagger", "maxent": "skd_maxent_tagger"}
STEPS = {"span": 30, "crf": 30, "maxent": 3}  # the MaxEnt teacher is left undertrained on purpose



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


def invoke(*args):
    return CliRunner().invoke(app, ["skd", "marginals", *map(str, args)])


def run(teacher, test_data, tmp_path, *args):
    """The command's JSON, with its printed table under `"output"`."""
    out = tmp_path / "metrics" / "marginals.json"
    result = invoke(teacher, test_data, "--output", out, *args)
    assert result.exit_code == 0, result.output
    return {**json.loads(out.read_text(encoding="utf8")), "output": result.output}


def check_ranges(result):
    for key in ("teacher", "marginal_argmax"):
        assert set(result[key]) == {"p", "r", "f"}
        assert all(0.0 <= result[key][m] <= 1.0 for m in "prf"), result
    assert 0.0 <= result["agreement"] <= 1.0
    assert result["n_docs"] == 4 and result["n_tokens"] == 27


@pytest.mark.parametrize("kind", ["span", "crf"])
def test_marginals_f1_overfitted_teacher_and_argmax_are_perfect(kind, teachers, test_data, tmp_path):
    result = run(teachers[kind], test_data, tmp_path, "--batch-size", "3")  # two batches
    check_ranges(result)
    assert result["kind"] == kind
    assert result["teacher"]["f"] == 1.0 and result["marginal_argmax"]["f"] == 1.0
    assert result["agreement"] == 1.0
    assert "Marginal argmax" in result["output"] and "100.00" in result["output"]


def test_marginals_f1_maxent_argmax_is_its_decoding(teachers, test_data, tmp_path):
    result = run(teachers["maxent"], test_data, tmp_path)
    check_ranges(result)
    assert result["marginal_argmax"] == result["teacher"] and result["agreement"] == 1.0
    assert "MaxEnt teacher" in result["output"]


@pytest.mark.parametrize("kind", ["span", "crf"])
def test_marginals_f1_argmax_matches_direct_marginals(kind, teachers):
    """The script's argmax equals the argmax of marginals computed from the model's own scores."""
    nlp = spacy.load(teachers[kind])
    pipe = nlp.get_pipe("ner")
    docs = [Doc(nlp.vocab, words=w.split()) for w in ("Anna Berg visited Velmora .", "ZURICH voters")]
    got = marginal_argmax(pipe, docs, torch.device("cpu"))
    scores = pipe.model.predict(docs)
    if kind == "crf":
        marginals = LinearChainCRF(scores.emissions.double(), scores.transitions.double(), scores.lengths,
                                   scores.start.double(), scores.end.double(),
                                   mask=pipe.transition_mask(torch.device("cpu"))).marginals
    else:
        marginals = SpanNER(scores.scores.double(), scores.lengths).bioes_log_marginals
    expected = marginals.argmax(-1)
    assert got == [expected[0].tolist(), expected[1, :2].tolist()]
    tags, scheme = tag_space(pipe)
    assert scheme == "BIOES" and len(tags) == marginals.shape[-1] == 17  # O + 4 x (B, I, E, S)


def test_marginals_f1_errors(teachers, test_data, tmp_path):
    """One way to load a teacher (`load_teacher`, E224-E226), then the checks of this analysis."""
    other = tmp_path / "sentencizer"
    blank = spacy.blank("en")
    blank.add_pipe("sentencizer")
    blank.to_disk(other)
    cases = [
        ([teachers["crf"], test_data, "--component", "tagger"], "E225"),
        ([other, test_data, "--component", "sentencizer"], "E226"),
        ([tmp_path / "missing", test_data], "E224"),
        ([teachers["crf"], tmp_path / "missing.spacy"], "E316"),
        ([teachers["crf"], test_data, "--batch-size", "0"], "E317"),
    ]
    for argv, code in cases:
        result = invoke(*argv, "--output", tmp_path / "out.json")
        assert result.exit_code == 1 and f"[skd-{code}]" in result.output, (argv, result.output)
    assert not (tmp_path / "out.json").exists()
    parser = spacy.blank("en")
    parser.add_pipe("skd_biaffine_parser", name="parser")  # a teacher, but of arcs: no tag marginals
    with pytest.raises(ValueError, match=r"\[skd-E315\].*skd_biaffine_parser.*skd_span_ner"):
        teacher_marginals(parser, test_data, "parser")


def test_marginals_f1_evaluate_skips_empty_docs(teachers, test_data):
    nlp = spacy.load(teachers["crf"])
    references = list(DocBin().from_disk(test_data).get_docs(nlp.vocab))
    full = evaluate(nlp, "ner", references, batch_size=2)
    padded = evaluate(nlp, "ner", [Doc(nlp.vocab, words=[])] + references, batch_size=2)
    assert padded == {**full, "n_docs": 5}


def test_marginals_file_joins_the_report(teachers, test_data, tmp_path):
    """What `skd marginals --output metrics/<run>/marginals.json` writes is Table 6 of `skd report`."""
    run(teachers["crf"], test_data, tmp_path)
    (row,) = marginals_result(tmp_path / "metrics", load_paper())["rows"]
    assert row["file"] == "marginals.json" and row["kind"] == "crf"
    assert row["teacher"] == row["marginal_argmax"] == 100.0 and row["agreement"] == 1.0
    assert row["paper_teacher"] == 89.15 and row["paper_marginal_argmax"] == 89.08
