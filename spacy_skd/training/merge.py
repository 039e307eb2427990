"""`skd merge-cache`: check the shards' manifests and copy their entries into one cache folder.

The shards may come from several inputs (e.g. the unlabeled text of several languages), each
annotated as its own `--shard i/N` run. The folder's `merged.json` records, per namespace, every
input merged into it so far.

A shard is read without being changed (a read-only `TeacherCache`). One whose database cannot be
read, whose entries fail their checksum, or that holds fewer entries than its manifest counts
has lost sentences: merging goes on with the others, then marks each such shard incomplete and
raises E341 naming it, so that rerunning `annotate` on it recomputes exactly what was lost.
"""
import json
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import Errors, Warnings
from .cache import TeacherCache
from .manifest import (
    IDENTITY, INPUT, MERGED, NAMESPACE, find_shards, lookup, manifest_cache, read_manifest, write_manifest,
)


def merge_shards(shard_dirs: Sequence[Union[str, Path]], output: Union[str, Path], *,
                 allow_partial: bool = False) -> Dict[str, object]:
    """Check the shards' manifests and copy their entries into one cache folder `output`.

    The shards may come from several inputs (e.g. the unlabeled text of several languages), each
    annotated as its own `--shard i/N` run: every input's shards are checked as one annotation
    (complete, one folder per index, one shard count), and all of them must share the teacher,
    substructure space and storage, so that their entries belong in one cache namespace.

    shard_dirs (Sequence[str | Path]): shard folders (or folders holding them).
    output (str | Path): the merged cache folder, for `cache_dir` / $SKD_CACHE_DIR.
    allow_partial (bool): merge even if some shard indices are missing (W155), else E234.
    Raises E341 after copying the sound shards if any shard lost data (see the module docstring).
    RETURNS (Dict[str, object]): shards, entries (copied), texts (per the manifests), missing
        ({input name: missing shard indices}, inputs with none missing left out), inputs (one
        summary per input, named by file name, plus hash where two inputs share a file name),
        seconds, cache_path.
    """
    start = time.perf_counter()
    dirs = find_shards(shard_dirs)
    if not dirs:
        raise ValueError(Errors.E237)
    manifests = [read_manifest(d) for d in dirs]
    first = manifests[0]
    inputs: Dict[Tuple[str, ...], Dict[str, object]] = {}  # input identity -> its shards
    for directory, manifest in zip(dirs, manifests):
        i, n = manifest["shard"]["index"], manifest["shard"]["count"]
        if not manifest.get("complete"):
            raise ValueError(Errors.E231.format(path=directory, i=i, n=n))
        key = tuple(json.dumps(lookup(manifest, field)) for field in INPUT)
        group = inputs.setdefault(key, {"first": directory, "manifest": manifest, "by_index": {}, "texts": 0})
        for field in IDENTITY:
            if field in INPUT:
                continue
            # the namespace is every shard's; the rest (the shard count) is one input's
            if field in NAMESPACE:
                reference, expected = dirs[0], first
            else:
                reference, expected = group["first"], group["manifest"]
            a, b = lookup(expected, field), lookup(manifest, field)
            if a != b:
                raise ValueError(Errors.E232.format(a=reference, b=directory, field=".".join(field),
                                                    value_a=json.dumps(a, sort_keys=True),
                                                    value_b=json.dumps(b, sort_keys=True)))
        if i in group["by_index"]:
            raise ValueError(Errors.E233.format(a=group["by_index"][i], b=directory, i=i, n=n))
        group["by_index"][i] = directory
        group["texts"] += manifest["texts"]
    names = [group["manifest"]["input"]["name"] for group in inputs.values()]
    summaries = []
    for group in inputs.values():
        info, n = group["manifest"]["input"], group["manifest"]["shard"]["count"]
        # inputs are named by file name, and by hash too where two share a name (es/ and nl/ train-raw)
        name = info["name"] if names.count(info["name"]) == 1 else f"{info['name']} ({info['sha256'][:12]})"
        missing = sorted(set(range(n)) - set(group["by_index"]))
        if missing and not allow_partial:
            raise ValueError(Errors.E234.format(missing=missing, n=n, name=name))
        if missing:
            warnings.warn(Warnings.W155.format(missing=missing, n=n, name=name, output=output))
        summaries.append({"name": name, "sha256": info["sha256"], "count": n, "shards": sorted(group["by_index"]),
                          "missing": missing, "texts": group["texts"]})
    copied, damaged = 0, []
    with manifest_cache(output, first) as target:  # the namespace the (agreeing) manifests name
        for directory, manifest in zip(dirs, manifests):
            n_copied, problem = _copy_shard(target, directory, manifest)
            copied += n_copied
            if problem is not None:
                damaged.append(_mark_incomplete(directory, manifest, problem))
        cache_path, stored = str(target.path), len(target)
    if damaged:
        raise ValueError(Errors.E341.format(n=len(damaged), shards="; ".join(damaged), output=output))
    texts = sum(summary["texts"] for summary in summaries)
    record = {key: value for key, value in first.items() if key not in ("shard", "texts", "complete", "input")}
    write_manifest(output, _merged_record(Path(output), record, summaries, stored), name=MERGED)
    return {"shards": len(dirs), "entries": copied, "texts": texts, "inputs": summaries,
            "missing": {summary["name"]: summary["missing"] for summary in summaries if summary["missing"]},
            "seconds": time.perf_counter() - start, "cache_path": cache_path}


def _copy_shard(target: TeacherCache, directory: Path, manifest: Dict[str, object]) -> Tuple[int, Optional[str]]:
    """Copy a shard's verified entries into `target`, reading the shard without changing it.
    RETURNS (Tuple[int, Optional[str]]): entries copied, and what the shard lost (None: nothing)."""
    expected = manifest["texts"] - manifest.get("too_long", 0)  # too long for the bound: never stored
    try:
        with manifest_cache(directory, manifest, read_only=True) as source:
            copied = target.copy_from(source)
            dropped = source.stats.dropped
    except ValueError as err:
        if not str(err).startswith("[skd-E340]"):  # e.g. the output's disk is full: not the shard's fault
            raise
        return 0, f"its cache cannot be read ({err})"
    if dropped:
        return copied, f"{dropped} corrupt entries (checksum or format); {copied} of {expected} sentences readable"
    if copied < expected:
        return copied, f"it holds {copied} of the {expected} sentences its manifest counts"
    return copied, None


def _mark_incomplete(directory: Path, manifest: Dict[str, object], problem: str) -> str:
    """Mark a shard that lost data incomplete, so that `annotate` resumes it; its E341 line."""
    i, n = manifest["shard"]["index"], manifest["shard"]["count"]
    try:
        write_manifest(directory, {**manifest, "complete": False})
    except OSError as err:
        problem += f"; its manifest could not be marked incomplete ({type(err).__name__}: {err})"
    return f"'{directory}' (shard {i}/{n}): {problem}"


def _merged_record(output: Path, namespace: Dict[str, object], summaries: List[Dict[str, object]],
                   stored: int) -> Dict[str, object]:
    """The new `merged.json` of a cache folder: this merge's namespace, with every input merged
    into it so far (one merge per language adds to, not replaces, the list), and the records of
    the other namespaces (other teachers) merged into the same folder under `others`."""
    def key(record: Dict[str, object]) -> str:  # the identity fields, not version or teacher path
        return json.dumps([lookup(record, field) for field in NAMESPACE], sort_keys=True)

    keyed: List[Tuple[str, Dict[str, object]]] = []
    path = output / MERGED
    if path.exists():
        try:
            previous = json.loads(path.read_text(encoding="utf8"))
            records = [previous, *previous.pop("others", [])]
            if not all(isinstance(r, dict) and isinstance(r.get("merged", {}).get("inputs"), list) for r in records):
                raise ValueError("a record without merged.inputs")
            keyed = [(key(r), r) for r in records]
        except (OSError, ValueError, TypeError, AttributeError, KeyError) as err:
            warnings.warn(Warnings.W156.format(path=path, err=f"{type(err).__name__}: {err}"))
            keyed = []
    this = key(namespace)
    same = [r for k, r in keyed if k == this]
    others = [r for k, r in keyed if k != this]
    new = {part["sha256"] for part in summaries}
    kept = [part for r in same for part in r["merged"]["inputs"] if part.get("sha256") not in new]
    inputs = kept + summaries  # a re-merged input replaces its earlier summary
    record = {**namespace, "merged": {"inputs": inputs, "texts": sum(part.get("texts", 0) for part in inputs),
                                      "entries": stored}}
    if others:
        record["others"] = others
    return record
