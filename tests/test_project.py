"""The weasel project (project.yml), its scripts and the `make demo` entry point.

Nothing here trains: the workflows are checked with weasel's own loader and `--dry` runs, and
the scripts on tiny fixtures and fake metric files.
"""
import argparse
import gzip
import hashlib
import json
import re
import shlex
import subprocess
import sys
import types
from collections import Counter
from pathlib import Path

import pytest
import srsly

from .conftest import FIXTURES, REPO_ROOT, load_script

PROJECT_FILE = REPO_ROOT / "project.yml"
CASE_WORKFLOWS = {"case1a", "case2a", "case3", "case1b", "case2b", "case4", "demo", "sentscore", "temperature1a"}



@pytest.fixture(autouse=True, scope="module")
def _project_directories():
    """weasel creates the `directories` of project.yml when it loads it, with a check-then-mkdir
    that two pytest-xdist workers could race on; create them race-free first."""
    for name in srsly.read_yaml(PROJECT_FILE).get("directories", []):
        (REPO_ROOT / name).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def raw_config() -> dict:
    return srsly.read_yaml(PROJECT_FILE)


@pytest.fixture(scope="module")
def config() -> dict:
    from weasel.util import load_project_config

    return load_project_config(REPO_ROOT)


# --- project.yml ----------------------------------------------------------------------------


def test_project_validates_with_weasel(raw_config, config):
    from weasel.schemas import ProjectConfigSchema, validate
    from weasel.util import validate_project_commands

    assert validate(ProjectConfigSchema, raw_config) == []
    validate_project_commands(raw_config)  # exits on duplicates or unknown workflow steps
    commands = {cmd["name"] for cmd in config["commands"]}
    assert CASE_WORKFLOWS <= set(config["workflows"])
    for name, steps in config["workflows"].items():
        assert steps, name
        assert set(steps) <= commands, (name, set(steps) - commands)
    assert not set(config["workflows"]) & commands


def test_no_unresolved_or_absolute_paths(config):
    text = PROJECT_FILE.read_text(encoding="utf8")
    assert str(PROJECT_FILE.parent.parent) not in text  # this checkout's location, e.g. a home dir
    for cmd in config["commands"]:
        for line in [*cmd["script"], *cmd.get("deps", []), *cmd.get("outputs", [])]:
            assert "${" not in line, line


def _script_tokens(config):
    for cmd in config["commands"]:
        for line in cmd["script"]:
            yield cmd["name"], shlex.split(line)


def test_named_scripts_and_configs_exist(config):
    named = set()
    for name, tokens in _script_tokens(config):
        for token in tokens:
            if re.match(r"^(scripts|configs)/.+\.(py|cfg)$", token):
                named.add(token)
    for cmd in config["commands"]:
        named.update(d for d in cmd.get("deps", []) if d.startswith(("scripts/", "configs/")))
    assert {"scripts/prepare_data.py", "scripts/run_case.py",
            "configs/student_crf_kd.cfg", "configs/student_maxent_kd.cfg"} <= named
    missing = sorted(p for p in named if not (REPO_ROOT / p).is_file())
    assert not missing


def test_python_commands_use_weasels_interpreter(config):
    """A leading `python` is replaced by weasel's interpreter: no `env ...` or bare tool names."""
    for name, tokens in _script_tokens(config):
        assert tokens[0] == "python", (name, tokens[:3])


PINNED_URL = re.compile(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/([0-9a-f]{40}|r[\d.]+)/\S+")


def test_every_asset_has_a_pinned_url_or_a_derivation(raw_config, config):
    """Each public file has a raw URL pinned to a commit (or a release tag) and an MD5; each
    derived file names a known derivation from assets and is an output of a data-* command."""
    fetch = load_script("fetch_assets")
    assets = {a["dest"]: a for a in raw_config["assets"]}
    for asset in assets.values():
        assert asset["dest"].startswith("assets/"), asset
        assert PINNED_URL.fullmatch(asset["url"]), asset
        assert re.fullmatch(r"[0-9a-f]{32}", asset["checksum"]), asset
        assert asset["description"]
    derived = raw_config["derived"]
    assert {d["dest"] for d in derived} == {"assets/ud_en_ewt/en_ewt-ud-train.conllu.gz",
                                             "assets/raw_reuters21578/reuters21578_paragraphs.txt.gz"}
    outputs = {out for cmd in config["commands"] if cmd["name"].startswith("data-") for out in cmd.get("outputs", [])}
    for entry in derived:
        assert entry["derive"] in fetch.DERIVATIONS, entry
        assert entry["from"] and set(entry["from"]) <= set(assets), entry
        assert re.fullmatch(r"[0-9a-f]{32}", entry["checksum"]), entry
        assert entry["dest"] in outputs, entry
    # every file a data-* command promises is an asset or derived
    assert outputs <= set(assets) | {d["dest"] for d in derived}
    groups = {Path(d).parts[1] for d in [*assets, *(e["dest"] for e in derived)]}
    assert groups == {"conll2003_en", "conll2002_es", "conll2002_nl", "ud_en_ewt", "snips", "atis", "raw_reuters21578"}
    used = [a for a in assets.values() if not a.get("extra")]
    assert {Path(a["dest"]).parts[1] for a in used} == {"conll2003_en", "conll2002_es", "conll2002_nl"}


@pytest.mark.data
def test_asset_checksums_match_shared_data(raw_config, shared_data):
    """The local copies are the public files: each one in the data folder has the asset's MD5
    (a derived file: its local checksum, on the content of a .gz)."""
    fetch = load_script("fetch_assets")
    checked = 0
    for entry in [*raw_config["assets"], *raw_config["derived"]]:
        source = shared_data.joinpath(*Path(entry["dest"]).parts[1:])
        if entry in raw_config["assets"] and entry["dest"].endswith((".sgm", "train.conllu")):
            continue  # only their derived files are kept locally
        assert source.is_file(), source
        assert fetch.md5(source) == entry.get("local_checksum", entry["checksum"]), source
        checked += 1
    assert checked == len(raw_config["assets"]) - 22 - 1 + 2


def test_every_train_and_evaluate_passes_gpu_id(config):
    """`--vars.gpu_id 0` must reach every command that runs a model (issue 6)."""
    runs_models = re.compile(r"spacy (train|evaluate)|run_case\.py|run_sentscore\.py|skd (marginals|evaluate-slots)")
    checked = 0
    for cmd in config["commands"]:
        for line in cmd["script"]:
            if runs_models.search(line):
                checked += 1
                assert re.search(r"--gpu-id -?\d+\b", line), (cmd["name"], line)
    assert checked >= 15


def test_report_command_and_workflow(config):
    commands = {cmd["name"]: cmd for cmd in config["commands"]}
    report = commands["report-results"]
    assert config["workflows"]["report"] == ["report-results"]
    assert report["script"] == ["python -m spacy skd report --metrics metrics --output reports --readme README.md"]
    assert report["deps"] == ["spacy_skd/report/paper_results.json"]
    assert report["outputs"] == ["reports/results.md", "reports/results.json"]
    assert report.get("no_skip") is True  # metrics/ changes outside weasel: never skip as unchanged
    # each case's table: `spacy skd results-table metrics/<run> ... --output reports/<run>[-exact].md`
    tables = [shlex.split(line) for name, cmd in commands.items() if name.startswith(("report-case", "report-sentscore", "demo-report"))
              for line in cmd["script"]]
    assert len(tables) == 17
    for line in tables:
        assert line[:5] == ["python", "-m", "spacy", "skd", "results-table"] and line[5].startswith("metrics/")
        run = line[5].split("/", 1)[1]
        assert line[line.index("--output") + 1] in (f"reports/{run}.md", f"reports/{run}-exact.md")


def test_package_writes_the_model_card_and_builds_both_wheels(config):
    """`package`: the student's meta.json gets its distillation record from the case's metrics,
    spaCy packages it with that meta as a wheel, and the spacy-skd wheel lands in packages/."""
    (package,) = [cmd for cmd in config["commands"] if cmd["name"] == "package"]
    card, pack, wheel = [shlex.split(line) for line in package["script"]]
    assert card[:5] == ["python", "scripts/offline.py", "-m", "spacy", "skd"] and card[5] == "model-card"
    meta = card[7]
    assert card[6] == pack[4] and card[6].endswith("/model-best")
    assert {"--teacher-metrics", "--student-metrics"} <= set(card)
    assert card[card.index("--student-metrics") + 1] == f"metrics/case1a/{Path(card[6]).parent.name}.json"
    assert pack[pack.index("--meta-path") + 1] == meta and pack[pack.index("--build") + 1] == "wheel"
    assert wheel[:4] == ["python", "-m", "pip", "wheel"] and "--no-deps" in wheel
    out = wheel[wheel.index("-w") + 1]
    assert re.fullmatch(r"packages/[^/]+/dist", out)  # matched by pip install packages/*/dist/*.whl


def test_own_data_vars_reach_every_data_step(raw_config, config):
    """--vars.train/dev/test default to empty (the standard data) and each data step takes them."""
    assert {raw_config["vars"][name] for name in ("train", "dev", "test")} == {""}
    commands = {cmd["name"]: cmd for cmd in raw_config["commands"]}
    for name, family in (("data-en", "conll2003_en"), ("data-ewt", "ud_en_ewt"), ("data-slots", "slots")):
        line = commands[name]["script"][-1]
        assert line.startswith(f"python scripts/own_data.py {family} "), name
        assert all(f"--{split} '${{vars.{split}}}'" in line for split in ("train", "dev", "test")), name
        assert "scripts/own_data.py" in commands[name]["deps"]
    for workflow, steps in config["workflows"].items():
        if workflow not in ("report", "case3"):
            assert any(step in steps for step in ("data-en", "data-ewt", "data-slots")), workflow


def test_own_data_dry_run_passes_the_paths():
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "case1b", ".", "--dry", "--vars.train", "my/train.conllu",
         "--vars.gpu_id", "0"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "own_data.py ud_en_ewt --train my/train.conllu --dev '' --test ''" in result.stdout
    assert "--gpu-id 0" in result.stdout


def test_demo_workflow_dry_run():
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "project", "run", "demo", ".", "--dry", "--vars.data", "../shared/data"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for step in ("data-en", "prepare-en", "demo-teacher", "vectors-demo", "demo-students", "demo-report"):
        assert step in out
    assert out.index("vectors-demo") < out.index("demo-students")
    assert "scripts/run_case.py demo" in out
    assert "--objectives none,structural" in out
    assert "--vectors training/vectors/demo" in out


NER_STUDENT_CONFIGS = ("configs/student_crf_kd.cfg", "configs/student_maxent_kd.cfg",
                       "configs/student_maxent_span_kd.cfg")


def test_ner_students_get_vectors_from_their_workflow(config):
    """Issue 18: in every workflow, the NER students are the default student configs (no override
    of their tok2vec shape) with static vectors made earlier in the same workflow by `spacy skd
    vectors` of a teacher that workflow trains, over text made from its own train data (the files
    data-en writes from --vars.train), rebuilt afresh when that data changes (--replace-stale)."""
    commands = {cmd["name"]: cmd for cmd in config["commands"]}
    made_by = {out: name for name, cmd in commands.items() for out in cmd.get("outputs", [])}
    with_vectors = set()
    for workflow, steps in config["workflows"].items():
        if workflow == "pareto":  # its rows set their own shape and vectors, row by row
            continue
        before = lambda step: steps[:steps.index(step)]  # noqa: E731
        made_here = {out for step in steps for out in commands[step].get("outputs", [])}
        for step in steps:
            for line in commands[step]["script"]:
                tokens = shlex.split(line)
                if tokens[1] != "scripts/run_case.py":
                    continue
                if tokens[tokens.index("--student-config") + 1] not in NER_STUDENT_CONFIGS:
                    continue
                assert not any(t.startswith("components.tok2vec.model") for t in tokens), (step, line)
                vectors = tokens[tokens.index("--vectors") + 1]
                assert vectors in commands[step]["deps"], step
                maker = made_by[vectors]
                assert maker.startswith("vectors-") and maker in before(step), (workflow, step, maker)
                (made,) = [t for t in map(shlex.split, commands[maker]["script"]) if vectors in t]
                k = made.index("vectors")
                assert made[k - 2:k] == ["spacy", "skd"] and "--replace-stale" in made
                teacher, text = made[k + 1], made[k + 2]
                assert teacher in made_here and teacher in commands[maker]["deps"], (workflow, maker, teacher)
                texts = [d for d in commands[maker]["deps"] if d == text or d.startswith(text + "/")]
                assert texts, (maker, text)
                for path in texts:  # made in this workflow from the train file data-en writes
                    prepare = made_by[path]
                    assert prepare in before(maker) and "assets/conll2003_en/train.conll" in commands[prepare]["deps"]
                with_vectors.add(workflow)
    assert with_vectors == {"demo", "case1a", "case2a", "case2a-full", "case1a-full", "case3", "case4",
                            "temperature1a", "curve1a", "spacy-teacher", "spacy-teacher-cnn"}


def test_makefile_demo_runs_the_weasel_workflow():
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf8")
    recipe = makefile[makefile.index("\ndemo:"):makefile.index("\nclean:")]
    assert "spacy project run demo" in recipe
    assert '--vars.data "$(DATA)"' in recipe
    assert "DATA ?= ../shared/data" in makefile
    assert "\ntest: install\n\tOMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS) tests\n" in makefile


# --- scripts/own_data.py -------------------------------------------------------------------


def test_own_data_converts_ner_and_copies_conllu_and_slots(tmp_path):
    own = load_script("own_data")
    ner = tmp_path / "ner.conll"
    ner.write_text("-DOCSTART- -X- O\n\nJohn B-PER\nSmith I-PER\nMary B-PER\nAnn B-PER\nin O\nParis B-LOC\n")
    assets = tmp_path / "assets"
    own.place("conll2003_en", {"train": str(ner), "dev": "", "test": ""}, assets, scheme="IOB2")
    assert (assets / "conll2003_en/train.conll").read_text() == (
        "-DOCSTART- -X- O\n\nJohn I-PER\nSmith I-PER\nMary B-PER\nAnn B-PER\nin O\nParis I-LOC\n")
    assert not (assets / "conll2003_en/dev.conll").exists()  # empty path: the standard file stays

    conllu = tmp_path / "train.conllu"
    conllu.write_text("1\tHi\thi\tINTJ\tUH\t_\t0\troot\t_\t_\n\n")
    own.place("ud_en_ewt", {"train": str(conllu), "dev": str(conllu), "test": ""}, assets)
    import gzip

    assert gzip.decompress((assets / "ud_en_ewt/en_ewt-ud-train.conllu.gz").read_bytes()).decode() == conllu.read_text()
    assert (assets / "ud_en_ewt/en_ewt-ud-dev.conllu").read_text() == conllu.read_text()

    slots = tmp_path / "slots"
    slots.mkdir()
    (slots / "seq.in").write_text("play jazz\n")
    (slots / "seq.out").write_text("O B-genre\n")
    stale = assets / "mine/train/label"
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    own.place("slots", {"train": str(slots), "dev": "", "test": ""}, assets, slot_data="mine")
    assert sorted(p.name for p in (assets / "mine/train").iterdir()) == ["seq.in", "seq.out"]
    with pytest.raises(ValueError, match="does not exist"):
        own.place("slots", {"train": str(tmp_path / "nope"), "dev": "", "test": ""}, assets)
    with pytest.raises(ValueError, match="seq.in"):
        own.place("slots", {"train": str(ner), "dev": "", "test": ""}, assets)
    assert own.main(["conll2003_en", "--train", str(tmp_path / "absent"), "--assets", str(assets)]) == 1


# --- scripts/prepare_data.py ----------------------------------------------------------------


def _fixture_sentences():
    """Sentences (word tuples) of the CoNLL-2003 fixture, DOCSTART lines dropped."""
    sentences, words = [], []
    for line in (FIXTURES / "conll2003_sample.conll").read_text(encoding="utf8").splitlines():
        fields = line.split()
        if fields and fields[0] != "-DOCSTART-":
            words.append(fields[0])
        elif words:
            sentences.append(tuple(words))
            words = []
    if words:
        sentences.append(tuple(words))
    return sentences


def test_split_is_a_deterministic_partition(tmp_path):
    prepare = load_script("prepare_data")
    source = FIXTURES / "conll2003_sample.conll"
    outputs = []
    for run in ("a", "b"):
        gold, raw = tmp_path / f"{run}-gold.conll", tmp_path / f"{run}-raw.txt.gz"
        assert prepare.main(["split", str(source), str(gold), str(raw), "--fraction", "0.5", "--seed", "3"]) == 0
        outputs.append((gold.read_bytes(), raw.read_bytes()))
    assert outputs[0] == outputs[1]  # byte-identical, gzip header included

    gold_text = outputs[0][0].decode("utf8")
    assert "-DOCSTART-" not in gold_text
    source_lines = set(source.read_text(encoding="utf8").splitlines())
    gold_blocks = [b.splitlines() for b in gold_text.strip("\n").split("\n\n")]
    for block in gold_blocks:  # original 4-column lines, unchanged
        assert all(line in source_lines and len(line.split()) == 4 for line in block)
    gold_sents = [tuple(line.split()[0] for line in block) for block in gold_blocks]
    raw_sents = [tuple(line.split(" ")) for line in
                 gzip.decompress(outputs[0][1]).decode("utf8").splitlines()]
    everything = _fixture_sentences()
    assert len(gold_sents) == round(0.5 * len(everything))
    assert Counter(gold_sents) + Counter(raw_sents) == Counter(everything)
    assert len(gold_sents) + len(raw_sents) == len(everything)

    # the gold file is a valid corpus for the plugin's reader, entities included
    import spacy

    from spacy_skd.training.readers import create_conll_ner_reader

    examples = list(create_conll_ner_reader(tmp_path / "a-gold.conll", scheme="IOB1")(spacy.blank("en")))
    assert [tuple(t.text for t in eg.reference) for eg in examples] == gold_sents


def test_split_sample_depends_on_seed_only():
    prepare = load_script("prepare_data")
    a = prepare.sample_gold(1000, 0.1, seed=0)
    assert a == prepare.sample_gold(1000, 0.1, seed=0)
    assert len(a) == 100 and a == sorted(set(a))
    assert a != prepare.sample_gold(1000, 0.1, seed=1)
    assert prepare.sample_gold(5, 0.01, seed=0) != []  # at least one gold sentence
    with pytest.raises(ValueError):
        prepare.sample_gold(10, 1.5, seed=0)


def test_raw_drops_labels_and_docstart(tmp_path):
    prepare = load_script("prepare_data")
    out = tmp_path / "nl.txt"
    assert prepare.main(["raw", str(FIXTURES / "conll2002_nl_sample.conll"), str(out), "--scheme", "IOB2"]) == 0
    lines = out.read_text(encoding="utf8").splitlines()
    assert lines and all(lines)
    assert not any("-DOCSTART-" in line or "B-" in line for line in lines)


def test_vocab_words_keeps_whole_words_in_each_casing(tmp_path):
    prepare = load_script("prepare_data")
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[unused1]", "##ing", "the", "kampala", "o'neill", "1987", ",", "a",
                                 "u.s.", "naïve", "the"]) + "\n", encoding="utf8")
    out = tmp_path / "words.txt"
    assert prepare.main(["vocab-words", str(vocab), str(out)]) == 0
    assert out.read_text(encoding="utf8").splitlines() == [
        "the", "The", "THE", "kampala", "Kampala", "KAMPALA", "o'neill", "O'neill", "O'NEILL",
        "u.s.", "U.s.", "U.S.", "naïve", "Naïve", "NAÏVE"]
    assert prepare.main(["vocab-words", str(vocab), str(out), "--casings", "as-is", "--min-length", "1"]) == 0
    assert "a" in out.read_text(encoding="utf8").splitlines()
    with pytest.raises(ValueError, match="unknown casing"):
        prepare.vocab_words(vocab, out, casings=["shout"])


# --- scripts/run_case.py and scripts/fetch_assets.py ----------------------------------------


def _run_case_dry(capsys, *args):
    run_case = load_script("run_case")
    assert run_case.main([*args, "--dry-run"]) == 0
    return [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip().startswith("python ")]


def test_run_case_commands(capsys):
    lines = _run_case_dry(
        capsys, "case1a", "--student-config", "configs/student_crf_kd.cfg", "--teacher", "t/model-best",
        "--objectives", "none,structural", "--seeds", "0,1", "--train", "gold.conll", "--raw", "raw.txt.gz",
        "--dev", "dev.conll", "--test", "test.spacy", "--max-steps", "7", "--temperature", "2",
        "--set", "components.ner.constrained=false", "--vectors", "vec/teacher",
    )
    assert lines[0] == "python -m spacy evaluate t/model-best test.spacy --output metrics/case1a/teacher.json --gpu-id -1"
    trains = [shlex.split(line) for line in lines if " train " in line]
    assert len(trains) == 4 and len(lines) == 1 + 4 * 2
    opts = [dict(zip(cmd[5::2], cmd[6::2])) for cmd in trains]
    assert [(o["-o"], o["--components.kd.objective"], o["--system.seed"]) for o in opts] == [
        ("training/case1a/none-seed0", "none", "0"), ("training/case1a/structural-seed0", "structural", "0"),
        ("training/case1a/none-seed1", "none", "1"), ("training/case1a/structural-seed1", "structural", "1")]
    assert opts[0]["--paths.raw"] == "null" and opts[1]["--paths.raw"] == "raw.txt.gz"
    assert all(o["--paths.train"] == "gold.conll" and o["--training.max_steps"] == "7"
               and o["--components.ner.constrained"] == "false" and o["--paths.cache"] == "cache/case1a"
               and o["--components.kd.temperature"] == "2.0" and o["--paths.vectors"] == "vec/teacher" for o in opts)
    assert "--output metrics/case1a/structural-seed1.json" in lines[-1]


def test_run_case_unlabeled_only_students(capsys):
    lines = _run_case_dry(
        capsys, "case3-es", "--student-config", "configs/student_crf_kd.cfg", "--teacher", "t",
        "--objectives", "none,structural", "--train", "null", "--gold-only-train", "en.conll",
        "--raw", "es.txt.gz", "--dev", "es-dev.conll", "--test", "es.spacy",
    )
    trains = [shlex.split(line) for line in lines if line.startswith("python -m spacy train")]
    none, structural = [dict(zip(cmd[5::2], cmd[6::2])) for cmd in trains]
    assert none["--paths.train"] == "en.conll" and none["--paths.raw"] == "null"
    assert "--corpora.train.gold" not in none
    assert structural["--paths.train"] == "null" and structural["--paths.raw"] == "es.txt.gz"
    assert structural["--corpora.train.gold"] == "null"
    assert "--paths.vectors" not in none and "--paths.vectors" not in structural  # no --vectors: the config's null


def test_fetch_assets_copies_and_verifies(tmp_path):
    fetch = load_script("fetch_assets")
    data = tmp_path / "data" / "corpus_x"
    data.mkdir(parents=True)
    (data / "good.txt").write_text("hello\n")
    (data / "bad.txt").write_text("tampered\n")
    good_md5 = hashlib.md5(b"hello\n").hexdigest()
    project = tmp_path / "project"
    project.mkdir()
    srsly.write_yaml(project / "project.yml", {
        "title": "t",
        "assets": [
            {"dest": "assets/corpus_x/good.txt", "checksum": good_md5, "description": "good"},
            {"dest": "assets/corpus_x/bad.txt", "checksum": good_md5, "description": "bad"},
            {"dest": "assets/corpus_y/absent.txt", "checksum": good_md5, "description": "absent"},
            {"dest": "assets/corpus_z/extra.txt", "checksum": good_md5, "description": "extra", "extra": True},
        ],
        "commands": [{"name": "noop", "script": ["python -c pass"]}],
    })
    args = ["--data", str(tmp_path / "data"), "--project", str(project)]
    assert fetch.main([*args, "--only", "corpus_x"]) == 1  # bad.txt has the wrong checksum
    assert (project / "assets/corpus_x/good.txt").read_text() == "hello\n"
    assert fetch.fetch(project, tmp_path / "data", only=["corpus_x"]) == 1
    assert fetch.fetch(project, tmp_path / "data", only=["corpus_y"]) == 1  # source missing
    (data / "bad.txt").write_text("hello\n")
    assert fetch.main([*args, "--only", "corpus_x"]) == 0
    assert not (project / "assets/corpus_z").exists()


def test_fetch_assets_prefers_local_copy_then_url_then_derives(tmp_path):
    """The local folder wins over the URL; without it the URL is fetched; a derived file is made
    from its fetched sources and verified on its content; a wrong download is an error."""
    fetch = load_script("fetch_assets")
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "a.txt").write_text("remote a\n")
    (remote / "big.txt").write_text("big file\n")
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()  # noqa: E731
    project = tmp_path / "project"
    project.mkdir()
    srsly.write_yaml(project / "project.yml", {
        "title": "t",
        "assets": [
            {"dest": "assets/x/a.txt", "url": (remote / "a.txt").as_uri(), "checksum": md5("remote a\n"), "description": "a"},
            {"dest": "assets/x/big.txt", "url": (remote / "big.txt").as_uri(), "checksum": md5("big file\n"), "description": "b"},
        ],
        "derived": [{"dest": "assets/x/big.txt.gz", "from": ["assets/x/big.txt"], "derive": "gzip",
                     "checksum": md5("big file\n"), "description": "gz"}],
        "commands": [{"name": "noop", "script": ["python -c pass"]}],
    })
    local = tmp_path / "data" / "x"
    local.mkdir(parents=True)
    (local / "a.txt").write_text("remote a\n")
    (local / "big.txt.gz").write_bytes(gzip.compress(b"big file\n"))
    (remote / "a.txt").write_text("changed upstream\n")  # would fail the checksum if fetched
    assert fetch.fetch(project, tmp_path / "data", only=["x"]) == 0
    assert (project / "assets/x/a.txt").read_text() == "remote a\n"
    assert gzip.decompress((project / "assets/x/big.txt.gz").read_bytes()) == b"big file\n"
    assert not (project / "assets/x/big.txt").exists()  # the derived file came from the local folder
    # no local folder: the URL is fetched (and checked), the derived file is made from its source
    for path in (project / "assets/x").iterdir():
        path.unlink()
    assert fetch.fetch(project, tmp_path / "nowhere", only=["x"]) == 1  # a.txt changed upstream
    assert not (project / "assets/x/a.txt").exists()
    (remote / "a.txt").write_text("remote a\n")
    assert fetch.fetch(project, tmp_path / "nowhere", only=["x"]) == 0
    assert gzip.decompress((project / "assets/x/big.txt.gz").read_bytes()) == b"big file\n"
    assert fetch.md5(project / "assets/x/big.txt.gz") == md5("big file\n")


def test_reuters_paragraphs_from_sgml():
    fetch = load_script("fetch_assets")
    sgml = ("<REUTERS><TEXT><TITLE>T</TITLE><BODY>Shares of Acme rose 5 pct &lt;ACM> on\n"
            "Tuesday, traders said.\n    Volume was 1.2 mln shares, up from\n0.8 mln a day earlier.\n"
            "    Close    12.5    13.0\n    Shares of Acme rose 5 pct &lt;ACM> on Tuesday, traders said.\n"
            " Reuter\n&#3;</BODY></TEXT></REUTERS>")
    assert fetch.reuters_paragraphs([sgml]) == [
        "Shares of Acme rose 5 pct <ACM> on Tuesday, traders said.",
        "Volume was 1.2 mln shares, up from 0.8 mln a day earlier.",
    ]


def test_run_sentscore_commands(tmp_path):
    """gold students read gold only; pseudo and kd students read the silver split through the KD
    config and differ only in lambda_KL (kd_weight 0 / 1)."""
    run_sentscore = load_script("run_sentscore")
    args = argparse.Namespace(split=Path("corpus/snips-100"), teacher=Path("t/model-best"), cache=Path("cache/s"),
                              gpu_id=-1, max_steps=9, max_unlabeled=500, temperature=10.0)
    commands = {kind: run_sentscore.train_command(args, kind, 1, Path(f"out/{kind}")) for kind in run_sentscore.KINDS}
    opts = {kind: dict(zip(cmd[5::2], cmd[6::2])) for kind, cmd in commands.items()}
    assert commands["gold"][4] == "configs/student_bilstm_slots.cfg"
    assert commands["kd"][4] == commands["pseudo"][4] == "configs/student_bilstm_sentscore_kd.cfg"
    assert "--paths.silver" not in opts["gold"] and "--components.kd.kd_weight" not in opts["gold"]
    assert (opts["pseudo"]["--components.kd.kd_weight"], opts["kd"]["--components.kd.kd_weight"]) == ("0", "1")
    for o in opts.values():
        assert o["--paths.train"] == "corpus/snips-100/gold-train" and o["--system.seed"] == "1"
        assert o["--training.max_steps"] == "9"
    assert opts["kd"]["--paths.silver"] == "corpus/snips-100/silver"
    assert opts["kd"]["--corpora.train.max_unlabeled"] == "500"
    assert opts["kd"]["--paths.cache"] == "cache/s" and opts["kd"]["--components.kd.temperature"] == "10.0"
    constrained = run_sentscore.evaluate_command(args, Path("t/model-best"), Path("m.json"),
                                                 "--components.slots.decoding", "constrained")
    assert constrained[1:6] == ["-m", "spacy", "skd", "evaluate-slots", "t/model-best"]
    assert constrained[6] == "corpus/snips-100/test"
    assert constrained[-2:] == ["--components.slots.decoding", "constrained"]
    with pytest.raises(SystemExit):  # a split without its folders is refused before anything runs
        run_sentscore.main(["x", "--split", str(tmp_path), "--teacher", str(tmp_path)])


def test_run_case_checksum_is_weasels(tmp_path):
    """run_case.py records its inputs with weasel's own checksum (not a copy of it): MD5 of a
    file's bytes, or of a folder's files' bytes in sorted path order, so old records still match."""
    import hashlib

    run_case = load_script("run_case")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "b.bin").write_bytes(b"second")
    (tmp_path / "model" / "a.txt").write_bytes(b"first")
    assert run_case.checksum(tmp_path / "model") == hashlib.md5(b"first" + b"second").hexdigest()
    assert run_case.checksum(tmp_path / "model" / "a.txt") == hashlib.md5(b"first").hexdigest()
