"""spacy-skd as an installable plugin: its entry points cover everything it registers, and its
wheel holds every subpackage, the init-config templates and those entry points."""
import configparser
import importlib
import os
import pkgutil
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import catalogue
import pytest

import spacy_skd
from tests.conftest import REPO_ROOT

# catalogue namespace -> entry-point group (spaCy keeps Language.factory functions in
# "internal_factories" and finds plugins' factories through the "spacy_factories" group)
GROUPS = {("spacy", "internal_factories"): "spacy_factories"}
SKD_COMMANDS = {"convert", "annotate", "merge-cache", "init-config", "model-card", "report", "results-table",
                "marginals", "evaluate-slots"}


def setup_cfg_entry_points():
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg")
    section = parser["options.entry_points"]
    return {group: dict(line.split(" = ", 1) for line in section[group].strip().splitlines()) for group in section}


def import_all_modules():
    for module in pkgutil.walk_packages(spacy_skd.__path__, "spacy_skd."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # an optional extra (ray, transformers) that is not installed
            continue


def registered_by_decorators():
    """(entry-point group, name) -> function for everything spacy_skd registers on import."""
    import_all_modules()
    found = {}
    for (namespace, registry_name, name), func in list(catalogue.REGISTRY.items()):
        if (getattr(func, "__module__", None) or "").startswith("spacy_skd"):
            group = GROUPS.get((namespace, registry_name), f"{namespace}_{registry_name}")
            found[(group, name)] = func
    return found


def load(target: str):
    module, attr = target.split(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def test_entry_points_cover_every_registration():
    """Each registered factory, architecture, reader, callback and schedule has an entry point naming that
    very function, and each entry point names a registered function: `spacy train` needs no --code."""
    entry_points = setup_cfg_entry_points()
    declared = {(group, name): target for group, names in entry_points.items() for name, target in names.items()
                if group != "spacy_cli"}
    registered = registered_by_decorators()
    assert set(declared) == set(registered), (set(registered) - set(declared), set(declared) - set(registered))
    for key, target in declared.items():
        assert load(target) is registered[key], key
    assert {group for group, _ in declared} == {"spacy_factories", "spacy_architectures", "spacy_readers",
                                                "spacy_callbacks", "thinc_schedules"}


def test_cli_entry_point_has_every_command():
    (target,) = setup_cfg_entry_points()["spacy_cli"].values()
    skd_cli = load(target)
    names = {cmd.name for cmd in skd_cli.registered_commands}
    assert SKD_COMMANDS <= names


def fresh_venv(env_dir: Path) -> Path:
    """A new virtualenv that sees the installed spaCy, torch etc. (behind its own packages, even
    when the tests run in a virtualenv themselves); returns its python."""
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    (own_site,) = (env_dir / "lib").glob("python3*/site-packages")
    (own_site / "borrowed.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return env_dir / "bin" / "python"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip wheel --no-deps .` builds, from a copy of the source tree (the checkout
    stays clean of build/ and egg-info)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "spacy_skd", src / "spacy_skd", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(root / "dist")], check=True, cwd=root)
    (path,) = (root / "dist").glob("spacy_skd-*.whl")
    return path


def test_wheel_holds_every_subpackage_template_and_entry_point(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (entry_points_txt,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        parser = configparser.ConfigParser()
        parser.optionxform = str  # entry-point names are case-sensitive
        parser.read_string(z.read(entry_points_txt).decode("utf8"))
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [line for line in z.read(metadata).decode("utf8").splitlines() if line.startswith("Requires-Dist:")]
    packages = {str(p.parent.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "spacy_skd").rglob("__init__.py")}
    for package in packages:
        assert f"{package}/__init__.py" in names, package
    modules = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "spacy_skd").rglob("*.py")}
    assert modules <= names, modules - names
    templates = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "spacy_skd" / "cli" / "templates").glob("*.cfg")}
    assert templates and templates <= names
    assert "spacy_skd/report/paper_results.json" in names  # the papers' figures `skd report` prints beside ours
    assert not any(n.startswith(("tests/", "scripts/", "configs/")) for n in names)
    assert {group: dict(parser[group]) for group in parser.sections()} == setup_cfg_entry_points()
    assert any(r.startswith("Requires-Dist: spacy") for r in requires)


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_registers(wheel, tmp_path):
    """Installed (not editable) into a new virtualenv that borrows the system's spaCy and torch,
    the plugin is found through entry points alone: no `import spacy_skd`, no --code."""
    python = fresh_venv(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--no-index", str(wheel)], check=True, cwd=tmp_path, env=env)
    names = {group: sorted(names) for group, names in setup_cfg_entry_points().items() if group != "spacy_cli"}
    check = ("import spacy, sys; from spacy.util import registry; "
             f"names = {names!r}; nlp = spacy.blank('en'); "
             "[nlp.add_pipe(f, name=f) for f in names['spacy_factories']]; "
             "[registry.architectures.get(n) for n in names['spacy_architectures']]; "
             "[registry.readers.get(n) for n in names['spacy_readers']]; "
             "[registry.schedules.get(n) for n in names['thinc_schedules']]; "
             "import spacy_skd; assert spacy_skd.__file__.startswith(sys.prefix), spacy_skd.__file__; "
             "print('ok')")
    result = subprocess.run([str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    result = subprocess.run([str(python), "-m", "spacy", "skd", "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    for command in SKD_COMMANDS:
        assert command in result.stdout, command
