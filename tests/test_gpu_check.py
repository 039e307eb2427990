"""scripts/gpu_check.py and scripts/gpu_wheelhouse.py without a GPU: the pinned wheelhouse list
(nothing downloaded), the data slices, and a CPU dry run of every case, so the GPU check cannot rot."""
import gzip
import json
import math
import shutil
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from .conftest import FIXTURES, load_script

wheelhouse = load_script("gpu_wheelhouse")
gpu_check = load_script("gpu_check")


def test_wheelhouse_list_pins_the_installed_stack_minus_the_gpu_machines_own():
    for module in ("spacy_transformers", "transformers", "tokenizers"):  # the extras the list walks
        pytest.importorskip(module)
    pins = wheelhouse.pinned_requirements(wheelhouse.roots())
    for name in ("spacy", "thinc", "spacy-transformers", "transformers", "tokenizers", "conllu", "diskcache",
                 "srsly", "pydantic-core", "blis", "huggingface-hub", "safetensors"):
        assert pins[name] == metadata.version(name), name
    for provided in ("torch", "numpy", "spacy-skd", "hf-xet"):
        assert provided not in pins
    assert not [name for name in pins if name.startswith("nvidia-") or name.startswith("cupy")]
    # what setup.cfg asks for holds for every pinned root
    for line in wheelhouse.roots():
        req = Requirement(line)
        if wheelhouse.canonical(req.name) in pins:
            assert req.specifier.contains(pins[wheelhouse.canonical(req.name)], prereleases=True), line
    assert Requirement("transformers<4.53.3").specifier.contains(pins["transformers"])


def test_wheelhouse_list_follows_extras_and_target_markers():
    assert wheelhouse.pinned_requirements(['typing-extensions; python_version < "3.8"']) == {}
    with_extra = wheelhouse.pinned_requirements(["spacy[transformers]"])
    plain = wheelhouse.pinned_requirements(["spacy"])
    assert "spacy-transformers" in with_extra and "spacy-transformers" not in plain
    with pytest.raises(SystemExit, match="not installed here"):
        wheelhouse.pinned_requirements(["surely-not-an-installed-distribution"])


def test_wheelhouse_commands_target_the_gpu_machine(tmp_path):
    cmd = wheelhouse.download_command(tmp_path / "requirements.txt", tmp_path)
    assert {"--only-binary=:all:", "--no-deps"} <= set(cmd)
    assert cmd[cmd.index("--python-version") + 1] == "3.12" and cmd[cmd.index("--abi") + 1] == "cp312"
    assert "manylinux2014_x86_64" in cmd and "manylinux_2_28_x86_64" in cmd
    with pytest.raises(SystemExit, match="spacy_skd wheel"):
        wheelhouse.install_command("python", tmp_path)
    (tmp_path / "spacy_skd-0.1.0-py3-none-any.whl").touch()
    cmd = wheelhouse.install_command("venv/bin/python", tmp_path)
    assert cmd[:4] == ["venv/bin/python", "-m", "pip", "install"] and "--no-index" in cmd
    assert cmd[-1].endswith("spacy_skd-0.1.0-py3-none-any.whl")


@pytest.mark.data
def test_slices_of_the_real_data(shared_data, tmp_path):
    wheelhouse.write_slices(shared_data, tmp_path)
    assert (tmp_path / "conll2003_en" / "train.conll").read_text().count("\n\n") == 600
    assert "-DOCSTART-" not in (tmp_path / "conll2003_en" / "train.conll").read_text()
    assert (tmp_path / "ud_en_ewt" / "dev.conllu").read_text().count("\n\n") == 200
    for name in ("conll.txt", "ewt.txt"):
        lines = (tmp_path / "raw" / name).read_text().splitlines()
        assert len(lines) == 2000 and all(lines) and not any("\t" in line or line.startswith("#") for line in lines)
    for split, n in (("train", 600), ("valid", 200), ("silver", 1000)):
        assert len((tmp_path / "snips" / split / "seq.in").read_text().splitlines()) == n


def test_failures_name_what_went_wrong():
    row = {"case": "1a", "teacher": "crf", "teacher_ok": True, "annotate_ok": True, "student_ok": True,
           "teacher_losses": {"ner_loss": 1.5}, "student_losses": {"ner_loss": math.nan, "kd_loss": 0.1}}
    assert gpu_check.failures(row) == ["student ner_loss not finite"]
    assert gpu_check.failures({**row, "student_losses": {"ner_loss": 2.0}}) == []
    assert gpu_check.failures({**row, "annotate_ok": False, "student_losses": {}}) == [
        "annotate_ok", "no student loss recorded"]
    text = gpu_check.markdown({"device": "CPU", "steps": 3, "total_s": 1.0, "cases": [row]})
    assert "| 1a | crf |" in text and "| NO |" in text and "FAILED: student ner_loss not finite" in text


def fixture_data(root):
    """The fixtures in the layout gpu_wheelhouse.write_slices gives the real data."""
    for kind, source in (("conll2003_en", "conll2003_sample.conll"), ("ud_en_ewt", "ewt_sample.conllu")):
        (root / kind).mkdir(parents=True)
        suffix = source.rsplit(".", 1)[1]
        for split in ("train", "dev"):
            shutil.copy(FIXTURES / source, root / kind / f"{split}.{suffix}")
    (root / "raw").mkdir()
    raw = gzip.open(FIXTURES / "raw_sample.txt.gz", "rt", encoding="utf8").read()
    for name in ("conll.txt", "ewt.txt"):
        (root / "raw" / name).write_text(raw, encoding="utf8")
    for split in ("train", "valid", "silver"):
        shutil.copytree(FIXTURES / "snips_sample", root / "snips" / split)
    return root


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu(tmp_path):
    """Every case end to end on the CPU (tiny models, 2 steps), through the same command lines the
    GPU run uses; the report has every case's figures, finite losses and agreeing structures."""
    out = tmp_path / "out"
    code = gpu_check.main(["--device", "cpu", "--steps", "2", "--tiny", "--in-process",
                           "--data", str(fixture_data(tmp_path / "data")), "--output", str(out)])
    report = json.loads((out / "gpu_check.json").read_text())
    assert code == 0, report["problems"]
    assert [row["case"] for row in report["cases"]] == ["1a", "1b", "2a", "2b", "3", "4", "SenTScore"]
    for row in report["cases"]:
        assert row["teacher_words_per_s"] > 0 and row["student_words_per_s"] > 0, row["case"]
        assert row["kd_step_ms"] > 0 and row["annotate_sentences_per_s"] > 0, row["case"]
        assert row["student_losses"] and all(map(math.isfinite, row["student_losses"].values())), row["case"]
    assert {s["structure"] for s in report["structures"]} == {
        "LinearChainCRF", "SpanNER (BIOES DP)", "SecondOrderMFVI", "MST (Chu-Liu/Edmonds)"}
    assert all(s["ok"] and s["max_abs_diff"] == 0.0 for s in report["structures"])  # CPU vs CPU
    assert report["sentscore_batching"]["same"]
    table = (out / "gpu_check.md").read_text()
    assert all(f"| {case} |" in table for case in ("1a", "2b", "SenTScore")) and "FAILED" not in table


def test_gpu_check_fails_when_a_case_fails(tmp_path):
    """A teacher that cannot train (its data is missing) fails the check, and the table says so."""
    out = tmp_path / "out"
    code = gpu_check.main(["--device", "cpu", "--steps", "2", "--tiny", "--in-process", "--cases", "4",
                           "--data", str(tmp_path / "nothing"), "--output", str(out)])
    assert code == 1
    assert "| 4 | span |" in (out / "gpu_check.md").read_text()
    assert "case 4: teacher_ok" in json.loads((out / "gpu_check.json").read_text())["problems"]
