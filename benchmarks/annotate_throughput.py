#!/usr/bin/env python
"""Throughput of the offline teacher pass: one worker vs two shard workers, side by side.

    python benchmarks/annotate_throughput.py [--teacher PATH] [--component ner] [--texts FILE]
        [--n 2000] [--batch-size 64] [--threads 1] [--engines local,ray]

Writes the first N distinct texts of the input (default: the Reuters-21578 paragraphs in
../shared/data) to a temporary file, then times (a) one worker process annotating shard 0/1 and
(b) two worker processes annotating shards 0/2 and 1/2 at the same time, followed by
`merge_shards`. Each worker is a fresh process with `--threads` torch threads. Prints
sentences/second end to end (process start, teacher load, tokenizing, teacher, writes; for (b)
plus the merge), inside the workers (`annotate`'s own clock: the slowest worker, plus the merge
for (b)), the ratio (b)/(a), and checks that the merged cache equals the single-worker one.
With `ray` in --engines it also times the Ray Data engine on a local Ray (as many CPUs as the
machine has): one actor on shard 0/1, then two actors on shards all/2 from one pipeline (actor
start-up and teacher loading included), and checks the merged result against the local one.
Without --teacher it builds a tiny random CNN CRF tagger (BIOES, 4 entity types).
"""
import argparse
import concurrent.futures
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy

DATA = Path(os.environ.get("SKD_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
DEFAULT_TEXTS = DATA / "raw_reuters21578" / "reuters21578_paragraphs.txt.gz"


def build_teacher(path: Path) -> Path:
    """A random (untrained) CNN CRF tagger with the CoNLL entity types: same cost per sentence."""
    import spacy
    from spacy.tokens import Span
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("skd_crf_tagger", name="ner")
    doc = nlp.make_doc("John Smith of Acme Corp visited Paris and spoke German .")
    ref = doc.copy()
    ref.ents = [Span(ref, 0, 2, "PER"), Span(ref, 3, 5, "ORG"), Span(ref, 6, 7, "LOC"), Span(ref, 9, 10, "MISC")]
    nlp.initialize(lambda: [Example(doc, ref)])
    nlp.to_disk(path)
    return path


def write_texts(source: Path, target: Path, n: int) -> int:
    """The first n distinct non-blank lines of `source` (.gz ok) into `target`."""
    import gzip

    opener = gzip.open if source.name.endswith(".gz") else open
    seen = {}
    with opener(source, "rt", encoding="utf8") as f:
        for line in f:
            line = line.strip()
            if line:
                seen.setdefault(line, None)
                if len(seen) == n:
                    break
    target.write_text("\n".join(seen) + "\n", encoding="utf8")
    return len(seen)


def worker(teacher: str, component: str, texts: str, output: str, shard: tuple, batch_size: int, threads: int):
    """One annotate process (spawned): its summary and wall time from its own start."""
    import torch

    torch.set_num_threads(threads)
    from spacy_skd.training.annotate import annotate

    return annotate(teacher, texts, output, shard=shard, component=component, batch_size=batch_size,
                    progress=False)


def run(workers: int, args, texts: Path, output: Path):
    """Annotate all shards of `workers` at once; (wall seconds, worker summaries)."""
    ctx = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(worker, str(args.teacher), args.component, str(texts), str(output), (i, workers),
                               args.batch_size, args.threads) for i in range(workers)]
        summaries = [f.result() for f in futures]
    return time.perf_counter() - start, summaries


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", type=Path, default=None)
    p.add_argument("--component", default="ner")
    p.add_argument("--texts", type=Path, default=DEFAULT_TEXTS)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--engines", default="local", help="comma-separated: local, ray")
    args = p.parse_args(argv)
    if not args.texts.exists():
        print(f"skipped: {args.texts} not found (set SKD_DATA_DIR or pass --texts)")
        return 0
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the spawned workers
    from spacy_skd.teacher.runner import TeacherRunner
    from spacy_skd.training.merge import merge_shards

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.teacher is None:
            args.teacher = build_teacher(tmp / "teacher")
            print("teacher: tiny random CNN CRF tagger (skd_crf_tagger defaults, 17 BIOES tags)")
        else:
            print(f"teacher: {args.teacher}")
        texts = tmp / "texts.txt"
        n = write_texts(args.texts, texts, args.n)
        print(f"texts: {n} distinct texts from {args.texts.name}; batch size {args.batch_size}; "
              f"{args.threads} torch thread(s) per worker; {os.cpu_count()} CPUs")
        one_wall, (one,) = run(1, args, texts, tmp / "one")
        two_wall, two = run(2, args, texts, tmp / "two")
        merge = merge_shards([tmp / "two"], tmp / "merged")
        two_wall += merge["seconds"]
        two_inner = max(s["seconds"] for s in two) + merge["seconds"]
        runner = TeacherRunner(args.teacher, args.component)
        with runner.open_cache(one["shard_dir"]) as a, runner.open_cache(tmp / "merged") as b:
            left, right = dict(a.items()), dict(b.items())
        same = left.keys() == right.keys() and all(
            numpy.allclose(left[k][name], right[k][name], rtol=1e-5, atol=1e-5) for k in left for name in left[k])
        print(f"{'':28}{'end to end':>14}{'in workers':>14}")
        print(f"{'1 worker (shard 0/1)':28}{n / one_wall:>10.1f} s/s{n / one['seconds']:>10.1f} s/s")
        print(f"{'2 workers (2 shards + merge)':28}{n / two_wall:>10.1f} s/s{n / two_inner:>10.1f} s/s")
        print(f"{'ratio 2 / 1':28}{one_wall / two_wall:>12.2f}x{one['seconds'] / two_inner:>12.2f}x")
        print(f"merge: {merge['entries']} entries in {merge['seconds']:.2f} s; "
              f"merged cache equals the 1-worker cache (to 1e-5): {same}")
        if "ray" in args.engines.split(","):
            same = run_ray(args, texts, tmp, n, left, runner) and same
    return 0 if same else 1


def run_ray(args, texts: Path, tmp: Path, n: int, expected, runner) -> bool:
    """The Ray engine with 1 and 2 actors on a local Ray; True if both equal `expected`."""
    import ray

    from spacy_skd.training.merge import merge_shards
    from spacy_skd.training.annotate_ray import annotate_ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        walls, same = {}, True
        for workers in (1, 2):
            out = tmp / f"ray{workers}"
            shards = [(i, workers) for i in range(workers)]
            start = time.perf_counter()
            annotate_ray(args.teacher, texts, out, shards=shards, component=args.component,
                         batch_size=args.batch_size, workers=workers, progress=False)
            merged = merge_shards([out], tmp / f"ray{workers}-merged")
            walls[workers] = time.perf_counter() - start
            with runner.open_cache(tmp / f"ray{workers}-merged") as cache:
                found = dict(cache.items())
            same = same and found.keys() == expected.keys() and all(
                numpy.allclose(found[k][name], expected[k][name], rtol=1e-5, atol=1e-5)
                for k in expected for name in expected[k])
            assert merged["entries"] == n
        print(f"{'ray, 1 actor':28}{n / walls[1]:>10.1f} s/s")
        print(f"{'ray, 2 actors (+ merge)':28}{n / walls[2]:>10.1f} s/s")
        print(f"{'ratio 2 / 1':28}{walls[1] / walls[2]:>12.2f}x")
        print(f"ray results equal the local 1-worker cache (to 1e-5): {same}")
        return same
    finally:
        ray.shutdown()


if __name__ == "__main__":
    sys.exit(main())
