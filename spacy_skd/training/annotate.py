"""Offline teacher pass: annotate a corpus with a teacher's raw outputs, in shards (issue 7).

`structural_kd` runs the teacher at `initialize` for every sentence its potentials cache lacks.
For large unlabeled corpora that pass is better run once, ahead of training and in parallel:
`annotate` writes shard i of N of a text file into `OUTPUT/shard-{i:05d}-of-{N:05d}/`, a
`TeacherCache` in exactly the namespace `structural_kd` reads (`teacher.caches`), plus a
`manifest.json` saying what it holds (`training.manifest`). `training.merge.merge_shards`
checks the manifests and copies every verified entry into one cache folder; with `cache_dir`
(or $SKD_CACHE_DIR) set to it, `structural_kd` finds every sentence and never runs the teacher.

Each batch is written in one transaction, so a killed run loses at most the batch in flight:
rerunning it reuses what is stored and computes the rest. A complete shard is never recomputed.
An input without texts gives an empty complete shard (W154): with N larger than the number of
texts some shards are empty anyway, and merging must accept them.

With `store="targets"` and a student's training config, a shard holds that student's targets
instead (`training.student_targets`): made through the same `TargetMaker` as the config's own
`structural_kd` component, so they cannot drift from what training would make, and they are
far smaller than a span or parser teacher's potentials. Such a shard serves that student only;
its manifest records the student config's hash and KD settings.

Teacher batches are bounded by padded size (`max_batch_cost`, `teacher.runner`): a sentence too
long for the bound on its own is not stored (W341) and the manifest counts it (`too_long`), so
that `merge-cache` does not take it for a lost entry.
"""
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from tqdm import tqdm

from ..errors import Errors, Warnings
from ..teacher.protocol import Words
from ..teacher.runner import DEFAULT_MAX_BATCH_COST, TeacherRunner
from .manifest import check_shard, manifest_cache, shard_dir, shard_manifest, write_manifest
from .student_targets import StudentTargets
from .texts import InputSplit

# What a shard stores per sentence. "potentials": the teacher's `teacher_outputs` in float32,
# the namespace structural_kd reads for any student; "targets": one student's targets (its
# structural_kd targets namespace). See benchmarks/cache_bytes.py for the bytes of each layout.
STORES = ("potentials", "targets")


def parse_shard(spec: Union[str, Tuple[int, int]]) -> Tuple[int, int]:
    """"i/N" (or (i, N)) -> (i, N) with 0 <= i < N; anything else raises E223."""
    try:
        i, n = (int(part) for part in spec.split("/")) if isinstance(spec, str) else spec
        if isinstance(i, bool) or isinstance(n, bool) or int(i) != i or int(n) != n:
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(Errors.E223.format(value=spec)) from None
    if not 0 <= i < n:
        raise ValueError(Errors.E223.format(value=spec))
    return int(i), int(n)


def parse_shards(spec: str) -> List[Tuple[int, int]]:
    """"i/N" -> [(i, N)]; "all/N" -> every shard of N (one call runs them all)."""
    if isinstance(spec, str) and spec.startswith("all/"):
        _, n = parse_shard("0/" + spec[len("all/"):])
        return [(i, n) for i in range(n)]
    return [parse_shard(spec)]


def check_store(store: str, student_config: Optional[Union[str, Path]] = None,
                overrides: Optional[Dict[str, object]] = None) -> None:
    """A known store, with a student config exactly when it stores a student's targets."""
    if store not in STORES:
        raise ValueError(Errors.E236.format(name="--store", value=store, options=", ".join(STORES)))
    if store == "targets" and not student_config:
        raise ValueError(Errors.E242)
    if store != "targets" and (student_config or overrides):
        raise ValueError(Errors.E249.format(store=store, config=student_config, overrides=overrides or {}))


def annotate(teacher: Union[str, Path, Language, TeacherRunner], texts_path: Union[str, Path],
             output: Union[str, Path], *, shard: Union[str, Tuple[int, int]] = (0, 1), component: str = "ner",
             batch_size: int = 64, gpu_id: int = -1, lang: Optional[str] = None, store: str = "potentials",
             student_config: Optional[Union[str, Path]] = None, overrides: Optional[Dict[str, object]] = None,
             progress: bool = True, split: Optional[InputSplit] = None,
             max_batch_cost: int = DEFAULT_MAX_BATCH_COST) -> Dict[str, object]:
    """Write shard `i/N` of the teacher's outputs on `texts_path` into `output/shard-i-of-N/`.

    teacher (str | Path | Language | TeacherRunner): the teacher pipeline (or a loaded runner).
    texts_path (str | Path): raw text (one text per line, .gz ok) or a .spacy DocBin.
    output (str | Path): folder of the shard folders; created if missing.
    shard (str | Tuple[int, int]): "i/N" or (i, N), 0 <= i < N.
    component (str): the teacher component (ignored when `teacher` is a TeacherRunner).
    batch_size (int): sentences per teacher batch and per write transaction.
    gpu_id (int): -1 for the CPU.
    lang (Optional[str]): language of the blank tokenizer; default the teacher's.
    store (str): what to keep per sentence; one of STORES.
    student_config (Optional[str | Path]): store "targets" only (and required there): the
        student's training config, whose `structural_kd` component makes the targets.
    overrides (Optional[Dict[str, object]]): overrides of the student config, dotted keys.
    progress (bool): show a progress bar over the shard's texts (store "potentials").
    split (Optional[InputSplit]): the input already read for several shards of this call
        (`texts_path`, N and `lang` must match); default: read it for this shard alone.
    max_batch_cost (int): bound of a teacher batch's padded size (ignored when `teacher` is a
        TeacherRunner, which has its own); sentences over it alone are not stored (W341).
    RETURNS (Dict[str, object]): texts, computed, reused, too_long (not stored), seconds,
        sentences_per_second (computed / seconds), skipped (the shard was already complete),
        shard_dir, cache_path.
    """
    i, n = parse_shard(shard)
    check_int("batch_size", batch_size, 1)
    check_store(store, student_config, overrides)
    if not Path(texts_path).exists():
        raise ValueError(Errors.E227.format(path=texts_path))
    runner = teacher if isinstance(teacher, TeacherRunner) else \
        TeacherRunner(teacher, component, gpu_id, max_batch_cost=max_batch_cost)
    student = None
    if store == "targets":
        student = StudentTargets(student_config, runner, overrides)
    lang = lang or runner.lang
    if split is not None:
        split.check(texts_path, n, lang)
    else:  # this shard alone: only its words are kept
        split = InputSplit(texts_path, n, lang, keep=[i])
    start = time.perf_counter()
    directory = shard_dir(output, (i, n))
    manifest = shard_manifest(runner, texts_path, (i, n), store=store, lang=lang, student=student,
                              input_sha256=split.sha256)
    summary = {"computed": 0, "reused": 0, "too_long": 0, "skipped": False, "shard_dir": str(directory)}
    found = check_shard(directory, manifest)
    if found is not None and found.get("complete"):  # checked before reading: skipping is cheap
        with manifest_cache(directory, manifest) as cache:
            cache_path = str(cache.path)
        too_long = found.get("too_long", 0)
        summary.update(texts=found["texts"], reused=found["texts"] - too_long, too_long=too_long, skipped=True,
                       cache_path=cache_path, seconds=time.perf_counter() - start, sentences_per_second=0.0)
        return summary
    texts, n_distinct = split.shard(i)
    manifest["input"]["distinct_texts"] = n_distinct
    manifest["texts"] = summary["texts"] = len(texts)
    directory.mkdir(parents=True, exist_ok=True)
    write_manifest(directory, manifest)  # before any entry: a half-written shard says what it is
    if student is not None:
        with student.open_cache(directory) as cache:
            summary["cache_path"] = str(cache.path)
        summary["computed"], summary["reused"] = student.make(directory, texts, batch_size)
        too_long, bounded = sorted(student.kd.too_long), student.kd.runner  # the student config's bound
    else:
        too_long = _store_potentials(runner, directory, texts, batch_size, summary, progress=progress,
                                     desc=f"shard {i}/{n}")
        bounded = runner
    if too_long:
        warnings.warn(Warnings.W341.format(path=directory, **bounded.too_long(too_long)))
        summary["computed"] -= len(too_long)
    summary["too_long"] = len(too_long)
    write_manifest(directory, {**manifest, "too_long": len(too_long), "complete": True})
    if not texts and not n_distinct:
        warnings.warn(Warnings.W154.format(path=texts_path, i=i, n=n, shard=directory))
    seconds = time.perf_counter() - start
    summary.update(seconds=seconds, sentences_per_second=summary["computed"] / seconds if seconds else 0.0)
    return summary


def _store_potentials(runner: TeacherRunner, directory: Path, texts: Sequence[Words], batch_size: int,
                      summary: Dict[str, object], *, progress: bool, desc: str) -> List[Words]:
    """The teacher's outputs for the texts the shard lacks, one transaction per batch.
    RETURNS (List[Words]): the texts too long for the runner's `max_batch_cost`, not stored."""
    too_long: List[Words] = []
    with runner.open_cache(directory) as cache, \
            tqdm(total=len(texts), desc=f"[annotate] {desc}", unit="sent",
                 disable=None if progress else True) as bar:
        summary["cache_path"] = str(cache.path)
        for offset in range(0, len(texts), batch_size):
            chunk = texts[offset : offset + batch_size]
            todo = [words for words, hit in zip(chunk, cache.get_many(chunk)) if hit is None]
            if todo:
                outputs = runner(todo)
                done = [(words, arrays) for words, arrays in zip(todo, outputs) if arrays is not None]
                too_long.extend(words for words, arrays in zip(todo, outputs) if arrays is None)
                if done:  # one transaction: all of the batch or none
                    cache.put_many([words for words, _ in done], [arrays for _, arrays in done])
            summary["computed"] += len(todo)
            summary["reused"] += len(chunk) - len(todo)
            bar.update(len(chunk))
    return too_long


def check_int(name: str, value: object, low: int) -> None:
    """E235 unless `value` is an int (not a bool) >= `low`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(Errors.E235.format(name=name, low=low, value=value))
