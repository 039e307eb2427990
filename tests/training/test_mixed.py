"""Tests for the gold + unlabeled mixing reader (spacy_skd.training.mixed) on tiny fixtures."""
import json

import pytest
import spacy
from spacy.training import Example
from spacy.util import registry
from thinc.api import Config

from spacy_skd.training.mixed import UNLABELED_KEY, MixedCorpus, create_mixed_reader
from spacy_skd.training.readers import create_conll_ner_reader, create_raw_text_reader

N_GOLD = 4  # sentences in conll2003_sample.conll
N_RAW = 5  # non-blank lines in raw_sample.txt.gz


@pytest.fixture(scope="module")
def nlp():
    return spacy.blank("en")


@pytest.fixture
def gold(fixtures_dir):
    return create_conll_ner_reader(fixtures_dir / "conll2003_sample.conll")


@pytest.fixture
def raw(fixtures_dir):
    return create_raw_text_reader(fixtures_dir / "raw_sample.txt.gz")


def is_unlabeled(eg):
    return eg.reference.user_data.get(UNLABELED_KEY) is True


def dump(examples):
    """A comparable summary: words, entities and whether the example is unlabeled."""
    return [(eg.reference.text, [(e.start, e.end, e.label_) for e in eg.reference.ents],
             is_unlabeled(eg)) for eg in examples]


def test_mixed_counts_and_cap(nlp, gold, raw):
    corpus = create_mixed_reader(gold, raw)
    assert isinstance(corpus, MixedCorpus)
    examples = list(corpus(nlp))
    assert len(examples) == N_GOLD + N_RAW
    assert sum(is_unlabeled(eg) for eg in examples) == N_RAW
    capped = list(create_mixed_reader(gold, raw, max_unlabeled=2)(nlp))
    assert sum(not is_unlabeled(eg) for eg in capped) == N_GOLD  # gold is never downsampled
    # The cap keeps the first N texts, chosen before shuffling.
    first_two = [eg.reference.text for eg in raw(nlp)][:2]
    assert sorted(eg.reference.text for eg in capped if is_unlabeled(eg)) == sorted(first_two)
    # A cap above the corpus size keeps everything.
    assert len(list(create_mixed_reader(gold, raw, max_unlabeled=100)(nlp))) == N_GOLD + N_RAW


def test_mixed_unlabeled_flag_and_missing_entities(nlp, gold, raw):
    for eg in create_mixed_reader(gold, raw)(nlp):
        if is_unlabeled(eg):
            assert all(t.ent_iob == 0 for t in eg.reference)
            assert not eg.reference.has_annotation("ENT_IOB")
    # RawText already yields docs with missing entity annotation.
    assert all(all(t.ent_iob == 0 for t in eg.reference) for eg in raw(nlp))


def test_mixed_gold_references_untouched(nlp, gold, raw):
    mixed = [eg for eg in create_mixed_reader(gold, raw, shuffle=False)(nlp)
             if not is_unlabeled(eg)]
    assert dump(mixed) == dump(gold(nlp))
    for eg, original in zip(mixed, gold(nlp)):
        assert UNLABELED_KEY not in eg.reference.user_data
        assert [t.ent_iob_ for t in eg.reference] == [t.ent_iob_ for t in original.reference]


def test_mixed_clears_entities_of_annotated_unlabeled_docs(nlp, gold):
    # A labelled corpus passed as `unlabeled`: its entities become missing, not O.
    assert any(eg.reference.ents for eg in gold(nlp))
    examples = list(create_mixed_reader(None, gold)(nlp))
    assert len(examples) == N_GOLD
    for eg in examples:
        assert is_unlabeled(eg)
        assert eg.reference.ents == ()
        assert all(t.ent_iob == 0 for t in eg.reference)


def test_mixed_order_deterministic(nlp, gold, raw):
    corpus = create_mixed_reader(gold, raw, seed=7)
    first = dump(corpus(nlp))
    assert dump(corpus(nlp)) == first  # every epoch
    assert dump(create_mixed_reader(gold, raw, seed=7)(nlp)) == first  # every instance/run
    assert dump(create_mixed_reader(gold, raw, seed=8)(nlp)) != first
    # Shuffling interleaves the two parts rather than keeping gold first.
    flags = [unlabeled for _, _, unlabeled in first]
    assert flags != sorted(flags)
    assert sorted(first) == sorted(dump(create_mixed_reader(gold, raw, shuffle=False)(nlp)))


def test_mixed_no_shuffle_gold_then_unlabeled(nlp, gold, raw):
    examples = list(create_mixed_reader(gold, raw, shuffle=False)(nlp))
    assert [is_unlabeled(eg) for eg in examples] == [False] * N_GOLD + [True] * N_RAW
    assert [eg.reference.text for eg in examples[N_GOLD:]] == [
        eg.reference.text for eg in raw(nlp)]


def test_mixed_one_part_only(nlp, gold, raw):
    examples = list(create_mixed_reader(unlabeled=raw, max_unlabeled=3)(nlp))
    assert len(examples) == 3 and all(is_unlabeled(eg) for eg in examples)
    examples = list(create_mixed_reader(gold=gold)(nlp))
    assert len(examples) == N_GOLD and not any(is_unlabeled(eg) for eg in examples)


def test_mixed_reads_unlabeled_lazily(nlp, gold):
    pulled = []

    def endless(nlp):
        while True:
            pulled.append(1)
            doc = nlp.make_doc("an unlabeled text")
            yield Example(doc, doc.copy())

    corpus = create_mixed_reader(gold, endless, max_unlabeled=3)
    assert len(list(corpus(nlp))) == N_GOLD + 3
    assert len(pulled) == 3  # nothing read past the cap
    stream = corpus(nlp)
    assert not isinstance(stream, (list, tuple))


def test_mixed_errors(gold):
    with pytest.raises(ValueError, match=r"\[skd-E215\]"):
        create_mixed_reader()
    with pytest.raises(TypeError, match=r"\[skd-E216\].*unlabeled.*'raw.txt'"):
        create_mixed_reader(gold, "raw.txt")
    for value in (-1, 1.5, True):
        with pytest.raises(ValueError, match=r"\[skd-E217\]"):
            create_mixed_reader(gold, max_unlabeled=value)
    with pytest.raises(TypeError, match=r"\[skd-E218\]"):
        create_mixed_reader(gold, seed="0")


def test_mixed_registered():
    assert registry.readers.get("spacy-skd.Mixed.v1") is create_mixed_reader


def test_mixed_resolve_from_config(nlp, fixtures_dir):
    cfg = f"""
    [paths]
    train = {json.dumps(str(fixtures_dir / "conll2003_sample.conll"))}
    raw = {json.dumps(str(fixtures_dir / "raw_sample.txt.gz"))}

    [corpora]

    [corpora.train]
    @readers = "spacy-skd.Mixed.v1"
    max_unlabeled = 3
    seed = 1

    [corpora.train.gold]
    @readers = "spacy-skd.CoNLLNER.v1"
    path = ${{paths.train}}

    [corpora.train.unlabeled]
    @readers = "spacy-skd.RawText.v1"
    path = ${{paths.raw}}

    [corpora.zero_shot]
    @readers = "spacy-skd.Mixed.v1"

    [corpora.zero_shot.unlabeled]
    @readers = "spacy-skd.RawText.v1"
    path = ${{paths.raw}}
    """
    corpora = registry.resolve(Config().from_str(cfg))["corpora"]
    examples = list(corpora["train"](nlp))
    assert len(examples) == N_GOLD + 3
    assert sum(is_unlabeled(eg) for eg in examples) == 3
    assert dump(examples) == dump(corpora["train"](nlp))
    assert len(list(corpora["zero_shot"](nlp))) == N_RAW
    bad = Config().from_str(cfg.replace("max_unlabeled = 3", "max_unlabeled = -3"))
    with pytest.raises(ValueError, match=r"\[skd-E217\]"):
        registry.resolve(bad)
