"""Shard manifests: what a shard folder of the offline teacher pass holds, written atomically.

A manifest names the teacher (fingerprint, component, kind), the cache namespace and storage,
the input (hash, format, language), the shard (i of N) and, for `--store targets`, the student
config. Its identity fields decide whether a shard may be resumed, skipped or merged: a folder
written with another teacher, input or setting is an error, never overwritten.
"""
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from .. import __version__
from ..errors import Errors
from ..teacher.runner import TeacherRunner
from .cache import CACHE_FORMAT_VERSION, TeacherCache
from .texts import hash_input, input_format

if TYPE_CHECKING:  # for annotations only: student_targets imports the pipes
    from .student_targets import StudentTargets

MANIFEST = "manifest.json"
MERGED = "merged.json"  # what merge_shards wrote into a cache folder (not a shard manifest)
MANIFEST_FORMAT = 1
# Manifest fields that must agree for a shard to be resumed, skipped or merged (not the input's
# file name, the version or the counts: renaming a file does not change what a shard holds).
# `student` is in targets shards only (None elsewhere).
IDENTITY = (("teacher", "fingerprint"), ("teacher", "component"), ("teacher", "kind"),
             ("space",), ("storage",), ("input", "sha256"), ("input", "format"), ("input", "lang"),
             ("shard", "count"), ("student", "config_sha256"), ("student", "overrides"),
             ("student", "objective"), ("student", "temperature"), ("student", "temperature_mode"))
OPTIONAL = ("student",)
# The input fields of IDENTITY: shards of several inputs (one annotation each) merge into one
# cache when every other identity field (teacher, space, storage, student) agrees.
INPUT = (("input", "sha256"), ("input", "format"), ("input", "lang"))
# The namespace the shards of every input share (their entries' cache namespace and settings):
# what makes two merged.json records one record.
NAMESPACE = tuple(f for f in IDENTITY if f not in INPUT and f != ("shard", "count"))


def shard_dir(output: Union[str, Path], shard: Tuple[int, int]) -> Path:
    """The folder of shard (i, N) in `output`: shard-{i:05d}-of-{N:05d}."""
    return Path(output) / f"shard-{shard[0]:05d}-of-{shard[1]:05d}"


def shard_manifest(runner: "TeacherRunner", texts_path: Union[str, Path], shard: Tuple[int, int], *,
                   store: str, lang: str, student: Optional["StudentTargets"] = None,
                   input_sha256: Optional[str] = None) -> Dict[str, object]:
    """What shard i/N of `texts_path` holds (`complete` False until its last batch is written).
    `input_sha256`: `hash_input(texts_path)` when already known (one hash for many shards)."""
    if student is None:
        space, temperature, mode = runner.space, 1.0, "raw"
    else:
        space, temperature, mode = student.space, student.temperature, student.mode
    manifest = {
        "format": MANIFEST_FORMAT,
        "spacy_skd": __version__,
        "teacher": {"fingerprint": runner.fingerprint, "component": runner.component, "kind": runner.kind,
                    "path": runner.path},
        "space": space,
        "storage": {"store": store, "temperature": temperature, "mode": mode,
                    "cache_format": CACHE_FORMAT_VERSION},
        "input": {"name": Path(texts_path).name, "sha256": input_sha256 or hash_input(texts_path),
                  "format": input_format(texts_path), "lang": lang},
        "shard": {"index": shard[0], "count": shard[1]},
        "complete": False,
    }
    if student is not None:
        manifest["student"] = student.identity
    return manifest


def manifest_cache(directory: Union[str, Path], manifest: Dict[str, object], read_only: bool = False) -> TeacherCache:
    """The namespace a shard's manifest says it holds, opened in `directory` (`read_only`: changing
    nothing there, E340 if it cannot be read)."""
    storage = manifest["storage"]
    return TeacherCache(directory, fingerprint=manifest["teacher"]["fingerprint"], space=manifest["space"],
                        temperature=storage["temperature"], mode=storage["mode"], read_only=read_only)


def check_shard(directory: Path, manifest: Dict[str, object]) -> Optional[Dict[str, object]]:
    """The manifest already in a shard folder (None if new); E228 if it was written by another
    teacher, input or setting, so a shard is never silently overwritten."""
    found = read_manifest(directory) if (directory / MANIFEST).exists() else None
    if found is not None:
        diff = differences(found, manifest, fields=IDENTITY + (("shard", "index"),))
        if diff:
            raise ValueError(Errors.E228.format(path=directory, diff="; ".join(diff)))
    return found


def read_manifest(directory: Union[str, Path]) -> Dict[str, object]:
    """The manifest of a shard folder (E229 if it cannot be read)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf8"))
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format') if isinstance(manifest, dict) else manifest!r}, "
                             f"expected {MANIFEST_FORMAT}")
        for field in IDENTITY + (("shard", "index"),):
            lookup(manifest, field)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(Errors.E229.format(path=path, err=f"{type(err).__name__}: {err}")) from None
    return manifest


def write_manifest(directory: Union[str, Path], manifest: Dict[str, object], name: str = MANIFEST) -> None:
    """Write `manifest.json` atomically: a reader sees the old file or the new one, never half."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def find_shards(paths: Sequence[Union[str, Path]]) -> List[Path]:
    """Shard folders: each path itself if it has a manifest, else its shard-*-of-* folders."""
    found = []
    for path in map(Path, paths):
        if (path / MANIFEST).exists():
            found.append(path)
            continue
        inside = sorted(p for p in path.glob("shard-*-of-*") if (p / MANIFEST).exists()) if path.is_dir() else []
        if not inside:
            raise ValueError(Errors.E230.format(path=path))
        found.extend(inside)
    return found


def lookup(manifest: Dict[str, object], field: Tuple[str, ...]) -> object:
    """The value of a manifest field; None for a section only some shards have (`student`)."""
    if field[0] in OPTIONAL and field[0] not in manifest:
        return None
    value = manifest
    for key in field:
        value = value[key]
    return value


def differences(found: Dict[str, object], expected: Dict[str, object], fields) -> List[str]:
    """'field: found vs expected' for each identity field that differs."""
    diff = []
    for field in fields:
        a, b = lookup(found, field), lookup(expected, field)
        if a != b:
            diff.append(f"{'.'.join(field)}: {json.dumps(a, sort_keys=True)} here, "
                        f"{json.dumps(b, sort_keys=True)} in this run")
    return diff
