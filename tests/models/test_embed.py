"""spacy-skd.StudentEmbed.v1: spaCy's MultiHashEmbed, with static vectors exactly when the vocab
has a table at initialize (or when asked to), the choice kept through serialization."""
import numpy
import pytest
import spacy
from spacy.ml.models.tok2vec import MultiHashEmbed
from spacy.util import registry
from spacy.vectors import Vectors
from thinc.api import Config

from spacy_skd.models.embed import build_student_embed, vectors_width

CONFIG = """
[x]
@architectures = "spacy-skd.StudentEmbed.v1"
width = 8
attrs = ["NORM", "SHAPE"]
rows = [100, 50]
include_static_vectors = {value}
"""
TEXTS = ["Paris is nice", "Zanzibar"]


def make_docs(vector_width: int = 0):
    """Docs of a blank English vocab; with `vector_width`, "Paris" and "nice" have vectors."""
    nlp = spacy.blank("en")
    if vector_width:
        data = numpy.arange(2 * vector_width, dtype="float32").reshape(2, vector_width) / 10 + 1
        keys = [nlp.vocab.strings.add(word) for word in ("Paris", "nice")]
        nlp.vocab.vectors = Vectors(strings=nlp.vocab.strings, data=data, keys=keys)
    return [nlp.make_doc(text) for text in TEXTS]


def from_config(value: str):
    return registry.resolve(Config().from_str(CONFIG.format(value=value)))["x"]


def param_shapes(model):
    """Shapes of the parameters that have values, in walk order."""
    return [node.get_param(name).shape for node in model.walk() for name in node.param_names if node.has_param(name)]


def test_vectors_width():
    assert vectors_width(make_docs()[0].vocab) == 0
    assert vectors_width(make_docs(3)[0].vocab) == 3


@pytest.mark.parametrize("vector_width", [0, 3], ids=["no_vectors", "vectors"])
def test_null_uses_static_vectors_when_the_vocab_has_them(vector_width):
    """The default (null) follows the vocab; only the chosen branch gets weights, and they have
    the shapes of spaCy's own MultiHashEmbed with the same include_static_vectors."""
    docs = make_docs(vector_width)
    model = from_config("null")
    model.initialize(X=docs)
    use = bool(vector_width)
    assert model.attrs["static_vectors"] is use
    assert [y.shape for y in model.predict(docs)] == [(3, 8), (1, 8)]
    spacy_embed = MultiHashEmbed(width=8, attrs=["NORM", "SHAPE"], rows=[100, 50], include_static_vectors=use)
    spacy_embed.initialize(X=docs)
    assert param_shapes(model) == param_shapes(spacy_embed)  # the other branch holds no weights
    static = model.get_ref("static_vectors")
    assert bool(static.has_param("W")) is use
    if use:
        assert static.get_dim("nM") == vector_width


def test_static_vectors_reach_the_output():
    """With a table, a word's static vector moves its embedding; a word without one, or a model
    on hash embeddings alone, is unchanged."""
    docs = make_docs(3)
    with_vectors, hash_only = from_config("null"), from_config("false")
    with_vectors.initialize(X=docs)
    hash_only.initialize(X=docs)
    before = [with_vectors.predict(docs), hash_only.predict(docs)]
    vectors = docs[0].vocab.vectors
    vectors.data[vectors.find(key="Paris")] *= -3  # the vocab is shared by every doc
    after = [with_vectors.predict(docs), hash_only.predict(docs)]
    assert not numpy.allclose(before[0][0][0], after[0][0][0])  # "Paris" has a vector
    numpy.testing.assert_allclose(before[0][1], after[0][1])  # "Zanzibar" has none
    for old, new in zip(before[1], after[1]):
        numpy.testing.assert_allclose(old, new)  # include_static_vectors = false ignores the table


def test_false_ignores_a_table_and_true_requires_one():
    model = from_config("false")
    model.initialize(X=make_docs(3))
    assert model.attrs["static_vectors"] is False
    with pytest.raises(ValueError, match=r"\[skd-E145\]"):
        from_config("true").initialize(X=make_docs())
    required = from_config("true")
    required.initialize(X=make_docs(3))
    assert required.attrs["static_vectors"] is True


@pytest.mark.parametrize("vector_width", [0, 3], ids=["no_vectors", "vectors"])
def test_choice_and_weights_survive_serialization(vector_width):
    """A fresh model from the same config (as spacy.load builds it) reads the bytes back with the
    branch it was trained with, and predicts the same."""
    docs = make_docs(vector_width)
    model = from_config("null")
    model.initialize(X=docs)
    loaded = from_config("null").from_bytes(model.to_bytes())
    assert loaded.attrs["static_vectors"] is bool(vector_width)
    for a, b in zip(model.predict(docs), loaded.predict(docs)):
        numpy.testing.assert_allclose(a, b)


@pytest.mark.parametrize("found", [0, 5], ids=["no_table", "other_width"])
def test_table_of_another_width_is_a_clear_error(found):
    model = from_config("null")
    model.initialize(X=make_docs(3))
    with pytest.raises(ValueError, match=rf"\[skd-E147\] .* static vectors 3 wide, .* table is {found} wide"):
        model.predict(make_docs(found))


def test_misuse_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[skd-E148\]"):
        from_config("null").predict(make_docs())  # not initialized: no branch chosen
    with pytest.raises(ValueError, match=r"\[skd-E146\]"):
        from_config("null").initialize()  # no sample docs: no vocab to look at
    with pytest.raises(TypeError, match=r"\[skd-E144\]"):
        build_student_embed(8, ["NORM"], [100], include_static_vectors="auto")
