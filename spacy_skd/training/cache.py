"""On-disk cache of per-sentence teacher outputs (docs/design.md §7 "Cost and scale").

A teacher's outputs for a training sentence (e.g. `unary` [N, L] marginals, `pairs`
[N - 1, L, L], `top1` [N] tags) are computed once and reused across epochs and across the runs
of one experiment. `TeacherCache` stores them for one namespace: one teacher (its
`fingerprint_pipeline` hash), one substructure `space`, one `temperature` and one temperature
`mode`. Each namespace lives in its own folder `directory / <16 hex digits of its hash>`, so
several teachers and settings share one cache directory without ever sharing entries.

Storage is a `diskcache.Cache` (SQLite, safe for concurrent readers and writers; entries of
1 MiB or more go to files beside the database). An entry is keyed by the SHA-256 of its words
(JSON-encoded, so the key is unambiguous) and holds a 16-byte BLAKE2b checksum followed by the
arrays packed as a small JSON header (name, dtype, shape) and their raw buffers (`pack_arrays`). No
pickle is involved, and stored values that diskcache would unpickle are refused, so reading a
cache never runs code from it.

A namespace folder records its settings plus `CACHE_FORMAT_VERSION` in a metadata entry. A
folder whose record does not match (a copied folder, a format change) is cleared with warning
W200 and rebuilt. A corrupt entry is dropped with warning W201 (once per cache) and read as a
miss, so the caller recomputes it; an unreadable database is deleted and recreated with W202.
A disk that is full or read-only is an error naming the folder and the ways out (E334); a
complete cache on a read-only disk is still read, through a read-only SQLite connection (W332).
`read_only=True` never changes the folder (`merge-cache` checks shards with it): an unreadable
database raises E340 instead of being rebuilt, and corrupt entries are counted, not deleted.
"""
import hashlib
import json
import struct
import math
import numbers
import shutil
import sqlite3
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import diskcache
import numpy as np

from .. import __version__
from ..errors import Errors, Warnings

if TYPE_CHECKING:
    from spacy.language import Language

# Bump when the entry encoding or the metadata record changes: old caches are then rebuilt.
CACHE_FORMAT_VERSION = "2"  # 2: packed buffers instead of npz (10x faster reads)

Arrays = Dict[str, np.ndarray]

_META_KEY = "skd-teacher-cache-meta"  # sentence keys are 64 hex digits, so this never collides
_DIGEST_SIZE = 16
# Entries below this size live inside SQLite (one read per lookup); larger ones become files.
_MIN_FILE_SIZE = 2**20
# Names kept out of the API (np.savez keywords in format 1), so old call sites stay valid.
_RESERVED_NAMES = frozenset({"file", "allow_pickle"})
_SETTINGS = {
    # Never evict: a teacher cache is only useful if it holds the whole corpus.
    "eviction_policy": "none",
    "statistics": False,
    "disk_min_file_size": _MIN_FILE_SIZE,
    # No memory-mapped reads: if the database file is truncated or overwritten while open,
    # mmap turns that into SIGBUS (a crash) instead of an SQLite error we can recover from.
    "sqlite_mmap_size": 0,
}


@dataclass
class CacheStats:
    """Counters for logging. hits/misses: lookups; rebuilt: times the store was cleared
    (stale metadata or an unreadable database); dropped: corrupt entries removed."""

    hits: int = 0
    misses: int = 0
    rebuilt: int = 0
    dropped: int = 0


class TeacherCache:
    """On-disk store of per-sentence teacher outputs for one (teacher, settings) namespace.

    directory (Path): cache folder shared by all namespaces; created if missing.
    fingerprint (str): teacher identity, from `fingerprint_pipeline`.
    space (str): substructure space the student needs, e.g. "crf-pairs" or "unary".
    temperature (float): teacher temperature T > 0.
    mode (str): temperature mode, e.g. "global" or "local".
    version (str): cache format version; a folder written by another version is rebuilt.
    array_names (Optional[Sequence[str]]): if given, every entry holds exactly these arrays:
        `put` raises on others and a stored entry with others is dropped as corrupt.
    read_only (bool): read through a read-only connection and change nothing: an unreadable
        database or another namespace's record raises E340, corrupt entries are misses counted
        in `stats.dropped` (kept, and without W201), writes raise E334.

    >>> import tempfile
    >>> cache = TeacherCache(tempfile.mkdtemp(), fingerprint="ab12", space="unary",
    ...                      temperature=1.0, mode="global")
    >>> cache.put(["New", "York"], {"unary": np.ones((2, 3), dtype="float32")})
    >>> cache.get(["New", "York"])["unary"].shape
    (2, 3)
    >>> cache.get(["York"]) is None, cache.stats.hits, cache.stats.misses
    (True, 1, 1)
    >>> cache.close()
    """

    def __init__(
        self,
        directory: Union[str, Path],
        *,
        fingerprint: str,
        space: str,
        temperature: float,
        mode: str,
        version: str = CACHE_FORMAT_VERSION,
        array_names: Optional[Sequence[str]] = None,
        read_only: bool = False,
    ) -> None:
        for name, value in (("fingerprint", fingerprint), ("space", space), ("mode", mode),
                            ("version", version)):
            if not isinstance(value, str) or not value:
                raise ValueError(Errors.E207.format(name=name, value=value))
        if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
                or not math.isfinite(temperature) or temperature <= 0):
            raise ValueError(Errors.E206.format(value=temperature))
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(Errors.E200.format(path=self.directory))
        self.meta = {"fingerprint": fingerprint, "space": space,
                     "temperature": float(temperature), "mode": mode, "version": version}
        # The version is left out of the folder name: after a format change the same folder
        # is found, reported stale and rebuilt, rather than left behind on disk.
        namespace = {key: value for key, value in self.meta.items() if key != "version"}
        self.path = self.directory / _sha256(json.dumps(namespace, sort_keys=True))[:16]
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(Errors.E200.format(path=self.path))
        if array_names is not None:
            for name in array_names:
                _check_name(name)
        self.array_names = None if array_names is None else tuple(sorted(array_names))
        self.stats = CacheStats()
        self.read_only = read_only
        self._warned_corrupt = False
        self._store: Optional[diskcache.Cache] = None
        if read_only:
            self._open_unchanged()
        else:
            self._open()

    # --- lookups ------------------------------------------------------------------------------

    def get(self, words: Sequence[str]) -> Optional[Arrays]:
        """The stored arrays for a sentence, or None on a miss (or a dropped corrupt entry)."""
        return self.get_many([words])[0]

    def get_many(self, batch: Sequence[Sequence[str]]) -> List[Optional[Arrays]]:
        """`get` for each sentence of a batch, in order."""
        keys = [sentence_key(words) for words in batch]
        store = self._require_open()
        try:
            found = [self._fetch(store, key) for key in keys]
        except sqlite3.DatabaseError as err:
            if not _is_corrupt_database(err):
                raise self._io_error(err) from err
            self._recover(err)
            found = [None] * len(keys)
        results: List[Optional[Arrays]] = []
        for words, key, value in zip(batch, keys, found):
            arrays = None
            if isinstance(value, _Corrupt):
                self._drop(words, key, value.reason)
            elif value is not None:
                try:
                    arrays = self._decode(value)
                except _Corrupt as err:
                    self._drop(words, key, err.reason)
            if arrays is None:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
            results.append(arrays)
        return results

    def __contains__(self, words: Sequence[str]) -> bool:
        """Whether an entry is stored for the sentence (not verified: `get` may still drop it)."""
        return sentence_key(words) in self._require_open()

    def __len__(self) -> int:
        store = self._require_open()
        return len(store) - int(_META_KEY in store)

    def keys(self) -> Iterator[str]:
        """The stored sentence keys (`sentence_key` of the words; the words are not stored)."""
        try:
            for key in self._require_open().iterkeys():
                if key != _META_KEY:
                    yield key
        except sqlite3.DatabaseError as err:
            if not self.read_only:
                raise
            raise self._unreadable(err) from err

    def items(self) -> Iterator[Tuple[str, Arrays]]:
        """(sentence key, arrays) for every stored entry that verifies; corrupt ones are
        dropped as in `get`. For comparing and merging caches, whose callers lack the words."""
        for key in list(self.keys()):
            found = self._verified(key)
            if found is not None:
                yield key, found[1]

    def copy_from(self, other: "TeacherCache", batch_size: int = 256) -> int:
        """Copy every verified entry of `other` (same namespace: teacher, space, temperature,
        mode, version) into this cache, `batch_size` entries per transaction; existing entries
        with the same key are overwritten. Merges shards written by `spacy skd annotate`.

        RETURNS (int): the number of entries copied.
        """
        if other.meta != self.meta or other.array_names != self.array_names:
            raise ValueError(Errors.E238.format(src=other.path, dst=self.path,
                                                src_meta=json.dumps(other.meta, sort_keys=True),
                                                dst_meta=json.dumps(self.meta, sort_keys=True)))
        copied, items = 0, []
        for key in list(other.keys()):
            found = other._verified(key)
            if found is None:
                continue
            items.append((key, found[0]))  # the verified bytes as stored: no re-encoding
            if len(items) == batch_size:
                self._write(items)
                copied, items = copied + len(items), []
        if items:
            self._write(items)
            copied += len(items)
        return copied

    # --- writes -------------------------------------------------------------------------------

    def put(self, words: Sequence[str], arrays: Arrays) -> None:
        """Store (or overwrite) the arrays of one sentence."""
        self.put_many([words], [arrays])

    def put_many(self, batch: Sequence[Sequence[str]], arrays: Sequence[Arrays]) -> None:
        """Store one dict of arrays per sentence, all in one transaction.

        Float and bool arrays are stored with their dtype, integer arrays as int64.
        """
        if len(batch) != len(arrays):
            raise ValueError(Errors.E205.format(n_batch=len(batch), n_arrays=len(arrays)))
        # Encode before taking the write lock, so the transaction only writes.
        items = [(sentence_key(words), self._encode(words, entry))
                 for words, entry in zip(batch, arrays)]
        if not items:
            return
        if isinstance(self._store, _ReadOnlyStore):
            raise ValueError(Errors.E334.format(path=self.path, err=f"{len(items)} new entries cannot be "
                                                "stored: the cache was opened read-only"))
        try:
            self._write(items)
        except sqlite3.DatabaseError as err:
            if not _is_corrupt_database(err):
                raise self._io_error(err) from err
            self._recover(err)
            self._write(items)
        except OSError as err:  # entries of 1 MiB or more are files beside the database
            raise self._io_error(err) from err

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection; the cache cannot be used afterwards."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> "TeacherCache":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TeacherCache('{self.path}', space={self.meta['space']!r}, "
                f"temperature={self.meta['temperature']}, mode={self.meta['mode']!r})")

    # --- internals ----------------------------------------------------------------------------

    def _open(self) -> None:
        """Open the store and make sure its metadata record is ours (else clear it)."""
        try:
            self._store = _connect(self.path)
            found = _read_meta(self._store)
            if found == self.meta:
                return
            if found is None and len(self._store) == 0:  # a new namespace folder
                self._write_meta()
                return
            if isinstance(found, dict):
                found = json.dumps(found, sort_keys=True)
            warnings.warn(Warnings.W200.format(path=self.path, found=found or "no metadata record",
                                               expected=json.dumps(self.meta, sort_keys=True)))
            self._store.clear(retry=True)
            self._write_meta()
            self.stats.rebuilt += 1
        except sqlite3.DatabaseError as err:
            if not _is_corrupt_database(err):
                self._open_read_only(err)
                return
            self._recover(err)
        except OSError as err:  # e.g. the folder cannot be created
            self._open_read_only(err)

    def _open_unchanged(self) -> None:
        """`read_only`: this namespace's store through a read-only connection, or E340."""
        store = _ReadOnlyStore.open(self.path)
        found = None if store is None else _read_meta(store)
        if found != self.meta:
            if store is not None:
                store.close()
            reason = "no readable database" if store is None else \
                f"its record is {json.dumps(found, sort_keys=True) if found else 'missing'}"
            raise ValueError(Errors.E340.format(path=self.path, err=reason))
        self._store = store

    def _unreadable(self, err: Exception) -> ValueError:
        """E340: a read-only cache whose database fails while it is read."""
        return ValueError(Errors.E340.format(path=self.path, err=f"{type(err).__name__}: {err}"))

    def _open_read_only(self, err: Exception) -> None:
        """The store cannot be opened for writing (read-only disk or folder, full disk): read a
        complete cache anyway through a read-only connection, or raise E334."""
        if self._store is not None:
            self._store.close()
            self._store = None
        store = _ReadOnlyStore.open(self.path)
        if store is None or _read_meta(store) != self.meta:
            if store is not None:
                store.close()
            raise self._io_error(err) from err
        warnings.warn(Warnings.W332.format(path=self.path, err=f"{type(err).__name__}: {err}"))
        self._store = store

    def _io_error(self, err: Exception) -> ValueError:
        """E334: the disk refused a read or write (full, read-only, no permission, locked)."""
        return ValueError(Errors.E334.format(path=self.path, err=f"{type(err).__name__}: {err}"))

    def _write_meta(self) -> None:
        self._store.set(_META_KEY, json.dumps(self.meta, sort_keys=True), retry=True)

    def _recover(self, err: Exception) -> None:
        """Replace an unreadable database by an empty store (warning W202); E340 if read-only."""
        if self.read_only:
            raise self._unreadable(err) from err
        warnings.warn(Warnings.W202.format(path=self.path, err=f"{type(err).__name__}: {err}"))
        if self._store is not None:
            self._store.close()
            self._store = None
        shutil.rmtree(self.path, ignore_errors=True)
        self._store = _connect(self.path)
        self._write_meta()
        self.stats.rebuilt += 1

    def _require_open(self) -> diskcache.Cache:
        if self._store is None:
            raise ValueError(Errors.E209.format(path=self.path))
        return self._store

    def _write(self, items: List[Tuple[str, bytes]]) -> None:
        store = self._require_open()
        # retry=True waits for other writers (e.g. teacher shards) instead of raising Timeout.
        with store.transact(retry=True):
            for key, value in items:
                store.set(key, value, retry=True)

    @staticmethod
    def _fetch(store: diskcache.Cache, key: str) -> Union[None, bytes, "_Corrupt"]:
        try:
            return store.get(key)
        except (_Corrupt, UnicodeDecodeError) as err:
            return err if isinstance(err, _Corrupt) else _Corrupt(f"unreadable value: {err}")

    def _encode(self, words: Sequence[str], arrays: Arrays) -> bytes:
        if not isinstance(arrays, dict):
            raise TypeError(Errors.E202.format(words=_preview(words), value=type(arrays).__name__))
        if self.array_names is not None and tuple(sorted(arrays)) != self.array_names:
            raise ValueError(Errors.E210.format(words=_preview(words), found=sorted(arrays),
                                                expected=list(self.array_names)))
        converted = {}
        for name, value in arrays.items():
            _check_name(name)
            try:
                array = np.asarray(value)
            except (TypeError, ValueError):
                raise TypeError(Errors.E204.format(name=name, dtype=type(value).__name__)) from None
            if array.dtype.kind in "iu":
                array = array.astype(np.int64, copy=False)
            elif array.dtype.kind not in "bf":
                raise TypeError(Errors.E204.format(name=name, dtype=array.dtype))
            converted[name] = array
        payload = pack_arrays(converted)
        return _checksum(payload) + payload

    def _decode(self, value: object) -> Arrays:
        """Verify and unpack one stored entry; raise _Corrupt if anything is off."""
        if not isinstance(value, bytes) or len(value) < _DIGEST_SIZE:
            raise _Corrupt(f"not an entry written by TeacherCache ({type(value).__name__})")
        digest, payload = value[:_DIGEST_SIZE], value[_DIGEST_SIZE:]
        if _checksum(payload) != digest:
            raise _Corrupt("checksum mismatch")
        try:
            arrays = unpack_arrays(payload)
        except Exception as err:  # json, struct and numpy each raise their own errors
            raise _Corrupt(f"undecodable entry: {type(err).__name__}: {err}") from None
        if any(array.dtype.kind not in "biuf" for array in arrays.values()):
            raise _Corrupt("non-numeric array")
        if self.array_names is not None and tuple(sorted(arrays)) != self.array_names:
            raise _Corrupt(f"arrays {sorted(arrays)}, expected {list(self.array_names)}")
        return arrays

    def _verified(self, key: str) -> Optional[Tuple[bytes, Arrays]]:
        """The stored bytes of `key` and their arrays if they verify (checksum, header, names),
        else None; a corrupt entry is dropped (W201). Keys come from `keys()`, so the warning
        names the key, not the words."""
        try:
            value = self._fetch(self._require_open(), key)
        except sqlite3.DatabaseError as err:
            if not self.read_only:
                raise
            raise self._unreadable(err) from err
        if value is None:
            return None
        try:
            if isinstance(value, _Corrupt):
                raise value
            return value, self._decode(value)
        except _Corrupt as err:
            self._drop([f"<key {key[:16]}>"], key, err.reason)
            return None

    def _drop(self, words: Sequence[str], key: str, reason: str) -> None:
        if not self._warned_corrupt and not self.read_only:  # read_only: its caller reports stats.dropped
            warnings.warn(Warnings.W201.format(path=self.path, words=_preview(words),
                                               reason=reason))
            self._warned_corrupt = True
        self.stats.dropped += 1
        if isinstance(self._store, _ReadOnlyStore):
            return  # a miss all the same; the entry stays on the read-only disk
        try:
            self._require_open().delete(key, retry=True)
        except sqlite3.DatabaseError as err:
            if not _is_corrupt_database(err):
                raise self._io_error(err) from err
            self._recover(err)


def fingerprint_pipeline(nlp: "Language", component: str, extra: Optional[dict] = None) -> str:
    """A stable SHA-256 hex digest identifying a teacher; it changes when any weight changes.

    Hashed: the spacy_skd version, the component's name and config section (keys sorted), the
    pipeline's component names, every component's weights (so the tok2vec or transformer it
    listens to counts) and `cfg` (labels), the tokenizer and the static vectors. Weights are
    hashed as arrays (thinc params, torch state dicts by name), not as serialized bytes:
    spacy-transformers serializes the same weights to different bytes on every load. Left
    out: the vocab's strings (they grow as text is processed), meta.json and the rest of the
    config (paths and training settings differ between runs that share a teacher).

    nlp (Language): the teacher pipeline.
    component (str): name of the teacher component in `nlp`.
    extra (Optional[dict]): settings the teacher's outputs depend on beyond the pipeline (a spaCy
        transition teacher's beam width); hashed when given.
    RETURNS (str): 64 hex digits.
    """
    if component not in nlp.component_names:
        raise ValueError(Errors.E208.format(component=component,
                                            pipes=", ".join(nlp.component_names)))
    header = {
        "spacy_skd": __version__,
        "component": component,
        "config": nlp.config["components"][component],
        "components": nlp.component_names,
    }
    if extra:
        header["teacher_settings"] = extra
    digest = hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode("utf8"))
    for name, proc in nlp.components:
        digest.update(name.encode("utf8"))
        digest.update(json.dumps(getattr(proc, "cfg", None), sort_keys=True, default=str).encode("utf8"))
        model = getattr(proc, "model", None)
        if model is not None and hasattr(model, "walk"):
            _hash_weights(digest, model)
    digest.update(nlp.tokenizer.to_bytes(exclude=["vocab"]))
    digest.update(nlp.vocab.vectors.to_bytes(exclude=["strings"]))
    return digest.hexdigest()


def _hash_weights(digest, model) -> None:
    """Feed every weight of a thinc model (and of the torch modules it wraps) to `digest`."""
    for i, node in enumerate(model.walk()):
        for param in sorted(node.param_names):
            if node.has_param(param):
                digest.update(f"{i}:{node.name}:{param}".encode("utf8"))
                digest.update(np.ascontiguousarray(node.ops.to_numpy(node.get_param(param))).tobytes())
        for shim in node.shims:
            module = getattr(shim, "_model", None)
            if hasattr(module, "state_dict"):  # torch (PyTorchShim, spacy-transformers' shim)
                for key, tensor in sorted(module.state_dict().items()):
                    digest.update(f"{i}:{key}".encode("utf8"))
                    digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())
            else:
                digest.update(shim.to_bytes())


class _Corrupt(Exception):
    """A stored entry that cannot be trusted; `reason` goes into warning W201."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NoPickleDisk(diskcache.Disk):
    """diskcache's serializer, minus unpickling: a pickled value in the store is refused."""

    def fetch(self, mode, filename, value, read):
        if mode == diskcache.core.MODE_PICKLE:
            raise _Corrupt("pickled value (refused: loading it could run code)")
        return super().fetch(mode, filename, value, read)


def _connect(path: Path) -> diskcache.Cache:
    return diskcache.Cache(str(path), disk=_NoPickleDisk, **_SETTINGS)


class _ReadOnlyStore:
    """The lookups `TeacherCache` makes of a diskcache store (`get`, `len`, `close`), answered
    through a read-only SQLite connection, which needs no write access to the folder. Values
    are decoded by the same no-pickle `Disk` as in the writable store."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self._sql = connection
        self._disk = _NoPickleDisk(str(path), min_file_size=_MIN_FILE_SIZE)

    @classmethod
    def open(cls, path: Path) -> Optional["_ReadOnlyStore"]:
        """The store in folder `path`, or None if it has no readable database."""
        db = path / diskcache.core.DBNAME
        if not db.is_file():
            return None
        try:
            connection = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            connection.execute("SELECT COUNT(*) FROM Cache").fetchone()
        except sqlite3.DatabaseError:
            return None
        return cls(path, connection)

    def get(self, key: str):
        row = self._sql.execute("SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1",
                                (key,)).fetchone()
        if row is None:
            return None
        try:
            return self._disk.fetch(row[0], row[1], row[2], False)
        except OSError:  # a value file gone missing: a miss, as diskcache itself reads it
            return None

    def __contains__(self, key: str) -> bool:
        return self._sql.execute("SELECT 1 FROM Cache WHERE key = ? AND raw = 1", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._sql.execute("SELECT COUNT(*) FROM Cache").fetchone()[0]

    def iterkeys(self) -> Iterator[str]:
        yield from (row[0] for row in self._sql.execute("SELECT key FROM Cache WHERE raw = 1 ORDER BY rowid"))

    def close(self) -> None:
        self._sql.close()


def _read_meta(store: diskcache.Cache) -> Union[None, str, dict]:
    """The metadata record: a dict, None if absent, or a description of what was found."""
    try:
        raw = store.get(_META_KEY)
    except (_Corrupt, UnicodeDecodeError) as err:
        return f"an unreadable metadata record ({err})"
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return f"an unreadable metadata record ({raw!r:.80})"


def _is_corrupt_database(err: sqlite3.DatabaseError) -> bool:
    # OperationalError covers locks, permissions and full disks: deleting the store would not
    # help, so those propagate.
    return not isinstance(err, sqlite3.OperationalError)


def sentence_key(words: Sequence[str]) -> str:
    """The cache key of a sentence: SHA-256 (64 hex digits) of its JSON-encoded words."""
    if isinstance(words, (str, bytes)) or not all(isinstance(word, str) for word in words):
        raise TypeError(Errors.E201.format(value=_preview(words)))
    # ensure_ascii: lone surrogates encode too, and the encoding of a word list is unambiguous.
    return _sha256(json.dumps(list(words), ensure_ascii=True))


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name in _RESERVED_NAMES:
        raise ValueError(Errors.E203.format(name=name))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _checksum(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=_DIGEST_SIZE).digest()


def _preview(words: object, n: int = 8) -> str:
    """A short repr of a sentence for messages."""
    if isinstance(words, (list, tuple)) and len(words) > n:
        return repr(list(words[:n]))[:-1] + ", ...]"
    return repr(words)[:200]


def pack_arrays(arrays: Arrays) -> bytes:
    """Arrays -> bytes: a 4-byte header length, a JSON header of (name, dtype, shape), then the
    raw little-endian buffers in order. No pickle, so reading never runs code; one header per
    entry instead of npz's zip member per array keeps reads cheap for small arrays."""
    header, buffers = [], []
    for name, array in arrays.items():
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        header.append([name, array.dtype.str, list(array.shape)])
        buffers.append(array.tobytes())
    head = json.dumps(header).encode("utf-8")
    return struct.pack("<I", len(head)) + head + b"".join(buffers)


def unpack_arrays(payload: bytes) -> Arrays:
    """The inverse of `pack_arrays`; raises on any inconsistency (caught as a corrupt entry)."""
    (size,) = struct.unpack_from("<I", payload, 0)
    header = json.loads(payload[4 : 4 + size].decode("utf-8"))
    offset, arrays = 4 + size, {}
    for name, dtype, shape in header:
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf":
            raise ValueError(f"non-numeric dtype {dtype}")
        count = int(np.prod(shape, dtype=np.int64))
        arrays[name] = np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        offset += count * dtype.itemsize
    if offset != len(payload):
        raise ValueError(f"{len(payload) - offset} trailing bytes")
    return arrays
