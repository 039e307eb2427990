"""teacher/spacy_transition.py: spaCy's own ner, beam_ner and parser components as KD teachers,
trained here on a few sentences, distilled into each student kind (issue 21)."""
import copy

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example

from spacy_skd.kd.transition_targets import biluo_columns
from spacy_skd.structs.tag_schemes import spans_to_tags
from spacy_skd.teacher.load import load_teacher
from spacy_skd.teacher.runner import TeacherRunner
from spacy_skd.training.annotate import annotate
from spacy_skd.training.conllu import create_conllu_reader
from tests.conftest import FIXTURES, examples_from

TEXTS = [
    ("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]),
    ("Mary works at Google in London .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
    ("The cat sat on the mat .", []),
    ("Paris is big", [(0, 1, "LOC")]),
]
TINY_T2V = {"@architectures": "spacy.HashEmbedCNN.v2", "pretrained_vectors": None, "width": 32, "depth": 2,
            "embed_size": 500, "window_size": 1, "maxout_pieces": 2, "subword_features": True}
TINY_MODEL = {"@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
              "hidden_width": 16, "maxout_pieces": 2, "use_upper": True, "tok2vec": TINY_T2V}
STUDENT_T2V = {"embed": {"width": 32, "rows": [500, 100, 250, 250]}, "encode": {"width": 32, "depth": 1}}


def train_spacy(factory, path, examples_of, steps, **cfg):
    """A tiny spaCy transition component trained for `steps` updates, saved to `path`."""
    nlp = spacy.blank("en")
    model = copy.deepcopy(TINY_MODEL)
    model["state_type"] = "ner" if "ner" in factory else "parser"
    nlp.add_pipe(factory, name=factory.replace("beam_", ""), config={"model": model, **cfg})
    examples = examples_of(nlp)
    spacy.util.fix_random_seed(0)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(path)
    return path


def ner_examples(nlp):
    return examples_from(nlp, TEXTS)


def ewt_examples(nlp):
    return [Example(Doc(nlp.vocab, words=[t.text for t in eg.reference]), eg.reference)
            for eg in create_conllu_reader(FIXTURES / "ewt_sample.conllu")(nlp)]


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("spacy_teachers")
    return {
        "ner": train_spacy("ner", root / "ner", ner_examples, 15),
        "beam_ner": train_spacy("beam_ner", root / "beam_ner", ner_examples, 15, beam_width=4),
        "ner_weak": train_spacy("ner", root / "ner_weak", ner_examples, 2),
        "parser": train_spacy("parser", root / "parser", ewt_examples, 15, min_action_freq=1),
    }


def student_nlp(factory, teacher, tmp_path, *, objective="structural", student_cfg=None, name="ner", **kd_cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd", config={"objective": objective, "student": name,
                                                     "teacher_component": name, **kd_cfg})
    nlp.add_pipe(factory, name=name, config={"model": {"tok2vec": STUDENT_T2V}, **(student_cfg or {})}
                 if factory == "skd_seqlabel_parser" else (student_cfg or {}))
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teacher), "cache_dir": str(tmp_path / "cache")}
    return nlp


# -- the teacher component ---------------------------------------------------------------------------
@pytest.mark.parametrize("teacher,width,kind", [("ner", None, "ner_greedy"), ("beam_ner", None, "ner_beam"),
                                                ("ner", 3, "ner_beam"), ("beam_ner", 1, "ner_greedy"),
                                                ("parser", None, "parser_beam")])
def test_spacy_component_loads_as_a_kd_teacher(teacher, width, kind, teachers):
    component = "parser" if teacher == "parser" else "ner"
    runner = TeacherRunner(teachers[teacher], component, beam_width=width)
    assert runner.kind == kind
    if width is not None:  # another beam is another teacher: its cached outputs are kept apart
        assert runner.fingerprint != TeacherRunner(teachers[teacher], component).fingerprint


def test_beam_density_zero_keeps_every_analysis_of_the_beam(teachers):
    """With strong pruning (density 0.99) the beam keeps fewer complete parses than with
    density 0, which keeps all beam_width; the parses kept always sum to probability 1, and the
    density is part of the fingerprint (another density, other cached outputs)."""
    words = [tuple(text.split()) for text, _ in TEXTS]
    pruned = TeacherRunner(teachers["beam_ner"], "ner", beam_width=4, beam_density=0.99)
    full = TeacherRunner(teachers["beam_ner"], "ner", beam_width=4, beam_density=0.0)
    n_pruned = [len(out["parses"]) for out in pruned(words)]
    n_full = [len(out["parses"]) for out in full(words)]
    assert all(k <= 4 for k in n_full) and all(p <= f for p, f in zip(n_pruned, n_full))
    assert sum(n_full) > sum(n_pruned)
    for out in full(words):
        assert numpy.exp(out["log_probs"].astype("float64")).sum() == pytest.approx(1.0, abs=1e-5)
    assert pruned.fingerprint != full.fingerprint
    assert full.pipe.settings["beam_density"] == 0.0


def test_beam_ner_marginals_are_spacy_scored_entities(teachers):
    """P(token i in an entity of type X) from the cached beam equals the sum of spaCy's own
    scored_ents over the spans of type X covering i; the parses' probabilities sum to 1."""
    nlp, pipe, _ = load_teacher(teachers["beam_ner"], "ner")
    docs = [nlp.make_doc(text) for text, _ in TEXTS]
    outputs = pipe.teacher_outputs(docs)
    spacy_pipe = nlp.get_pipe("ner")
    scored = spacy_pipe.scored_ents(spacy_pipe.beam_parse(docs, beam_width=4, beam_density=spacy_pipe.cfg["beam_density"]))
    columns = biluo_columns(pipe.labels)
    for doc, out, scores in zip(docs, outputs, scored):
        p = numpy.exp(out["log_probs"].astype("float64"))
        assert p.sum() == pytest.approx(1.0, abs=1e-5)
        unary = numpy.zeros((len(doc), len(columns)))
        for k, parse in enumerate(out["parses"]):
            unary[numpy.arange(len(doc)), parse] += p[k]
        for label in pipe.labels:
            cols = [columns.index(f"{prefix}-{label}") for prefix in "BILU"]
            expected = [sum(s for (start, end, lab), s in scores.items() if lab == label and start <= i < end)
                        for i in range(len(doc))]
            assert unary[:, cols].sum(-1) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("teacher", ["ner", "beam_ner"])
def test_greedy_steps_are_distributions_whose_argmax_is_the_greedy_path(teacher, teachers):
    nlp, pipe, _ = load_teacher(teachers[teacher], "ner", beam_width=1)
    docs = [nlp.make_doc(text) for text, _ in TEXTS] + [nlp.make_doc("")]
    outputs = pipe.teacher_outputs(docs)
    greedy = spacy.load(teachers[teacher])
    greedy.get_pipe("ner").cfg["beam_width"] = 1
    columns = biluo_columns(pipe.labels)
    for doc, out in zip(docs, outputs):
        assert out["steps"].shape == (len(doc), len(columns))
        assert numpy.exp(out["steps"].astype("float64")).sum(-1) == pytest.approx(numpy.ones(len(doc)), abs=1e-5)
        path = greedy(doc.text) if len(doc) else doc
        tags = spans_to_tags([(e.start, e.end, e.label_) for e in path.ents], len(doc), "BILUO")
        assert [columns[c] for c in out["steps"].argmax(-1)] == tags
        assert [columns[c] for c in out["parses"][0]] == tags and out["parses"].shape == (1, len(doc))


def test_a_doc_longer_than_any_window_gets_outputs_for_every_token(teachers):
    """A long doc (far past the CNN's receptive field and spaCy's batch sizes) is one parse."""
    nlp, pipe, _ = load_teacher(teachers["beam_ner"], "ner")
    words = ("John Smith lives in New York City and Mary works at Google in London .".split()) * 40  # 600 words
    out = pipe.teacher_outputs([Doc(nlp.vocab, words=words)])[0]
    assert out["parses"].shape[1] == out["steps"].shape[0] == len(words)
    assert (out["parses"] >= 0).all()


# -- distillation into each student ------------------------------------------------------------------
CASES = [  # (teacher, student factory, objective, student config)
    ("beam_ner", "skd_maxent_tagger", "structural", {}),
    ("beam_ner", "skd_maxent_tagger", "token", {}),
    ("beam_ner", "skd_crf_tagger", "structural", {}),
    ("beam_ner", "skd_crf_tagger", "posterior", {}),
    ("beam_ner", "skd_crf_tagger", "top1", {}),
    ("ner", "skd_maxent_tagger", "token", {}),
    ("ner", "skd_crf_tagger", "structural", {"constrained": False}),
    ("ner", "skd_maxent_tagger", "top1", {}),
]


def _gradients(nlp, examples) -> list:
    """The student's parameter gradients after one nlp.update (weights left as they are)."""
    grads = []

    def record(key, param, grad):
        grads.append(numpy.array(grad, copy=True))
        return param, grad

    nlp.update(examples, sgd=record)
    return grads


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and numpy.allclose(x, y, atol=1e-7) for x, y in zip(a, b))


@pytest.mark.parametrize("teacher,factory,objective,cfg", CASES)
def test_spacy_teacher_distils_into_student(teacher, factory, objective, cfg, teachers, tmp_path):
    """The student trains from the spaCy teacher, and the teacher reaches its gradients: the
    same batch without KD (objective none) gives other ones. (Top-1 of a teacher that has learnt
    the gold is the gold: there a weak teacher's Top-1 must differ instead.)"""
    def grads(objective, cache, teacher=teacher):
        spacy.util.fix_random_seed(0)
        nlp = student_nlp(factory, teachers[teacher], cache, objective=objective, student_cfg=cfg,
                          kd_weight=0.5, temperature=2.0)
        examples = ner_examples(nlp)
        nlp.initialize(lambda: examples)
        return nlp, examples, _gradients(nlp, examples)

    nlp, examples, with_kd = grads(objective, tmp_path / "a")
    assert nlp.get_pipe("ner").labels == ("LOC", "ORG", "PER")  # taken from the teacher
    _, _, other = grads("none", tmp_path / "b") if objective != "top1" else grads("top1", tmp_path / "b", "ner_weak")
    assert not _same(with_kd, other)
    optimizer = nlp.resume_training()
    for _ in range(3):
        losses = nlp.update(examples, sgd=optimizer)
    assert numpy.isfinite(losses["ner"]) and losses["ner"] >= 0


def test_the_kd_components_beam_density_reaches_the_students_gradients(teachers, tmp_path):
    """`beam_density` on the KD component rescores the teacher's beam: a pruned beam (0.99) and a
    full one (0) give the CRF student other structural targets, hence other gradients."""
    def grads(density, cache):
        spacy.util.fix_random_seed(0)
        nlp = student_nlp("skd_crf_tagger", teachers["beam_ner"], cache, objective="structural", kd_weight=0.5,
                          temperature=2.0, beam_density=density)
        examples = ner_examples(nlp)
        nlp.initialize(lambda: examples)
        assert nlp.get_pipe("kd").runner.pipe.beam_density == density
        return _gradients(nlp, examples)

    assert not _same(grads(0.99, tmp_path / "a"), grads(0.0, tmp_path / "b"))


def test_two_spacy_teachers_give_the_student_different_gradients(teachers, tmp_path):
    def grads(teacher, cache):
        spacy.util.fix_random_seed(0)
        nlp = student_nlp("skd_maxent_tagger", teachers[teacher], cache, objective="token", kd_weight=0.5)
        examples = ner_examples(nlp)
        nlp.initialize(lambda: examples)
        return _gradients(nlp, examples)

    assert _same(grads("ner", tmp_path / "a"), grads("ner", tmp_path / "b"))
    assert not _same(grads("ner", tmp_path / "c"), grads("ner_weak", tmp_path / "d"))


@pytest.mark.filterwarnings("ignore:.*skd-W152")  # a 15-step teacher strays from the gold labels
@pytest.mark.parametrize("objective", ["structural", "top1"])
def test_spacy_parser_teacher_distils_into_seqlabel_student(objective, teachers, tmp_path):
    """Case 1b from a spaCy parser: its beam's (head, relation) marginals (one tree at width 1)
    become the student's joint labels; KD changes the gradients."""
    def grads(objective, cache, **kd):
        spacy.util.fix_random_seed(0)
        nlp = student_nlp("skd_seqlabel_parser", teachers["parser"], cache, objective=objective, name="parser",
                          kd_weight=0.5, **kd)
        examples = ewt_examples(nlp)
        nlp.initialize(lambda: examples)
        return nlp, examples, _gradients(nlp, examples)

    nlp, examples, with_kd = grads(objective, tmp_path / "a")
    kd = nlp.get_pipe("kd")
    assert kd.runner.kind == "parser_beam"
    _, _, gold_only = grads("none", tmp_path / "b")
    assert not _same(with_kd, gold_only)
    _, _, beam = grads(objective, tmp_path / "c", beam_width=4)  # the same weights scored with a beam
    assert len(beam) == len(with_kd)
    sums = kd.targets_for([tuple(t.text for t in examples[0].predicted)])[0].unary.sum(-1)[0]  # [n]
    assert torch.all(((sums - 1).abs() < 1e-4) | (sums == 0))  # 0: all its mass outside the vocabulary


# -- the cache and the offline pass ------------------------------------------------------------------
def test_annotate_caches_a_spacy_teacher_that_structural_kd_reads(teachers, tmp_path, monkeypatch):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(text for text, _ in TEXTS) + "\n", encoding="utf8")
    runner = TeacherRunner(teachers["beam_ner"], "ner")
    annotate(runner, texts, tmp_path / "shards", shard="0/1")
    with runner.open_cache(tmp_path / "shards" / "shard-00000-of-00001") as cache:
        cached = dict(cache.items())
    assert len(cached) == len(TEXTS)
    words = [tuple(text.split()) for text, _ in TEXTS]
    for w, fresh in zip(words, runner(words)):
        with runner.open_cache(tmp_path / "shards" / "shard-00000-of-00001") as cache:
            stored = cache.get(w)
        assert set(stored) == {"parses", "log_probs", "steps"}
        assert numpy.array_equal(stored["parses"], fresh["parses"])
        assert numpy.allclose(stored["log_probs"], fresh["log_probs"], atol=1e-5)


# -- bad input ---------------------------------------------------------------------------------------
def test_a_textcat_teacher_is_refused_naming_the_supported_factories():
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat")
    with pytest.raises(ValueError, match=r"\[skd-E226\].*factory 'textcat'.*ner, beam_ner, parser, beam_parser"):
        load_teacher(nlp, "textcat")


@pytest.mark.parametrize("width", [0, -2, 1.5, True])
def test_bad_beam_width_is_refused(width, teachers):
    with pytest.raises(ValueError, match=r"\[skd-E320\]"):
        load_teacher(teachers["ner"], "ner", beam_width=width)


@pytest.mark.parametrize("density", [-0.1, 1.0, "0.1", True])
def test_bad_beam_density_is_refused(density, teachers):
    with pytest.raises(ValueError, match=r"\[skd-E327\].*in \[0, 1\)"):
        load_teacher(teachers["beam_ner"], "ner", beam_density=density)


def test_untrained_spacy_component_is_refused():
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    with pytest.raises(ValueError, match=r"\[skd-E325\]"):
        load_teacher(nlp, "ner")


def test_greedy_steps_into_a_constrained_crf_are_refused(teachers, tmp_path):
    nlp = student_nlp("skd_crf_tagger", teachers["ner"], tmp_path, objective="structural")
    examples = ner_examples(nlp)
    with pytest.raises(ValueError, match=r"\[skd-E321\].*constrained = false"):
        nlp.initialize(lambda: examples)
