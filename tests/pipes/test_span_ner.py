"""skd_span_ner (biaffine span NER) against spaCy's component contract, as a KD teacher, and
case 4 end to end: span teacher -> structural_kd -> MaxEnt BIOES student."""
import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, registry
from thinc.api import Config

from spacy_skd.kd.span_targets import SpanPotentials, span_targets
from spacy_skd.models.span import BiaffineSpanHead, SpanScores
from spacy_skd.structs.span import SpanNER
from tests.conftest import examples_from, train_tagger

TRAIN_DATA = [
    ("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]),
    ("Mary works at Google in London .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
    ("The cat sat on the mat .", []),
    ("Paris", [(0, 1, "LOC")]),
]
TEXTS = [text for text, _ in TRAIN_DATA]


def make_examples(nlp, data=TRAIN_DATA):
    return examples_from(nlp, data)


def ents_of(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


def span_nlp(**cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_span_ner", name="ner", config=cfg)
    return nlp


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    """A tiny span-NER teacher that reproduces TRAIN_DATA, saved to disk."""
    fix_random_seed(0)
    return train_tagger("skd_span_ner", make_examples, tmp_path_factory.mktemp("span_teacher") / "ner", steps=40)


# --- the component ----------------------------------------------------------------------------


def test_span_ner_overfitting_IO(tmp_path):
    fix_random_seed(0)
    nlp = span_nlp()
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("ner")
    assert ner.labels == ("LOC", "ORG", "PER") and ner.kd_kind == "span"
    for _ in range(60):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
    assert 0 <= losses["ner"] < 0.05
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0 and set(scores["ents_per_type"]) == {"PER", "LOC", "ORG"}
    expected = [ents_of(nlp(t)) for t in TEXTS]
    # batched equals one-by-one
    assert [ents_of(d) for d in nlp.pipe(TEXTS, batch_size=3)] == expected
    # disk round trip, then spacy.load
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert [ents_of(d) for d in loaded.pipe(TEXTS)] == expected
    assert loaded.get_pipe("ner").labels == ner.labels
    # from_disk into a fresh, uninitialized pipeline
    fresh = span_nlp().from_disk(tmp_path / "model")
    assert [ents_of(fresh(t)) for t in TEXTS] == expected
    # bytes round trip into a fresh, uninitialized component
    from_bytes = span_nlp().from_bytes(nlp.to_bytes())
    assert [ents_of(from_bytes(t)) for t in TEXTS] == expected
    # same scores, not only the same decoding
    docs = [nlp.make_doc(t) for t in TEXTS]
    assert torch.equal(ner.model.predict(docs).scores, from_bytes.get_pipe("ner").model.predict(docs).scores)


def test_span_ner_empty_and_one_token_docs():
    nlp = span_nlp()
    nlp.initialize(lambda: make_examples(nlp))
    assert list(nlp("").ents) == []
    assert len(nlp("Paris")) == 1
    docs = list(nlp.pipe(["", "Paris", "", "John Smith"]))
    assert [len(d) for d in docs] == [0, 1, 0, 2]
    assert all(e.end - e.start <= len(d) for d in docs for e in d.ents)
    # an all-empty batch trains without error and adds nothing to the loss
    assert nlp.update(make_examples(nlp, [("", [])]))["ner"] == 0.0
    # an empty doc in a batch with a one-token doc
    losses = nlp.update(make_examples(nlp, [("", []), ("Paris", [(0, 1, "LOC")])]))
    assert losses["ner"] > 0
    ner = nlp.get_pipe("ner")
    assert [a["scores"].shape for a in ner.teacher_outputs([nlp.make_doc(""), nlp.make_doc("Paris")])] == \
        [(0, 0, 4), (1, 1, 4)]
    assert [a["scores"].shape for a in ner.teacher_outputs([nlp.make_doc("")])] == [(0, 0, 4)]


def test_span_ner_labels_from_initialize_settings():
    nlp = span_nlp()
    ner = nlp.get_pipe("ner")
    nlp.config["initialize"]["components"]["ner"] = {"labels": ["PER", "LOC", "ORG", "MISC"]}
    nlp.initialize(lambda: make_examples(nlp))
    assert ner.labels == ("LOC", "MISC", "ORG", "PER") and ner.label_data == ["LOC", "MISC", "ORG", "PER"]
    assert ner.model.get_ref("head").get_dim("nO") == 5


def test_span_ner_loss_is_span_cross_entropy():
    """get_loss = Σ_docs SpanNER.loss / B, and its gradient is that of the same expression."""
    nlp = span_nlp()
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("ner")
    scores = ner.model.predict([eg.predicted for eg in examples])
    loss, (grad,) = ner.get_loss(examples, scores)
    live = scores.scores.clone().requires_grad_()
    index = {"LOC": 1, "ORG": 2, "PER": 3}
    gold = [[(s, e - 1, index[label]) for s, e, label in ents] for _, ents in TRAIN_DATA]
    expected = SpanNER(live, scores.lengths).loss(gold).sum() / len(examples)
    (expected_grad,) = torch.autograd.grad(expected, live)
    assert loss == pytest.approx(float(expected.detach()), rel=1e-5)
    assert torch.allclose(grad, expected_grad, atol=1e-6)


def test_span_ner_missing_annotation_leaves_spans_out():
    """Spans over tokens without NER annotation have no known class: they add nothing."""
    nlp = span_nlp()
    nlp.initialize(lambda: make_examples(nlp))
    ner = nlp.get_pipe("ner")
    words = ["John", "lives", "here"]
    eg = Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=[None, None, None]))
    scores = ner.model.predict([eg.predicted])
    loss, (grad,) = ner.get_loss([eg], scores)
    assert loss == 0.0 and not grad.any()
    # "John" is a known one-word PER, "lives" is unknown, "here" is known to be outside
    partial = Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=["B-PER", None, "O"]))
    loss, (grad,) = ner.get_loss([partial], scores)
    log_p = scores.scores[0].log_softmax(-1)  # [N, N, C]
    known_cells = {(0, 0): 3, (2, 2): 0}  # John = PER (class 3); here = no entity
    assert loss == pytest.approx(float(-sum(log_p[i, j, c] for (i, j), c in known_cells.items())), rel=1e-5)
    touched = grad[0].abs().sum(-1).nonzero().tolist()
    assert sorted(map(tuple, touched)) == sorted(known_cells)


def test_span_ner_max_width():
    """Entities wider than max_width are dropped from the loss and never predicted."""
    nlp = span_nlp(max_width=2)
    examples = make_examples(nlp)  # "New York City" is 3 words
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    ner = nlp.get_pipe("ner")
    assert ner.max_width == 2
    for doc in nlp.pipe(TEXTS):
        assert all(len(e) <= 2 for e in doc.ents)
    (out,) = ner.teacher_outputs([nlp.make_doc(TEXTS[0])])
    wide = numpy.subtract.outer(numpy.arange(8), numpy.arange(8)).T >= 2  # [i, j]: j - i >= 2
    assert (out["scores"][wide][:, 1:] < -1e30).all() and numpy.isfinite(out["scores"]).all()
    marginals = SpanNER(torch.from_numpy(out["scores"])[None].double(), torch.tensor([8])).span_marginals
    assert float(marginals[0][torch.from_numpy(wide)].max()) == 0.0


def test_span_ner_architecture_from_config():
    config = Config().from_str("""
        [model]
        @architectures = "spacy-skd.SpanNER.v1"
        hidden_width = 16
        dropout = 0.0
        nO = 4

        [model.tok2vec]
        @architectures = "spacy.HashEmbedCNN.v2"
        width = 32
        depth = 1
        embed_size = 500
        window_size = 1
        maxout_pieces = 3
        subword_features = true
        pretrained_vectors = null
    """)
    model = registry.resolve(config)["model"]
    nlp = spacy.blank("en")
    docs = [nlp.make_doc("a b c"), nlp.make_doc("d")]
    model.initialize(X=docs)
    assert model.get_ref("head").get_dim("nI") == 32
    scores, backprop = model.begin_update(docs)
    assert isinstance(scores, SpanScores) and scores.potentials == (scores.scores,)
    assert scores.scores.shape == (2, 3, 3, 4) and scores.lengths.tolist() == [3, 1]
    assert not scores.scores.requires_grad
    backprop((torch.ones_like(scores.scores),))
    module = model.get_ref("head").layers[0].shims[0]._model
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_span_ner_head_is_biaffine():
    """scores[b, i, j, c] = h_s(i) U_c h_e(j) + W_c [h_s(i); h_e(j)] + b_c, written out."""
    torch.manual_seed(0)
    head = BiaffineSpanHead(nI=5, nO=3, hidden_width=4, dropout=0.0).double()
    X = torch.randn(2, 3, 5, dtype=torch.float64)
    (scores,) = head(X)
    hs, he = head.start(X), head.end(X)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                pair = torch.cat([hs[b, i], he[b, j]])
                for c in range(3):
                    value = hs[b, i] @ head.bilinear[c] @ he[b, j] + head.linear.weight[c] @ pair + head.linear.bias[c]
                    assert torch.allclose(scores[b, i, j, c], value)


def test_span_ner_teacher_outputs_and_batch():
    nlp = span_nlp()
    nlp.initialize(lambda: make_examples(nlp))
    ner = nlp.get_pipe("ner")
    docs = [nlp.make_doc(t) for t in ["John Smith", "", "Paris is big"]]
    outputs = ner.teacher_outputs(docs)
    assert [sorted(a) for a in outputs] == [["scores"]] * 3
    assert [a["scores"].shape for a in outputs] == [(2, 2, 4), (0, 0, 4), (3, 3, 4)]
    assert all(a["scores"].dtype == numpy.float32 for a in outputs)
    batch = ner.teacher_batch(outputs, torch.device("cpu"))
    assert isinstance(batch, SpanPotentials) and batch.kind == "span" and batch.labels == ner.labels
    assert batch.scores.shape == (3, 3, 3, 4) and batch.lengths.tolist() == [2, 0, 3]
    for b, a in enumerate(outputs):
        n = len(a["scores"])
        assert numpy.array_equal(batch.scores[b, :n, :n].numpy(), a["scores"])
    assert batch.scores[0, 2:].abs().sum() == 0 and batch.scores[1].abs().sum() == 0
    # the same scores as the model's own, sentence by sentence
    direct = ner.model.predict([docs[2]]).scores[0]
    assert torch.allclose(batch.scores[2], direct, atol=1e-6)
    targets = span_targets(batch, ["O"] + [f"{p}-{l}" for l in ner.labels for p in "BIES"], "BIOES")
    assert targets.unary.shape == (3, 3, 13)
    assert torch.allclose(targets.unary.sum(-1), torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]]).float())
    assert ner.teacher_batch([], torch.device("cpu")).scores.shape == (0, 0, 0, 4)


@pytest.mark.parametrize("case", ["no_labels", "empty_label", "late_label", "not_initialized", "predict_early",
                                  "nO", "max_width", "batch_shape", "hidden_width", "dropout"])
def test_span_ner_errors(case):
    expected = {"no_labels": "E100", "empty_label": "E104", "late_label": "E101", "not_initialized": "E110",
                "predict_early": "E110", "nO": "E111", "max_width": "E034", "batch_shape": "E112",
                "hidden_width": "E113", "dropout": "E113"}[case]
    with pytest.raises(ValueError, match=rf"\[skd-{expected}\]"):
        if case == "max_width":
            span_nlp(max_width=0)
        elif case in ("hidden_width", "dropout"):
            value = {"hidden_width": 0, "dropout": 1.0}[case]
            span_nlp(model={"@architectures": "spacy-skd.SpanNER.v1", case: value,
                            "tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "width": 8, "depth": 1,
                                        "embed_size": 100, "window_size": 1, "maxout_pieces": 2,
                                        "subword_features": True, "pretrained_vectors": None}})
        nlp = span_nlp()
        ner = nlp.get_pipe("ner")
        if case == "no_labels":
            nlp.initialize(lambda: make_examples(nlp, [("no entities here", [])]))
        elif case == "empty_label":
            ner.add_label("")
        elif case == "not_initialized":
            ner.update(make_examples(nlp))
        elif case == "predict_early":
            nlp("John Smith")
        elif case == "nO":
            nlp = spacy.blank("en")
            nlp.add_pipe("skd_span_ner", config={"model": {"nO": 7}})
            nlp.initialize(lambda: make_examples(nlp))
        nlp.initialize(lambda: make_examples(nlp))
        if case == "late_label":
            ner.add_label("MISC")
        elif case == "batch_shape":
            ner.teacher_batch([{"scores": numpy.zeros((2, 2, 3), dtype="float32")}], torch.device("cpu"))


# --- case 4: span teacher -> MaxEnt BIOES student ---------------------------------------------


def student_nlp(teacher, tmp_path, *, scheme="BIOES", **kd_cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd",
                 config={"student": "ner", "teacher_component": "ner", "objective": "structural", **kd_cfg})
    nlp.add_pipe("skd_maxent_tagger", name="ner", config={"scheme": scheme})
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teacher), "cache_dir": str(tmp_path / "cache")}
    return nlp


@pytest.mark.parametrize("objective", ["structural", "top1"])
def test_case4_student_learns_span_teacher(objective, teacher_path, tmp_path):
    """Pure KD (lambda = 1): the loss falls and the student reproduces the teacher's entities."""
    fix_random_seed(0)
    nlp = student_nlp(teacher_path, tmp_path, objective=objective, kd_weight=1.0, temperature=1.0)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("ner").labels == ("LOC", "ORG", "PER")  # taken from the teacher
    first = nlp.update(examples, sgd=optimizer)["ner"]
    for _ in range(40):
        last = nlp.update(examples, sgd=optimizer)["ner"]
    assert 0 <= last < first
    teacher = spacy.load(teacher_path)
    assert [ents_of(teacher(text)) for text in TEXTS] == [ents for _, ents in TRAIN_DATA]
    for text in TEXTS:
        assert ents_of(nlp(text)) == ents_of(teacher(text))


@pytest.mark.parametrize("scheme,T,mode", [("BIOES", 2.0, "auto"), ("BIOES", 2.0, "global"), ("IOB2", 1.0, "local")])
def test_case4_student_targets_are_span_targets_of_teacher(scheme, T, mode, teacher_path, tmp_path):
    """What structural_kd hands the student (through its on-disk cache) equals span_targets of
    the teacher's own span scores, in the student's scheme."""
    nlp = student_nlp(teacher_path, tmp_path, scheme=scheme, temperature=T, temperature_mode=mode, kd_weight=0.5)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    kd, ner = nlp.get_pipe("kd"), nlp.get_pipe("ner")
    kd.update(examples)
    got = ner._kd.targets
    teacher = spacy.load(teacher_path).get_pipe("ner")
    scores = teacher.model.predict([eg.predicted for eg in examples])
    expected = span_targets(SpanPotentials(scores.scores, scores.lengths, teacher.labels), ner.tags, scheme,
                            temperature=T, mode="local" if mode == "auto" else mode)
    assert got.unary.shape == expected.unary.shape
    assert torch.allclose(got.unary, expected.unary, atol=1e-5)
    assert torch.equal(got.top1, expected.top1)
    assert got.lengths.tolist() == [len(eg.predicted) for eg in examples]
    first = nlp.update(examples, sgd=optimizer)["ner"]
    for _ in range(10):
        last = nlp.update(examples, sgd=optimizer)["ner"]
    assert 0 <= last < first


@pytest.mark.parametrize("case,expected", [("iob1", "E180"), ("token", "E166"), ("posterior", "E166")])
def test_case4_errors(case, expected, teacher_path, tmp_path):
    if case == "iob1":
        nlp = student_nlp(teacher_path, tmp_path, scheme="IOB1")
    else:
        nlp = student_nlp(teacher_path, tmp_path, objective=case)
    examples = make_examples(nlp)
    with pytest.raises(ValueError, match=rf"\[skd-{expected}\]"):
        nlp.initialize(lambda: examples)
