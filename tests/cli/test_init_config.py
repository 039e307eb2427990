"""`python -m spacy skd init-config`: a student config for each teacher kind, checked by
`spacy debug config` and trained for a few steps by `spacy train` with no edits."""
import copy
import importlib.util

import pytest
import spacy
from spacy.cli._util import app
from spacy.cli.train import train as spacy_train
from spacy.training import Example
from spacy.util import fix_random_seed, load_config
from thinc.api import Config
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.cli.init_config import STUDENTS, TEMPLATES, read_teacher, student_config
from spacy_skd.training.conllu import create_conllu_reader
from spacy_skd.training.readers import create_conll_ner_reader, create_slot_filling_reader
from tests.conftest import FIXTURES, REPO_ROOT, examples_from, train_tagger

CONLL = FIXTURES / "conll2003_sample.conll"
EWT = FIXTURES / "ewt_sample.conllu"
SNIPS = FIXTURES / "snips_sample"
TINY_TOK2VEC = {"embed": {"width": 32, "rows": [500, 100, 250, 250]}, "encode": {"width": 32, "depth": 1}}
PARSER_MODELS = {
    "skd_biaffine_parser": {"tok2vec": TINY_TOK2VEC, "arc_width": 32, "rel_width": 16},
    "skd_mfvi_parser": {"tok2vec": TINY_TOK2VEC, "arc_width": 32, "rel_width": 16, "factor_width": 16},
}
SENTSCORE = {"@architectures": "spacy-skd.SenTScore.v1", "init": "scratch", "n_sentinels": 16, "vocab_size": 200,
             "d_model": 32, "d_ff": 64, "n_layers": 1, "n_heads": 2, "dropout": 0.0, "seed": 0}
HAS_SEQ2SEQ = all(importlib.util.find_spec(m) for m in ("transformers", "tokenizers"))
# teacher kind -> (gold train/dev data, student factory by default, student component name)
KINDS = {
    "crf": (CONLL, "skd_crf_tagger", "ner"),
    "maxent": (CONLL, "skd_crf_tagger", "ner"),
    "span": (CONLL, "skd_maxent_tagger", "ner"),
    "biaffine": (EWT, "skd_seqlabel_parser", "parser"),
    "mfvi": (EWT, "skd_seqlabel_parser", "parser"),
    "sentscore": (SNIPS, "skd_maxent_tagger", "slots"),
}


def conll_examples(nlp):
    return [Example(nlp.make_doc(eg.reference.text), eg.reference)
            for eg in create_conll_ner_reader(CONLL, scheme="IOB1")(nlp)]


def parser_teacher(factory, path):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="parser", config={"model": copy.deepcopy(PARSER_MODELS[factory])})
    examples = list(create_conllu_reader(EWT)(nlp))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)
    return path


def sentscore_teacher(path):
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_sentscore", name="slots", config={"model": SENTSCORE})
    examples = list(create_slot_filling_reader(SNIPS, scheme="IOB2")(nlp))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """A tiny, barely trained teacher of each kind, saved: kind -> path."""
    root = tmp_path_factory.mktemp("teachers")
    fix_random_seed(0)
    out = {
        "crf": train_tagger("skd_crf_tagger", conll_examples, root / "crf", steps=3),
        "maxent": train_tagger("skd_maxent_tagger", conll_examples, root / "maxent", steps=3),
        "span": train_tagger("skd_span_ner", conll_examples, root / "span", steps=3),
        "biaffine": parser_teacher("skd_biaffine_parser", root / "biaffine"),
        "mfvi": parser_teacher("skd_mfvi_parser", root / "mfvi"),
    }
    if HAS_SEQ2SEQ:
        out["sentscore"] = sentscore_teacher(root / "sentscore")
    return out


def teacher_of(teachers, kind):
    if kind not in teachers:
        pytest.skip("the SenTScore teacher needs transformers and tokenizers")
    return teachers[kind]


def invoke(*args):
    return CliRunner().invoke(app, ["skd", *map(str, args)])


def test_templates_are_the_repository_student_configs():
    """The package ships configs/ student configs unchanged: init-config invents no structure."""
    names = {name for options in STUDENTS.values() for name in options.values()}
    assert names == {p.name for p in TEMPLATES.glob("*.cfg")}
    for name in names:
        assert (TEMPLATES / name).read_text() == (REPO_ROOT / "configs" / name).read_text(), name


@pytest.mark.parametrize("kind", list(KINDS))
def test_init_config_picks_case_labels_and_scheme(kind, teachers, tmp_path):
    teacher = teacher_of(teachers, kind)
    data, factory, name = KINDS[kind]
    output = tmp_path / "student.cfg"
    result = invoke("init-config", teacher, output)
    assert result.exit_code == 0, result.output
    config = load_config(output, interpolate=False)
    assert config["paths"]["teacher"] == str(teacher)
    assert config["paths"]["train"] is None and config["paths"]["dev"] is None
    assert config["nlp"]["pipeline"][0] == "kd"
    kd = config["components"]["kd"]
    assert kd["factory"] == "structural_kd" and kd["student"] == name and kd["teacher_component"] == name
    assert config["components"][name]["factory"] == factory
    assert config["initialize"]["components"]["kd"]["teacher"] == "${paths.teacher}"
    assert kind == "sentscore" or "@schedules" in kd["kd_weight"]  # SenTScore: lambda_KL = 1, loss_mix add
    info = read_teacher(str(teacher))
    if kind in ("crf", "maxent"):
        assert config["components"][name]["scheme"] == info.scheme == "BIOES"
        assert config["components"][name]["constrained"] is (kind == "crf")  # case 3: a free CRF
    if kind in ("crf", "maxent", "span", "sentscore"):
        assert config["initialize"]["components"][name]["labels"] == sorted(info.labels)
        assert set(info.labels) >= {"PER", "LOC"} or kind == "sentscore"
    else:
        assert name not in config["initialize"]["components"]  # joint labels come from the trees
    # `spacy debug config` resolves every section without errors, given the data as `spacy train` is
    result = CliRunner().invoke(app, ["debug", "config", str(output), "--paths.train", str(data), "--paths.dev", str(data)])
    assert result.exit_code == 0, result.output
    assert "Config is valid" in result.output


def test_init_config_student_and_optimize_options(teachers, tmp_path):
    info = read_teacher(str(teachers["crf"]))
    kind, config = student_config(info, "maxent", optimize="accuracy", vectors="my_vectors", raw="raw.txt")
    assert kind == "maxent" and config["components"]["ner"]["factory"] == "skd_maxent_tagger"
    assert config["components"]["tok2vec"]["model"]["encode"]["width"] == 256
    assert config["components"]["tok2vec"]["model"]["encode"]["depth"] == 8
    assert config["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] is True
    assert config["paths"]["vectors"] == "my_vectors" and config["paths"]["raw"] == "raw.txt"
    _, default = student_config(info)
    assert default["components"]["tok2vec"]["model"]["encode"]["width"] == 128  # the best measured student
    assert default["components"]["tok2vec"]["model"]["embed"]["rows"] == [20000, 5000, 5000, 5000]
    # null: a table given later with --paths.vectors is used with no second override
    assert default["components"]["tok2vec"]["model"]["embed"]["include_static_vectors"] is None
    assert default["paths"]["vectors"] is None
    _, token = student_config(read_teacher(str(teachers["maxent"])), "maxent")
    assert token["components"]["kd"]["objective"] == "token"


def test_init_config_reads_corpora_like_the_teacher(teachers, tmp_path):
    """The gold readers take the teacher config's reader settings (here the corpus' tag scheme)."""
    info = read_teacher(str(teachers["crf"]))
    info.corpora = {"train": {"@readers": "spacy-skd.CoNLLNER.v1", "path": "${paths.train}", "scheme": "IOB2", "limit": 7},
                    "dev": {"@readers": "spacy-skd.CoNLLU.v1", "path": "${paths.dev}"}}
    _, config = student_config(info)
    assert config["corpora"]["train"]["gold"]["scheme"] == "IOB2"
    assert config["corpora"]["train"]["gold"]["limit"] == 0 and config["corpora"]["train"]["gold"]["path"] == "${paths.train}"
    assert config["corpora"]["dev"]["scheme"] == "IOB1"  # another reader kind: the template's


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_init_config_student_trains_with_spacy_train(kind, teachers, tmp_path):
    """`spacy train OUTPUT --paths.train --paths.dev` runs the generated config unedited."""
    teacher = teacher_of(teachers, kind)
    data, _, name = KINDS[kind]
    output = tmp_path / "student.cfg"
    assert invoke("init-config", teacher, output, "--optimize", "efficiency").exit_code == 0
    fix_random_seed(0)
    overrides = {"paths.train": str(data), "paths.dev": str(data), "paths.cache": str(tmp_path / "cache"),
                 "training.max_steps": 3, "training.eval_frequency": 2, "system.gpu_allocator": None}
    spacy_train(output, tmp_path / "out", overrides=overrides)
    student = spacy.load(tmp_path / "out" / "model-last")
    assert student.pipe_names == (["tok2vec", name] if kind != "sentscore" else [name])  # saved without kd
    doc = student(student.make_doc("John Smith lives in New York ."))
    assert len(doc) == 7


def test_init_config_errors(teachers, tmp_path):
    """The teacher is loaded and checked as training loads it (`teacher.load`: E224, E303, E225,
    E226); init-config adds which component and which student."""
    result = invoke("init-config", tmp_path / "no_such_teacher", tmp_path / "s.cfg")
    assert result.exit_code != 0 and "[skd-E224]" in str(result.exception)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.to_disk(tmp_path / "plain")
    with pytest.raises(ValueError, match=r"\[skd-E362\].*sentencizer"):
        read_teacher(str(tmp_path / "plain"))
    with pytest.raises(ValueError, match=r"\[skd-E226\].*Sentencizer"):
        read_teacher(str(tmp_path / "plain"), component="sentencizer")
    (tmp_path / "broken").mkdir()
    with pytest.raises(ValueError, match=r"\[skd-E303\].*broken"):
        read_teacher(str(tmp_path / "broken"))
    info = read_teacher(str(teachers["biaffine"]))
    with pytest.raises(ValueError, match=r"\[skd-E364\].*Choose --student from: seqlabel"):
        student_config(info, "crf")
    with pytest.raises(ValueError, match=r"\[skd-E365\]"):
        student_config(info, optimize="fast")
    with pytest.raises(ValueError, match=r"\[skd-E225\].*tagger"):
        read_teacher(str(teachers["crf"]), component="tagger")
    two = spacy.blank("en")
    two.add_pipe("skd_crf_tagger", name="ner")
    two.add_pipe("skd_maxent_tagger", name="ner2")
    with pytest.raises(ValueError, match=r"\[skd-E363\].*ner, ner2"):
        read_teacher(two)
    assert read_teacher(two, component="ner2").kind == "maxent"
    two.add_pipe("skd_seqlabel_parser", name="parser")  # can teach, but no student template for it
    with pytest.raises(ValueError, match=r"\[skd-E367\].*'parser'"):
        read_teacher(two, component="parser")


@pytest.mark.parametrize("factory,beam_width,kind,student,objective", [
    ("ner", None, "ner_greedy", "maxent", "token"),
    ("beam_ner", None, "ner_beam", "crf", "structural"),
    # the saved beam width decides, not the factory's name: a beam of one gives greedy steps
    ("beam_ner", 1, "ner_greedy", "maxent", "token"),
])
def test_init_config_for_a_spacy_ner_teacher(factory, beam_width, kind, student, objective, tmp_path):
    """Issue 21: spaCy's own ner/beam_ner teach; the default student fits the signal they give."""
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="ner", config={} if beam_width is None else {"beam_width": beam_width})
    nlp.initialize(lambda: examples_from(nlp, [("Paris is big", [(0, 1, "LOC")])]))
    nlp.to_disk(tmp_path / "teacher")
    info = read_teacher(str(tmp_path / "teacher"))
    assert info.kind == kind and info.labels == ["LOC"] and info.scheme is None
    chosen, config = student_config(info)
    assert chosen == student and config["components"]["kd"]["objective"] == objective
