"""spacy-skd.BiLSTMEncoder.v1: the word + character BiLSTM student encoder of SenTScore."""
import numpy
import pytest
import spacy
from spacy.util import registry
from thinc.api import Adam, Config, fix_random_seed

from spacy_skd.models.bilstm import build_bilstm_encoder
from tests.conftest import FIXTURES

SMALL = {"word_rows": 50, "word_width": 6, "char_rows": 40, "char_width": 5, "char_hidden": 4, "hidden": 7}


@pytest.fixture
def nlp():
    return spacy.blank("en")


@pytest.fixture
def docs(nlp):
    return [nlp("Peter lives in Berlin ."), nlp("Hi"), nlp(""), nlp("Café Ünïcode 𝔘")]


def small_encoder(**overrides):
    fix_random_seed(0)
    return build_bilstm_encoder(**{**SMALL, **overrides})


@pytest.mark.parametrize("depth", [1, 2])
def test_bilstm_encoder_from_config(docs, depth):
    config = '[x]\n@architectures = "spacy-skd.BiLSTMEncoder.v1"\nhidden = 7\ndepth = %d\n' % depth
    model = registry.resolve(Config().from_str(config))["x"]
    assert model.get_dim("nO") == 14  # known when built: the tagger head sizes itself from it
    model.initialize(X=docs)
    Y, backprop = model.begin_update(docs)
    assert [y.shape for y in Y] == [(5, 14), (1, 14), (0, 14), (3, 14)]
    assert all(y.dtype == numpy.float32 for y in Y)
    assert backprop([numpy.ones_like(y) for y in Y]) == []  # token ids take no gradient


def test_bilstm_encoder_empty_batches(nlp):
    model = small_encoder()
    model.initialize()
    for docs in ([nlp(""), nlp("")], []):
        assert [y.shape for y in model.predict(docs)] == [(0, 14)] * len(docs)
        Y, backprop = model.begin_update(docs)
        backprop(Y)


def test_bilstm_encoder_padding_does_not_leak(nlp):
    """A doc's vectors do not depend on the longer docs and tokens padded beside it."""
    model = small_encoder()
    short = nlp("Hi there")
    longer = nlp("Extraordinarily long words make the character tensor wide too")
    alone = model.predict([short])[0]
    for batch in ([short, longer], [longer, short, nlp("")]):
        together = model.predict(batch)[batch.index(short)]
        numpy.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-6)


def test_bilstm_encoder_gradients_reach_embeddings(docs):
    """Exactly the embedding rows of the batch's words and characters get a gradient."""
    model = small_encoder(dropout=0.0)
    Y, backprop = model.begin_update(docs)
    backprop([numpy.ones_like(y) for y in Y])
    module = model.shims[0]._model
    tokens = [t for doc in docs for t in doc]
    word_rows = numpy.flatnonzero(module.word_embed.weight.grad.abs().sum(1).numpy())
    char_rows = numpy.flatnonzero(module.char_embed.weight.grad.abs().sum(1).numpy())
    assert set(word_rows) == {t.norm % SMALL["word_rows"] for t in tokens}
    assert set(char_rows) == {ord(c) % SMALL["char_rows"] for t in tokens for c in t.text}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.lstm.parameters())


def test_bilstm_encoder_serialization(docs):
    model = small_encoder()
    expected = model.predict(docs)
    loaded = build_bilstm_encoder(**SMALL)  # not reseeded: other random weights
    assert not numpy.allclose(loaded.predict(docs)[0], expected[0])
    loaded.from_bytes(model.to_bytes())
    assert loaded.get_dim("nO") == 14
    for y, z in zip(expected, loaded.predict(docs)):
        numpy.testing.assert_array_equal(y, z)


@pytest.mark.parametrize("field", ["word_rows", "word_width", "char_rows", "char_width",
                                   "char_hidden", "hidden", "depth"])
@pytest.mark.parametrize("value", [0, -3, 2.5])
def test_bilstm_encoder_rejects_bad_sizes(field, value):
    with pytest.raises(ValueError, match=rf"\[skd-E116\] .*`{field}`.*{value}"):
        build_bilstm_encoder(**{field: value})


@pytest.mark.parametrize("value", [-0.1, 1.0, True])
def test_bilstm_encoder_rejects_bad_dropout(value):
    with pytest.raises(ValueError, match=r"\[skd-E117\]"):
        build_bilstm_encoder(dropout=value)


@pytest.mark.slow
def test_bilstm_maxent_tagger_learns_snips_slots(tmp_path):
    """skd_maxent_tagger (sBIO) on the encoder's defaults fits the SNIPS sample and reloads."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_maxent_tagger", name="slots", config={"scheme": "sBIO", "model": {
        "@architectures": "spacy-skd.MaxEntTagger.v1",
        "tok2vec": {"@architectures": "spacy-skd.BiLSTMEncoder.v1"}}})
    read = registry.readers.get("spacy-skd.SlotFilling.v1")(FIXTURES / "snips_sample")
    examples = list(read(nlp))
    nlp.initialize(lambda: examples)
    before = nlp.evaluate(examples)["ents_f"]
    optimizer = Adam(0.01)
    for _ in range(40):
        nlp.update(examples, sgd=optimizer)
    after = nlp.evaluate(examples)["ents_f"]
    assert after > before + 0.5 and after > 0.8
    nlp.to_disk(tmp_path)
    texts = [eg.reference.text for eg in examples]
    reloaded = spacy.load(tmp_path)
    predicted = [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    assert [[(e.start, e.end, e.label_) for e in doc.ents] for doc in reloaded.pipe(texts)] == predicted
