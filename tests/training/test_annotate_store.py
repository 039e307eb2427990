"""`annotate --store targets`: a shard of one student's targets, exactly what structural_kd's
initialize stores for that student config, without the teacher's potentials."""
import shutil

import pytest
import spacy
from spacy.util import load_config, load_model_from_config

from spacy_skd.teacher.caches import potentials_cache
from spacy_skd.teacher.runner import TeacherRunner
from spacy_skd.training.annotate import annotate
from spacy_skd.training.manifest import manifest_cache, read_manifest, shard_dir
from spacy_skd.training.merge import merge_shards
from spacy_skd.training.conllu import create_conllu_reader
from tests.conftest import FIXTURES, REPO_ROOT, examples_from, train_tagger
from tests.training.test_annotate import DISTINCT, LINES, TEXTS, assert_same_entries

CONFIGS = REPO_ROOT / "configs"
MAXENT, CRF, SPAN = (CONFIGS / name for name in ("student_maxent_kd.cfg", "student_crf_kd.cfg",
                                                  "student_maxent_span_kd.cfg"))
# the real student configs with a tiny tok2vec: targets do not depend on the student's weights
TINY = {"components.tok2vec.model.encode.width": 8, "components.tok2vec.model.encode.depth": 1,
        "components.tok2vec.model.embed.rows": [50, 50, 50, 50]}


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    make = lambda nlp: examples_from(nlp, TEXTS)  # noqa: E731
    return {"crf": train_tagger("skd_crf_tagger", make, root / "crf", steps=2),
            "span": train_tagger("skd_span_ner", make, root / "span", steps=2)}


@pytest.fixture(scope="module")
def runner(teachers):
    return TeacherRunner(teachers["crf"], "ner")


@pytest.fixture
def texts(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf8")
    return path


def student_nlp(config, teacher, cache_dir, **overrides):
    """The student pipeline `spacy train` would build from `config`, teacher and cache set."""
    return load_model_from_config(load_config(config, overrides={
        **TINY, "paths.teacher": str(teacher), "paths.cache": str(cache_dir), **overrides}), auto_fill=True)


def stored(directory, manifest):
    with manifest_cache(directory, manifest) as cache:
        return dict(cache.items())


def namespaces(directory):
    return sorted(p.name for p in directory.iterdir() if p.is_dir())


def folder_of(directory, manifest):
    """The namespace folder (in `directory`) that a manifest names."""
    with manifest_cache(directory, manifest) as cache:
        return cache.path.name


@pytest.mark.parametrize("config", [MAXENT, CRF], ids=["maxent", "crf"])
def test_annotate_targets_match_structural_kd_targets(teachers, runner, texts, tmp_path, config):
    """The shard holds byte for byte the targets structural_kd's initialize stores for the
    config (MaxEnt: unary + top1; CRF: pair counts, start, end too), and no potentials."""
    nlp = student_nlp(config, teachers["crf"], tmp_path / "kd")
    examples = examples_from(nlp, [(line, []) for line in DISTINCT])
    nlp.initialize(lambda: examples)
    summary = annotate(runner, texts, tmp_path / "out", store="targets", student_config=config, overrides=TINY,
                       batch_size=nlp.get_pipe("kd").batch_size, progress=False)
    assert (summary["texts"], summary["computed"], summary["reused"]) == (len(DISTINCT), len(DISTINCT), 0)
    directory = shard_dir(tmp_path / "out", (0, 1))
    manifest = read_manifest(directory)
    kd = nlp.get_pipe("kd")
    assert manifest["space"].startswith("targets:crf->")
    assert manifest["storage"] == {"store": "targets", "temperature": kd.temperature, "mode": kd.target_maker.mode,
                                   "cache_format": manifest["storage"]["cache_format"]}
    assert manifest["student"]["objective"] == kd.objective and len(manifest["student"]["config_sha256"]) == 64
    expected = stored(tmp_path / "kd", manifest)
    assert len(expected) == len(DISTINCT)
    assert_same_entries(stored(directory, manifest), expected)
    assert {"unary", "top1"} <= set(next(iter(expected.values())))
    # the targets namespace only: no potentials (structural_kd's own folder has both)
    target_folder = folder_of(directory, manifest)
    assert namespaces(directory) == [target_folder] and summary["cache_path"].endswith(target_folder)
    assert potentials_cache(tmp_path / "kd", runner.fingerprint, runner.kind).path.name in namespaces(tmp_path / "kd")


def test_student_trains_from_merged_targets_without_teacher(teachers, runner, texts, tmp_path, monkeypatch):
    for i in range(2):
        annotate(runner, texts, tmp_path / "out", shard=(i, 2), store="targets", student_config=MAXENT,
                 overrides=TINY, batch_size=2, progress=False)
    summary = merge_shards([tmp_path / "out"], tmp_path / "merged")
    assert (summary["shards"], summary["entries"]) == (2, len(DISTINCT))
    assert read_manifest(tmp_path / "out" / "shard-00000-of-00002")["storage"]["store"] == "targets"

    def no_teacher(self, batch):
        raise AssertionError(f"the teacher ran for {batch}")

    monkeypatch.setattr(TeacherRunner, "__call__", no_teacher)
    nlp = student_nlp(MAXENT, teachers["crf"], tmp_path / "merged")
    examples = examples_from(nlp, [(line, []) for line in DISTINCT])
    optimizer = nlp.initialize(lambda: examples)  # every sentence's targets found
    losses = nlp.update(examples, sgd=optimizer)
    assert losses["ner"] > 0


def test_annotate_targets_resumes_after_interruption(teachers, runner, texts, tmp_path, monkeypatch):
    """The teacher fails in its third batch; the rerun computes only that batch and the shard
    equals an uninterrupted one."""
    full = annotate(runner, texts, tmp_path / "full", store="targets", student_config=MAXENT, overrides=TINY,
                    batch_size=2, progress=False)
    run_teacher, calls = TeacherRunner.__call__, []

    def failing(self, batch):
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed: no final manifest
        calls.append(list(batch))
        return run_teacher(self, batch)

    monkeypatch.setattr(TeacherRunner, "__call__", failing)
    with pytest.raises(KeyboardInterrupt):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT, overrides=TINY,
                 batch_size=2, progress=False)
    directory = shard_dir(tmp_path / "out", (0, 1))
    manifest = read_manifest(directory)
    assert manifest["complete"] is False and len(stored(directory, manifest)) == 4
    calls.clear()
    counting = lambda self, batch: calls.append(batch) or run_teacher(self, batch)  # noqa: E731
    monkeypatch.setattr(TeacherRunner, "__call__", counting)
    summary = annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT, overrides=TINY,
                       batch_size=2, progress=False)
    assert (summary["computed"], summary["reused"], summary["skipped"]) == (2, 4, False)
    assert [tuple(words) for batch in calls for words in batch] == [tuple(line.split()) for line in DISTINCT[4:]]
    assert read_manifest(directory)["complete"] is True
    assert_same_entries(stored(directory, manifest), stored(full["shard_dir"], manifest))
    calls.clear()  # complete: skipped without running the teacher
    again = annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT, overrides=TINY,
                     progress=False)
    assert again["skipped"] and not calls


def test_annotate_targets_of_span_teacher(teachers, texts, tmp_path):
    """Case 4: a span-NER teacher's [n, n, C] potentials stay in memory; the shard holds the
    MaxEnt BIOES student's targets, as structural_kd stores them."""
    nlp = student_nlp(SPAN, teachers["span"], tmp_path / "kd")
    examples = examples_from(nlp, [(line, []) for line in DISTINCT])
    nlp.initialize(lambda: examples)
    summary = annotate(teachers["span"], texts, tmp_path / "out", store="targets", student_config=SPAN,
                       overrides=TINY, progress=False)
    manifest = read_manifest(summary["shard_dir"])
    assert manifest["space"].startswith("targets:span->maxent:")
    assert_same_entries(stored(summary["shard_dir"], manifest), stored(tmp_path / "kd", manifest))
    assert namespaces(shard_dir(tmp_path / "out", (0, 1))) == [folder_of(summary["shard_dir"], manifest)]


# --- refusals ---------------------------------------------------------------------------------


def test_annotate_targets_needs_student_config_and_only_there(runner, texts, tmp_path):
    with pytest.raises(ValueError, match=r"\[skd-E242\]"):
        annotate(runner, texts, tmp_path / "out", store="targets")
    with pytest.raises(ValueError, match=r"\[skd-E249\]"):
        annotate(runner, texts, tmp_path / "out", student_config=MAXENT)
    with pytest.raises(ValueError, match=r"\[skd-E249\]"):
        annotate(runner, texts, tmp_path / "out", overrides=TINY)
    with pytest.raises(ValueError, match=r"\[skd-E247\]"):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=tmp_path / "missing.cfg")
    assert not (tmp_path / "out").exists()


def test_annotate_targets_refuses_bad_student_configs(runner, texts, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_maxent_tagger", name="ner")
    nlp.config.to_disk(tmp_path / "no_kd.cfg")
    with pytest.raises(ValueError, match=r"\[skd-E243\].*found none"):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=tmp_path / "no_kd.cfg")
    with pytest.raises(ValueError, match=r"\[skd-E245\].*'tagger'"):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT,
                 overrides={**TINY, "components.kd.teacher_component": "tagger"})
    with pytest.raises(ValueError, match=r"\[skd-E246\]"):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT,
                 overrides={**TINY, "components.kd.cache": False})
    with pytest.raises(ValueError, match=r"\[skd-E173\]"):  # structural_kd's own checks run first
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT,
                 overrides={**TINY, "components.ner.scheme": "IOB2"})
    assert not (tmp_path / "out").exists()


def test_annotate_targets_refuses_parser_teacher(texts, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_biaffine_parser", name="parser", config={"model": {
        "tok2vec": {"embed": {"width": 8, "rows": [50, 50, 50, 50]}, "encode": {"width": 8, "depth": 1}},
        "arc_width": 8, "rel_width": 8}})
    examples = list(create_conllu_reader(FIXTURES / "ewt_sample.conllu")(nlp))
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match=r"\[skd-E244\].*--store potentials"):
        annotate(TeacherRunner(nlp, "parser"), texts, tmp_path / "out", store="targets", student_config=MAXENT)


def test_annotate_targets_refuses_shard_of_another_student(runner, texts, tmp_path):
    annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT, overrides=TINY,
             progress=False)
    other = tmp_path / "other.cfg"  # the same student, another file: its hash differs
    other.write_text(MAXENT.read_text(encoding="utf8") + "\n# another run\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"\[skd-E228\].*student.config_sha256"):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=other, overrides=TINY)
    with pytest.raises(ValueError, match=r"\[skd-E228\].*student.temperature"):
        annotate(runner, texts, tmp_path / "out", store="targets", student_config=MAXENT,
                 overrides={**TINY, "components.kd.temperature": 1.0})
    with pytest.raises(ValueError, match=r"\[skd-E228\].*space"):  # a targets shard is no potentials shard
        annotate(runner, texts, tmp_path / "out")


def test_merge_refuses_shards_of_two_students(runner, texts, tmp_path):
    other = tmp_path / "other.cfg"
    shutil.copy(MAXENT, other)
    with open(other, "a", encoding="utf8") as f:
        f.write("\n# another run\n")
    shards = [annotate(runner, texts, tmp_path / "out", shard=(i, 2), store="targets", student_config=config,
                       overrides=TINY, progress=False)["shard_dir"] for i, config in enumerate([MAXENT, other])]
    with pytest.raises(ValueError, match=r"\[skd-E232\].*student.config_sha256"):
        merge_shards(shards, tmp_path / "merged")
    potentials = annotate(runner, texts, tmp_path / "pot", shard=(1, 2), progress=False)["shard_dir"]
    assert "student" not in read_manifest(potentials)
    with pytest.raises(ValueError, match=r"\[skd-E232\].*space"):
        merge_shards([shards[0], potentials], tmp_path / "merged")


def test_annotate_ray_refuses_targets(runner, texts, tmp_path):
    pytest.importorskip("ray.data")
    from spacy_skd.training.annotate_ray import annotate_ray

    with pytest.raises(ValueError, match=r"\[skd-E248\]"):
        annotate_ray(runner.nlp, texts, tmp_path / "out", shards=[(0, 1)], store="targets", student_config=MAXENT)



def test_annotate_targets_empty_input_gives_empty_complete_shard(runner, tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n", encoding="utf8")
    with pytest.warns(UserWarning, match=r"\[skd-W154\]"):
        summary = annotate(runner, path, tmp_path / "out", store="targets", student_config=MAXENT, overrides=TINY)
    assert (summary["texts"], summary["computed"]) == (0, 0)
    assert read_manifest(summary["shard_dir"])["complete"] is True
    assert merge_shards([summary["shard_dir"]], tmp_path / "merged")["entries"] == 0
