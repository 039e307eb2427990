"""`spacy skd vectors --extra-words`: words the text lacks, encoded alone by the teacher and mapped
into the table's space. Checked for the map against a known linear relation, for the seen words'
rows (unchanged by the listed words), for each added row against its definition, and bad lists."""
import gzip

import numpy
import pytest
import spacy

from spacy_skd.training.lexicon_vectors import (
    centred_cosine, encode_alone, fit_map, lexicon_vectors, read_word_list, read_word_list_file)
from spacy_skd.training.teacher_vectors import TeacherEncoder, parts_dir, pca_axes, teacher_vectors, word_means
from tests.training.test_teacher_vectors import invoke, teacher, texts  # noqa: F401  (fixtures)


def test_fit_map_recovers_a_linear_relation():
    rng = numpy.random.RandomState(0)
    alone = rng.randn(300, 6)
    true_weights, true_bias = rng.randn(6, 6), rng.randn(6)
    means = alone @ true_weights + true_bias
    weights, bias = fit_map(alone, means, l2=1e-8)
    numpy.testing.assert_allclose(weights, true_weights, atol=1e-6)
    numpy.testing.assert_allclose(bias, true_bias, atol=1e-6)
    assert centred_cosine(alone @ weights + bias, means, means.mean(axis=0)) == pytest.approx(1.0)


def test_centred_cosine_does_not_reward_a_shared_offset():
    rng = numpy.random.RandomState(1)
    offset = 100 * numpy.ones(8)
    a, b = offset + rng.randn(50, 8), offset + rng.randn(50, 8)  # unrelated rows around one centre
    assert abs(centred_cosine(a, b, offset)) < 0.2
    raw = ((a * b).sum(1) / numpy.linalg.norm(a, axis=1) / numpy.linalg.norm(b, axis=1)).mean()
    assert raw > 0.99


def test_word_lists_are_read_clean(tmp_path):
    assert read_word_list(["Paris", "  ", "Paris ", "Zanzibar", ""]) == ["Paris", "Zanzibar"]
    with pytest.raises(ValueError, match="E409"):
        read_word_list(["New York"])
    path = tmp_path / "words.txt.gz"
    with gzip.open(path, "wt", encoding="utf8") as f:
        f.write("Oslo\nOslo\nKampala\n")
    assert read_word_list_file(path) == ["Oslo", "Kampala"]
    with pytest.raises(ValueError, match="E407"):
        read_word_list_file(tmp_path / "none.txt")
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf8")
    with pytest.raises(ValueError, match="E407"):
        read_word_list_file(tmp_path / "blank.txt")


def test_listed_words_are_added_by_definition_and_seen_rows_stay(teacher, texts, tmp_path):  # noqa: F811
    """Seen words keep the rows of the plain table; each added row is its one-word vector, mapped
    by the ridge fit on the seen words, projected on the plain table's PCA axes, scaled alike."""
    encoder = TeacherEncoder(teacher, "ner")
    plain = teacher_vectors(encoder, texts, tmp_path / "plain", width=4, min_count=1, progress=False)["meta"]
    extra = ["Paris", "Zanzibar", "Oslo", "Zanzibar"]
    meta = teacher_vectors(encoder, texts, tmp_path / "lex", width=4, min_count=1, progress=False,
                           parts=parts_dir(tmp_path / "plain"), extra_words=extra)["meta"]
    assert meta["words"] == plain["words"] + 2 and meta["extra_words_added"] == 2
    assert meta["extra_words_listed"] == 3 and -1 <= meta["extra_words_map_cosine"] <= 1
    assert meta["scale"] == pytest.approx(plain["scale"])
    lex = spacy.load(tmp_path / "lex").vocab.vectors
    own = spacy.load(tmp_path / "plain").vocab.vectors
    for word in ("John", "Paris", "Smith"):
        numpy.testing.assert_allclose(lex[word], own[word], rtol=1e-6)
    words, means, _ = word_means(parts_dir(tmp_path / "plain"), min_count=1)
    weights, bias = fit_map(encode_alone(encoder, words, progress=False), means)
    centre, axes, _ = pca_axes(means, 4)
    expected = ((encode_alone(encoder, ["Zanzibar", "Oslo"], progress=False) @ weights + bias) - centre) @ axes
    numpy.testing.assert_allclose(numpy.stack([lex["Zanzibar"], lex["Oslo"]]), expected / meta["scale"],
                                  rtol=1e-4, atol=1e-5)


def test_lexicon_needs_two_seen_words():
    with pytest.raises(ValueError, match="E408"):
        lexicon_vectors(None, ["Paris"], numpy.zeros((1, 3)), ["Oslo"])


def test_cli_extra_words(teacher, texts, tmp_path):  # noqa: F811
    words = tmp_path / "words.txt"
    words.write_text("Zanzibar\nParis\n", encoding="utf8")
    result = invoke("vectors", teacher, texts, tmp_path / "vec", "--width", "4", "--min-count", "1",
                    "--extra-words", words)
    assert result.exit_code == 0, result.output
    assert "1 of the 2 listed words added" in result.output
    assert spacy.load(tmp_path / "vec").vocab.vectors.find(key="Zanzibar") >= 0
    result = invoke("vectors", teacher, texts, tmp_path / "bad", "--extra-words", tmp_path / "none.txt")
    assert result.exit_code == 1 and "E407" in result.output and not (tmp_path / "bad").exists()
