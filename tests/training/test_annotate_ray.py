"""The Ray Data engine of the teacher pass: same shards, same bytes as the local engine."""
import pytest
from typer.testing import CliRunner

from spacy.cli._util import app

import spacy_skd.cli  # noqa: F401  (registers `skd` on spaCy's app)
from spacy_skd.teacher.runner import TeacherRunner
from spacy_skd.training.annotate import annotate, parse_shards
from spacy_skd.training.manifest import read_manifest, shard_dir
from spacy_skd.training.merge import merge_shards
from tests.conftest import examples_from, train_tagger
from tests.training.test_annotate import DISTINCT, LINES, TEXTS, assert_same_entries, entries

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_teacher")
    return train_tagger("skd_crf_tagger", lambda nlp: examples_from(nlp, TEXTS), root / "crf", steps=2)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs): starting it costs seconds."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf8")
    return path


def test_parse_shards():
    assert parse_shards("1/3") == [(1, 3)]
    assert parse_shards("all/3") == [(0, 3), (1, 3), (2, 3)]
    for spec in ("all/0", "all/x", "3/3"):
        with pytest.raises(ValueError, match="E223"):
            parse_shards(spec)


@pytest.mark.slow
def test_ray_two_shards_equal_local(teacher, texts, tmp_path, local_ray):
    """2 shards from one Ray pipeline (2 actors, local) == the single-process pass, shard by
    shard and merged; manifests agree, so shards of either engine merge together."""
    from spacy_skd.training.annotate_ray import annotate_ray

    runner = TeacherRunner(teacher, "ner")
    summaries = annotate_ray(teacher, texts, tmp_path / "ray", shards=parse_shards("all/2"), batch_size=2,
                             workers=2, progress=False)
    assert [s["computed"] for s in summaries] == [3, 3] and all(not s["skipped"] for s in summaries)
    for i in range(2):
        annotate(runner, texts, tmp_path / "local", shard=(i, 2), batch_size=64, progress=False)
        ray_dir, local_dir = shard_dir(tmp_path / "ray", (i, 2)), shard_dir(tmp_path / "local", (i, 2))
        assert_same_entries(entries(ray_dir, runner), entries(local_dir, runner))
        ray_manifest, local_manifest = read_manifest(ray_dir), read_manifest(local_dir)
        assert ray_manifest["complete"] and ray_manifest["texts"] == local_manifest["texts"]
        assert {k: v for k, v in ray_manifest.items() if k != "complete"} == \
            {k: v for k, v in local_manifest.items() if k != "complete"}
    merge_shards([tmp_path / "ray"], tmp_path / "merged_ray")
    annotate(runner, texts, tmp_path / "single", batch_size=64, progress=False)
    merged = entries(tmp_path / "merged_ray", runner)
    assert len(merged) == len(DISTINCT)
    assert_same_entries(merged, entries(shard_dir(tmp_path / "single", (0, 1)), runner))
    # mixing engines: local shard 0 + Ray shard 1 merge into the same cache
    merge_shards([shard_dir(tmp_path / "local", (0, 2)), shard_dir(tmp_path / "ray", (1, 2))], tmp_path / "mixed")
    assert_same_entries(entries(tmp_path / "mixed", runner), merged)


@pytest.mark.slow
def test_ray_resumes_and_skips(teacher, texts, tmp_path, local_ray):
    """Ray computes only what a half-done shard lacks, and nothing for a complete one."""
    from spacy_skd.training.annotate_ray import annotate_ray

    runner = TeacherRunner(teacher, "ner")
    annotate(runner, texts, tmp_path / "out", shard=(0, 2), batch_size=64, progress=False)  # shard 0 done
    summaries = annotate_ray(teacher, texts, tmp_path / "out", shards=parse_shards("all/2"), batch_size=2,
                             workers=1, progress=False)
    assert summaries[0]["skipped"] and summaries[0]["computed"] == 0
    assert summaries[1]["computed"] == 3
    again = annotate_ray(teacher, texts, tmp_path / "out", shards=parse_shards("all/2"), workers=1, progress=False)
    assert all(s["skipped"] and s["computed"] == 0 for s in again)


def test_ray_refuses_other_teacher_shard(teacher, texts, tmp_path, tmp_path_factory):
    """A shard folder written by another teacher is an error before Ray starts."""
    from spacy_skd.training.annotate_ray import annotate_ray

    other = train_tagger("skd_crf_tagger", lambda nlp: examples_from(nlp, TEXTS),
                         tmp_path_factory.mktemp("other") / "crf", steps=3)
    annotate(other, texts, tmp_path / "out", shard=(0, 1), progress=False)
    with pytest.raises(ValueError, match="E228"):
        annotate_ray(teacher, texts, tmp_path / "out", shards=[(0, 1)], progress=False)


@pytest.mark.slow
def test_cli_engine_ray(teacher, texts, tmp_path, local_ray):
    result = CliRunner().invoke(app, ["skd", "annotate", str(teacher), str(texts), str(tmp_path / "out"),
                                      "--shard", "all/2", "--engine", "ray", "--workers", "2", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "Shard 0/2: 3 texts, 3 computed" in result.output and "Shard 1/2" in result.output
    result = CliRunner().invoke(app, ["skd", "annotate", str(teacher), str(texts), str(tmp_path / "out"),
                                      "--engine", "spark"])
    assert result.exit_code == 1 and "E236" in result.output
