"""Tests for the corpus readers (spacy_skd.training.readers) on tiny fixtures and, marked `data`,
on the real datasets in ../shared/data."""
import gzip
import json
from collections import Counter

import pytest
import spacy
from spacy.util import registry
from thinc.api import Config

# Importing the module runs the @registry.readers decorators (entry points need `pip install -e .`).
from spacy_skd.training.conllu import create_conllu_reader
from spacy_skd.training.readers import (
    CoNLLNERCorpus,
    RawTextCorpus,
    SlotFillingCorpus,
    create_conll_ner_reader,
    create_raw_text_reader,
    create_slot_filling_reader,
)


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


def ents(example):
    return [(e.start, e.end, e.label_) for e in example.reference.ents]


def dump(examples):
    """A comparable summary of examples: words, entities and user data."""
    return [([t.text for t in eg.reference], ents(eg), dict(eg.reference.user_data))
            for eg in examples]


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


# --- CoNLL NER ------------------------------------------------------------------------------


def test_conll2003_fixture(nlp, fixtures_dir):
    corpus = create_conll_ner_reader(fixtures_dir / "conll2003_sample.conll")
    assert isinstance(corpus, CoNLLNERCorpus)
    examples = list(corpus(nlp))
    assert len(examples) == 4
    assert sum(len(eg.reference) for eg in examples) == 27
    assert [len(eg.predicted) for eg in examples] == [13, 7, 5, 2]
    first = examples[0]
    assert [t.text for t in first.predicted][:3] == ["Harbour", "Metals", "said"]
    assert [t.text for t in first.predicted] == [t.text for t in first.reference]
    assert all(eg.reference[0].text != "-DOCSTART-" for eg in examples)
    assert ents(first) == [(0, 2, "ORG"), (11, 12, "LOC")]
    # IOB1 "I-PER I-PER B-PER I-PER": two adjacent PER entities, not one.
    assert ents(examples[1]) == [(1, 3, "PER"), (3, 5, "PER")]
    assert [t.ent_iob_ for t in examples[1].reference][1:5] == ["B", "I", "B", "I"]
    assert ents(examples[2]) == [(0, 1, "MISC"), (3, 4, "PER")]
    assert ents(examples[3]) == [(0, 1, "LOC")]
    # Gold tokens outside entities are annotated O, not missing; predicted docs are unannotated.
    assert first.reference[2].ent_iob_ == "O"
    assert all(t.ent_iob_ == "" for t in first.predicted)


def test_conll2002_nl_docstart_opens_block(nlp, fixtures_dir):
    corpus = create_conll_ner_reader(fixtures_dir / "conll2002_nl_sample.conll", scheme="IOB2")
    examples = list(corpus(nlp))
    assert len(examples) == 3
    # The DOCSTART line is dropped and the rest of its block is kept as the sentence.
    assert [t.text for t in examples[0].reference] == [
        "De", "raad", "van", "Veldhaven", "vergadert", "morgen", "."]
    assert ents(examples[0]) == [(3, 4, "LOC")]
    assert ents(examples[1]) == [(0, 3, "PER"), (5, 7, "ORG")]
    assert [t.text for t in examples[2].reference][:2] == ["Het", "café"]  # UTF-8
    assert ents(examples[2]) == [(2, 4, "MISC")]


def test_conll_tag_column_and_limit(nlp, fixtures_dir):
    path = fixtures_dir / "conll2003_sample.conll"
    chunks = list(create_conll_ner_reader(path, tag_column=2, limit=1)(nlp))
    assert len(chunks) == 1
    assert ents(chunks[0])[:3] == [(0, 2, "NP"), (2, 3, "VP"), (3, 4, "PP")]
    assert len(list(create_conll_ner_reader(path, limit=3)(nlp))) == 3
    assert len(list(create_conll_ner_reader(path, limit=100)(nlp))) == 4


def test_conll_directory_sorted_non_recursive(nlp, tmp_path):
    write(tmp_path / "b.conll", "Bea I-PER\n\nx O\n")
    write(tmp_path / "a.conll", "Ann I-PER\n")
    write(tmp_path / ".hidden", "Hidden I-PER\n")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "c.conll", "Sub I-PER\n")
    corpus = create_conll_ner_reader(tmp_path)
    assert [eg.reference[0].text for eg in corpus(nlp)] == ["Ann", "Bea", "x"]
    # The limit counts sentences across files.
    assert len(list(create_conll_ner_reader(tmp_path, limit=2)(nlp))) == 2


def test_conll_line_endings_docstart_mid_block(nlp, tmp_path):
    # BOM, CRLF, no trailing blank line, DOCSTART right after a sentence (it ends the sentence).
    text = "\ufeffOne O\r\nTwo B-LOC\r\n-DOCSTART- O\r\nThree B-LOC\r\n\r\n\r\nFour B-PER"
    path = write(tmp_path / "crlf.conll", text)
    examples = list(create_conll_ner_reader(path, scheme="IOB2")(nlp))
    assert dump(examples) == [
        (["One", "Two"], [(1, 2, "LOC")], {}),
        (["Three"], [(0, 1, "LOC")], {}),
        (["Four"], [(0, 1, "PER")], {}),
    ]


def test_conll_repair_warns_once_per_file(nlp, tmp_path):
    path = write(tmp_path / "noisy.conll", "the O\nAtlanta B-MISC\n\nan O\nUrdu B-MISC\n")
    with pytest.warns(UserWarning, match=r"\[skd-W001\]") as record:
        examples = list(create_conll_ner_reader(path)(nlp))
    assert len([w for w in record if "skd-W001" in str(w.message)]) == 1
    assert [ents(eg) for eg in examples] == [[(1, 2, "MISC")], [(1, 2, "MISC")]]


# --- slot filling ---------------------------------------------------------------------------


def test_slot_filling_fixture(nlp, fixtures_dir):
    corpus = create_slot_filling_reader(fixtures_dir / "snips_sample")
    assert isinstance(corpus, SlotFillingCorpus)
    examples = list(corpus(nlp))
    assert len(examples) == 5
    assert [t.text for t in examples[0].reference] == [
        "play", "the", "song", "lanterns", "of", "morrow", "by", "ilse", "varga"]
    assert len(examples[1].reference) == 8  # trailing space does not add a token
    assert ents(examples[0]) == [(2, 3, "music_item"), (3, 6, "track"), (7, 9, "artist")]
    assert ents(examples[2]) == [(5, 7, "city"), (7, 8, "timeRange")]
    assert [eg.reference.user_data["intent"] for eg in examples] == [
        "PlayMusic", "AddToPlaylist", "GetWeather", "RateBook", "BookRestaurant"]
    assert examples[4].reference[4].text == "café"
    assert examples[0].predicted.user_data == {}
    assert len(list(create_slot_filling_reader(fixtures_dir / "snips_sample", limit=2)(nlp))) == 2


def test_slot_filling_without_label_and_blank_lines(nlp, tmp_path):
    write(tmp_path / "seq.in", "fly to oslo \n\nhi\n")
    write(tmp_path / "seq.out", "O O B-toloc.city_name \n \nO\n")
    examples = list(create_slot_filling_reader(tmp_path)(nlp))
    assert dump(examples) == [
        (["fly", "to", "oslo"], [(2, 3, "toloc.city_name")], {}),
        (["hi"], [], {}),
    ]


# --- raw text -------------------------------------------------------------------------------


def test_raw_text_fixture(nlp, fixtures_dir):
    path = fixtures_dir / "raw_sample.txt.gz"
    corpus = create_raw_text_reader(path)
    assert isinstance(corpus, RawTextCorpus)
    examples = list(corpus(nlp))
    assert len(examples) == 5  # 7 lines, 2 blank (one of them whitespace only)
    assert examples[0].predicted.text == examples[0].reference.text == (
        "The harbour authority said shipments rose 4 pct in March.")
    assert examples[0].predicted[-1].text == "."  # tokenized by nlp.make_doc
    assert examples[0].predicted is not examples[0].reference
    assert [eg.reference.text for eg in create_raw_text_reader(path, min_length=4)(nlp)] == [
        "The harbour authority said shipments rose 4 pct in March.",
        "Grain exports from the northern ports fell sharply last week, traders said.",
        "Analysts expect the central bank to hold rates steady.",
    ]
    assert len(list(create_raw_text_reader(path, min_length=3)(nlp))) == 4
    assert len(list(create_raw_text_reader(path, min_length=0)(nlp))) == 5
    assert [eg.reference.text for eg in create_raw_text_reader(path, limit=2)(nlp)] == [
        "The harbour authority said shipments rose 4 pct in March.", "Ends."]


def test_raw_text_plain_file_and_directory(nlp, tmp_path):
    write(tmp_path / "b.txt", "  second text here \n")
    with gzip.open(tmp_path / "a.txt.gz", "wt", encoding="utf-8") as f:
        f.write("first text\n\n")
    assert [eg.reference.text for eg in create_raw_text_reader(tmp_path)(nlp)] == [
        "first text", "second text here"]


def test_raw_text_null_path_reads_nothing(nlp, tmp_path):
    """`path = null` is "no unlabeled data" (a KD config's `${paths.raw}` left empty); a path
    that does not exist still fails when the config is resolved."""
    corpus = registry.resolve(Config().from_str(
        '[c]\n@readers = "spacy-skd.RawText.v1"\npath = null\n'))["c"]
    assert list(corpus(nlp)) == [] and list(corpus(nlp)) == []
    assert list(create_raw_text_reader(None, limit=3)(nlp)) == []
    assert list(create_slot_filling_reader(None)(nlp)) == []
    with pytest.raises(ValueError, match=r"\[skd-E050\]"):
        create_raw_text_reader(tmp_path / "missing.txt")


# --- conventions shared by all readers --------------------------------------------------------


READERS = [
    ("conll2003_sample.conll", create_conll_ner_reader, {}),
    ("conll2002_nl_sample.conll", create_conll_ner_reader, {"scheme": "IOB2"}),
    ("snips_sample", create_slot_filling_reader, {}),
    ("raw_sample.txt.gz", create_raw_text_reader, {}),
    ("ewt_sample.conllu", create_conllu_reader, {}),
]


@pytest.mark.parametrize("name,factory,kwargs", READERS)
def test_iterates_twice_lazily(nlp, fixtures_dir, name, factory, kwargs):
    corpus = factory(fixtures_dir / name, **kwargs)
    stream = corpus(nlp)
    assert not isinstance(stream, (list, tuple))
    first = next(stream)
    assert dump([first]) == dump(list(corpus(nlp))[:1])
    assert dump(corpus(nlp)) == dump(corpus(nlp))


@pytest.mark.parametrize("reader,factory", [
    ("spacy-skd.CoNLLNER.v1", create_conll_ner_reader),
    ("spacy-skd.SlotFilling.v1", create_slot_filling_reader),
    ("spacy-skd.RawText.v1", create_raw_text_reader),
    ("spacy-skd.CoNLLU.v1", create_conllu_reader),
])
def test_registered(reader, factory):
    assert registry.readers.get(reader) is factory


def test_resolve_from_config(nlp, fixtures_dir):
    cfg = f"""
    [corpora]

    [corpora.train]
    @readers = "spacy-skd.CoNLLNER.v1"
    path = {json.dumps(str(fixtures_dir / "conll2002_nl_sample.conll"))}
    scheme = "IOB2"
    limit = 2

    [corpora.slots]
    @readers = "spacy-skd.SlotFilling.v1"
    path = {json.dumps(str(fixtures_dir / "snips_sample"))}

    [corpora.raw]
    @readers = "spacy-skd.RawText.v1"
    path = {json.dumps(str(fixtures_dir / "raw_sample.txt.gz"))}
    min_length = 4
    """
    corpora = registry.resolve(Config().from_str(cfg))["corpora"]
    assert len(list(corpora["train"](nlp))) == 2
    assert len(list(corpora["slots"](nlp))) == 5
    assert len(list(corpora["raw"](nlp))) == 3


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("factory", [
    create_conll_ner_reader, create_slot_filling_reader, create_raw_text_reader,
    create_conllu_reader])
def test_missing_path_and_negative_limit(factory, tmp_path):
    with pytest.raises(ValueError, match=r"\[skd-E050\].*nowhere"):
        factory(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"\[skd-E058\]"):
        factory(tmp_path, limit=-1)


def test_bad_arguments(tmp_path, fixtures_dir):
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        create_conll_ner_reader(fixtures_dir / "conll2003_sample.conll", scheme="BIO")
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        create_slot_filling_reader(fixtures_dir / "snips_sample", scheme="iob2")
    with pytest.raises(ValueError, match=r"\[skd-E061\]"):
        create_raw_text_reader(fixtures_dir / "raw_sample.txt.gz", min_length=-1)


@pytest.mark.parametrize("tag_column", [0, 4, -4])
def test_bad_tag_column(nlp, fixtures_dir, tag_column):
    corpus = create_conll_ner_reader(fixtures_dir / "conll2003_sample.conll", tag_column=tag_column)
    with pytest.raises(ValueError, match=r"\[skd-E059\].*conll2003_sample\.conll"):
        list(corpus(nlp))


def test_bad_column_count_names_file_and_line(nlp, tmp_path):
    # The first token line sets 3 columns; DOCSTART lines are dropped and not counted.
    path = write(tmp_path / "cols.conll", "-DOCSTART- O\n\nA NN I-PER\nB NN O\n\nC O\n")
    corpus = create_conll_ner_reader(path)
    stream = corpus(nlp)
    assert len(next(stream).reference) == 2  # streams: the error comes with the bad sentence
    with pytest.raises(ValueError, match=r"\[skd-E051\]") as err:
        next(stream)
    assert "cols.conll, line 6:" in str(err.value)
    assert "expected 3" in str(err.value) and "found 2" in str(err.value)


def test_bad_tag_names_file_and_line(nlp, tmp_path):
    path = write(tmp_path / "tags.conll", "A I-PER\nB X-PER\n")
    with pytest.raises(ValueError, match=r"\[skd-E052\].*tags\.conll, line 2: tag 'X-PER'"):
        list(create_conll_ner_reader(path)(nlp))
    # S- is malformed in IOB2, though well-formed in BIOES.
    path = write(tmp_path / "s.conll", "A S-PER\n")
    with pytest.raises(ValueError, match=r"\[skd-E052\].*line 1"):
        list(create_conll_ner_reader(path, scheme="IOB2")(nlp))
    assert ents(next(create_conll_ner_reader(path, scheme="BIOES")(nlp))) == [(0, 1, "PER")]


def test_slot_filling_errors(nlp, tmp_path):
    write(tmp_path / "seq.in", "a b\nc d e\n")
    with pytest.raises(ValueError, match=r"\[skd-E055\].*seq\.out"):
        create_slot_filling_reader(tmp_path)
    write(tmp_path / "seq.out", "O O\nO O\n")
    with pytest.raises(ValueError, match=r"\[skd-E053\].*seq\.out, line 2: 3 tokens .* 2 tags"):
        list(create_slot_filling_reader(tmp_path)(nlp))
    write(tmp_path / "seq.out", "O O\nO O O\nO\n")
    with pytest.raises(ValueError, match=r"\[skd-E054\].*2 lines but seq.out has 3"):
        list(create_slot_filling_reader(tmp_path)(nlp))
    write(tmp_path / "seq.in", "a b\nc d e\nf\ng\n")
    with pytest.raises(ValueError, match=r"\[skd-E054\].*4 lines but seq.out has 3"):
        list(create_slot_filling_reader(tmp_path)(nlp))
    write(tmp_path / "seq.in", "a b\nc d e\nf\n")
    write(tmp_path / "label", "x\ny\n")
    with pytest.raises(ValueError, match=r"\[skd-E060\].*3 lines but label has 2"):
        list(create_slot_filling_reader(tmp_path)(nlp))
    write(tmp_path / "label", "x\ny\nz\n")
    write(tmp_path / "seq.out", "O O\nO O O\nB-\n")
    with pytest.raises(ValueError, match=r"\[skd-E052\].*seq\.out, line 3: tag 'B-'"):
        list(create_slot_filling_reader(tmp_path)(nlp))


def test_decode_error(nlp, tmp_path):
    path = write(tmp_path / "latin1.conll", "A O\n\nCaf\xe9 O\n", encoding="latin-1")
    with pytest.raises(ValueError, match=r"\[skd-E056\].*latin1\.conll, line 3"):
        list(create_conll_ner_reader(path)(nlp))


def test_corrupt_gzip(nlp, tmp_path):
    path = write(tmp_path / "not.txt.gz", "plain text, not gzip\n")
    with pytest.raises(ValueError, match=r"\[skd-E057\].*not\.txt\.gz"):
        list(create_raw_text_reader(path)(nlp))
    data = gzip.compress(("a line of text\n" * 2000).encode("utf-8"))
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"\[skd-E057\].*cut\.txt\.gz"):
        list(create_raw_text_reader(tmp_path / "cut.txt.gz")(nlp))


# --- real data (../shared/data) -------------------------------------------------------------


def count(corpus, nlp):
    """Sentences, tokens, entity labels and intents of a corpus, in one pass."""
    n = tokens = 0
    labels, intents = Counter(), Counter()
    for eg in corpus(nlp):
        n += 1
        tokens += len(eg.reference)
        labels.update(e.label_ for e in eg.reference.ents)
        if "intent" in eg.reference.user_data:
            intents[eg.reference.user_data["intent"]] += 1
    return n, tokens, labels, intents


@pytest.mark.data
def test_conll2003_en_train(nlp, shared_data):
    corpus = create_conll_ner_reader(shared_data / "conll2003_en" / "train.conll")
    # README: 14041 sentences, 203621 tokens, DOCSTART excluded; the two B-MISC after O (IOB1
    # annotation noise) are repaired with one W001 for the file.
    with pytest.warns(UserWarning, match=r"\[skd-W001\]"):
        n, tokens, labels, _ = count(corpus, nlp)
    assert (n, tokens) == (14041, 203621)
    # The published CoNLL-2003 train entity counts.
    assert labels == {"PER": 6600, "ORG": 6321, "LOC": 7140, "MISC": 3438}


@pytest.mark.data
def test_conll2002_nl_train(nlp, shared_data):
    # README: 15806 sentences, 202644 tokens, 287 -DOCSTART- lines. The 15806 does NOT count
    # DOCSTART-only blocks: the file has exactly 15806 blank-line-separated blocks and every
    # DOCSTART line opens a block that goes on with real tokens, so dropping the line leaves
    # every block a sentence (202931 non-blank lines - 287 DOCSTART lines = 202644 tokens).
    corpus = create_conll_ner_reader(shared_data / "conll2002_nl" / "train.conll", scheme="IOB2")
    n, tokens, labels, _ = count(corpus, nlp)
    assert (n, tokens) == (15806, 202644)
    # IOB2 without repairs: one entity per B- tag in the file.
    assert labels == {"PER": 4716, "ORG": 2082, "LOC": 3208, "MISC": 3338}


@pytest.mark.data
def test_conll2002_es_train(nlp, shared_data):
    corpus = create_conll_ner_reader(shared_data / "conll2002_es" / "train.conll", scheme="IOB2")
    # One I-LOC opens a chunk (README: annotation noise); it is repaired into a LOC entity.
    with pytest.warns(UserWarning, match=r"\[skd-W001\]"):
        n, tokens, labels, _ = count(corpus, nlp)
    assert (n, tokens) == (8323, 264715)
    assert labels == {"PER": 4321, "ORG": 7390, "LOC": 4913 + 1, "MISC": 2173}


@pytest.mark.data
def test_snips_and_atis_train(nlp, shared_data):
    snips = create_slot_filling_reader(shared_data / "snips" / "train")
    n, tokens, labels, intents = count(snips, nlp)
    assert (n, tokens) == (13084, 117700)
    assert len(labels) == 39 and len(intents) == 7
    assert sum(intents.values()) == n
    n, tokens, _, intents = count(create_slot_filling_reader(shared_data / "atis" / "train"), nlp)
    assert (n, tokens) == (4478, 50497)
    assert any("#" in intent for intent in intents)  # multi-intents are kept joined


@pytest.mark.data
def test_raw_reuters_limit(nlp, shared_data):
    path = shared_data / "raw_reuters21578" / "reuters21578_paragraphs.txt.gz"
    examples = list(create_raw_text_reader(path, limit=1000)(nlp))
    assert len(examples) == 1000
    assert all(len(eg.reference.text.split()) >= 6 for eg in examples)  # README: >= 6 tokens
    assert examples[0].reference.text.startswith("Showers continued throughout the week")


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- -X- -X- O\n\n", "-DOCSTART- -X- O O\n\n-DOCSTART- -X- O O\n"])
def test_conll_reader_without_examples_warns_naming_the_file(nlp, tmp_path, content):
    path = tmp_path / "dev.conll"
    path.write_text(content, encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W331\].*dev\.conll"):
        assert list(CoNLLNERCorpus(path)(nlp)) == []


def test_slot_and_raw_readers_without_examples_warn_naming_the_file(nlp, tmp_path):
    for name in ("seq.in", "seq.out"):
        (tmp_path / name).write_text("\n", encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W331\].*seq\.in"):
        assert list(SlotFillingCorpus(tmp_path)(nlp)) == []
    raw = tmp_path / "raw.txt"
    raw.write_text("one two\n\n", encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W331\].*raw\.txt.*at least 3 tokens"):
        assert list(RawTextCorpus(raw, min_length=3)(nlp)) == []


def test_conllu_reader_without_examples_warns_naming_the_file(nlp, tmp_path):
    path = tmp_path / "dev.conllu"
    path.write_text("# newdoc id = x\n\n", encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W331\].*dev\.conllu"):
        assert list(create_conllu_reader(path)(nlp)) == []
