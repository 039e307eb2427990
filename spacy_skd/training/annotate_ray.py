"""The teacher pass as a Ray Data pipeline (`spacy skd annotate --engine ray`, extra `ray`).

The same shards as `annotate`, from one pipeline: the driver reads and splits the texts
(text k -> shard k % N), leaves out what the shard caches already hold, and streams the rest
through `map_batches` on an actor pool, one teacher per actor (one GPU per actor with
`gpu_id >= 0`). The driver writes each returned batch into its shard's cache in one transaction
and marks a shard complete after its last batch, so shards, manifests, resuming and `merge-cache`
behave exactly as with the local engine, and the entries are the same (to float32 rounding: a
sentence's scores move by ~1e-6 with the batch it is padded into).

`ray.init()` starts a local Ray on a laptop; with `address` (or $RAY_ADDRESS) the same code runs on
a cluster, where the teacher path must be readable by every worker: each actor checks that the
pipeline it loaded has the driver's fingerprint. Entries travel between processes as
`pack_arrays` bytes (no pickle of arrays).
"""
import logging
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy

from ..errors import Errors, Warnings
from ..teacher.protocol import Words
from ..teacher.runner import DEFAULT_MAX_BATCH_COST, TeacherRunner
from .annotate import check_int, check_store
from .cache import pack_arrays, unpack_arrays
from .manifest import check_shard, shard_dir, shard_manifest, write_manifest
from .texts import hash_input, read_texts, split_texts


class TeacherActor:
    """One teacher per Ray actor: `__call__` maps a batch of rows {shard, row, words} to
    {shard, row, payload} where payload holds the packed arrays of `TeacherRunner` (empty for a
    sentence too long for `max_batch_cost`)."""

    def __init__(self, teacher: str, component: str, fingerprint: str, use_gpu: bool, threads: int,
                 max_batch_cost: int = DEFAULT_MAX_BATCH_COST) -> None:
        import torch

        torch.set_num_threads(threads)
        # Ray gives a GPU actor exactly one visible device: it is device 0 inside the actor
        self.runner = TeacherRunner(teacher, component, gpu_id=0 if use_gpu else -1, max_batch_cost=max_batch_cost)
        if self.runner.fingerprint != fingerprint:
            raise ValueError(Errors.E239.format(path=teacher, found=self.runner.fingerprint[:16],
                                                expected=fingerprint[:16]))

    def __call__(self, batch: Dict[str, numpy.ndarray]) -> Dict[str, numpy.ndarray]:
        words = [tuple(str(w) for w in row) for row in batch["words"]]
        payloads = [b"" if arrays is None else pack_arrays(arrays) for arrays in self.runner(words)]
        return {"shard": batch["shard"], "row": batch["row"], "payload": numpy.array(payloads, dtype=object)}


def annotate_ray(teacher: Union[str, Path], texts_path: Union[str, Path], output: Union[str, Path], *,
                 shards: Sequence[Tuple[int, int]], component: str = "ner", batch_size: int = 64,
                 gpu_id: int = -1, lang: Optional[str] = None, store: str = "potentials",
                 student_config: Optional[Union[str, Path]] = None, overrides: Optional[Dict[str, object]] = None,
                 workers: Optional[int] = None, address: Optional[str] = None,
                 progress: bool = True, max_batch_cost: int = DEFAULT_MAX_BATCH_COST) -> List[Dict[str, object]]:
    """Annotate `shards` (all of one N) of `texts_path` with a Ray Data actor pool.

    teacher (str | Path): the teacher pipeline folder (readable by every Ray worker).
    shards (Sequence[Tuple[int, int]]): the (i, N) shards to write, e.g. all of range(N).
    workers (Optional[int]): actors in the pool; default the CPUs (or GPUs) Ray has.
    address (Optional[str]): a Ray cluster address; None starts or joins a local Ray.
    store (str): "potentials" only for now: "targets" (with `student_config`) raises E248.
    max_batch_cost (int): bound of a teacher batch's padded size; sentences over it are not
        stored, and counted in the manifest (`too_long`) as `annotate` does.
    RETURNS (List[Dict]): one summary per shard, with the keys `annotate` returns.
    """
    import ray
    import ray.data

    check_int("batch_size", batch_size, 1)
    check_store(store, student_config, overrides)
    if store != "potentials":
        raise ValueError(Errors.E248)
    if workers is not None:
        check_int("workers", workers, 1)
    if not Path(texts_path).exists():
        raise ValueError(Errors.E227.format(path=texts_path))
    counts = {n for _, n in shards}
    if len(counts) != 1:
        raise ValueError(Errors.E223.format(value=", ".join(f"{i}/{n}" for i, n in shards)))
    (n_shards,) = counts
    start = time.perf_counter()
    # the driver's copy: identity, manifests and the bound
    runner = TeacherRunner(teacher, component, gpu_id=-1, max_batch_cost=max_batch_cost)
    lang = lang or runner.lang
    todo: Dict[int, Dict[str, object]] = {}
    summaries: Dict[int, Dict[str, object]] = {}
    input_sha256 = hash_input(texts_path)  # once, not once per shard
    for i, n in shards:
        directory = shard_dir(output, (i, n))
        manifest = shard_manifest(runner, texts_path, (i, n), store=store, lang=lang, input_sha256=input_sha256)
        found = check_shard(directory, manifest)
        with runner.open_cache(directory) as cache:
            cache_path = str(cache.path)
        summaries[i] = {"computed": 0, "reused": 0, "too_long": 0, "skipped": False, "shard_dir": str(directory),
                        "cache_path": cache_path}
        if found is not None and found.get("complete"):
            too_long = found.get("too_long", 0)
            summaries[i].update(texts=found["texts"], reused=found["texts"] - too_long, too_long=too_long,
                                skipped=True)
        else:
            todo[i] = manifest
    if todo:
        _run_pipeline(runner, teacher, texts_path, output, todo, summaries, n_shards=n_shards, lang=lang,
                      batch_size=batch_size, gpu_id=gpu_id, workers=workers, address=address,
                      progress=progress, ray=ray)
    seconds = time.perf_counter() - start
    for summary in summaries.values():
        summary.update(seconds=seconds, sentences_per_second=summary["computed"] / seconds if seconds else 0.0)
    return [summaries[i] for i, _ in shards]


def _run_pipeline(runner: TeacherRunner, teacher, texts_path, output, todo: Dict[int, Dict], summaries,
                  *, n_shards: int, lang: str, batch_size: int, gpu_id: int, workers: Optional[int],
                  address: Optional[str], progress: bool, ray) -> None:
    """Read, skip what is cached, stream the rest through the actor pool, write, mark complete."""
    parts, n_distinct = split_texts(read_texts(texts_path, lang), n_shards, keep=list(todo))
    rows: List[Dict[str, object]] = []
    words_of: Dict[int, Words] = {}
    caches = {}
    try:
        for i, manifest in todo.items():
            directory = shard_dir(output, (i, n_shards))
            manifest["input"]["distinct_texts"] = n_distinct
            manifest["texts"] = summaries[i]["texts"] = len(parts[i])
            directory.mkdir(parents=True, exist_ok=True)
            write_manifest(directory, manifest)  # before any entry, as the local engine does
            caches[i] = runner.open_cache(directory)
            texts = parts[i]
            missing = [words for words, hit in zip(texts, caches[i].get_many(texts)) if hit is None]
            for words in missing:
                words_of[len(rows)] = words
                rows.append({"shard": i, "row": len(rows), "words": list(words)})
            summaries[i]["reused"] = len(texts) - len(missing)
        too_long: Dict[int, List[Words]] = {}
        if rows:
            _stream(rows, words_of, caches, summaries, too_long, teacher=str(teacher), runner=runner,
                    batch_size=batch_size,
                    gpu_id=gpu_id, workers=workers, address=address, progress=progress, ray=ray)
        for i, manifest in todo.items():
            directory = shard_dir(output, (i, n_shards))
            if too_long.get(i):
                warnings.warn(Warnings.W341.format(path=directory, **runner.too_long(too_long[i])))
            summaries[i]["too_long"] = len(too_long.get(i, []))
            write_manifest(directory, {**manifest, "too_long": summaries[i]["too_long"], "complete": True})
    finally:
        for cache in caches.values():
            cache.close()


def _stream(rows, words_of, caches, summaries, too_long: Dict[int, List[Words]], *, teacher: str,
            runner: TeacherRunner, batch_size: int,
            gpu_id: int, workers: Optional[int], address: Optional[str], progress: bool, ray) -> None:
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING,
                 log_to_driver=False)
    try:
        use_gpu = gpu_id >= 0
        resource = "GPU" if use_gpu else "CPU"
        available = int(ray.cluster_resources().get(resource, 0))
        if use_gpu and available == 0:
            raise ValueError(Errors.E240.format(address=address or "local"))
        size = workers or max(1, available)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = progress
        context.print_on_execution_start = False
        ds = ray.data.from_items(rows).map_batches(
            TeacherActor,
            fn_constructor_kwargs={"teacher": teacher, "component": runner.component,
                                   "fingerprint": runner.fingerprint, "use_gpu": use_gpu, "threads": 1,
                                   "max_batch_cost": runner.max_batch_cost},
            batch_size=batch_size, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=0 if use_gpu else 1, num_gpus=1 if use_gpu else 0,
        )
        for batch in ds.iter_batches(batch_size=batch_size, batch_format="numpy"):
            by_shard: Dict[int, Tuple[list, list]] = {}
            for shard, row, payload in zip(batch["shard"], batch["row"], batch["payload"]):
                if not len(payload):  # too long for max_batch_cost: never run
                    too_long.setdefault(int(shard), []).append(words_of[int(row)])
                    continue
                words, arrays = by_shard.setdefault(int(shard), ([], []))
                words.append(words_of[int(row)])
                arrays.append(unpack_arrays(bytes(payload)))
            for shard, (words, arrays) in by_shard.items():
                caches[shard].put_many(words, arrays)  # one transaction per shard and batch
                summaries[shard]["computed"] += len(words)
    finally:
        if started_here:
            ray.shutdown()
