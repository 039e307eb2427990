"""Tests for the teacher-output cache (spacy_skd.training.cache)."""
import hashlib
import io
import json
import pickle
import sqlite3
import warnings

import diskcache
import numpy as np
import pytest
import spacy
from spacy.training import Example

from spacy_skd.training.cache import CACHE_FORMAT_VERSION, TeacherCache, fingerprint_pipeline, sentence_key

SETTINGS = dict(fingerprint="teacher-a", space="crf-pairs", temperature=2.0, mode="global")
WORDS = ["New", "York", "is", "big", "."]
SENTENCES = [WORDS, ["Hello"], ["a", "b", "c"], []]


def outputs(n, L=3, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "unary": rng.random((n, L), dtype=np.float32),
        "pairs": rng.random((max(n - 1, 0), L, L), dtype=np.float32),
        "start": rng.random(L),                                  # float64 stays float64
        "top1": rng.integers(0, L, n, dtype=np.int64),
    }


def assert_same(found, expected):
    assert found is not None
    assert sorted(found) == sorted(expected)
    for name, array in expected.items():
        assert found[name].dtype == array.dtype, name
        np.testing.assert_array_equal(found[name], array)


@pytest.fixture
def cache(tmp_path):
    with TeacherCache(tmp_path / "cache", **SETTINGS) as cache:
        yield cache


def raw_store(cache):
    """The diskcache store behind a (closed) TeacherCache, and the key of WORDS."""
    key = hashlib.sha256(json.dumps(WORDS).encode("ascii")).hexdigest()
    return diskcache.Cache(str(cache.path)), key


def test_cache_put_then_get_returns_equal_arrays(cache):
    expected = outputs(len(WORDS))
    cache.put(WORDS, expected)
    assert_same(cache.get(WORDS), expected)
    assert WORDS in cache and len(cache) == 1
    assert (cache.stats.hits, cache.stats.misses) == (1, 0)


def test_cache_stores_integers_as_int64(cache):
    cache.put(["x", "y"], {"top1": np.array([1, 2], dtype=np.int32), "mask": np.ones(2, bool)})
    found = cache.get(["x", "y"])
    assert found["top1"].dtype == np.int64 and found["mask"].dtype == bool


def test_cache_miss_returns_none(cache):
    assert cache.get(WORDS) is None
    assert WORDS not in cache and len(cache) == 0
    assert cache.stats.misses == 1


def test_cache_many_round_trip(cache):
    expected = [outputs(len(words), seed=i) for i, words in enumerate(SENTENCES)]
    cache.put_many(SENTENCES, expected)
    found = cache.get_many(SENTENCES + [["unseen"]])
    for f, e in zip(found, expected):
        assert_same(f, e)
    assert found[-1] is None
    assert len(cache) == len(SENTENCES)
    assert cache.get_many([]) == [] and cache.put_many([], []) is None


def test_cache_persists_across_reopen(tmp_path):
    expected = outputs(len(WORDS))
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, expected)
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        assert_same(cache.get(WORDS), expected)
        assert cache.stats.rebuilt == 0


@pytest.mark.parametrize("change", [{"fingerprint": "teacher-b"}, {"space": "unary"},
                                    {"temperature": 1.0}, {"mode": "local"}])
def test_cache_namespaces_are_separate(tmp_path, change):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, outputs(len(WORDS)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # another namespace is not stale, just separate
        with TeacherCache(tmp_path, **{**SETTINGS, **change}) as other:
            assert other.get(WORDS) is None and len(other) == 0
    with TeacherCache(tmp_path, **SETTINGS) as cache:  # both coexist
        assert cache.get(WORDS) is not None


def test_cache_temperature_int_and_float_share_a_namespace(tmp_path):
    with TeacherCache(tmp_path, **{**SETTINGS, "temperature": 2}) as cache:
        cache.put(WORDS, outputs(len(WORDS)))
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        assert cache.get(WORDS) is not None


def test_cache_other_version_is_stale(tmp_path):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, outputs(len(WORDS)))
    with pytest.warns(UserWarning, match=r"\[skd-W200\]"):
        cache = TeacherCache(tmp_path, **SETTINGS, version=CACHE_FORMAT_VERSION + "-next")
    with cache:
        assert len(cache) == 0 and cache.get(WORDS) is None
        assert cache.stats.rebuilt == 1


@pytest.mark.parametrize("record", ["edited", "deleted", "garbage"])
def test_cache_mismatched_metadata_is_rebuilt(tmp_path, record):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, outputs(len(WORDS)))
    store, _ = raw_store(cache)
    (meta_key,) = [key for key in store.iterkeys() if len(key) != 64]
    if record == "edited":  # e.g. a folder copied from another teacher's namespace
        store.set(meta_key, json.dumps({**cache.meta, "fingerprint": "teacher-b"}))
    elif record == "deleted":
        store.delete(meta_key)
    else:
        store.set(meta_key, "{not json")
    store.close()
    with pytest.warns(UserWarning, match=r"\[skd-W200\]"):
        cache = TeacherCache(tmp_path, **SETTINGS)
    with cache:
        assert len(cache) == 0 and cache.get(WORDS) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt once, then fine
        TeacherCache(tmp_path, **SETTINGS).close()


def _npz(arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _with_checksum(payload):
    return hashlib.blake2b(payload, digest_size=16).digest() + payload


CORRUPTIONS = {
    "flipped byte": lambda v: v[:-20] + bytes([v[-20] ^ 0xFF]) + v[-19:],
    "truncated": lambda v: v[: len(v) // 2],
    "too short": lambda v: v[:5],
    "not npz, valid checksum": lambda v: _with_checksum(b"PK\x03\x04 not a zip archive"),
    "pickle, valid checksum": lambda v: _with_checksum(pickle.dumps({"unary": 1})),
    "npy, valid checksum": lambda v: _with_checksum(_npy(np.zeros(3))),
    "object array": lambda v: _with_checksum(_npz({"unary": np.array([None, 1])})),
    "pickled value": lambda v: {"unary": np.zeros(2)},  # diskcache would unpickle it
    "text value": lambda v: "not bytes",
}


@pytest.mark.parametrize("corrupt", CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_cache_corrupt_entry_is_dropped_and_recomputed(tmp_path, corrupt):
    expected = outputs(len(WORDS))
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put_many([WORDS, ["ok"]], [expected, outputs(1)])
    store, key = raw_store(cache)
    store.set(key, corrupt(store.get(key)))
    store.close()
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        with pytest.warns(UserWarning, match=r"\[skd-W201\]") as record:
            found = cache.get_many([WORDS, ["ok"]])
        assert str(cache.path) in str(record[0].message)
        assert found[0] is None and found[1] is not None
        assert cache.stats.dropped == 1 and WORDS not in cache
        cache.put(WORDS, expected)  # the caller recomputes it
        assert_same(cache.get(WORDS), expected)


def test_cache_keys_and_items_list_verified_entries(tmp_path):
    stored = {sentence_key(words): outputs(len(words), seed=i) for i, words in enumerate(SENTENCES)}
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        assert list(cache.keys()) == [] and list(cache.items()) == []
        cache.put_many(SENTENCES, [outputs(len(words), seed=i) for i, words in enumerate(SENTENCES)])
        assert sorted(cache.keys()) == sorted(stored)  # the metadata record is not a key
        items = dict(cache.items())
    assert sorted(items) == sorted(stored)
    for key, arrays in stored.items():
        assert_same(items[key], arrays)


def test_cache_items_drop_corrupt_entries(tmp_path):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put_many([WORDS, ["ok"]], [outputs(len(WORDS)), outputs(1)])
    store, key = raw_store(cache)
    store.set(key, CORRUPTIONS["flipped byte"](store.get(key)))
    store.close()
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        with pytest.warns(UserWarning, match=r"\[skd-W201\]"):
            assert list(dict(cache.items())) == [sentence_key(["ok"])]
        assert cache.stats.dropped == 1 and len(cache) == 1


def test_cache_copy_from_copies_verified_entries(tmp_path):
    with TeacherCache(tmp_path / "a", **SETTINGS) as a, TeacherCache(tmp_path / "b", **SETTINGS) as b:
        a.put_many(SENTENCES, [outputs(len(words), seed=i) for i, words in enumerate(SENTENCES)])
        b.put(["ok"], outputs(1))
        assert b.copy_from(a, batch_size=3) == len(SENTENCES)
        assert len(b) == len(SENTENCES) + 1
        for i, words in enumerate(SENTENCES):
            assert_same(b.get(words), outputs(len(words), seed=i))
    store, key = raw_store(a)
    store.set(key, b"garbage")
    store.close()
    with TeacherCache(tmp_path / "a", **SETTINGS) as a, TeacherCache(tmp_path / "c", **SETTINGS) as c:
        with pytest.warns(UserWarning, match=r"\[skd-W201\]"):
            assert c.copy_from(a) == len(SENTENCES) - 1
        assert WORDS not in c


def test_cache_copy_from_refuses_another_namespace(tmp_path):
    with TeacherCache(tmp_path / "a", **SETTINGS) as a, \
            TeacherCache(tmp_path / "b", **{**SETTINGS, "fingerprint": "teacher-b"}) as b:
        with pytest.raises(ValueError, match=r"\[skd-E238\]"):
            b.copy_from(a)


def test_cache_warns_once_per_cache_for_corrupt_entries(tmp_path):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put_many(SENTENCES, [outputs(len(words)) for words in SENTENCES])
    store = diskcache.Cache(str(cache.path))
    for key in [key for key in store.iterkeys() if len(key) == 64]:
        store.set(key, b"garbage bytes, no checksum")
    store.close()
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        with pytest.warns(UserWarning, match=r"\[skd-W201\]") as record:
            assert cache.get_many(SENTENCES) == [None] * len(SENTENCES)
        assert len(record) == 1
        assert cache.stats.dropped == len(SENTENCES) and len(cache) == 0


def test_cache_wrong_array_names_are_dropped(tmp_path):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, {"unary": np.zeros((5, 3), np.float32)})
    with TeacherCache(tmp_path, **SETTINGS, array_names=["unary", "pairs"]) as cache:
        with pytest.warns(UserWarning, match=r"\[skd-W201\]"):
            assert cache.get(WORDS) is None
        with pytest.raises(ValueError, match=r"\[skd-E210\]"):
            cache.put(WORDS, {"unary": np.zeros((5, 3), np.float32)})


def test_cache_garbage_database_is_recreated(tmp_path):
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, outputs(len(WORDS)))
    for name in ("cache.db-wal", "cache.db-shm"):
        (cache.path / name).unlink(missing_ok=True)
    (cache.path / "cache.db").write_bytes(b"this is not an SQLite database\n" * 100)
    with pytest.warns(UserWarning, match=r"\[skd-W202\]"):
        cache = TeacherCache(tmp_path, **SETTINGS)
    with cache:
        assert cache.get(WORDS) is None and cache.stats.rebuilt == 1
        expected = outputs(len(WORDS))
        cache.put(WORDS, expected)
        assert_same(cache.get(WORDS), expected)


def test_cache_creates_missing_parents(tmp_path):
    with TeacherCache(tmp_path / "a" / "b", **SETTINGS) as cache:
        assert cache.path.parent == tmp_path / "a" / "b" and cache.path.is_dir()


def test_cache_directory_that_is_a_file_raises(tmp_path):
    path = tmp_path / "cache"
    path.write_text("not a folder")
    with pytest.raises(ValueError, match=r"\[skd-E200\]"):
        TeacherCache(path, **SETTINGS)


@pytest.mark.parametrize("words", [
    ["naïve", "東京", "🙂", "\u00a0", " ", "\t", "a b", "", "\ud800"],   # odd but valid tokens
    ["a", "b"], ["a b"], ["ab"], ['a", "b'],                          # no key collisions
])
def test_cache_keys_unicode_and_whitespace_tokens(tmp_path, words):
    others = [["a", "b"], ["a b"], ["ab"], ['a", "b'], ["a", "b", ""]]
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        expected = outputs(len(words))
        cache.put(words, expected)
        assert_same(cache.get(list(words)), expected)
        assert_same(cache.get(tuple(words)), expected)
        assert all(cache.get(other) is None for other in others if other != words)


def test_cache_empty_sentence(cache):
    expected = {"unary": np.zeros((0, 3), np.float32), "top1": np.zeros(0, np.int64)}
    cache.put([], expected)
    assert_same(cache.get([]), expected)
    assert cache.get([""]) is None


@pytest.mark.parametrize("words", ["New York", [1, 2], [b"New"]])
def test_cache_rejects_non_word_keys(cache, words):
    with pytest.raises(TypeError, match=r"\[skd-E201\]"):
        cache.get(words)


@pytest.mark.parametrize("arrays, code", [
    ([np.zeros(2)], "E202"),
    ({"file": np.zeros(2)}, "E203"),
    ({"not-an-identifier": np.zeros(2)}, "E203"),
    ({"words": np.array(["a", "b"])}, "E204"),
    ({"objects": np.array([None, 1])}, "E204"),
])
def test_cache_rejects_bad_arrays(cache, arrays, code):
    with pytest.raises((TypeError, ValueError), match=rf"\[skd-{code}\]"):
        cache.put(["a", "b"], arrays)
    assert len(cache) == 0


def test_cache_rejects_bad_settings_and_batches(tmp_path, cache):
    with pytest.raises(ValueError, match=r"\[skd-E205\]"):
        cache.put_many([WORDS, WORDS], [outputs(5)])
    for temperature in (0, -1.0, float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match=r"\[skd-E206\]"):
            TeacherCache(tmp_path, **{**SETTINGS, "temperature": temperature})
    with pytest.raises(ValueError, match=r"\[skd-E207\]"):
        TeacherCache(tmp_path, **{**SETTINGS, "space": ""})
    cache.close()
    with pytest.raises(ValueError, match=r"\[skd-E209\]"):
        cache.get(WORDS)


# --- fingerprint_pipeline -------------------------------------------------------------------

TINY_TAGGER = {"model": {
    "@architectures": "spacy.Tagger.v2",
    "tok2vec": {"@architectures": "spacy.HashEmbedCNN.v2", "width": 8, "depth": 1,
                "embed_size": 50, "window_size": 1, "maxout_pieces": 2,
                "subword_features": False, "pretrained_vectors": None},
}}


@pytest.fixture(scope="module")
def teacher():
    nlp = spacy.blank("en")
    nlp.add_pipe("tagger", config=TINY_TAGGER)
    nlp.add_pipe("tagger", name="tagger2", config=TINY_TAGGER)
    examples = [Example.from_dict(nlp.make_doc("a b c"), {"tags": ["X", "Y", "X"]}),
                Example.from_dict(nlp.make_doc("d e"), {"tags": ["Y", "Z"]})]
    nlp.initialize(lambda: examples)
    return nlp


def test_fingerprint_is_stable(teacher, tmp_path):
    fingerprint = fingerprint_pipeline(teacher, "tagger")
    assert len(fingerprint) == 64
    teacher("unseen words grow the vocab")
    assert fingerprint_pipeline(teacher, "tagger") == fingerprint
    teacher.to_disk(tmp_path)
    assert fingerprint_pipeline(spacy.load(tmp_path), "tagger") == fingerprint


def test_fingerprint_names_the_component(teacher):
    assert fingerprint_pipeline(teacher, "tagger") != fingerprint_pipeline(teacher, "tagger2")
    with pytest.raises(ValueError, match=r"\[skd-E208\]"):
        fingerprint_pipeline(teacher, "ner")


def test_fingerprint_changes_with_a_weight(teacher):
    before = fingerprint_pipeline(teacher, "tagger")
    # A weight of *another* component counts too: the teacher pipeline is hashed as a whole.
    node = next(node for node in teacher.get_pipe("tagger2").model.walk()
                if node.has_param("W"))
    original = node.get_param("W").copy()
    node.set_param("W", original + 1)
    try:
        assert fingerprint_pipeline(teacher, "tagger") != before
    finally:
        node.set_param("W", original)
    assert fingerprint_pipeline(teacher, "tagger") == before


# -- full and read-only disks (issue 20) ----------------------------------------------------------
# Tests run as root, where chmod does not stop writes: the disk's refusals are raised by hand.
def refuse(monkeypatch, method: str, err: Exception) -> None:
    def raise_err(*args, **kwargs):
        raise err
    monkeypatch.setattr(diskcache.Cache, method, raise_err)


@pytest.mark.parametrize("err", [sqlite3.OperationalError("database or disk is full"),
                                 OSError(28, "No space left on device")])
def test_cache_full_disk_is_a_coded_error_naming_the_folder_and_the_fix(cache, monkeypatch, err):
    refuse(monkeypatch, "set", err)
    with pytest.raises(ValueError, match=r"\[skd-E334\]") as info:
        cache.put(WORDS, outputs(5))
    message = str(info.value)
    assert str(cache.path) in message
    assert "Free some space" in message and "cache_dir" in message and "cache = false" in message


def test_cache_read_error_is_a_coded_error(cache, monkeypatch):
    cache.put(WORDS, outputs(5))
    refuse(monkeypatch, "get", sqlite3.OperationalError("disk I/O error"))
    with pytest.raises(ValueError, match=r"\[skd-E334\].*disk I/O error"):
        cache.get(WORDS)


def test_cache_complete_read_only_cache_is_readable(tmp_path, monkeypatch):
    with TeacherCache(tmp_path / "cache", **SETTINGS) as cache:
        for i, words in enumerate(SENTENCES):
            cache.put(words, outputs(len(words), seed=i))
        big = {"unary": np.ones((600, 600), dtype=np.float32)}  # > 1 MiB: a file beside the database
        cache.put(["big"], big)
    # opening for writing fails as on a read-only disk
    monkeypatch.setattr(diskcache.Cache, "__init__", lambda *a, **k: (_ for _ in ()).throw(
        sqlite3.OperationalError("attempt to write a readonly database")))
    with pytest.warns(UserWarning, match=r"\[skd-W332\]"):
        cache = TeacherCache(tmp_path / "cache", **SETTINGS)
    with cache:
        for i, words in enumerate(SENTENCES):
            assert_same(cache.get(words), outputs(len(words), seed=i))
        assert_same(cache.get(["big"]), big)
        assert cache.get(["not", "there"]) is None
        assert len(cache) == len(SENTENCES) + 1 and WORDS in cache
        assert len(list(cache.items())) == len(SENTENCES) + 1
        with pytest.raises(ValueError, match=r"\[skd-E334\].*read-only"):
            cache.put(["new"], outputs(1))


def test_cache_read_only_without_a_matching_cache_is_a_coded_error(tmp_path, monkeypatch):
    with TeacherCache(tmp_path / "cache", **SETTINGS) as cache:
        cache.put(WORDS, outputs(5))
    monkeypatch.setattr(diskcache.Cache, "__init__", lambda *a, **k: (_ for _ in ()).throw(
        sqlite3.OperationalError("attempt to write a readonly database")))
    for settings in ({**SETTINGS, "temperature": 3.0}, SETTINGS):  # new namespace, then other folder
        directory = tmp_path / ("cache" if settings is not SETTINGS else "empty")
        with pytest.raises(ValueError, match=r"\[skd-E334\].*readonly database"):
            TeacherCache(directory, **settings)


def test_cache_read_only_changes_nothing_issue20(tmp_path):
    """read_only=True (how merge-cache reads shards): a garbage database is E340 and stays on
    disk; a corrupt entry is a miss counted in stats.dropped, kept, without W201."""
    with TeacherCache(tmp_path, **SETTINGS) as cache:
        cache.put(WORDS, outputs(len(WORDS)))
        cache.put(["Hello"], outputs(1))
    store, key = raw_store(cache)
    with store:
        store.set(key, b"\0" * 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with TeacherCache(tmp_path, **SETTINGS, read_only=True) as reader:
            assert reader.get(WORDS) is None and reader.get(["Hello"]) is not None
            assert len(list(reader.items())) == 1 and reader.stats.dropped == 2 and len(reader) == 2
            with pytest.raises(ValueError, match=r"\[skd-E334\].*read-only"):
                reader.put(["new"], outputs(1))
    with pytest.raises(ValueError, match=r"\[skd-E340\].*no readable database"):
        TeacherCache(tmp_path / "new", **SETTINGS, read_only=True)
    assert not (tmp_path / "new").exists()
    for name in ("cache.db-wal", "cache.db-shm"):
        (cache.path / name).unlink(missing_ok=True)
    garbage = b"this is not an SQLite database\n" * 100
    (cache.path / "cache.db").write_bytes(garbage)
    with pytest.raises(ValueError, match=r"\[skd-E340\].*no readable database"):
        TeacherCache(tmp_path, **SETTINGS, read_only=True)
    assert (cache.path / "cache.db").read_bytes() == garbage
