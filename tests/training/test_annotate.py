"""The offline teacher pass (spacy_skd.training.annotate): shards, resume, merge, and that its
cache is the one structural_kd reads."""
import json
import os
import re
import subprocess
import sys
import warnings

import diskcache
import numpy as np
import pytest
import spacy
from spacy.tokens import DocBin

from spacy_skd.teacher.runner import TeacherRunner
from spacy_skd.training import texts as texts_module
from spacy_skd.training.annotate import annotate, parse_shard
from spacy_skd.training.conllu import create_conllu_reader
from spacy_skd.training.manifest import MANIFEST, read_manifest, shard_dir, write_manifest
from spacy_skd.training.merge import merge_shards
from spacy_skd.training.texts import InputSplit
from spacy_skd.training.cache import sentence_key
from tests.conftest import FIXTURES, REPO_ROOT, examples_from, train_tagger

TEXTS = [
    ("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]),
    ("Mary works at Google in London .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
    ("The cat sat on the mat .", []),
    ("Paris is big", [(0, 1, "LOC")]),
]
# raw input: a duplicate, a blank line and a one-token text
LINES = ["Anna visited Berlin .", "John Smith lives in New York City .", "", "Google hired Peter .",
         "Anna visited Berlin .", "Hello", "Mary works at Google in London .", "The cat sat on the mat ."]
DISTINCT = list(dict.fromkeys(line for line in LINES if line))


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    make = lambda nlp: examples_from(nlp, TEXTS)  # noqa: E731
    return {"crf": train_tagger("skd_crf_tagger", make, root / "crf", steps=2),
            "crf_b": train_tagger("skd_crf_tagger", make, root / "crf_b", steps=3)}


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf8")
    return path


def entries(path, runner):
    with runner.open_cache(path) as cache:
        return dict(cache.items())


def assert_same_entries(found, expected):
    """Same sentences, arrays, dtypes and shapes; values equal up to float32 rounding. Outputs of
    one sentence depend on the batch it was padded into (BLAS picks kernels by shape and thread
    count), so shards, resumed runs and engines agree to ~1e-6, not bit for bit; entries that
    are copied (merge) are byte-identical, tested in test_cache.py."""
    assert sorted(found) == sorted(expected)
    for key, arrays in expected.items():
        assert sorted(found[key]) == sorted(arrays)
        for name, array in arrays.items():
            assert found[key][name].dtype == array.dtype and found[key][name].shape == array.shape
            if array.dtype.kind in "biu":
                np.testing.assert_array_equal(found[key][name], array)
            else:
                np.testing.assert_allclose(found[key][name], array, rtol=1e-5, atol=1e-5)


def kd_student(teacher, cache_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd", config={"objective": "structural"})
    nlp.add_pipe("skd_crf_tagger", name="ner")
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teacher), "cache_dir": str(cache_dir)}
    return nlp


def test_annotate_matches_structural_kd_potentials(teachers, tmp_path):
    """One shard holds, for every sentence, exactly what structural_kd's initialize caches."""
    nlp = kd_student(teachers["crf"], tmp_path / "kd")
    examples = examples_from(nlp, TEXTS)
    nlp.initialize(lambda: examples)
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(text for text, _ in TEXTS), encoding="utf8")
    runner = TeacherRunner(teachers["crf"], "ner")
    summary = annotate(runner, path, tmp_path / "out", batch_size=64, progress=False)
    assert (summary["texts"], summary["computed"], summary["reused"]) == (4, 4, 0)
    expected = entries(tmp_path / "kd", runner)
    assert len(expected) == len(TEXTS)
    assert_same_entries(entries(summary["shard_dir"], runner), expected)
    assert summary["cache_path"].endswith(runner.open_cache(tmp_path / "kd").path.name)


def test_annotate_two_shards_merge_equal_one_shard(teachers, texts, tmp_path, monkeypatch):
    runner = TeacherRunner(teachers["crf"], "ner")
    one = annotate(runner, texts, tmp_path / "one", batch_size=2, progress=False)
    assert one["texts"] == len(DISTINCT)
    sizes = [annotate(runner, texts, tmp_path / "two", shard=f"{i}/2", batch_size=2, progress=False)["texts"]
             for i in range(2)]
    assert sizes == [3, 3]  # text k goes to shard k % 2
    summary = merge_shards([tmp_path / "two"], tmp_path / "merged")
    assert (summary["shards"], summary["entries"], summary["missing"]) == (2, len(DISTINCT), {})
    merged = entries(tmp_path / "merged", runner)
    assert set(merged) == {sentence_key(line.split()) for line in DISTINCT}
    assert_same_entries(merged, entries(one["shard_dir"], runner))

    def no_teacher(self, batch):
        raise AssertionError(f"the teacher ran for {batch}")

    monkeypatch.setattr(TeacherRunner, "__call__", no_teacher)
    nlp = kd_student(teachers["crf"], tmp_path / "merged")
    examples = [eg for eg in examples_from(nlp, [(line, []) for line in DISTINCT])]
    nlp.initialize(lambda: examples)  # every sentence found: the teacher never runs
    nlp.update(examples)


def test_annotate_shared_split_reads_and_hashes_the_input_once(teachers, texts, tmp_path, monkeypatch):
    runner = TeacherRunner(teachers["crf"], "ner")
    alone = [annotate(runner, texts, tmp_path / "alone", shard=f"{i}/3", batch_size=2, progress=False)
             for i in range(3)]
    calls = {"read_texts": 0, "hash_input": 0}
    for name in calls:
        original = getattr(texts_module, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(texts_module, name, counted)
    split = InputSplit(texts, 3, runner.lang)
    shared = [annotate(runner, texts, tmp_path / "shared", shard=f"{i}/3", batch_size=2, progress=False, split=split)
              for i in range(3)]
    assert calls == {"read_texts": 1, "hash_input": 1}
    assert [s["texts"] for s in shared] == [s["texts"] for s in alone] == [2, 2, 2]
    for a, b in zip(alone, shared):  # the same shards, manifests and entries as one read per shard
        assert read_manifest(a["shard_dir"]) == read_manifest(b["shard_dir"])
        assert_same_entries(entries(b["shard_dir"], runner), entries(a["shard_dir"], runner))
    with pytest.raises(ValueError, match="E250"):
        annotate(runner, texts, tmp_path / "other", shard="0/2", progress=False, split=split)


def test_annotate_rerun_of_complete_shard_computes_nothing(teachers, texts, tmp_path, monkeypatch):
    runner = TeacherRunner(teachers["crf"], "ner")
    annotate(runner, texts, tmp_path / "out", batch_size=4, progress=False)
    monkeypatch.setattr(TeacherRunner, "__call__", lambda self, batch: pytest.fail("teacher ran"))
    summary = annotate(runner, texts, tmp_path / "out", batch_size=4, progress=False)
    assert summary["skipped"] and (summary["computed"], summary["reused"]) == (0, len(DISTINCT))


def test_annotate_resumes_incomplete_shard(teachers, texts, tmp_path):
    runner = TeacherRunner(teachers["crf"], "ner")
    full = annotate(runner, texts, tmp_path / "full", batch_size=2, progress=False)
    first = annotate(runner, texts, tmp_path / "out", batch_size=2, progress=False)
    directory = shard_dir(tmp_path / "out", (0, 1))
    write_manifest(directory, {**read_manifest(directory), "complete": False})
    with runner.open_cache(directory) as cache:  # as if killed after the first two batches
        for line in DISTINCT[4:]:
            cache._store.delete(sentence_key(line.split()))
    summary = annotate(runner, texts, tmp_path / "out", batch_size=2, progress=False)
    assert (summary["computed"], summary["reused"], summary["skipped"]) == (2, 4, False)
    assert read_manifest(directory)["complete"] is True
    assert_same_entries(entries(first["shard_dir"], runner), entries(full["shard_dir"], runner))


KILLER = """
import os, signal, sys
from spacy_skd.teacher.runner import TeacherRunner
call = TeacherRunner.__call__
calls = []
def killing(self, batch):
    if len(calls) == int(os.environ["KILL_AFTER"]):
        os.kill(os.getpid(), signal.SIGKILL)  # a crash: no cleanup, no final manifest
    calls.append(1)
    return call(self, batch)
TeacherRunner.__call__ = killing
import spacy_skd.cli  # registers `skd` as the spacy_cli entry point does for `python -m spacy`
from spacy.cli._util import app
app(sys.argv[1:], prog_name="spacy")
"""


@pytest.mark.slow
def test_annotate_killed_process_resumes(teachers, texts, tmp_path):
    """SIGKILL after two batches; the restart computes only the rest and matches a full run."""
    args = ["skd", "annotate", str(teachers["crf"]), str(texts), str(tmp_path / "out"), "--batch-size", "2"]
    env = {**os.environ, "KILL_AFTER": "2", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLER, *args], env=env, cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr
    directory = shard_dir(tmp_path / "out", (0, 1))
    assert read_manifest(directory)["complete"] is False
    runner = TeacherRunner(teachers["crf"], "ner")
    assert len(entries(directory, runner)) == 4
    summary = annotate(runner, texts, tmp_path / "out", batch_size=2, progress=False)
    assert (summary["computed"], summary["reused"]) == (2, 4)
    full = annotate(runner, texts, tmp_path / "full", batch_size=2, progress=False)
    assert_same_entries(entries(directory, runner), entries(full["shard_dir"], runner))


def test_annotate_reads_docbin_like_text(teachers, texts, tmp_path):
    nlp = spacy.blank("en")
    path = tmp_path / "texts.spacy"
    DocBin(docs=[nlp.make_doc(line) for line in LINES if line]).to_disk(path)
    runner = TeacherRunner(teachers["crf"], "ner")
    from_bin = annotate(runner, path, tmp_path / "bin", progress=False)
    from_text = annotate(runner, texts, tmp_path / "text", progress=False)
    assert from_bin["texts"] == len(DISTINCT)
    assert read_manifest(from_bin["shard_dir"])["input"]["format"] == "docbin"
    assert_same_entries(entries(from_bin["shard_dir"], runner), entries(from_text["shard_dir"], runner))


def test_annotate_reads_the_words_of_a_conllu_treebank(teachers, tmp_path):
    """A treebank gives its syntactic words, as the parser students' reader does; read as raw text
    its columns would become the words."""
    treebank = FIXTURES / "ewt_sample.conllu"
    runner = TeacherRunner(teachers["crf"], "ner")
    summary = annotate(runner, treebank, tmp_path / "out", progress=False)
    gold = [tuple(t.text for t in eg.predicted) for eg in create_conllu_reader(treebank)(spacy.blank("en"))]
    assert summary["texts"] == len(gold) == 5 and ("Today", "'s", "Article") in gold
    assert read_manifest(summary["shard_dir"])["input"]["format"] == "conllu"
    stored = entries(summary["shard_dir"], runner)
    assert sorted(stored) == sorted(sentence_key(words) for words in gold)


def test_annotate_one_token_text(teachers, tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("Hello\n", encoding="utf8")
    runner = TeacherRunner(teachers["crf"], "ner")
    summary = annotate(runner, path, tmp_path / "out", progress=False)
    (arrays,) = entries(summary["shard_dir"], runner).values()
    assert arrays["emissions"].shape == (1, len(runner.nlp.get_pipe("ner").tags))


def test_annotate_empty_input_gives_empty_complete_shard(teachers, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n\n", encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W154\]"):
        summary = annotate(teachers["crf"], path, tmp_path / "out", progress=False)
    assert (summary["texts"], summary["computed"]) == (0, 0)
    assert read_manifest(summary["shard_dir"])["complete"] is True
    assert merge_shards([summary["shard_dir"]], tmp_path / "merged")["entries"] == 0


@pytest.mark.parametrize("spec", ["2/2", "-1/2", "0/0", "a/b", "1", "0/1/2", (1, 1), (0.5, 2)])
def test_annotate_bad_shard_spec(spec):
    with pytest.raises(ValueError, match=r"\[skd-E223\]"):
        parse_shard(spec)


def test_annotate_parse_shard():
    assert parse_shard("3/4") == (3, 4) and parse_shard((0, 1)) == (0, 1)


def test_annotate_refuses_bad_teachers_and_inputs(teachers, texts, tmp_path):
    with pytest.raises(ValueError, match=r"\[skd-E224\]"):
        annotate(tmp_path / "missing", texts, tmp_path / "out")
    with pytest.raises(ValueError, match=r"\[skd-E225\].*Its components: ner"):
        annotate(teachers["crf"], texts, tmp_path / "out", component="tagger")
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    with pytest.raises(ValueError, match=r"\[skd-E226\]"):
        TeacherRunner(nlp, "sentencizer")
    with pytest.raises(ValueError, match=r"\[skd-E227\]"):
        annotate(teachers["crf"], tmp_path / "missing.txt", tmp_path / "out")
    with pytest.raises(ValueError, match=r"\[skd-E235\]"):
        annotate(teachers["crf"], texts, tmp_path / "out", batch_size=0)
    with pytest.raises(ValueError, match=r"\[skd-E236\]"):
        annotate(teachers["crf"], texts, tmp_path / "out", store="fp8")


def test_annotate_refuses_shard_of_another_teacher(teachers, texts, tmp_path):
    annotate(teachers["crf"], texts, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=r"\[skd-E228\].*teacher.fingerprint"):
        annotate(teachers["crf_b"], texts, tmp_path / "out", progress=False)
    other = tmp_path / "other.txt"
    other.write_text("Other text .\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"\[skd-E228\].*input.sha256"):
        annotate(teachers["crf"], other, tmp_path / "out", progress=False)


@pytest.fixture
def two_shards(teachers, texts, tmp_path):
    runner = TeacherRunner(teachers["crf"], "ner")
    return [annotate(runner, texts, tmp_path / "out", shard=(i, 2), progress=False)["shard_dir"] for i in range(2)]


def test_merge_refuses_other_teacher(teachers, texts, two_shards, tmp_path):
    other = annotate(teachers["crf_b"], texts, tmp_path / "b", shard=(1, 2), progress=False)["shard_dir"]
    with pytest.raises(ValueError, match=r"\[skd-E232\].*teacher.fingerprint"):
        merge_shards([two_shards[0], other], tmp_path / "merged")


def test_merge_refuses_other_shard_count(teachers, texts, two_shards, tmp_path):
    other = annotate(teachers["crf"], texts, tmp_path / "three", shard=(2, 3), progress=False)["shard_dir"]
    with pytest.raises(ValueError, match=r"\[skd-E232\].*shard.count"):
        merge_shards([*two_shards, other], tmp_path / "merged")


def test_merge_refuses_incomplete_duplicate_and_missing_shards(two_shards, tmp_path):
    with pytest.raises(ValueError, match=r"\[skd-E233\]"):
        merge_shards([two_shards[0], two_shards[0], two_shards[1]], tmp_path / "merged")
    with pytest.raises(ValueError, match=r"\[skd-E234\].*\[1\] of 2"):
        merge_shards([two_shards[0]], tmp_path / "merged")
    with pytest.raises(ValueError, match=r"\[skd-E230\]"):
        merge_shards([tmp_path / "nothing"], tmp_path / "merged")
    write_manifest(two_shards[1], {**read_manifest(two_shards[1]), "complete": False})
    with pytest.raises(ValueError, match=r"\[skd-E231\]"):
        merge_shards(two_shards, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()  # nothing is written before every check passed


def test_merge_shards_of_several_inputs_into_one_cache(teachers, texts, two_shards, tmp_path):
    """The unlabeled text of several corpora, each annotated in its own shards, merges into one
    cache; each input is still checked as one complete annotation."""
    runner = TeacherRunner(teachers["crf"], "ner")
    other = tmp_path / "es" / "texts.txt"  # the same file name as `texts`: named by hash too
    other.parent.mkdir()
    other.write_text("Lisa met Tom in Rome .\nAnna visited Berlin .\nNew text here\n", encoding="utf8")
    three = [annotate(runner, other, tmp_path / "other", shard=(i, 3), progress=False)["shard_dir"] for i in range(3)]
    names = [f"texts.txt ({read_manifest(d)['input']['sha256'][:12]})" for d in (two_shards[0], three[0])]
    with pytest.raises(ValueError, match=rf"\[skd-E234\].*\[2\] of 3 of '{re.escape(names[1])}'"):
        merge_shards([*two_shards, *three[:2]], tmp_path / "merged")
    summary = merge_shards([*two_shards, *three], tmp_path / "merged")
    assert [(part["name"], part["count"], part["texts"]) for part in summary["inputs"]] == [
        (names[0], 2, len(DISTINCT)), (names[1], 3, 3)]
    # "Anna visited Berlin ." is in both inputs: copied twice, stored once
    assert summary["shards"] == 5 and summary["texts"] == len(DISTINCT) + 3 and summary["missing"] == {}
    assert summary["entries"] == len(DISTINCT) + 3
    keys = {sentence_key(line.split()) for line in [*DISTINCT, "Lisa met Tom in Rome .", "New text here"]}
    assert set(entries(tmp_path / "merged", runner)) == keys and len(keys) == len(DISTINCT) + 2
    merged = json.loads((tmp_path / "merged" / "merged.json").read_text(encoding="utf8"))
    assert [part["name"] for part in merged["merged"]["inputs"]] == names
    other_teacher = annotate(teachers["crf_b"], other, tmp_path / "b", progress=False)["shard_dir"]
    with pytest.raises(ValueError, match=r"\[skd-E232\].*teacher.fingerprint"):
        merge_shards([*two_shards, other_teacher], tmp_path / "merged_b")


def test_merging_into_a_merged_folder_adds_to_its_record(teachers, texts, two_shards, tmp_path):
    """One merge per language into one cache folder: merged.json lists every input merged so far,
    a re-merged input replaces its own line, another teacher's record is kept under `others`, and
    an unreadable merged.json is rewritten with a warning, its entries untouched."""
    runner = TeacherRunner(teachers["crf"], "ner")
    other = tmp_path / "es" / "more.txt"
    other.parent.mkdir()
    other.write_text("Lisa met Tom in Rome .\nNew text here\n", encoding="utf8")
    es = annotate(runner, other, tmp_path / "es_shards", progress=False)["shard_dir"]
    output = tmp_path / "merged"

    def record():
        return json.loads((output / "merged.json").read_text(encoding="utf8"))

    merge_shards(two_shards, output)
    # the same teacher loaded from another path, by another version: still the same namespace
    write_manifest(es, {**read_manifest(es), "spacy_skd": "0.0.0",
                        "teacher": {**read_manifest(es)["teacher"], "path": "elsewhere/model-best"}})
    merge_shards([es], output)
    assert [(part["name"], part["texts"]) for part in record()["merged"]["inputs"]] == [
        ("texts.txt", len(DISTINCT)), ("more.txt", 2)]
    assert record()["merged"]["entries"] == len(DISTINCT) + 2 == len(entries(output, runner))
    merge_shards(two_shards, output)  # again: the same two inputs, not three
    assert [part["name"] for part in record()["merged"]["inputs"]] == ["more.txt", "texts.txt"]
    assert record()["merged"]["texts"] == len(DISTINCT) + 2

    merge_shards([annotate(teachers["crf_b"], other, tmp_path / "b", progress=False)["shard_dir"]], output)
    assert record()["teacher"]["fingerprint"] != record()["others"][0]["teacher"]["fingerprint"]
    assert [part["name"] for part in record()["merged"]["inputs"]] == ["more.txt"]
    assert [part["name"] for part in record()["others"][0]["merged"]["inputs"]] == ["more.txt", "texts.txt"]

    (output / "merged.json").write_text("{not json", encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W156\].*merged.json"):
        merge_shards([es], output)
    assert [part["name"] for part in record()["merged"]["inputs"]] == ["more.txt"] and "others" not in record()
    assert len(entries(output, runner)) == len(DISTINCT) + 2  # the entries were never touched


def test_merge_allow_partial_warns(two_shards, tmp_path):
    with pytest.warns(UserWarning, match=r"\[skd-W155\]"):
        summary = merge_shards([two_shards[0]], tmp_path / "merged", allow_partial=True)
    assert (summary["missing"], summary["entries"]) == ({"texts.txt": [1]}, 3)


def test_manifest_is_written_atomically(tmp_path):
    write_manifest(tmp_path, {"format": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST]  # no temporary left behind
    (tmp_path / MANIFEST).write_text("{not json", encoding="utf8")
    with pytest.raises(ValueError, match=r"\[skd-E229\]"):
        read_manifest(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_manifest(tmp_path, {"format": 1})


def test_merge_corrupt_shard_fails_names_it_and_annotate_recomputes_it_issue20(teachers, texts, two_shards, tmp_path):
    """A complete shard whose cache.db is truncated: merge raises E341 naming it, marks it
    incomplete, leaves its folder as it was and copies the sound shard; rerunning annotate
    recomputes that shard alone, and the merge then holds every sentence."""
    runner = TeacherRunner(teachers["crf"], "ner")
    with runner.open_cache(two_shards[1]) as cache:
        db = cache.path / "cache.db"
    db.write_bytes(db.read_bytes()[:2048])  # truncated: the header page survives, the table does not
    damaged = db.read_bytes()
    with pytest.raises(ValueError, match=rf"\[skd-E341\] merge-cache: 1 shard.*'{re.escape(str(two_shards[1]))}'"
                                         r" \(shard 1/2\): its cache cannot be read"):
        merge_shards(two_shards, tmp_path / "merged")
    assert not read_manifest(two_shards[1])["complete"] and read_manifest(two_shards[0])["complete"]
    assert db.read_bytes() == damaged  # read, never rebuilt or deleted
    assert len(entries(tmp_path / "merged", runner)) == 3  # the sound shard's entries
    assert not (tmp_path / "merged" / "merged.json").exists()
    with pytest.warns(UserWarning, match=r"\[skd-W202\]"):
        summary = annotate(runner, texts, tmp_path / "out", shard=(1, 2), progress=False)
    assert (summary["skipped"], summary["computed"], summary["reused"]) == (False, 3, 0)
    assert annotate(runner, texts, tmp_path / "out", shard=(0, 2), progress=False)["skipped"]
    assert merge_shards(two_shards, tmp_path / "merged")["entries"] == len(DISTINCT)


def test_merge_shard_with_lost_or_corrupt_entries_is_marked_incomplete_issue20(teachers, texts, two_shards, tmp_path):
    """Entries deleted from a complete shard, or one whose checksum fails: E341 says what was lost,
    and annotate recomputes exactly those sentences."""
    runner = TeacherRunner(teachers["crf"], "ner")
    with runner.open_cache(two_shards[0]) as cache:
        keys = sorted(cache.keys())
    with diskcache.Cache(str(runner.open_cache(two_shards[0]).path)) as store:
        del store[keys[0]]
        store.set(keys[1], b"\0" * 40)  # fails its checksum
    with pytest.raises(ValueError, match=r"\[skd-E341\].*\(shard 0/2\): 1 corrupt entries.*1 of 3 sentences readable"):
        merge_shards(two_shards, tmp_path / "merged")
    assert not read_manifest(two_shards[0])["complete"]
    with pytest.warns(UserWarning, match=r"\[skd-W201\]"):
        summary = annotate(runner, texts, tmp_path / "out", shard=(0, 2), progress=False)
    assert (summary["computed"], summary["reused"]) == (2, 1)
    assert merge_shards(two_shards, tmp_path / "merged")["entries"] == len(DISTINCT)
    with runner.open_cache(two_shards[1]) as cache:
        key = next(iter(cache.keys()))
    with diskcache.Cache(str(runner.open_cache(two_shards[1]).path)) as store:
        del store[key]
    with pytest.raises(ValueError, match=r"\[skd-E341\].*\(shard 1/2\): it holds 2 of the 3 sentences"):
        merge_shards(two_shards, tmp_path / "merged")


def test_annotate_line_too_long_for_the_bound_is_counted_not_stored_issue20(teachers, tmp_path):
    """A 10,000-token line with a bound it cannot fit alone: W341, not stored, counted in the
    manifest (`too_long`), so merge-cache does not take it for a lost entry."""
    path = tmp_path / "texts.txt"
    path.write_text("Anna visited Berlin .\n" + " ".join(["word"] * 10_000) + "\nHello\n", encoding="utf8")
    runner = TeacherRunner(teachers["crf"], "ner", max_batch_cost=TeacherRunner(teachers["crf"], "ner").cost(1000))
    with pytest.warns(UserWarning, match=r"\[skd-W341\].*1 sentence\(s\).*the longest: 10000 tokens"):
        summary = annotate(runner, path, tmp_path / "out", progress=False)
    assert (summary["texts"], summary["computed"], summary["too_long"]) == (3, 2, 1)
    assert read_manifest(summary["shard_dir"])["too_long"] == 1 and len(entries(summary["shard_dir"], runner)) == 2
    assert merge_shards([summary["shard_dir"]], tmp_path / "merged")["entries"] == 2
    again = annotate(runner, path, tmp_path / "out", progress=False)
    assert again["skipped"] and (again["reused"], again["too_long"]) == (2, 1)
