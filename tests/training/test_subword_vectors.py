"""`spacy skd vectors --subwords`: a floret n-gram table fitted to the teacher's word vectors.
Checked against spaCy's own floret lookup, against the closed-form ridge solution, for what an
unseen word gets on a corpus where suffixes carry the meaning, end to end from a teacher to a
student, and for bad settings."""
import numpy
import pytest
import spacy
from spacy.cli.train import train
from spacy.strings import StringStore
from spacy.vectors import Vectors

from spacy_skd.training.subword_vectors import FloretHashing, fit_subword_table, held_out_cosine
from spacy_skd.training.vector_agreement import mean_cosine
from spacy_skd.training.teacher_vectors import TeacherEncoder, teacher_vectors
from tests.conftest import FIXTURES, REPO_ROOT
from tests.training.test_teacher_vectors import invoke, teacher, texts  # noqa: F401  (fixtures)

WORDS = ["Apple", "a", "naïve", "Überraschung", "東京", "New-York", "1987", "", "x y"]


@pytest.mark.parametrize("settings", [dict(bucket=997), dict(bucket=50, minn=1, maxn=2, hash_count=1),
                                      dict(bucket=2003, minn=4, maxn=6, hash_count=4, hash_seed=7)])
def test_lookup_matrix_is_spacys_floret_lookup(settings):
    """A @ table must be what spaCy computes for a floret table (its `Vectors.get_batch`), or the
    fitted table means something else once the student loads it."""
    hashing = FloretHashing(**settings)
    table = numpy.random.RandomState(0).randn(hashing.bucket, 5).astype("float32")
    vectors = hashing.vectors(table, StringStore())
    words = [w for w in WORDS if w]  # spaCy gives "" a zero vector without n-grams
    expected = vectors.get_batch(words)
    numpy.testing.assert_allclose(hashing.lookup_matrix(words) @ table, expected, rtol=1e-5, atol=1e-6)
    assert vectors.mode == "floret" and vectors.shape == (hashing.bucket, 5)


def test_ngrams_pad_the_word():
    assert FloretHashing(minn=2, maxn=3).ngrams("ab") == ["<ab>", "<a", "ab", "b>", "<ab", "ab>"]


def test_fit_is_the_ridge_solution():
    """Conjugate gradients reach the closed-form minimiser of ||A X - V||^2 + l2 ||X||^2."""
    hashing = FloretHashing(bucket=60, minn=2, maxn=3)
    words = ["cat", "cats", "dog", "dogs", "bird", "catalog", "doge", "birds"]
    targets = numpy.random.RandomState(1).randn(len(words), 3)
    table, stats = fit_subword_table(words, targets, hashing, l2=0.05, max_iter=500, tol=1e-10, progress=False)
    lookup = hashing.lookup_matrix(words).toarray()
    exact = numpy.linalg.solve(lookup.T @ lookup + 0.05 * numpy.eye(60), lookup.T @ targets)
    numpy.testing.assert_allclose(table, exact, rtol=1e-4, atol=1e-5)
    assert stats["relative_residual"] < 1e-6


def test_seen_words_are_fitted_closely_with_more_rows_than_words():
    rng = numpy.random.RandomState(2)
    words = ["".join(rng.choice(list("abcdefghij"), size=rng.randint(3, 9))) for _ in range(200)]
    words = sorted(set(words))
    targets = rng.randn(len(words), 8)
    table, stats = fit_subword_table(words, targets, FloretHashing(bucket=5000), l2=1e-4, progress=False)
    assert stats["fit_cosine"] > 0.99
    assert mean_cosine(FloretHashing(bucket=5000).lookup_matrix(words) @ table, targets) == pytest.approx(
        stats["fit_cosine"])


def test_unseen_words_get_the_vector_their_ngrams_say():
    """Words ending in -ville are places, in -son people (two target directions plus noise): a
    held-out -ville word's fitted vector points the places' way, far more than chance."""
    rng = numpy.random.RandomState(3)
    stems = sorted({"".join(rng.choice(list("bcdfgklmnprst"), size=3)) + rng.choice(list("aeiou"))
                    for _ in range(400)})
    place, person = rng.randn(16), rng.randn(16)
    words, targets = [], []
    for i, stem in enumerate(stems):
        suffix, direction = ("ville", place) if i % 2 else ("son", person)
        words.append(stem + suffix)
        targets.append(direction + 0.3 * rng.randn(16))
    targets = numpy.array(targets)
    scores = held_out_cosine(words, targets, FloretHashing(bucket=4000), fraction=0.2, l2=1e-2,
                             progress=False)
    assert scores["held_out_cosine"] > 0.5
    # the same words with targets unrelated to their spelling: nothing to generalise from
    shuffled = held_out_cosine(words, rng.randn(len(words), 16), FloretHashing(bucket=4000), fraction=0.2,
                               l2=1e-2, progress=False)
    assert abs(shuffled["held_out_cosine"]) < 0.2


@pytest.mark.parametrize("settings", [dict(bucket=0), dict(minn=4, maxn=3), dict(minn=0), dict(hash_count=5)])
def test_bad_hashing_settings_are_a_coded_error(settings):
    with pytest.raises(ValueError, match="E398"):
        FloretHashing(**settings)


def test_targets_must_match_the_words():
    with pytest.raises(ValueError, match="E399"):
        fit_subword_table(["a", "b"], numpy.zeros((3, 2)), FloretHashing(bucket=10), progress=False)
    with pytest.raises(ValueError, match="E399"):
        fit_subword_table([], numpy.zeros((0, 2)), FloretHashing(bucket=10), progress=False)


def test_teacher_vectors_with_subwords_reach_unseen_words(teacher, texts, tmp_path):  # noqa: F811
    """From the teacher to a floret folder: the seen words keep (nearly) their own vectors, an
    unseen word gets a non-zero one, and a student trains on it and gives that word a non-zero
    static input (the plain table gives it zeros)."""
    encoder = TeacherEncoder(teacher, "ner")
    plain = teacher_vectors(encoder, texts, tmp_path / "plain", width=4, min_count=1, progress=False)["meta"]
    summary = teacher_vectors(encoder, texts, tmp_path / "sub", width=4, min_count=1, progress=False,
                              subwords=FloretHashing(bucket=500), l2=1e-4)
    meta = summary["meta"]
    assert meta["mode"] == "floret" and meta["subwords"]["bucket"] == 500 and meta["fit_cosine"] > 0.95
    assert plain["mode"] == "default" and meta["words"] == plain["words"]
    sub = spacy.load(tmp_path / "sub").vocab.vectors
    own = spacy.load(tmp_path / "plain").vocab.vectors
    assert sub.mode == "floret" and sub.shape == (500, 4)
    seen = ["John", "Paris", "Smith"]
    assert mean_cosine(sub.get_batch(seen), own.get_batch(seen)) > 0.95
    assert numpy.abs(sub.get_batch(["Parisian"])).sum() > 0
    train(REPO_ROOT / "configs" / "student_crf_kd.cfg", tmp_path / "student", overrides={
        "paths.train": str(FIXTURES / "conll2003_sample.conll"), "paths.dev": str(FIXTURES / "conll2003_sample.conll"),
        "paths.teacher": str(teacher), "paths.cache": str(tmp_path / "cache"), "paths.vectors": str(tmp_path / "sub"),
        "training.max_steps": 2, "training.eval_frequency": 1})
    nlp = spacy.load(tmp_path / "student" / "model-last")
    assert nlp.vocab.vectors.mode == "floret"
    static = next(node for node in nlp.get_pipe("tok2vec").model.walk() if node.name == "static_vectors")
    rows = static.ops.to_numpy(static.predict([nlp.make_doc("Paris Zanzibar")]).dataXd)
    assert numpy.abs(rows[1]).sum() > 0


def test_cli_subwords_from_another_outputs_pass(teacher, texts, tmp_path):  # noqa: F811
    """The plain table first, then the n-gram table from the same work folder (--parts): the
    second run computes nothing again."""
    result = invoke("vectors", teacher, texts, tmp_path / "plain", "--width", "4", "--min-count", "1")
    assert result.exit_code == 0 and "1 chunks computed" in result.output, result.output
    result = invoke("vectors", teacher, texts, tmp_path / "vec", "--width", "4", "--min-count", "1",
                    "--subwords", "--bucket", "300", "--minn", "2", "--maxn", "4", "--parts", tmp_path / "plain.parts")
    assert result.exit_code == 0, result.output
    assert "0 chunks computed, 1 already there" in result.output and "n-gram table: 300 rows" in result.output
    assert not (tmp_path / "vec.parts").exists()
    vectors = spacy.load(tmp_path / "vec").vocab.vectors
    assert isinstance(vectors, Vectors) and vectors.mode == "floret" and (vectors.minn, vectors.maxn) == (2, 4)
    result = invoke("vectors", teacher, texts, tmp_path / "bad", "--subwords", "--minn", "5", "--maxn", "2")
    assert result.exit_code == 1 and "E398" in result.output and not (tmp_path / "bad").exists()
