"""Names and opening of a teacher's caches, as `structural_kd` and `skd annotate` both use them.

Two namespaces per teacher (keyed by its fingerprint and the tokens): its raw potentials,
untempered and shared by every student, objective and temperature; and one student's targets
at one temperature and mode. `MemoryStore` is the same get_many/put_many interface in memory,
for runs without a disk cache.
"""
import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..training.cache import TeacherCache
from .protocol import Arrays


def default_cache_dir() -> Path:
    """$SKD_CACHE_DIR, else ~/.cache/spacy-skd."""
    return Path(os.environ.get("SKD_CACHE_DIR") or Path.home() / ".cache" / "spacy-skd")


def potentials_space(kind: str) -> str:
    """The cache `space` of a teacher's raw outputs, e.g. "potentials:crf"."""
    return f"potentials:{kind}"


def targets_space(teacher_kind: str, student_kind: str, case: str, space_key: str) -> str:
    """The cache `space` of a student's targets, e.g. "targets:crf->maxent:2a:BIOES:free"; its
    temperature and mode are the student's KD settings."""
    return f"targets:{teacher_kind}->{student_kind}:{case}:{space_key}"


def potentials_cache(directory: Union[str, Path], fingerprint: str, kind: str) -> TeacherCache:
    """The namespace of a teacher's raw outputs in `directory`: untempered (T = 1, mode "raw"),
    shared by every objective and temperature."""
    return TeacherCache(directory, fingerprint=fingerprint, space=potentials_space(kind),
                        temperature=1.0, mode="raw")


def targets_cache(directory: Union[str, Path], fingerprint: str, space: str, temperature: float,
                  mode: str) -> TeacherCache:
    """The namespace of one student's targets (`TargetMaker.space`) in `directory`."""
    return TeacherCache(directory, fingerprint=fingerprint, space=space, temperature=temperature, mode=mode)


class MemoryStore:
    """The cache's get_many/put_many in memory, for `cache = false` (one run, no disk)."""

    def __init__(self) -> None:
        self._data: Dict[tuple, Arrays] = {}

    def get_many(self, batch: Sequence[Sequence[str]]) -> List[Optional[Arrays]]:
        return [self._data.get(tuple(words)) for words in batch]

    def put_many(self, batch: Sequence[Sequence[str]], arrays: Sequence[Arrays]) -> None:
        self._data.update(zip(map(tuple, batch), arrays))

    def close(self) -> None:
        self._data.clear()
