"""Tests for the CoNLL-U reader (spacy_skd.training.conllu) on tiny fixtures and, marked `data`,
on UD English-EWT in ../shared/data."""
import gzip
import json
import re

import pytest
import spacy
from spacy.scorer import Scorer
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from spacy.util import registry
from thinc.api import Config

# Importing the module runs the @registry.readers decorators (entry points need `pip install -e .`).
from spacy_skd.cli.convert import convert_corpus
from spacy_skd.training.conllu import CoNLLUCorpus, create_conllu_reader


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# --- CoNLL-U --------------------------------------------------------------------------------


EWT_IDS = [
    "weblog-blogspot.com_nominations_20041117172713_ENG_20041117_172713-0001",
    "newsgroup-groups.google.com_citiesguide_c6edd53b8aaceb4c_ENG_20051102_022300-0002",
    "answers-20111108072305AAPJTjj_ans-0005",
    "answers-20101109081414AAZ3hSI_ans-0002",
    "reviews-372582-0003",
]


def tree(example):
    """A comparable summary of a CoNLL-U example: the reference's words and their annotation,
    heads as CoNLL-U writes them (1-based, 0 = root), and the sentence id."""
    ref = example.reference
    return ([(t.text, t.whitespace_, 0 if t.head.i == t.i else t.head.i + 1, t.dep_, t.pos_,
              t.tag_, t.lemma_) for t in ref], ref.user_data.get("sent_id"))


def read_conllu_columns(path):
    """(FORM, LEMMA, UPOS, XPOS, HEAD, DEPREL) of each syntactic word and the `# text` of each
    sentence, split by hand as an independent check of the reader."""
    sentences, texts = [], []
    for block in path.read_text(encoding="utf-8").strip().split("\n\n"):
        rows = [line.split("\t") for line in block.split("\n") if not line.startswith("#")]
        words = [r for r in rows if r[0].isdigit()]
        sentences.append([(r[1], r[2], r[3], r[4], int(r[6]), r[7]) for r in words])
        texts += [line[9:] for line in block.split("\n") if line.startswith("# text = ")]
    return sentences, texts


def conllu_text(*sentences):
    """CoNLL-U text from sentences given as lists of lines; a line without a tab has its
    columns separated by single spaces."""
    return "".join(
        "".join((line if "\t" in line else line.replace(" ", "\t")) + "\n" for line in s) + "\n"
        for s in sentences)


# A valid two-word sentence; the error tests put a broken one after it.
GOOD = ["# sent_id = s1", "1 A a DET DT _ 2 det _ _", "2 dog dog NOUN NN _ 0 root _ SpaceAfter=No"]


def test_conllu_fixture(nlp, fixtures_dir):
    path = fixtures_dir / "ewt_sample.conllu"
    corpus = create_conllu_reader(path)
    assert isinstance(corpus, CoNLLUCorpus)
    examples = list(corpus(nlp))
    # Syntactic words only: 3 multiword-token ranges and 3 empty nodes are skipped.
    assert [len(eg.reference) for eg in examples] == [7, 3, 26, 23, 4]
    assert [eg.reference.user_data["sent_id"] for eg in examples] == EWT_IDS
    assert [t.text for t in examples[1].reference] == ["Today", "'s", "Article"]
    assert [t.text for t in examples[4].reference] == ["Wo", "n't", "return", "."]
    # Empty nodes 10.1, 21.1 ("has") and 11.1 (FORM '_', a missing "of") are not words.
    assert "has" not in [t.text for t in examples[2].reference]
    assert [t.text for t in examples[3].reference][10:12] == ["kind", "food"]
    # Spaces: SpaceAfter=No, no space inside a multiword token, the range line's MISC after it.
    assert [t.whitespace_ for t in examples[4].reference] == ["", " ", "", " "]
    _, texts = read_conllu_columns(path)
    assert [eg.reference.text.rstrip() for eg in examples] == texts
    first = examples[0].reference
    assert [t.head.i for t in first] == [2, 2, 3, 3, 5, 3, 3]
    assert first[3].head.i == 3 and first[3].dep_ == "root"  # the root is its own head
    assert [t.dep_ for t in first] == ["case", "det", "obl", "root", "det", "nsubj", "punct"]
    assert [t.pos_ for t in first] == ["ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT"]
    assert [t.tag_ for t in first][:4] == ["IN", "DT", "NNP", "VBZ"]
    assert [t.lemma_ for t in first][2:4] == ["AP", "come"]
    assert examples[1].reference[0].dep_ == "nmod:poss"  # subtypes are kept by default
    for eg in examples:
        assert len(list(eg.reference.sents)) == 1
        # The predicted Doc has the same tokens (not re-tokenized) and no annotation.
        assert [(t.text, t.whitespace_) for t in eg.predicted] == [
            (t.text, t.whitespace_) for t in eg.reference]
        assert not eg.predicted.has_annotation("DEP") and not eg.predicted.has_annotation("POS")
        assert eg.predicted.user_data == {}


def test_conllu_round_trips_columns(nlp, fixtures_dir):
    path = fixtures_dir / "ewt_sample.conllu"
    columns, _ = read_conllu_columns(path)
    # (FORM, LEMMA, UPOS, XPOS, HEAD, DEPREL) back from the Docs, HEAD 1-based with 0 = root.
    read = [[(t[0], t[6], t[4], t[5], t[2], t[3]) for t in tree(eg)[0]]
            for eg in create_conllu_reader(path)(nlp)]
    assert read == columns


def test_conllu_limit_min_length_strip_subtypes(nlp, fixtures_dir):
    path = fixtures_dir / "ewt_sample.conllu"
    assert [len(eg.reference) for eg in create_conllu_reader(path, limit=2)(nlp)] == [7, 3]
    assert len(list(create_conllu_reader(path, limit=100)(nlp))) == 5
    long_only = create_conllu_reader(path, min_length=5)
    assert [len(eg.reference) for eg in long_only(nlp)] == [7, 26, 23]
    assert len(list(create_conllu_reader(path, min_length=0)(nlp))) == 5
    # The limit counts the sentences that are kept.
    assert [len(eg.reference) for eg in create_conllu_reader(path, min_length=5, limit=2)(nlp)] == [
        7, 26]
    stripped = list(create_conllu_reader(path, strip_subtypes=True)(nlp))
    full = list(create_conllu_reader(path)(nlp))
    assert stripped[1].reference[0].dep_ == "nmod"
    assert all(":" not in t.dep_ for eg in stripped for t in eg.reference)
    assert [[t.dep_.split(":")[0] for t in eg.reference] for eg in full] == [
        [t.dep_ for t in eg.reference] for eg in stripped]
    assert [[t.head.i for t in eg.reference] for eg in full] == [
        [t.head.i for t in eg.reference] for eg in stripped]


def test_conllu_gz_and_folder(nlp, fixtures_dir, tmp_path):
    text = (fixtures_dir / "ewt_sample.conllu").read_text(encoding="utf-8")
    expected = [tree(eg) for eg in create_conllu_reader(fixtures_dir / "ewt_sample.conllu")(nlp)]
    with gzip.open(tmp_path / "a.conllu.gz", "wt", encoding="utf-8") as f:
        f.write(text)
    assert [tree(eg) for eg in create_conllu_reader(tmp_path / "a.conllu.gz")(nlp)] == expected
    write(tmp_path / "b.conllu", conllu_text(GOOD))
    write(tmp_path / ".hidden.conllu", conllu_text(GOOD))
    write(tmp_path / "notes.txt", "not CoNLL-U\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.conllu", conllu_text(GOOD))
    ids = [eg.reference.user_data["sent_id"] for eg in create_conllu_reader(tmp_path)(nlp)]
    assert ids == EWT_IDS + ["s1"]  # a.conllu.gz then b.conllu; the rest is not read
    assert len(list(create_conllu_reader(tmp_path, limit=6)(nlp))) == 6  # across files
    empty = tmp_path / "empty"
    empty.mkdir()
    write(empty / "x.txt", "1\tA\n")
    with pytest.raises(ValueError, match=r"\[skd-E069\].*empty"):
        create_conllu_reader(empty)


def test_conllu_line_endings_and_comment_blocks(nlp, tmp_path):
    # BOM, CRLF, blank lines with spaces, no sentence id, a comment-only block, no final newline.
    text = ("\ufeff# newdoc id = d1\r\n\r\n \r\n1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\r\n\r\n\r\n"
            "# only a comment\r\n\r\n1\tOk\tok\t_\t_\t_\t0\troot\t_\t_")
    examples = list(create_conllu_reader(write(tmp_path / "crlf.conllu", text))(nlp))
    assert [tree(eg) for eg in examples] == [
        ([("Hi", " ", 0, "root", "INTJ", "UH", "hi")], None),
        ([("Ok", " ", 0, "root", "", "", "ok")], None),  # '_' leaves UPOS and XPOS unset
    ]


def test_conllu_scorer_reads_heads_and_deps(nlp, fixtures_dir):
    examples = list(create_conllu_reader(fixtures_dir / "ewt_sample.conllu")(nlp))
    gold = [Example(eg.reference.copy(), eg.reference) for eg in examples]
    scores = Scorer.score_deps(gold, "dep_")
    assert scores["dep__uas"] == scores["dep__las"] == 1.0
    assert {"root", "nmod:poss", "punct"} <= set(scores["dep__las_per_type"])
    # The scorer the spaCy parser uses (labels lowercased, punctuation ignored).
    scores = registry.scorers.get("spacy.parser_scorer.v1")()(gold)
    assert scores["dep_uas"] == scores["dep_las"] == scores["sents_f"] == 1.0
    # A prediction attaching every word to the root: in the first sentence "AP", "story" and
    # ":" (and the root itself) are right, so the scorer does read our heads.
    ref = examples[0].reference
    root = ref[3].i
    pred = Doc(nlp.vocab, words=[t.text for t in ref], heads=[root] * len(ref),
               deps=[t.dep_ for t in ref])
    scores = Scorer.score_deps([Example(pred, ref)], "dep_")
    assert scores["dep__uas"] == pytest.approx(4 / 7)


def test_conllu_resolve_from_config(nlp, fixtures_dir):
    cfg = f"""
    [corpora]

    [corpora.dev]
    @readers = "spacy-skd.CoNLLU.v1"
    path = {json.dumps(str(fixtures_dir / "ewt_sample.conllu"))}
    limit = 3
    strip_subtypes = true
    min_length = 4
    """
    corpus = registry.resolve(Config().from_str(cfg))["corpora"]["dev"]
    assert [len(eg.reference) for eg in corpus(nlp)] == [7, 26, 23]


def test_conllu_convert_to_docbin(nlp, fixtures_dir, tmp_path):
    path = fixtures_dir / "ewt_sample.conllu"
    expected = [tree(eg) for eg in create_conllu_reader(path)(nlp)]
    # `scheme` is not a CoNLL-U reader argument: it is not passed on.
    assert convert_corpus(path, tmp_path / "out" / "dev.spacy", fmt="conllu", scheme="IOB2") == 5
    docs = list(DocBin().from_disk(tmp_path / "out" / "dev.spacy").get_docs(nlp.vocab))
    assert [tree(Example(doc, doc)) for doc in docs] == expected
    # The same through `python -m spacy skd convert` (spaCy's typer app).
    from spacy.cli._util import app
    from typer.testing import CliRunner

    import spacy_skd.cli  # noqa: F401  (adds the skd commands to the app)

    result = CliRunner().invoke(
        app, ["skd", "convert", str(path), str(tmp_path / "cli.spacy"), "--format", "conllu"])
    assert result.exit_code == 0, result.output
    docs = list(DocBin().from_disk(tmp_path / "cli.spacy").get_docs(nlp.vocab))
    assert [tree(Example(doc, doc)) for doc in docs] == expected


# --- errors ---------------------------------------------------------------------------------


# A broken second sentence after GOOD (lines 1-4): its `# sent_id` is line 5, its words lines 6-8.
# -> (code, line in the message, regex the message must match).
CONLLU_ERRORS = [
    (["1 A a DET DT _ 2 det _", "2 b b X X _ 0 root _ _"], "E062", 6, "found 9"),
    (["1 A a DET DT _ 2 det _ _ extra", "2 b b X X _ 0 root _ _"], "E062", 6, "found 11"),
    (["1 A a DET DT _ 2 det _ _", "2\tb b X X _ 0 root _ _"], "E062", 7, "found 2"),
    # Ten tab-separated columns, but conllu also splits the FORM on its two spaces.
    (["1 A a DET DT _ 2 det _ _", "2\tb  c\tb\tX\tX\t_\t0\troot\t_\t_"], "E062", 7, "found 11"),
    (["1 A a DET DT _ x det _ _", "2 b b X X _ 0 root _ _"], "E064", 6, "HEAD 'x' of word 1"),
    (["1 A a DET DT _ 2 det _ _", "2 b b X X _ _ root _ _"], "E064", 7, "HEAD '_' of word 2"),
    (["1 A a DET DT _ 3 det _ _", "2 b b X X _ 0 root _ _"], "E064", 6, "HEAD 3 of word 1 .* to 2"),
    (["1 A a DET DT _ -1 det _ _", "2 b b X X _ 0 root _ _"], "E064", 6, "HEAD -1"),
    (["1 A a DET DT _ 2 det _ _", "1x b b X X _ 0 root _ _"], "E063", 7, "not a valid ID"),
    (["1 A a DET DT _ 3 det _ _", "3 b b X X _ 0 root _ _"], "E065", 7, "ID '3' where 2"),
    (["0 A a DET DT _ 2 det _ _", "2 b b X X _ 0 root _ _"], "E065", 6, "ID '0' where 1"),
    (["1 A a DETX DT _ 2 det _ _", "2 b b X X _ 0 root _ _"], "E066", 6, "UPOS 'DETX' of word 1"),
    (["1 A a DET DT _ 0 root _ _", "2 b b X X _ 0 root _ _"], "E067", 5, "2 words have HEAD 0"),
    (["1 A a DET DT _ 2 det _ _", "2 b b X X _ 1 dep _ _"], "E067", 5, "no word has HEAD 0"),
    (["1 A a DET DT _ 0 root _ _", "2 b b X X _ 3 dep _ _", "3 c c X X _ 2 dep _ _"], "E067", 5,
     "words 2, 3 form a cycle"),
    (["1 A a DET DT _ 0 root _ _", "2 b b X X _ 2 dep _ _"], "E067", 5, "words 2 form a cycle"),
]


@pytest.mark.parametrize("broken,code,line,detail", CONLLU_ERRORS)
def test_conllu_errors_name_file_and_line(nlp, tmp_path, broken, code, line, detail):
    path = write(tmp_path / "bad.conllu", conllu_text(GOOD, ["# sent_id = s2"] + broken))
    stream = create_conllu_reader(path)(nlp)
    assert tree(next(stream))[1] == "s1"  # streams: the error comes with the bad sentence
    with pytest.raises(ValueError, match=rf"\[skd-{code}\]") as err:
        next(stream)
    message = str(err.value)
    assert f"bad.conllu, line {line}" in message
    assert re.search(detail, message), message
    if code == "E067":
        assert "sentence 's2'" in message


def test_conllu_tree_error_without_sent_id_and_bad_arguments(nlp, tmp_path, fixtures_dir):
    path = write(tmp_path / "cycle.conllu", conllu_text(
        GOOD, ["1 A a DET DT _ 2 det _ _", "2 b b X X _ 1 dep _ _"]))
    with pytest.raises(ValueError, match=r"\[skd-E067\].*line 5, sentence #2 of the file"):
        list(create_conllu_reader(path)(nlp))
    with pytest.raises(ValueError, match=r"\[skd-E068\]"):
        create_conllu_reader(fixtures_dir / "ewt_sample.conllu", min_length=-1)


def test_conllu_decode_and_gzip_errors(nlp, tmp_path):
    text = conllu_text(GOOD, ["1 Caf\xe9 caf\xe9 NOUN NN _ 0 root _ _"])
    path = write(tmp_path / "latin1.conllu", text, encoding="latin-1")
    with pytest.raises(ValueError, match=r"\[skd-E056\].*latin1\.conllu, line 5"):
        list(create_conllu_reader(path)(nlp))
    path = write(tmp_path / "plain.conllu.gz", text)
    with pytest.raises(ValueError, match=r"\[skd-E057\].*plain\.conllu\.gz"):
        list(create_conllu_reader(path)(nlp))


# --- real data (../shared/data) -------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("name,n_sentences,n_words", [
    pytest.param("en_ewt-ud-train.conllu.gz", 12544, 204577, marks=pytest.mark.slow),
    ("en_ewt-ud-dev.conllu", 2001, 25147),
    ("en_ewt-ud-test.conllu", 2077, 25094),
])
def test_ud_en_ewt_counts(nlp, shared_data, name, n_sentences, n_words):
    # README: sentences and syntactic words (multiword-token lines and empty nodes skipped).
    n = words = 0
    for eg in create_conllu_reader(shared_data / "ud_en_ewt" / name)(nlp):
        n += 1
        words += len(eg.reference)
    assert (n, words) == (n_sentences, n_words)


@pytest.mark.data
def test_ud_en_ewt_dev_text_and_scores(nlp, shared_data):
    path = shared_data / "ud_en_ewt" / "en_ewt-ud-dev.conllu"
    examples = list(create_conllu_reader(path)(nlp))
    # Words and spaces rebuild every `# text` line (EWT's multiword tokens spell their words).
    _, texts = read_conllu_columns(path)
    assert [eg.reference.text.rstrip() for eg in examples] == texts
    assert all(len(list(eg.reference.sents)) == 1 for eg in examples)
    scores = Scorer.score_deps([Example(eg.reference.copy(), eg.reference) for eg in examples],
                               "dep_")
    assert scores["dep__uas"] == scores["dep__las"] == 1.0
