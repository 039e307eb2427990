#!/usr/bin/env python
"""The wheelhouse `scripts/gpu_check.py` installs on a GPU machine that has no package index.

Such a machine has Python 3.12, torch, CuPy and numpy, but no spaCy. On a machine with an index,

    python scripts/gpu_wheelhouse.py [--output wheelhouse] [--data ../shared/data]

writes into one folder (git-ignored):

    wheels/            cp312 manylinux x86_64 wheels (`pip download --only-binary :all: --no-deps`)
                       of requirements.txt, the pinned list: spacy-skd's install_requires and its
                       `transformers` and `seq2seq` extras, walked through their dependencies, at
                       the versions installed in the running environment (its `pip freeze`), minus
                       what the GPU machine brings (torch, numpy, CuPy, NVIDIA runtime packages);
                       and a wheel of spacy-skd itself
    data/              small slices of the real datasets (CoNLL-2003, UD EWT, SNIPS) in the layout
                       `gpu_check.py --data` reads
    bundle.tar.xz      both, packed to travel (< 60 MiB): the one file to copy to the GPU machine

`--list` prints the pinned list and downloads nothing (the test suite checks it that way).
`install_command` is what the GPU machine runs; it needs only the standard library.
"""
import argparse
import configparser
import gzip
import itertools
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
# The GPU machine's interpreter and platform: wheels are chosen for it, not for this machine.
TARGET = {"python": "3.12", "implementation": "cp", "abi": "cp312",
          # glibc >= 2.28 (any current Linux); spaCy 3.8.18 ships manylinux_2_28 wheels only
          "platforms": ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_24_x86_64",
                        "manylinux_2_28_x86_64")}
TARGET_MARKERS = {"python_version": "3.12", "python_full_version": "3.12.0", "sys_platform": "linux",
                  "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                  "implementation_name": "cpython", "platform_python_implementation": "CPython"}
# Installed on the GPU machine already, and far too large to travel: never in the wheelhouse.
PROVIDED = re.compile(r"^(torch|numpy|cupy(-cuda\w+)?|triton|nvidia-.*|fastrlock)$")
# Not needed offline: huggingface-hub's faster download backend (4 MB).
UNNEEDED = {"hf-xet"}
EXTRAS = ("transformers", "seq2seq")
MAX_BYTES = 60 * 2 ** 20
# (source under --data, target under data/, kind, first, count): a few dozen steps' worth per case.
# "text" turns the sentences after the gold slice into raw text, one sentence a line, as the
# students' unlabeled part and the teacher pass's input (sentences: parsers' memory is O(N^3)).
SLICES = (
    ("conll2003_en/train.conll", "conll2003_en/train.conll", "conll", 0, 600),
    ("conll2003_en/dev.conll", "conll2003_en/dev.conll", "conll", 0, 200),
    ("conll2003_en/train.conll", "raw/conll.txt", "text", 600, 2000),
    ("ud_en_ewt/en_ewt-ud-train.conllu.gz", "ud_en_ewt/train.conllu", "conll", 0, 600),
    ("ud_en_ewt/en_ewt-ud-dev.conllu", "ud_en_ewt/dev.conllu", "conll", 0, 200),
    ("ud_en_ewt/en_ewt-ud-train.conllu.gz", "raw/ewt.txt", "text", 600, 2000),
    *((f"snips/{split}/{name}", f"snips/{split}/{name}", "lines", 0, n)
      for split, n in (("train", 600), ("valid", 200)) for name in ("seq.in", "seq.out", "label")),
    *((f"snips/train/{name}", f"snips/silver/{name}", "lines", 600, 1000) for name in ("seq.in", "seq.out", "label")),
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def roots(setup_cfg: Path = ROOT / "setup.cfg", extras: Sequence[str] = EXTRAS) -> List[str]:
    """spacy-skd's install_requires plus the given extras, as requirement strings."""
    cfg = configparser.ConfigParser()
    cfg.read(setup_cfg, encoding="utf8")
    lines = cfg["options"]["install_requires"].splitlines()
    for extra in extras:
        lines += cfg["options.extras_require"][extra].splitlines()
    return [line.strip() for line in lines if line.strip()]


def pinned_requirements(root_requirements: Iterable[str]) -> Dict[str, str]:
    """{name: version} of every distribution the roots need on the GPU machine, at the version
    installed here, walked through their dependencies (markers evaluated for the target, extras
    followed), minus PROVIDED. A root that is not installed here is an error: pin what you test."""
    from packaging.requirements import Requirement  # the dev environment has it; the GPU machine need not

    pins: Dict[str, str] = {}
    todo = [(Requirement(r), "") for r in root_requirements]
    seen = set()
    while todo:
        req, extra = todo.pop()
        name = canonical(req.name)
        env = {**TARGET_MARKERS, "extra": extra}
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        if PROVIDED.match(name) or name in UNNEEDED:
            continue
        for wanted in sorted(req.extras) or [""]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            try:
                dist = metadata.distribution(req.name)
            except metadata.PackageNotFoundError:
                raise SystemExit(f"{req.name} is needed on the GPU machine but not installed here: install "
                                 f"spacy-skd with the extras {', '.join(EXTRAS)} first") from None
            if not req.specifier.contains(dist.version, prereleases=True):
                raise SystemExit(f"{req.name} {dist.version} installed here does not satisfy {req}")
            pins[name] = dist.version
            for sub in dist.requires or []:
                sub_req = Requirement(sub)
                # a dependency guarded by `extra == "x"` only counts when extra x was asked for
                if sub_req.marker is not None and "extra" in str(sub_req.marker):
                    if not wanted or not sub_req.marker.evaluate({**TARGET_MARKERS, "extra": wanted}):
                        continue
                    sub_req.marker = None
                todo.append((sub_req, ""))
    pins.pop("spacy-skd", None)  # built from this checkout, below
    return dict(sorted(pins.items()))


def requirement_lines(pins: Dict[str, str]) -> List[str]:
    return [f"{name}=={version}" for name, version in pins.items()]


def download_command(requirements: Path, dest: Path) -> List[str]:
    return [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
            "--python-version", TARGET["python"],
            *itertools.chain.from_iterable(("--platform", p) for p in TARGET["platforms"]),
            "--implementation", TARGET["implementation"], "--abi", TARGET["abi"], "--abi", "abi3",
            "--abi", "none", "-d", str(dest), "-r", str(requirements)]


def install_command(python: str, wheelhouse: Path) -> List[str]:
    """pip (the GPU machine's own, seen through --system-site-packages) installs the pinned list
    and spacy-skd, offline, into the virtual environment of `python`."""
    wheels = sorted(wheelhouse.glob("spacy_skd-*.whl"))
    if len(wheels) != 1:
        raise SystemExit(f"expected one spacy_skd wheel in {wheelhouse}, found {len(wheels)}: "
                         f"rerun scripts/gpu_wheelhouse.py")
    return [python, "-m", "pip", "install", "--no-index", "--no-deps", "--find-links", str(wheelhouse),
            "-r", str(wheelhouse / "requirements.txt"), str(wheels[0])]


def _read_lines(path: Path) -> Iterable[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf8") as f:
        yield from f


def _blocks(lines: Iterable[str]) -> Iterable[str]:
    """Blank-line separated blocks (sentences of CoNLL / CoNLL-U files), each with its newline."""
    block: List[str] = []
    for line in lines:
        if line.strip():
            block.append(line)
        elif block:
            yield "".join(block) + "\n"
            block = []
    if block:
        yield "".join(block) + "\n"


def _words(block: str, conllu: bool) -> str:
    """The words of a CoNLL / CoNLL-U sentence (no multiword ranges, empty nodes), space-separated."""
    if conllu:
        rows = [line.split("\t") for line in block.splitlines() if not line.startswith("#")]
        return " ".join(r[1] for r in rows if r[0].isdigit())
    return " ".join(line.split()[0] for line in block.splitlines() if line.strip())


def write_slices(data: Path, out: Path) -> List[Path]:
    """The slices of SLICES, from the datasets in `data` to `out`."""
    written = []
    for source, target, kind, first, n in SLICES:
        src, dst = data / source, out / target
        if not src.is_file():
            raise SystemExit(f"{src} not found: point --data at the folder with the datasets")
        dst.parent.mkdir(parents=True, exist_ok=True)
        units = _read_lines(src) if kind == "lines" else _blocks(_read_lines(src))
        if kind == "conll":  # CoNLL-2003 opens with a -DOCSTART- block: not a sentence
            units = (u for u in units if not u.startswith("-DOCSTART-"))
        if kind == "text":
            units = (_words(u, ".conllu" in src.name) + "\n" for u in units)
        dst.write_text("".join(itertools.islice(units, first, first + n)), encoding="utf8")
        written.append(dst)
    return written


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _stored(wheel: Path, dest: Path) -> None:
    """`wheel` rewritten without compression: xz then compresses the whole bundle far better
    (spaCy's 35 MB wheel alone would not leave room for the rest)."""
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(dest / wheel.name, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            out.writestr(info, src.read(info), compress_type=zipfile.ZIP_STORED)


def bundle(wheels: Path, data: Optional[Path], dest: Path) -> None:
    """One .tar.xz of the wheels (stored, uncompressed), requirements.txt and the data slices."""
    with tempfile.TemporaryDirectory() as tmp:
        stored = Path(tmp) / "wheels"
        stored.mkdir()
        for wheel in sorted(wheels.glob("*.whl")):
            _stored(wheel, stored)
        shutil.copy(wheels / "requirements.txt", stored)
        with tarfile.open(dest, "w:xz", preset=6) as tar:
            tar.add(stored, arcname="wheels")
            if data is not None:
                tar.add(data, arcname="data")


def prepare(output: Path, data: Optional[Path]) -> int:
    """Download the wheels into OUTPUT/wheels, slice the data into OUTPUT/data, and pack both
    into OUTPUT/bundle.tar.xz: the one file that travels to the GPU machine."""
    pins = pinned_requirements(roots())
    wheels = output / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)  # no wheels of other versions from an earlier run
    wheels.mkdir(parents=True)
    requirements = wheels / "requirements.txt"
    requirements.write_text("\n".join(requirement_lines(pins)) + "\n", encoding="utf8")
    subprocess.run(download_command(requirements, wheels), check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(ROOT)], check=True)
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' leftovers
    if data is not None:
        shutil.rmtree(output / "data", ignore_errors=True)
        write_slices(data, output / "data")
    dest = output / "bundle.tar.xz"
    print(f"packing {dest} (a few minutes)", flush=True)
    bundle(wheels, output / "data" if data is not None else None, dest)
    size = dest.stat().st_size
    print(f"{dest}: {len(list(wheels.glob('*.whl')))} wheels ({folder_bytes(wheels) / 2 ** 20:.1f} MiB), "
          f"bundle {size / 2 ** 20:.1f} MiB")
    if size > MAX_BYTES:
        print(f"too large to travel: more than {MAX_BYTES / 2 ** 20:.0f} MiB", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", type=Path, default=ROOT / "wheelhouse")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                   help="datasets to slice into OUTPUT/data ('none': no slices)")
    p.add_argument("--list", action="store_true", help="print the pinned list only, download nothing")
    args = p.parse_args(argv)
    if args.list:
        print("\n".join(requirement_lines(pinned_requirements(roots()))))
        return 0
    return prepare(args.output, None if str(args.data) == "none" else args.data)


if __name__ == "__main__":
    sys.exit(main())
