"""`python -m spacy skd annotate` and `merge-cache`, run in-process through spaCy's CLI app."""
import pytest
from spacy.cli._util import app
from typer.testing import CliRunner

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.teacher.runner import TeacherRunner
from spacy_skd.training import texts as texts_module
from spacy_skd.training.manifest import read_manifest
from tests.conftest import REPO_ROOT, examples_from, train_tagger

STUDENT = REPO_ROOT / "configs" / "student_maxent_kd.cfg"

TEXTS = [("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]), ("Paris is big", [(0, 1, "LOC")])]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return train_tagger("skd_crf_tagger", lambda nlp: examples_from(nlp, TEXTS),
                        tmp_path_factory.mktemp("teacher") / "crf", steps=1)


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("John lives here .\nParis is big\nJohn lives here .\nHello\n", encoding="utf8")
    return path


def invoke(*args):
    return CliRunner().invoke(app, ["skd", *map(str, args)])


def test_cli_annotate_shards_then_merge(teacher, texts, tmp_path):
    out = tmp_path / "out"
    for i, n_texts in enumerate([2, 1]):  # three distinct texts
        result = invoke("annotate", teacher, texts, out, "--shard", f"{i}/2", "--batch-size", "1")
        assert result.exit_code == 0, result.output
        assert f"Shard {i}/2: {n_texts} texts, {n_texts} computed, 0 reused" in result.output
        assert "merge-cache" in result.output
    result = invoke("annotate", teacher, texts, out, "--shard", "1/2")
    assert result.exit_code == 0 and "already complete" in result.output
    result = invoke("merge-cache", out / "shard-00000-of-00002", out / "shard-00001-of-00002", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    assert "Merged 2 shards: 3 sentences" in result.output
    assert f"SKD_CACHE_DIR={tmp_path / 'merged'}" in result.output
    with TeacherRunner(teacher, "ner").open_cache(tmp_path / "merged") as cache:
        assert len(cache) == 3


def test_cli_annotate_all_shards_reads_the_input_once(teacher, texts, tmp_path, monkeypatch):
    reads = []
    original = texts_module.read_texts
    monkeypatch.setattr(texts_module, "read_texts", lambda *a, **k: reads.append(a) or original(*a, **k))
    result = invoke("annotate", teacher, texts, tmp_path / "out", "--shard", "all/2")
    assert result.exit_code == 0, result.output
    assert "Shard 0/2: 2 texts, 2 computed" in result.output and "Shard 1/2: 1 texts, 1 computed" in result.output
    assert len(reads) == 1


def test_cli_annotate_single_shard_names_the_cache_dir(teacher, texts, tmp_path):
    result = invoke("annotate", teacher, texts, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert f"SKD_CACHE_DIR={tmp_path / 'out' / 'shard-00000-of-00001'}" in result.output


@pytest.mark.parametrize("args,code", [
    (["--shard", "2/2"], "E223"),
    (["--engine", "ray-someday"], "E236"),
    (["--store", "fp8"], "E236"),
    (["--component", "tagger"], "E225"),
    (["--store", "targets"], "E242"),
    (["--student-config", STUDENT], "E249"),
    (["--components.kd.temperature", "1"], "E249"),  # overrides go with --store targets only
    (["--store", "targets", "--student-config", REPO_ROOT / "missing.cfg"], "E247"),
    (["--engine", "ray", "--store", "targets", "--student-config", STUDENT], "E248"),
    (["--engine", "ray", "--beam-density", "0"], "E326"),
    (["--engine", "ray", "--beam-width", "4"], "E326"),
])
def test_cli_annotate_errors_exit_1(teacher, texts, tmp_path, args, code):
    result = invoke("annotate", teacher, texts, tmp_path / "out", *args)
    assert result.exit_code == 1
    assert f"[skd-{code}]" in result.output


def test_cli_merge_missing_shard_needs_allow_partial(teacher, texts, tmp_path):
    assert invoke("annotate", teacher, texts, tmp_path / "out", "--shard", "0/2").exit_code == 0
    result = invoke("merge-cache", tmp_path / "out", tmp_path / "merged")
    assert result.exit_code == 1 and "[skd-E234]" in result.output
    with pytest.warns(UserWarning, match=r"\[skd-W155\]"):
        result = invoke("merge-cache", tmp_path / "out", tmp_path / "merged", "--allow-partial")
    assert result.exit_code == 0 and "Missing shards of texts.txt: [1]" in result.output


def test_cli_annotate_store_targets_with_overrides(teacher, texts, tmp_path):
    result = invoke("annotate", teacher, texts, tmp_path / "out", "--store", "targets", "--student-config", STUDENT,
                    "--components.tok2vec.model.encode.width", "8", "--components.kd.temperature", "1")
    assert result.exit_code == 0, result.output
    assert "Shard 0/1: 3 texts, 3 computed, 0 reused" in result.output
    manifest = read_manifest(tmp_path / "out" / "shard-00000-of-00001")
    assert manifest["storage"]["store"] == "targets" and manifest["storage"]["temperature"] == 1.0
    assert manifest["student"]["overrides"] == {"components.tok2vec.model.encode.width": 8,
                                                "components.kd.temperature": 1}


def test_cli_merge_truncated_shard_exits_1_naming_it_issue20(teacher, texts, tmp_path):
    """A complete shard whose cache.db is truncated: exit 1, E341 naming the shard, its manifest
    incomplete; the rerun annotate recomputes it and the merge succeeds."""
    out = tmp_path / "out"
    assert invoke("annotate", teacher, texts, out, "--shard", "all/2").exit_code == 0
    shard = out / "shard-00001-of-00002"
    with TeacherRunner(teacher, "ner").open_cache(shard) as cache:
        db = cache.path / "cache.db"
    db.write_bytes(db.read_bytes()[:2048])
    result = invoke("merge-cache", out, tmp_path / "merged")
    assert result.exit_code == 1 and "[skd-E341]" in result.output and "Merged" not in result.output
    assert "shard-00001-of-00002" in result.output.replace("\n", "")
    assert not read_manifest(shard)["complete"]
    with pytest.warns(UserWarning, match=r"\[skd-W202\]"):
        result = invoke("annotate", teacher, texts, out, "--shard", "1/2")
    assert result.exit_code == 0 and "Shard 1/2: 1 texts, 1 computed, 0 reused" in result.output
    result = invoke("merge-cache", out, tmp_path / "merged")
    assert result.exit_code == 0 and "Merged 2 shards: 3 sentences" in result.output
