"""The skd_sentscore component: initialize, learn, save/load, errors, and as a KD teacher."""
import numpy
import pytest
import spacy
import torch

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
from spacy_skd.kd.batch import KDBatch  # noqa: E402
from spacy_skd.kd.targets import maxent_targets  # noqa: E402
from tests.conftest import examples_from  # noqa: E402

TINY = {"@architectures": "spacy-skd.SenTScore.v1", "init": "scratch", "n_sentinels": 16, "vocab_size": 200,
        "d_model": 32, "d_ff": 64, "n_layers": 1, "n_heads": 2, "dropout": 0.0, "seed": 0}
DATA = [
    ("play the song yesterday by the beatles", [(2, 4, "track"), (5, 7, "artist")]),
    ("add madonna to my workout playlist", [(1, 2, "artist"), (4, 6, "playlist")]),
    ("what is the weather in paris", [(5, 6, "city")]),
    ("book a table for two", []),
]


def sentscore_nlp(**cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_sentscore", name="slots", config={"model": TINY, **cfg})
    return nlp


def trained(steps=60, **cfg):
    nlp = sentscore_nlp(**cfg)
    examples = examples_from(nlp, DATA)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.003
    for _ in range(steps):
        losses = nlp.update(examples, sgd=optimizer)
    return nlp, examples, losses


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    nlp, _, _ = trained()
    path = tmp_path_factory.mktemp("sentscore") / "teacher"
    nlp.to_disk(path)
    return path


def test_initialize_builds_single_token_tags():
    nlp = sentscore_nlp()
    nlp.initialize(lambda: examples_from(nlp, DATA))
    pipe = nlp.get_pipe("slots")
    assert pipe.labels == ("artist", "city", "playlist", "track")
    assert pipe.tags == ["O", "I", "artist", "city", "playlist", "track"]
    bundle = pipe.sentscorer.bundle
    assert len(set(bundle.tag_ids[t] for t in pipe.tags)) == len(pipe.tags)


def test_learns_the_training_slots(teacher):
    nlp = spacy.load(teacher)
    for text, ents in DATA:
        doc = nlp(text)
        assert [(e.start, e.end, e.label_) for e in doc.ents] == ents


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_loss_falls(noise):
    nlp = sentscore_nlp(history_noise=noise)
    examples = examples_from(nlp, DATA)
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.003
    first = nlp.update(examples, sgd=optimizer)["slots"]
    for _ in range(20):
        last = nlp.update(examples, sgd=optimizer)["slots"]
    assert last < 0.5 * first


def test_save_load_gives_same_outputs(teacher, tmp_path):
    nlp = spacy.load(teacher)
    docs = [nlp.make_doc(text) for text, _ in DATA] + [nlp.make_doc(""), nlp.make_doc("paris")]
    before = nlp.get_pipe("slots").predict(docs)
    again = spacy.load(teacher)
    after = again.get_pipe("slots").predict(docs)
    for a, b in zip(before, after):
        assert a.tags.tolist() == b.tags.tolist()
        numpy.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    clone = sentscore_nlp()
    clone.get_pipe("slots").from_bytes(nlp.get_pipe("slots").to_bytes())
    assert [d.tags.tolist() for d in clone.get_pipe("slots").predict(docs)] == [d.tags.tolist() for d in before]


def test_constrained_decoding_and_beam_give_valid_tags(teacher):
    for decoding, beam in (("constrained", 1), ("sentscore", 3), ("constrained", 2)):
        nlp = spacy.load(teacher, config={"components": {"slots": {"decoding": decoding, "beam_size": beam}}})
        pipe = nlp.get_pipe("slots")
        assert (pipe.decoding, pipe.beam_size) == (decoding, beam)
        long_doc = nlp.make_doc(" ".join(["play the beatles"] * 9))  # 27 words: two windows of <= 15
        for doc in nlp.pipe([long_doc] + [nlp.make_doc(t) for t, _ in DATA]):
            assert all(e.label_ in pipe.labels for e in doc.ents)
        assert len(pipe.predict([long_doc])[0].tags) == 27


def test_teacher_outputs_are_the_greedy_scores(teacher):
    pipe = spacy.load(teacher).get_pipe("slots")
    docs = [pipe.vocab and spacy.blank("en").make_doc(t) for t, _ in DATA]
    outputs = pipe.teacher_outputs(docs)
    decoded = pipe.predict(docs)
    for out, dec, doc in zip(outputs, decoded, docs):
        assert out["emissions"].shape == (len(doc), len(pipe.tags))
        assert out["emissions"].argmax(-1).tolist() == dec.tags.tolist()
    batch = pipe.teacher_batch(outputs, torch.device("cpu"))
    assert batch.kind == "maxent" and batch.lengths.tolist() == [len(d) for d in docs]
    with pytest.raises(ValueError, match="E141"):
        pipe.teacher_batch([{"emissions": numpy.zeros((3, 2), dtype="float32")}], torch.device("cpu"))


def test_errors():
    with pytest.raises(ValueError, match="E133"):
        sentscore_nlp(model={**TINY, "init": "gpt"})
    with pytest.raises(ValueError, match="E134"):
        sentscore_nlp(model={**TINY, "init": "checkpoint"})
    with pytest.raises(ValueError, match="E137"):
        sentscore_nlp(decoding="sampling")
    with pytest.raises(ValueError, match="E143"):
        sentscore_nlp(history_noise=1.0)
    nlp = sentscore_nlp()
    with pytest.raises(ValueError, match="E136"):
        nlp("play madonna")
    with pytest.raises(ValueError, match="E139"):
        nlp.initialize(lambda: examples_from(nlp, [("book a table", [])]))
    nlp.initialize(lambda: examples_from(nlp, DATA))
    with pytest.raises(ValueError, match="E138"):
        nlp.get_pipe("slots").add_label("genre")


def kd_student(teacher, tmp_path, scheme="sBIO", **kd):
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd", config={"student": "slots", "teacher_component": "slots",
                                                     "objective": "token", "temperature": 10.0, **kd})
    nlp.add_pipe("skd_maxent_tagger", name="slots", config={"scheme": scheme})
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teacher), "cache_dir": str(tmp_path)}
    return nlp


def test_distils_into_a_maxent_student(teacher, tmp_path):
    """Eq. 2 on unlabeled text only: the student learns the teacher's slots without gold."""
    nlp = kd_student(teacher, tmp_path, loss_mix="add", kd_weight=1.0)
    examples = examples_from(nlp, DATA)
    for eg in examples:
        eg.reference.user_data["skd_unlabeled"] = True
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("slots").labels == ("artist", "city", "playlist", "track")
    for _ in range(60):
        nlp.update(examples, sgd=optimizer)
    teacher_nlp = spacy.load(teacher)
    for text, _ in DATA:
        assert [(e.start, e.end, e.label_) for e in nlp(text).ents] == \
            [(e.start, e.end, e.label_) for e in teacher_nlp(text).ents]


def test_student_scheme_must_be_sbio(teacher, tmp_path):
    nlp = kd_student(teacher, tmp_path, scheme="BIOES")
    with pytest.raises(ValueError, match="E173"):
        nlp.initialize(lambda: examples_from(nlp, DATA))


@pytest.mark.parametrize("mix,scale_t2", [("add", True), ("add", False), ("interpolate", True)])
def test_loss_mix_and_t2(teacher, tmp_path, mix, scale_t2):
    """'add': gold NLL + lambda * KD on unlabeled docs only (Eq. 2); 'interpolate': (1 - lambda)
    * gold + lambda * KD on all; scale_t2 = False removes the T^2 factor."""
    nlp = kd_student(teacher, tmp_path, loss_mix=mix, scale_t2=scale_t2, kd_weight=0.4)
    examples = examples_from(nlp, DATA)
    examples[0].reference.user_data["skd_unlabeled"] = True
    nlp.initialize(lambda: examples)
    kd, student = nlp.get_pipe("kd"), nlp.get_pipe("slots")
    kd.update(examples)
    batch: KDBatch = student._kd
    scores = student.model.predict([eg.predicted for eg in examples])
    loss, _ = student.get_loss(examples, scores)
    # by hand: gold (pseudo-label for doc 0) NLL per doc, KL per doc at T = 10
    logits = scores.emissions
    log_q = torch.log_softmax(logits, -1)
    top1 = batch.targets.top1
    allowed = student._gold_allowed(examples, logits.shape, logits.device)
    allowed[0] = student._one_hot(top1[:1], logits[:1].shape)[0]
    gold = -(torch.logsumexp(log_q.masked_fill(~allowed, float("-inf")), -1)
             * (torch.arange(logits.shape[1])[None] < scores.lengths[:, None])).sum(-1)
    teacher_pipe = kd.teacher.get_pipe("slots")
    raw = teacher_pipe.teacher_outputs([eg.predicted for eg in examples])
    pot = teacher_pipe.teacher_batch(raw, torch.device("cpu"))
    targets = maxent_targets(pot.emissions, pot.lengths, temperature=10.0)
    T = 10.0
    valid = (torch.arange(logits.shape[1])[None] < scores.lengths[:, None])[..., None]
    p = targets.unary * valid
    kl = (p * (torch.log(p.clamp_min(1e-30)) - torch.log_softmax(logits / T, -1))).sum((-1, -2))
    kl = kl * (T * T if scale_t2 else 1.0)
    if mix == "add":
        unlabeled = torch.tensor([1.0, 0.0, 0.0, 0.0])
        expected = gold + 0.4 * kl * unlabeled
    else:
        expected = 0.6 * gold + 0.4 * kl
    assert loss == pytest.approx(float(expected.mean()), rel=1e-4)
