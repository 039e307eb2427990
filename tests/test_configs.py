"""The shipped configs: every one parses and resolves; the KD student configs train end to end
through `spacy train` against tiny teachers (with and without unlabeled text, and case 3); the
MiniLM teacher configs train with a tiny random BERT in place of MiniLM and reload."""
import re
from pathlib import Path

import diskcache
import numpy
import pytest
import spacy
from spacy.cli.train import train
from spacy.schemas import ConfigSchemaTraining
from spacy.util import load_config, load_model_from_config, registry
from spacy.vectors import Vectors

from spacy_skd.structs.tree import is_tree
from spacy_skd.teacher.runner import TeacherRunner
from spacy_skd.training.cache import fingerprint_pipeline
from spacy_skd.training.readers import create_conll_ner_reader, create_raw_text_reader

from .conftest import FIXTURES, REPO_ROOT, train_tagger

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.cfg"))
TRAIN = FIXTURES / "conll2003_sample.conll"
TREES = FIXTURES / "ewt_sample.conllu"
RAW = FIXTURES / "raw_sample.txt.gz"
SLOTS = FIXTURES / "snips_sample"
# A few steps of everything; tests never run long.
TINY = {"paths.train": str(TRAIN), "paths.dev": str(TRAIN), "training.max_steps": 4,
        "training.eval_frequency": 2}


def fixture_for(path: Path) -> Path:
    """The fixture in the format of the config's dev reader: CoNLL-U for parsers, SlotGated-SLU
    folders for slot filling, else CoNLL NER."""
    reader = load_config(path, interpolate=False)["corpora"]["dev"]["@readers"]
    return {"spacy-skd.CoNLLU.v1": TREES, "spacy-skd.SlotFilling.v1": SLOTS}.get(reader, TRAIN)


def overrides_for(path: Path, **extra) -> dict:
    data = fixture_for(path)
    overrides = {"paths.train": str(data), "paths.dev": str(data)}
    if path.name.startswith("teacher_"):
        overrides["paths.minilm"] = str(FIXTURES)  # only read at initialize
    return {**overrides, **extra}


def needs_transformers(path: Path) -> None:
    if "transformer" in load_config(path, interpolate=False)["nlp"]["pipeline"]:
        pytest.importorskip("spacy_transformers")


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_resolves(path):
    needs_transformers(path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#"), "every config opens with a comment saying what it is and how to run it"
    raw = load_config(path, interpolate=False)
    assert raw["system"]["gpu_allocator"] == "pytorch"
    corpora = raw["corpora"]
    readers = [corpora["dev"]] + ([corpora["train"][k] for k in ("gold", "unlabeled")]
                                  if "gold" in corpora["train"] else [corpora["train"]])
    for reader in readers:  # so `--paths.x` overrides reach every reader
        assert re.fullmatch(r"\$\{paths\.\w+\}", reader["path"]), reader
    config = load_config(path, overrides=overrides_for(path))
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == config["nlp"]["pipeline"]
    resolved = nlp.config.interpolate()
    training = registry.resolve(resolved["training"], schema=ConfigSchemaTraining)
    assert training["max_steps"] == config["training"]["max_steps"]
    train_corpus = registry.resolve(resolved["corpora"])["train"]
    assert len(list(train_corpus(nlp))) > 0


# --- KD students ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    fixture = lambda nlp: list(create_conll_ner_reader(TRAIN)(nlp))  # noqa: E731
    return {kind: train_tagger(f"skd_{kind}_tagger", fixture, root / kind, steps=5) for kind in ("crf", "maxent")}


def cached_sentences(cache_dir: Path) -> int:
    """Sentences in a teacher cache folder (entries are keyed by 64 hex digits). One teacher and
    one setting give two namespaces, the raw potentials and the targets, with the same sentences."""
    folders = [p for p in cache_dir.iterdir() if p.is_dir()]
    assert len(folders) == 2
    counts = []
    for folder in folders:
        with diskcache.Cache(str(folder)) as store:
            counts.append(sum(1 for key in store if re.fullmatch(r"[0-9a-f]{64}", str(key))))
    assert counts[0] == counts[1]
    return counts[0]


def train_student(config: str, teacher: Path, tmp_path: Path, **extra) -> Path:
    out = tmp_path / "student"
    overrides = {**TINY, "paths.teacher": str(teacher), "paths.cache": str(tmp_path / "cache"), **extra}
    train(REPO_ROOT / "configs" / config, out, overrides=overrides)
    return out


@pytest.mark.parametrize("raw", [RAW, None], ids=["raw", "raw_null"])
@pytest.mark.parametrize("config", ["student_crf_kd.cfg", "student_maxent_kd.cfg"])
def test_student_kd_config_trains(config, raw, teachers, tmp_path):
    """Case 1a / 2a from a CRF teacher; `paths.raw = null` trains on gold only."""
    out = train_student(config, teachers["crf"], tmp_path, **{"paths.raw": None if raw is None else str(raw)})
    nlp = spacy.load(out / "model-last")  # no teacher needed at runtime
    assert nlp.component_names == ["tok2vec", "ner"]  # the training-only kd is not saved
    assert "kd" not in nlp.config["components"] and "kd" not in nlp.config["initialize"]["components"]
    assert nlp.get_pipe("ner").labels == spacy.load(teachers["crf"]).get_pipe("ner").labels
    nlp("Peter lives in Berlin .")
    assert embed_of(nlp).attrs["static_vectors"] is False  # no --paths.vectors: hash embeddings alone
    blank = spacy.blank("en")
    n_gold = len({tuple(t.text for t in eg.predicted) for eg in create_conll_ner_reader(TRAIN)(blank)})
    n_raw = len(list(create_raw_text_reader(raw)(blank)))
    assert cached_sentences(tmp_path / "cache") == n_gold + n_raw


NER_STUDENTS = ["student_crf_kd.cfg", "student_maxent_kd.cfg", "student_maxent_span_kd.cfg"]


def embed_of(nlp):
    return nlp.get_pipe("tok2vec").model.get_ref("embed")


def write_vectors(path: Path, width: int) -> Path:
    """A tiny vectors pipeline (what `spacy skd vectors` writes) for words of the train fixture."""
    nlp = spacy.blank("en")
    words = ["Harbour", "Metals", "said", "Velmora", "Anna", "Lind", "."]
    data = numpy.random.default_rng(0).normal(size=(len(words), width)).astype("float32")
    nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=data, keys=[nlp.vocab.strings.add(w) for w in words])
    nlp.to_disk(path)
    return path


@pytest.mark.parametrize("config", NER_STUDENTS)
def test_default_ner_students_have_the_best_measured_shape(config):
    """The pareto table's best student (docs/results/pareto.json): CNN width 128, 20k NORM rows,
    static vectors from `[initialize] vectors = ${paths.vectors}` when a table is given."""
    raw = load_config(REPO_ROOT / "configs" / config, interpolate=False)
    tok2vec = raw["components"]["tok2vec"]["model"]
    assert tok2vec["encode"]["@architectures"] == "spacy.MaxoutWindowEncoder.v2"
    # depth 6 was measured for the CRF student only (numpy matrix products made it fit 10x)
    depth = 6 if config == "student_crf_kd.cfg" else 4
    assert (tok2vec["encode"]["width"], tok2vec["encode"]["depth"]) == (128, depth)
    assert tok2vec["embed"] == {"@architectures": "spacy-skd.StudentEmbed.v1",
                                "width": "${components.tok2vec.model.encode.width}",
                                "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"], "rows": [20000, 5000, 5000, 5000],
                                "include_static_vectors": None}
    assert raw["paths"]["vectors"] is None and raw["initialize"]["vectors"] == "${paths.vectors}"


@pytest.mark.parametrize("config", ["student_crf_kd.cfg", "student_maxent_kd.cfg"])
def test_student_config_reads_paths_vectors_alone(config, teachers, tmp_path):
    """`--paths.vectors DIR` with no other override: the trained student carries the table and
    its tok2vec reads it (changing a word's vector changes the token vectors); the hash-only
    student of the same config ignores the same change."""
    vectors = write_vectors(tmp_path / "vectors", width=5)
    with_vectors = spacy.load(train_student(config, teachers["crf"], tmp_path / "a", **{
        "paths.raw": None, "paths.vectors": str(vectors)}) / "model-last")
    hash_only = spacy.load(train_student(config, teachers["crf"], tmp_path / "b", **{"paths.raw": None}) / "model-last")
    assert embed_of(with_vectors).attrs["static_vectors"] is True and with_vectors.vocab.vectors.shape == (7, 5)
    assert embed_of(hash_only).attrs["static_vectors"] is False and hash_only.vocab.vectors.shape[0] == 0
    text = "Velmora said Ostrov"
    for nlp, moves in ((with_vectors, True), (hash_only, False)):
        tok2vec = nlp.get_pipe("tok2vec").model
        before = tok2vec.predict([nlp.make_doc(text)])[0]
        nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=numpy.full((1, 5), 3.0, dtype="float32"),
                                    keys=[nlp.vocab.strings.add("Velmora")])
        after = tok2vec.predict([nlp.make_doc(text)])[0]
        # the CNN mixes one neighbour on each side (window 1, depth 4): "Velmora" reaches every token
        assert (not numpy.allclose(before[0], after[0])) is moves
        if not moves:
            numpy.testing.assert_allclose(before, after)


@pytest.mark.parametrize("found", [3, 0], ids=["other_width", "no_table"])
def test_student_with_a_table_of_another_width_is_a_clear_error(found, teachers, tmp_path):
    """A student trained on 5-wide vectors, run with another table (or none), stops with skd-E147
    instead of spaCy's bare gemm error."""
    out = train_student("student_crf_kd.cfg", teachers["crf"], tmp_path, **{
        "paths.raw": None, "paths.vectors": str(write_vectors(tmp_path / "vectors", width=5))})
    nlp = spacy.load(out / "model-last")
    nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, shape=(1 if found else 0, found))
    with pytest.raises(ValueError, match=rf"\[skd-E147\] .* 5 wide, .* {found} wide"):
        nlp("Velmora said .")


def test_student_config_with_required_vectors_and_no_table_is_a_clear_error(teachers, tmp_path):
    """include_static_vectors = true and no --paths.vectors: skd-E145 at initialize, where
    spaCy's MultiHashEmbed.v2 fails with an IndexError."""
    with pytest.raises(ValueError, match=r"\[skd-E145\]"):
        train_student("student_crf_kd.cfg", teachers["crf"], tmp_path, **{
            "paths.raw": None, "components.tok2vec.model.embed.include_static_vectors": True})


@pytest.mark.parametrize("config", [p.name for p in CONFIGS if "structural_kd" in p.read_text(encoding="utf-8")])
def test_student_configs_save_without_kd(config):
    """Every shipped KD student config saves its student without the training-only kd."""
    assert load_config(REPO_ROOT / "configs" / config)["training"]["before_to_disk"] == \
        {"@callbacks": "spacy-skd.strip_kd.v1"}


def test_saved_student_runs_only_inference_components(teachers, tmp_path):
    """model-best, as `spacy package` would ship it, loads with the teacher gone and lists the
    student's inference components only; its predictions are those of the trained pipeline."""
    out = train_student("student_maxent_kd.cfg", teachers["crf"], tmp_path, **{"paths.raw": None})
    best = spacy.load(out / "model-best")
    assert best.pipe_names == best.component_names == ["tok2vec", "ner"]
    last = spacy.load(out / "model-last")
    text = "Peter lives in Berlin ."
    assert [(e.text, e.label_) for e in best(text).ents] == [(e.text, e.label_) for e in last(text).ents]


@pytest.mark.parametrize("override,code", [({"nlp.pipeline": ["tok2vec", "ner", "kd"]}, "E300"),
                                           ({"training.frozen_components": ["kd"]}, "E301"),
                                           ({"training.frozen_components": ["ner"]}, "E301")],
                         ids=["kd_after_student", "kd_frozen", "student_frozen"])
def test_spacy_train_refuses_kd_that_cannot_reach_its_student(override, code, teachers, tmp_path):
    """`spacy train` with kd after its student, or with kd or the student frozen, would finish
    and report scores without using the teacher once: it stops at initialize instead."""
    with pytest.raises(ValueError, match=rf"\[skd-{code}\]"):
        train_student("student_maxent_kd.cfg", teachers["crf"], tmp_path, **{"paths.raw": None, **override})


def test_student_crf_kd_config_case3(teachers, tmp_path):
    """MaxEnt teacher -> CRF student: the config's `constrained` flag, flipped on the command line;
    zero-shot, as project.yml runs it: unlabeled text only (`--corpora.train.gold null`)."""
    with pytest.raises(ValueError, match=r"\[skd-E174\]"):
        train_student("student_crf_kd.cfg", teachers["maxent"], tmp_path)
    out = train_student("student_crf_kd.cfg", teachers["maxent"], tmp_path,
                        **{"components.ner.constrained": False, "paths.raw": str(RAW),
                           "paths.train": None, "corpora.train.gold": None})
    ner = spacy.load(out / "model-last").get_pipe("ner")
    assert ner.cfg["constrained"] is False
    assert ner.labels == spacy.load(teachers["maxent"]).get_pipe("ner").labels  # from the teacher
    assert cached_sentences(tmp_path / "cache") == len(list(create_raw_text_reader(RAW)(spacy.blank("en"))))


@pytest.mark.parametrize("teacher_config", ["parser_biaffine_teacher.cfg", "parser_mfvi_teacher.cfg"])
def test_parser_teacher_and_seqlabel_student_configs_train(teacher_config, tmp_path):
    """Cases 1b / 2b through `spacy train`: a few steps of the shipped teacher config, then the
    shipped sequence-labelling student config distilling from it."""
    tiny = {"paths.train": str(TREES), "paths.dev": str(TREES), "training.max_steps": 4,
            "training.eval_frequency": 2, "components.tok2vec.model.encode.width": 32}
    train(REPO_ROOT / "configs" / teacher_config, tmp_path / "teacher", overrides=tiny)
    teacher = tmp_path / "teacher" / "model-last"
    train(REPO_ROOT / "configs" / "student_seqlabel_kd.cfg", tmp_path / "student",
          overrides={**tiny, "paths.teacher": str(teacher), "paths.cache": str(tmp_path / "cache")})
    nlp = spacy.load(tmp_path / "student" / "model-last")
    assert nlp.component_names == ["tok2vec", "parser"]  # kd is training-only: not saved
    doc = nlp("The cat sat on the mat .")
    assert sum(token.head.i == token.i for token in doc) == 1  # one tree, one root
    expected = "mfvi" if "mfvi" in teacher_config else "biaffine"
    assert spacy.load(teacher).get_pipe("parser").kd_kind == expected


# --- MiniLM teachers, with a tiny random BERT in its place -----------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 1-layer, 32-wide random BERT with a lowercase WordPiece vocab, saved like MiniLM."""
    pytest.importorskip("spacy_transformers")
    transformers = pytest.importorskip("transformers")
    path = tmp_path_factory.mktemp("tiny_bert")
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,-'"
    words = ["peter", "smith", "visited", "berlin"]  # whole pieces, so 128 tokens fit in 512 pieces
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *chars, *(f"##{c}" for c in chars)]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True).save_pretrained(path)
    config = transformers.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=37)
    transformers.BertModel(config).save_pretrained(path)
    return path


@pytest.mark.parametrize("config", ["teacher_crf_minilm.cfg", "teacher_maxent_minilm.cfg"])
def test_teacher_config_trains_and_reloads(config, tiny_bert, tmp_path, monkeypatch):
    """Two steps with the transformer + cased hash features; the saved teacher reloads (the
    head's input width comes from cfg, as the listener's is unknown before the weights load)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    overrides = {**TINY, "paths.minilm": str(tiny_bert), "training.max_steps": 2,
                 "training.accumulate_gradient": 1, "training.optimizer.learn_rate.warmup_steps": 1}
    train(REPO_ROOT / "configs" / config, tmp_path / "teacher", overrides=overrides)
    nlp = spacy.load(tmp_path / "teacher" / "model-last")
    tok2vec = nlp.get_pipe("ner").model.get_ref("tok2vec")
    assert tok2vec.get_dim("nO") == 32 + 64  # transformer listener + cased hash embedding
    long_doc = nlp(" ".join(["Peter Smith visited Berlin ."] * 60))  # 300 tokens: strided windows
    assert len(long_doc) == 300
    # the cache key of a transformer teacher is stable across loads (its serialized bytes are not)
    again = spacy.load(tmp_path / "teacher" / "model-last")
    assert fingerprint_pipeline(nlp, "ner") == fingerprint_pipeline(again, "ner")
    if config == "teacher_crf_minilm.cfg":  # and it teaches: KD from a transformer teacher
        out = train_student("student_crf_kd.cfg", tmp_path / "teacher" / "model-last", tmp_path,
                            **{"training.max_steps": 2})
        assert spacy.load(out / "model-last").component_names == ["tok2vec", "ner"]


@pytest.mark.parametrize("student", ["student_maxent_kd.cfg", "student_crf_kd.cfg"])
def test_spacy_beam_ner_teacher_config_trains_and_teaches(student, tiny_bert, tmp_path, monkeypatch):
    """Issue 21: spaCy's beam_ner on the (tiny) transformer teaches both students through
    `spacy train`, and a doc longer than the transformer's window gets a parse for every token."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    overrides = {**TINY, "paths.minilm": str(tiny_bert), "training.max_steps": 2,
                 "training.accumulate_gradient": 1, "training.optimizer.learn_rate.warmup_steps": 1}
    train(REPO_ROOT / "configs" / "teacher_beam_ner_minilm.cfg", tmp_path / "teacher", overrides=overrides)
    teacher = tmp_path / "teacher" / "model-last"
    runner = TeacherRunner(teacher, "ner")
    assert runner.kind == "ner_beam"
    words = "Peter Smith visited Berlin .".split() * 60  # 300 tokens: strided 128-token windows
    out = runner([words])[0]
    assert out["parses"].shape[1] == out["steps"].shape[0] == 300
    out = train_student(student, teacher, tmp_path, **{"training.max_steps": 2, "paths.raw": None})
    assert spacy.load(out / "model-last").component_names == ["tok2vec", "ner"]


def test_minilm_biaffine_teacher_config_trains_and_teaches(tiny_bert, tmp_path, monkeypatch):
    """Case 1b with a transformer teacher: two steps of the MiniLM biaffine config on trees, the
    saved teacher reloads and parses, and the sequence-labelling student distils from it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    tiny = {"paths.train": str(TREES), "paths.dev": str(TREES), "training.max_steps": 2,
            "training.eval_frequency": 2}
    train(REPO_ROOT / "configs" / "teacher_biaffine_minilm.cfg", tmp_path / "teacher",
          overrides={**tiny, "paths.minilm": str(tiny_bert), "training.accumulate_gradient": 1,
                     "training.optimizer.learn_rate.warmup_steps": 1})
    teacher = tmp_path / "teacher" / "model-last"
    nlp = spacy.load(teacher)
    assert nlp.get_pipe("parser").model.get_ref("tok2vec").get_dim("nO") == 32 + 64
    doc = nlp(" ".join(["Peter Smith visited Berlin ."] * 40))  # 200 tokens: strided windows
    assert len(doc) == 200
    assert is_tree([0 if token.head.i == token.i else token.head.i + 1 for token in doc])  # one MST
    train(REPO_ROOT / "configs" / "student_seqlabel_kd.cfg", tmp_path / "student",
          overrides={**tiny, "components.tok2vec.model.encode.width": 32, "paths.teacher": str(teacher),
                     "paths.cache": str(tmp_path / "cache")})
    assert spacy.load(tmp_path / "student" / "model-last").component_names == ["tok2vec", "parser"]


def test_sentscore_teacher_and_bilstm_student_configs_train(tmp_path):
    """SenTScore through `spacy train`: a few steps of the shipped teacher config (a tiny scratch
    T5: CI has no MiniLM), then the shipped KD student config on gold + silver from it."""
    pytest.importorskip("tokenizers")
    slots = {"paths.train": str(SLOTS), "paths.dev": str(SLOTS), "training.max_steps": 4,
             "training.eval_frequency": 2}
    tiny_t5 = {"components.slots.model.init": "scratch", "components.slots.model.d_model": 32,
               "components.slots.model.d_ff": 64, "components.slots.model.n_layers": 1,
               "components.slots.model.n_heads": 2, "components.slots.model.vocab_size": 200,
               "components.slots.model.n_sentinels": 40}
    train(REPO_ROOT / "configs" / "sentscore_teacher.cfg", tmp_path / "teacher", overrides={**slots, **tiny_t5})
    teacher = tmp_path / "teacher" / "model-last"
    assert spacy.load(teacher).pipe_names == ["slots"]
    train(REPO_ROOT / "configs" / "student_bilstm_sentscore_kd.cfg", tmp_path / "student",
          overrides={**slots, "paths.silver": str(SLOTS), "paths.teacher": str(teacher),
                     "paths.cache": str(tmp_path / "cache")})
    nlp = spacy.load(tmp_path / "student" / "model-last")
    assert nlp.component_names == ["slots"] and nlp.get_pipe("slots").cfg["scheme"] == "sBIO"
    assert set(nlp.get_pipe("slots").labels) == set(spacy.load(teacher).get_pipe("slots").labels)
    nlp("play the song yesterday by the beatles")


@pytest.mark.parametrize("config", sorted(p.name for p in (REPO_ROOT / "configs").glob("student*.cfg")))
def test_students_multiply_on_numpy_blas(config):
    """Every student config builds its pipeline with spacy-skd.numpy_gemm.v1 (models/cpu_ops.py)."""
    raw = load_config(REPO_ROOT / "configs" / config, interpolate=False)
    assert raw["nlp"]["after_pipeline_creation"] == {"@callbacks": "spacy-skd.numpy_gemm.v1"}
