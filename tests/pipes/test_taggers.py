"""skd_crf_tagger and skd_maxent_tagger against spaCy's component contract."""
import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from spacy_skd.pipes.crf_tagger import CRFTagger
from spacy_skd.structs.tag_schemes import is_valid
from spacy_skd.training.readers import create_conll_ner_reader
from tests.conftest import examples_from

TAGGERS = ["skd_crf_tagger", "skd_maxent_tagger"]
TRAIN_DATA = [
    ("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]),
    ("Mary works at Google in London .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
    ("The cat sat on the mat .", []),
    ("Paris", [(0, 1, "LOC")]),
]


def make_examples(nlp, data=TRAIN_DATA):
    return examples_from(nlp, data)


def ents_of(doc):
    return [(e.start, e.end, e.label_) for e in doc.ents]


@pytest.mark.parametrize("factory", TAGGERS)
def test_tagger_overfitting_IO(factory, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="ner")
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("ner").labels == ("LOC", "ORG", "PER")
    for _ in range(60):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
    assert losses["ner"] < 0.05
    for text, ents in TRAIN_DATA:
        assert ents_of(nlp(text)) == ents
    scores = nlp.evaluate(examples)
    assert scores["ents_f"] == 1.0 and set(scores["ents_per_type"]) == {"PER", "LOC", "ORG"}
    # disk round trip, then spacy.load
    nlp.to_disk(tmp_path / "model")
    nlp2 = spacy.load(tmp_path / "model")
    texts = [text for text, _ in TRAIN_DATA]
    assert [ents_of(d) for d in nlp2.pipe(texts)] == [ents_of(nlp(t)) for t in texts]
    # bytes round trip into a fresh, uninitialized component
    nlp3 = spacy.blank("en")
    nlp3.add_pipe(factory, name="ner")
    nlp3.from_bytes(nlp.to_bytes())
    assert [ents_of(nlp3(t)) for t in texts] == [ents_of(nlp(t)) for t in texts]
    # batched equals one-by-one
    assert [ents_of(d) for d in nlp.pipe(texts, batch_size=3)] == [ents_of(nlp(t)) for t in texts]


@pytest.mark.parametrize("factory", TAGGERS)
def test_constrained_overridden_at_load(factory, tmp_path):
    """`constrained` is a decoding choice: spacy.load(path, config=...) changes it, while the
    labels and scheme still come from the saved pipeline."""
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="ner", config={"scheme": "BIOES"})
    nlp.initialize(lambda: make_examples(nlp))
    nlp.to_disk(tmp_path / "model")
    saved = nlp.get_pipe("ner").cfg["constrained"]
    assert spacy.load(tmp_path / "model").get_pipe("ner").cfg["constrained"] is saved
    flipped = spacy.load(tmp_path / "model", config={"components": {"ner": {"constrained": not saved}}})
    ner = flipped.get_pipe("ner")
    assert ner.cfg["constrained"] is (not saved) and ner.cfg["scheme"] == "BIOES"
    assert (ner.transition_mask(torch.device("cpu")) is None) is saved
    assert ner.labels == nlp.get_pipe("ner").labels


@pytest.mark.parametrize("factory", TAGGERS)
def test_tagger_empty_and_one_token_docs(factory):
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="ner")
    nlp.initialize(lambda: make_examples(nlp))
    assert list(nlp("").ents) == []
    assert len(nlp("Paris")) == 1
    docs = list(nlp.pipe(["", "Paris", "", "John Smith"]))
    assert [len(d) for d in docs] == [0, 1, 0, 2]
    # an all-empty batch trains without error and adds nothing to the loss
    losses = nlp.update(make_examples(nlp, [("", [])]), sgd=None)
    assert losses["ner"] == 0.0


@pytest.mark.parametrize("factory", TAGGERS)
def test_tagger_labels_from_initialize_settings(factory):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe(factory, name="ner")
    # as `spacy train` passes [initialize.components.ner] labels = [...]
    nlp.config["initialize"]["components"]["ner"] = {"labels": ["PER", "LOC", "ORG", "MISC"]}
    nlp.initialize(lambda: make_examples(nlp))
    assert ner.labels == ("LOC", "MISC", "ORG", "PER")
    assert ner.tags[:5] == ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"] and len(ner.tags) == 17
    assert ner.label_data == ["LOC", "MISC", "ORG", "PER"]


@pytest.mark.parametrize("factory", TAGGERS)
def test_tagger_errors(factory):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe(factory, name="ner")
    with pytest.raises(ValueError, match=r"\[skd-E100\]"):
        nlp.initialize(lambda: make_examples(nlp, [("no entities here", [])]))
    with pytest.raises(ValueError, match=r"\[skd-E104\]"):
        ner.add_label("")
    nlp.initialize(lambda: make_examples(nlp))
    with pytest.raises(ValueError, match=r"\[skd-E101\].*'MISC'"):
        ner.add_label("MISC")
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        spacy.blank("en").add_pipe(factory, config={"scheme": "BIO"})


@pytest.mark.parametrize("factory", TAGGERS)
def test_tagger_missing_annotation_adds_no_loss(factory):
    """Tokens without gold (ent_iob missing) are marginalised out: an all-missing doc has loss 0."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe(factory, name="ner")
    nlp.initialize(lambda: make_examples(nlp))
    words = ["John", "lives", "here"]
    ref = Doc(nlp.vocab, words=words, ents=[None, None, None])
    eg = Example(Doc(nlp.vocab, words=words), ref)
    scores = ner.model.predict([eg.predicted])
    loss, grads = ner.get_loss([eg], scores)
    assert loss == pytest.approx(0.0, abs=1e-5)
    assert all(g is None or torch.allclose(g, torch.zeros_like(g), atol=1e-5) for g in grads)
    # one known token gives exactly that token's loss under the model
    ref = Doc(nlp.vocab, words=words, ents=["B-PER", None, None])
    loss, _ = ner.get_loss([Example(Doc(nlp.vocab, words=words), ref)], scores)
    assert loss > 0


def test_crf_tagger_loss_gradient_is_marginals_minus_gold():
    """NLL gradient w.r.t. the emissions is model marginals minus the one-hot gold tags."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("skd_crf_tagger", name="ner")
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    scores = ner.model.predict([eg.predicted for eg in examples])
    loss, grads = ner.get_loss(examples, scores)
    crf = ner.chain(scores)
    gold = ner._gold_allowed(examples, scores.emissions.shape, scores.emissions.device).float()
    expected = (crf.marginals - gold * crf.mask.unsqueeze(-1)) / len(examples)
    assert torch.allclose(grads[0], expected, atol=1e-5)
    assert loss == pytest.approx(float(-crf.log_prob(gold.argmax(-1)).sum() / len(examples)), rel=1e-4)


def test_crf_tagger_constrained_decoding_is_always_valid():
    """An untrained, randomly initialized CRF still outputs only scheme-valid sequences."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("skd_crf_tagger", name="ner")
    nlp.initialize(lambda: make_examples(nlp))
    head = ner.model.get_ref("head").layers[0].shims[0]._model
    with torch.no_grad():
        head.transitions.normal_(0, 3.0)
        head.emit.weight.normal_(0, 3.0)
    docs = [nlp.make_doc(t) for t in ["a b c d e f g h", "x y", "one"]]
    for doc, ids in zip(docs, ner.predict(docs)):
        assert is_valid([ner.tags[i] for i in ids], "BIOES")
    assert isinstance(ner, CRFTagger)


def test_registered_names_exist():
    """The names other issues and configs rely on (docs/design.md §4) stay registered."""
    for name in ["spacy-skd.CRFTagger.v1", "spacy-skd.MaxEntTagger.v1"]:
        assert registry.architectures.get(name)
    for name in ["spacy-skd.CoNLLNER.v1", "spacy-skd.SlotFilling.v1", "spacy-skd.RawText.v1"]:
        assert registry.readers.get(name)
    nlp = spacy.blank("en")
    for factory in TAGGERS:
        nlp.add_pipe(factory)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("config", ["crf_tagger_efficiency.cfg", "maxent_tagger_efficiency.cfg"])
def test_tagger_trains_with_spacy_train_on_conll(config, shared_data, tmp_path):
    """Unmodified `spacy train` on 600 CoNLL-2003 sentences moves dev F1 well above chance."""
    from spacy.cli.train import train

    from tests.conftest import REPO_ROOT

    conll = shared_data / "conll2003_en"
    overrides = {"paths.train": str(conll / "train.conll"), "paths.dev": str(conll / "dev.conll"),
                 "corpora.train.limit": 600, "corpora.dev.limit": 300, "training.max_steps": 250,
                 "training.eval_frequency": 125}
    train(REPO_ROOT / "configs" / config, tmp_path, overrides=overrides)
    nlp = spacy.load(tmp_path / "model-best")
    dev = list(create_conll_ner_reader(conll / "dev.conll", scheme="IOB1", limit=300)(nlp))
    assert nlp.evaluate(dev)["ents_f"] > 0.35


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0])
def test_component_loss_check_lives_in_the_shared_base(bad, monkeypatch):
    """A NaN, infinite or negative training loss raises E102 from TorchHeadPipe, never clamped."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("skd_maxent_tagger", name="ner")
    examples = examples_from(nlp, [("Peter lives in Berlin .", [(0, 1, "PER"), (3, 4, "LOC")])])
    nlp.initialize(lambda: examples)
    monkeypatch.setattr(type(ner), "_log_likelihood", lambda self, scores, allowed: scores.emissions.sum((1, 2)) * 0 - bad)
    with pytest.raises(ValueError, match=r"\[skd-E102\] Component 'ner'"):
        ner.update(examples)
