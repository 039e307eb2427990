"""spacy-skd.ConcatTok2Vec.v1: token vectors of several encoders side by side."""
import numpy
import pytest
import spacy
from spacy.util import registry
from thinc.api import Config, Model

from spacy_skd.models.tok2vec import build_concat_tok2vec

HASH_TOK2VEC = """
[x.*.{name}]
@architectures = "spacy.Tok2Vec.v2"

[x.*.{name}.embed]
@architectures = "spacy.MultiHashEmbed.v2"
width = {width}
attrs = ["NORM", "SHAPE"]
rows = [100, 50]
include_static_vectors = false

[x.*.{name}.encode]
@architectures = "spacy.MaxoutWindowEncoder.v2"
width = {width}
depth = 1
window_size = 1
maxout_pieces = 2
"""


@pytest.fixture
def docs():
    nlp = spacy.blank("en")
    return [nlp("Peter lives in Berlin ."), nlp("Hi"), nlp("")]


def _unsized(width: int) -> Model:
    """An encoder that declares no width (as a transformer listener chain does)."""

    def forward(model, docs, is_train):
        return [model.ops.alloc2f(len(doc), width) + 1 for doc in docs], lambda dY: []

    return Model("unsized", forward)


def test_concat_tok2vec_from_config(docs):
    config = '[x]\n@architectures = "spacy-skd.ConcatTok2Vec.v1"\n' + HASH_TOK2VEC.format(
        name="a", width=8) + HASH_TOK2VEC.format(name="b", width=6)
    model = registry.resolve(Config().from_str(config))["x"]
    assert model.get_dim("nO") == 14  # known when built: the tagger head sizes itself from it
    model.initialize(X=docs)
    Y, backprop = model.begin_update(docs)
    assert [y.shape for y in Y] == [(5, 14), (1, 14), (0, 14)]
    assert backprop([numpy.ones_like(y) for y in Y]) is not None


def test_concat_tok2vec_width_from_data(docs):
    hashed = registry.resolve(Config().from_str(
        '[x]\n@architectures = "spacy-skd.ConcatTok2Vec.v1"\n' + HASH_TOK2VEC.format(name="a", width=8)))["x"]
    model = build_concat_tok2vec(_unsized(3), hashed.get_ref("tok2vec_0"))
    assert not model.has_dim("nO")
    model.initialize(X=docs)
    assert model.get_dim("nO") == 11
    Y = model.predict(docs)
    assert Y[0].shape == (5, 11) and (Y[0][:, :3] == 1).all()  # the encoders' order is kept


def test_concat_tok2vec_needs_encoders():
    with pytest.raises(ValueError, match=r"\[skd-E106\]"):
        build_concat_tok2vec()
    with pytest.raises(ValueError, match=r"\[skd-E106\]"):
        build_concat_tok2vec("not a model")
