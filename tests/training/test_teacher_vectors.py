"""`spacy skd vectors`: static vectors from a teacher's encoder. Checked against a hand-computed
mean over occurrences, for determinism across shard counts, resumption after a kill, the PCA
against numpy's SVD, the written folder as a student's `[initialize] vectors`, and bad input."""
import gzip
import json
from collections import defaultdict

import numpy
import pytest
import spacy
from spacy.cli._util import app
from spacy.cli.train import train
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.training import teacher_vectors as tv
from spacy_skd.training.conllu import create_conllu_reader
from spacy_skd.training.teacher_vectors import TeacherEncoder, build_table, parts_dir, teacher_vectors, word_means
from spacy_skd.training.texts import read_texts
from tests.conftest import FIXTURES, REPO_ROOT, examples_from, train_tagger
from tests.test_configs import tiny_bert  # noqa: F401  (fixture: a 1-layer random BERT)

TEXTS = [("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]), ("Paris is big", [(0, 1, "LOC")]),
         ("Reuters quoted Iraqi officials", [(0, 1, "ORG"), (2, 3, "MISC")])]
CORPUS = ["John lives in Paris .", "Paris is big", "John Smith is big .", "New York is big", "Hello John",
          "Smith lives in New York .", "Paris"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train_tagger("skd_crf_tagger", lambda nlp: examples_from(nlp, TEXTS),
                        tmp_path_factory.mktemp("teacher") / "crf", steps=2)


@pytest.fixture(scope="module")
def encoder(teacher):
    return TeacherEncoder(teacher, "ner")


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(CORPUS) + "\n", encoding="utf8")
    return path


def expected_means(encoder, corpus):
    """The definition: each word's mean contextual vector over its occurrences, one text at a time."""
    sums, counts = defaultdict(float), defaultdict(int)
    for text in corpus:
        words = text.split()
        (vectors,) = encoder([words])
        for word, vector in zip(words, vectors):
            sums[word] = sums[word] + vector.astype("float64")
            counts[word] += 1
    return {word: sums[word] / counts[word] for word in sums}, counts


def test_word_means_are_the_mean_over_occurrences(encoder, texts, tmp_path):
    summary = teacher_vectors(encoder, texts, tmp_path / "vec", width=4, min_count=1, chunk_size=3,
                              batch_size=2, progress=False)
    assert summary["chunks"] == 3 and summary["computed"] == 3 and summary["missing"] == []
    words, means, counts = word_means(parts_dir(tmp_path / "vec"), min_count=1)
    expected, expected_counts = expected_means(encoder, CORPUS)
    assert set(words) == set(expected)
    for word, mean, count in zip(words, means, counts):
        assert count == expected_counts[word]
        numpy.testing.assert_allclose(mean, expected[word], rtol=1e-5, atol=1e-6)
    # a word in several contexts gets the mean, not one of its contextual vectors
    (in_a,) = encoder([["John", "lives", "in", "Paris", "."]])
    (in_b,) = encoder([["Hello", "John"]])
    assert not numpy.allclose(in_a[0], in_b[1])


def test_min_count_keeps_frequent_words_only(encoder, texts, tmp_path):
    teacher_vectors(encoder, texts, tmp_path / "vec", width=3, min_count=3, progress=False)
    nlp = spacy.load(tmp_path / "vec")
    kept = {nlp.vocab.strings[key] for key in nlp.vocab.vectors.keys()}
    counts = defaultdict(int)
    for text in CORPUS:
        for word in text.split():
            counts[word] += 1
    assert kept == {w for w, c in counts.items() if c >= 3} == {"John", "Paris", "is", "big", "."}
    assert nlp.vocab.vectors.shape == (5, 3)
    meta = (tmp_path / "vec" / tv.VECTORS_META).read_text()
    assert '"min_count": 3' in meta and encoder.fingerprint in meta


def test_pca_matches_numpy_svd(encoder):
    rng = numpy.random.default_rng(0)
    means = rng.normal(size=(40, 6)) @ rng.normal(size=(6, 6))
    projected, explained = tv.pca(means, 6)
    centred = means - means.mean(axis=0)
    # full width: an orthogonal change of axes, so every pairwise distance is kept
    dist = lambda x: numpy.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    numpy.testing.assert_allclose(dist(projected), dist(centred), atol=1e-9)
    singular = numpy.linalg.svd(centred, compute_uv=False)
    numpy.testing.assert_allclose(explained, singular ** 2 / (singular ** 2).sum(), atol=1e-9)
    top2, _ = tv.pca(means, 2)
    numpy.testing.assert_allclose(numpy.abs(top2), numpy.abs(centred @ numpy.linalg.svd(centred)[2][:2].T), atol=1e-9)
    assert numpy.all(numpy.abs(top2).max(axis=0) > 0)


def test_shard_count_and_chunking_do_not_change_the_table(encoder, texts, tmp_path):
    teacher_vectors(encoder, texts, tmp_path / "one", width=4, min_count=1, chunk_size=100, progress=False)
    first = teacher_vectors(encoder, texts, tmp_path / "two", width=4, min_count=1, chunk_size=2,
                            shard=(0, 2), progress=False)
    assert first["meta"] is None and first["missing"] == [1, 3]  # waits for shard 1
    assert not (tmp_path / "two").exists()  # nothing half-built
    second = teacher_vectors(encoder, texts, tmp_path / "two", width=4, min_count=1, chunk_size=2,
                             shard=(1, 2), progress=False)
    assert second["missing"] == [] and second["meta"]["words"] == 11
    one, two = spacy.load(tmp_path / "one").vocab.vectors, spacy.load(tmp_path / "two").vocab.vectors
    for key in one.keys():
        numpy.testing.assert_allclose(one[key], two[key], rtol=1e-5, atol=1e-6)
    # and a rerun is bit-identical
    teacher_vectors(encoder, texts, tmp_path / "one", width=4, min_count=1, chunk_size=100, progress=False)
    again = spacy.load(tmp_path / "one").vocab.vectors
    assert all(numpy.array_equal(one[key], again[key]) for key in one.keys())


def test_killed_run_resumes_at_the_missing_chunk(encoder, texts, tmp_path, monkeypatch):
    calls = []
    original = TeacherEncoder.__call__

    def dies_on_third_chunk(self, batch):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(TeacherEncoder, "__call__", dies_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        teacher_vectors(encoder, texts, tmp_path / "vec", width=4, min_count=1, chunk_size=2, batch_size=2,
                        progress=False)
    parts = parts_dir(tmp_path / "vec")
    assert sorted(p.name for p in parts.glob("chunk-*")) == ["chunk-000000.npz", "chunk-000001.npz"]
    assert not (tmp_path / "vec").exists()
    monkeypatch.setattr(TeacherEncoder, "__call__", original)
    summary = teacher_vectors(encoder, texts, tmp_path / "vec", width=4, min_count=1, chunk_size=2,
                              batch_size=2, progress=False)
    assert (summary["computed"], summary["reused"]) == (2, 2)
    fresh = teacher_vectors(encoder, texts, tmp_path / "fresh", width=4, min_count=1, chunk_size=2,
                            progress=False)
    assert fresh["meta"]["words"] == summary["meta"]["words"]
    a, b = spacy.load(tmp_path / "vec").vocab.vectors, spacy.load(tmp_path / "fresh").vocab.vectors
    for key in a.keys():
        numpy.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_student_loads_the_vectors_and_uses_them(teacher, texts, tmp_path):
    """The written folder is what `[initialize] vectors` reads, through `--paths.vectors` alone;
    the student's static-vector layer then gives a known word a non-zero input and an unknown word
    a zero one (its hash embeddings still describe it)."""
    teacher_vectors(TeacherEncoder(teacher, "ner"), texts, tmp_path / "vec", width=3, min_count=1, progress=False)
    train(REPO_ROOT / "configs" / "student_crf_kd.cfg", tmp_path / "student", overrides={
        "paths.train": str(FIXTURES / "conll2003_sample.conll"), "paths.dev": str(FIXTURES / "conll2003_sample.conll"),
        "paths.teacher": str(teacher), "paths.cache": str(tmp_path / "cache"), "paths.vectors": str(tmp_path / "vec"),
        "training.max_steps": 2, "training.eval_frequency": 1})
    nlp = spacy.load(tmp_path / "student" / "model-last")
    assert nlp.vocab.vectors.shape[1] == 3
    assert nlp.vocab.vectors.find(key="Paris") >= 0 and nlp.vocab.vectors.find(key="Zanzibar") == -1
    static = next(node for node in nlp.get_pipe("tok2vec").model.walk() if node.name == "static_vectors")
    out = static.predict([nlp.make_doc("Paris Zanzibar")])
    rows = static.ops.to_numpy(out.dataXd)
    assert numpy.abs(rows[0]).sum() > 0 and numpy.abs(rows[1]).sum() == 0


def test_transformer_teacher_gives_vectors(tiny_bert, tmp_path, texts, monkeypatch):  # noqa: F811
    """The MiniLM teacher config, with a tiny random BERT in its place: the vectors come from the
    transformer listener concatenated with the cased hash features (32 + 64 wide)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    data = str(FIXTURES / "conll2003_sample.conll")
    train(REPO_ROOT / "configs" / "teacher_crf_minilm.cfg", tmp_path / "teacher", overrides={
        "paths.train": data, "paths.dev": data, "paths.minilm": str(tiny_bert), "training.max_steps": 1,
        "training.accumulate_gradient": 1, "training.optimizer.learn_rate.warmup_steps": 1,
        "training.eval_frequency": 1})
    encoder = TeacherEncoder(tmp_path / "teacher" / "model-last", "ner")
    assert encoder.width == 96
    summary = teacher_vectors(encoder, texts, tmp_path / "vec", width=8, min_count=1, progress=False)
    assert spacy.load(tmp_path / "vec").vocab.vectors.shape == (summary["meta"]["words"], 8)
    words, means, _ = word_means(parts_dir(tmp_path / "vec"), min_count=1)
    expected, _ = expected_means(encoder, CORPUS)
    for word, mean in zip(words, means):
        numpy.testing.assert_allclose(mean, expected[word], rtol=1e-4, atol=1e-5)


def invoke(*args):
    return CliRunner().invoke(app, ["skd", *map(str, args)])


def test_cli_shards_then_builds(teacher, texts, tmp_path):
    out = tmp_path / "vec"
    result = invoke("vectors", teacher, texts, out, "--shard", "0/2", "--chunk-size", "2", "--width", "4",
                    "--min-count", "1")
    assert result.exit_code == 0, result.output
    assert "Waiting for the other shards" in result.output and not out.exists()
    result = invoke("vectors", teacher, texts, out, "--shard", "1/2", "--chunk-size", "2", "--width", "4",
                    "--min-count", "1")
    assert result.exit_code == 0, result.output
    assert "11 words x 4 dims" in result.output and "--paths.vectors" in result.output
    assert spacy.load(out).vocab.vectors.shape == (11, 4)


@pytest.mark.parametrize("case,code", [
    ("missing", "E227"), ("empty", "E394"), ("min_count", "E396"), ("width", "E395"),
    ("component", "E225"), ("no_tok2vec", "E390"), ("teacher", "E224"),
])
def test_cli_bad_input_is_a_coded_error(teacher, texts, tmp_path, case, code):
    args = [teacher, texts, tmp_path / "vec"]
    if case == "missing":
        args[1] = tmp_path / "nope.txt"
    elif case == "empty":
        args[1] = tmp_path / "empty.txt"
        args[1].write_text("\n  \n", encoding="utf8")
    elif case == "teacher":
        args[0] = tmp_path / "no-teacher"
    elif case == "no_tok2vec":
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer", name="ner")
        nlp.to_disk(tmp_path / "sentencizer")
        args[0] = tmp_path / "sentencizer"
    extra = {"min_count": ["--min-count", "100"], "width": ["--width", "100000"],
             "component": ["--component", "parser"]}.get(case, [])
    result = invoke("vectors", *args, *extra)
    assert result.exit_code == 1, result.output
    assert code in result.output
    assert not (tmp_path / "vec").exists()


def test_stale_or_corrupt_work_files_are_refused(encoder, texts, tmp_path):
    teacher_vectors(encoder, texts, tmp_path / "vec", width=2, min_count=1, chunk_size=2, progress=False)
    other = tmp_path / "other.txt"
    other.write_text("Another corpus entirely\n", encoding="utf8")
    with pytest.raises(ValueError, match="E392"):  # chunks of another input: never mixed in
        teacher_vectors(encoder, other, tmp_path / "vec", width=2, min_count=1, chunk_size=2, progress=False)
    chunk = tv.chunk_path(parts_dir(tmp_path / "vec"), 1)
    chunk.write_bytes(chunk.read_bytes()[:40])
    with pytest.raises(ValueError, match="E391"):
        build_table(parts_dir(tmp_path / "vec"), width=2, min_count=1)
    chunk.unlink()  # the fix the message gives: delete it and rerun
    summary = teacher_vectors(encoder, texts, tmp_path / "vec", width=2, min_count=1, chunk_size=2, progress=False)
    assert summary["computed"] == 1 and summary["meta"]["words"] == 11


def test_replace_stale_starts_afresh_on_another_input(teacher, texts, tmp_path):
    """What a workflow rerun on the user's own data needs: the chunks of the old text are deleted,
    not refused (E392) and never mixed in; the table holds the new text's words only."""
    out = tmp_path / "vec"
    assert invoke("vectors", teacher, texts, out, "--chunk-size", "2", "--width", "2", "--min-count", "1").exit_code == 0
    other = tmp_path / "other.txt"
    other.write_text("Another corpus entirely\nAnother one\n", encoding="utf8")
    args = ("vectors", teacher, other, out, "--chunk-size", "2", "--width", "2", "--min-count", "1")
    result = invoke(*args)
    assert result.exit_code == 1 and "E392" in result.output
    result = invoke(*args, "--replace-stale")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in parts_dir(out).glob("chunk-*")) == ["chunk-000000.npz"]
    vectors = spacy.load(out).vocab.vectors
    assert sorted(vectors.strings[key] for key in vectors.keys()) == ["Another", "corpus", "entirely", "one"]
    assert json.loads((out / tv.VECTORS_META).read_text(encoding="utf8"))["input"] == str(other)


def test_parser_teacher_gives_vectors_for_the_words_of_a_treebank(tmp_path):
    """Case 1b: vectors from a biaffine parser teacher over CoNLL-U input (.gz as EWT train comes)
    are built on the syntactic words a parser student reads ("Today", "'s"), never on the
    columns of the file read as raw text, nor on its multiword tokens ("Today's")."""
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_biaffine_parser", name="parser", config={"model": {
        "tok2vec": {"embed": {"width": 8, "rows": [50, 50, 50, 50]}, "encode": {"width": 8, "depth": 1}},
        "arc_width": 8, "rel_width": 8}})
    treebank = FIXTURES / "ewt_sample.conllu"
    examples = list(create_conllu_reader(treebank)(nlp))
    nlp.initialize(lambda: examples)
    nlp.to_disk(tmp_path / "teacher")
    gzipped = tmp_path / "sample.conllu.gz"
    gzipped.write_bytes(gzip.compress(treebank.read_bytes()))
    assert [list(w) for w in read_texts(gzipped, "en")] == [[t.text for t in eg.predicted] for eg in examples]
    encoder = TeacherEncoder(tmp_path / "teacher", "parser")
    summary = teacher_vectors(encoder, gzipped, tmp_path / "vec", width=4, min_count=1, progress=False)
    assert summary["texts"] == len(examples) == 5
    words, _, counts = word_means(parts_dir(tmp_path / "vec"), min_count=1)
    gold = [t.text for eg in examples for t in eg.predicted]
    assert set(words) == set(gold) and int(counts.sum()) == len(gold)
    assert {"Today", "'s"} <= set(words) and not {"Today's", "root", "nsubj", "_"} & set(words)
    assert spacy.load(tmp_path / "vec").vocab.vectors.shape == (len(set(gold)), 4)
    # chunks of an earlier version, which read every input but a DocBin as raw text, are refused
    manifest = parts_dir(tmp_path / "vec") / tv.PARTS_MANIFEST
    record = json.loads(manifest.read_text(encoding="utf8"))
    assert record["input_format"] == "conllu"
    del record["input_format"]
    manifest.write_text(json.dumps(record), encoding="utf8")
    with pytest.raises(ValueError, match=r"E392.*input_format: 'text' there, 'conllu' now"):
        teacher_vectors(encoder, gzipped, tmp_path / "vec", width=4, min_count=1, progress=False)


def test_floret_baseline_gives_every_word_a_vector(texts, tmp_path):
    result = invoke("floret", texts, tmp_path / "floret", "--dim", "8", "--min-count", "1", "--bucket", "500",
                    "--epochs", "2")
    assert result.exit_code == 0, result.output
    vectors = spacy.load(tmp_path / "floret").vocab.vectors
    assert vectors.mode == "floret" and vectors.shape == (500, 8)
    unseen = vectors.get_batch(["Zanzibar"])  # subword n-grams: no word is out of vocabulary
    assert numpy.abs(unseen).sum() > 0
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf8")
    result = invoke("floret", empty, tmp_path / "none")
    assert result.exit_code == 1 and "E394" in result.output and not (tmp_path / "none").exists()
