"""Offline teacher pass: annotate a corpus with a teacher's raw outputs, in shards (issue 7).

`structural_kd` runs the teacher at `initialize` for every sentence its potentials cache lacks.
For large unlabeled corpora that pass is better run once, ahead of training and in parallel:
`annotate` writes shard i of N of a text file into `OUTPUT/shard-{i:05d}-of-{N:05d}/`, a
`TeacherCache` in exactly the namespace `structural_kd` reads (`potentials_cache`), plus a
`manifest.json` saying what it holds. `merge_shards` checks the manifests and copies every
verified entry into one cache folder; with `cache_dir` (or $SKD_CACHE_DIR) set to it,
`structural_kd` finds every sentence and never runs the teacher.

Texts are read and tokenized as the student reads them (`RawTextCorpus` with a blank pipeline
of the teacher's language), deduplicated (first occurrence wins), and text k goes to shard
k % N, so every worker derives the same split from the same file. Each batch is written in one
transaction, so a killed run loses at most the batch in flight: rerunning it reuses what is
stored and computes the rest. A complete shard is never recomputed, and a shard folder written
with another teacher, input or setting is an error, never overwritten.

An input without texts gives an empty complete shard (W154): with N larger than the number of
texts some shards are empty anyway, and merging must accept them.

With `store="targets"` and a student's training config, a shard holds that student's targets
instead (the entries `structural_kd` writes into its targets namespace for the config's
objective, temperature and mode) and no potentials: made by the config's own `structural_kd`
component, so they cannot drift from what training would make, and they are far smaller than a
span or parser teacher's potentials. Such a shard serves that student only; its manifest
records the student config's hash and KD settings, so it is never merged with or resumed as a
shard of another student.
"""
import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from tqdm import tqdm

from .. import __version__
from ..errors import Errors, Warnings
from .cache import CACHE_FORMAT_VERSION, TeacherCache, fingerprint_pipeline, sentence_key
from .readers import RawTextCorpus, _walk

if TYPE_CHECKING:
    from .student_targets import StudentTargets

Arrays = Dict[str, numpy.ndarray]
Words = Tuple[str, ...]

MANIFEST = "manifest.json"
MERGED = "merged.json"  # what merge_shards wrote into a cache folder (not a shard manifest)
MANIFEST_FORMAT = 1
# What a shard stores per sentence. "potentials": the teacher's `teacher_outputs` in float32,
# the namespace structural_kd reads for any student; "targets": one student's targets (its
# structural_kd targets namespace). See benchmarks/cache_bytes.py for the bytes of each layout.
STORES = ("potentials", "targets")
# Manifest fields that must agree for a shard to be resumed, skipped or merged (not the input's
# file name, the version or the counts: renaming a file does not change what a shard holds).
# `student` is in targets shards only (None elsewhere).
_IDENTITY = (("teacher", "fingerprint"), ("teacher", "component"), ("teacher", "kind"),
             ("space",), ("storage",), ("input", "sha256"), ("input", "format"), ("input", "lang"),
             ("shard", "count"), ("student", "config_sha256"), ("student", "overrides"),
             ("student", "objective"), ("student", "temperature"), ("student", "temperature_mode"))
_OPTIONAL = ("student",)
# The input fields of _IDENTITY: shards of several inputs (one annotation each) merge into one
# cache when every other identity field (teacher, space, storage, student) agrees.
_INPUT = (("input", "sha256"), ("input", "format"), ("input", "lang"))
# The namespace the shards of every input share (their entries' cache namespace and settings):
# what makes two merged.json records one record.
_NAMESPACE = tuple(f for f in _IDENTITY if f not in _INPUT and f != ("shard", "count"))


# --- the teacher ------------------------------------------------------------------------------


def run_teacher(teacher: Language, component: str, batch: Sequence[Sequence[str]]) -> List[Arrays]:
    """The raw outputs of a teacher component per sentence (its `teacher_outputs`: emissions,
    logits, arc/relation or span scores), after the components before it (a tok2vec it listens
    to). The one place a teacher runs: `structural_kd` and `annotate` both call it, so the
    potentials they cache cannot drift apart."""
    docs = [Doc(teacher.vocab, words=list(words)) for words in batch]
    for name, proc in teacher.pipeline:
        if name == component:
            break
        docs = list(proc.pipe(docs)) if hasattr(proc, "pipe") else [proc(doc) for doc in docs]
    with torch.no_grad():
        return teacher.get_pipe(component).teacher_outputs(docs)


def potentials_space(kind: str) -> str:
    """The cache `space` of a teacher's raw outputs, e.g. "potentials:crf"."""
    return f"potentials:{kind}"


def targets_space(teacher_kind: str, student_kind: str, case: str, space_key: str) -> str:
    """The cache `space` of a student's targets, e.g. "targets:crf->maxent:2a:BIOES:free"; its
    temperature and mode are the student's KD settings."""
    return f"targets:{teacher_kind}->{student_kind}:{case}:{space_key}"


def potentials_cache(directory: Union[str, Path], fingerprint: str, kind: str) -> TeacherCache:
    """The namespace of a teacher's raw outputs in `directory`: untempered (T = 1, mode "raw"),
    shared by every objective and temperature. `structural_kd` and `annotate` both open it here."""
    return TeacherCache(directory, fingerprint=fingerprint, space=potentials_space(kind),
                        temperature=1.0, mode="raw")


class TeacherRunner:
    """A loaded teacher component, callable on batches of words.

    teacher (str | Path | Language): a trained teacher pipeline or its folder.
    component (str): the teacher component (an skd tagger, parser, span NER or SenTScore).
    gpu_id (int): GPU to run on (`spacy.require_gpu`); -1 runs on the CPU.
    """

    def __init__(self, teacher: Union[str, Path, Language], component: str = "ner", gpu_id: int = -1) -> None:
        if gpu_id >= 0:
            spacy.require_gpu(gpu_id)
        if isinstance(teacher, Language):
            self.nlp, self.path = teacher, "<Language>"
        else:
            self.path = str(teacher)
            if not Path(teacher).exists():
                raise ValueError(Errors.E224.format(path=teacher))
            self.nlp = spacy.load(teacher)
        if component not in self.nlp.pipe_names:
            raise ValueError(Errors.E225.format(path=self.path, component=component,
                                                pipes=", ".join(self.nlp.pipe_names)))
        pipe = self.nlp.get_pipe(component)
        if not getattr(pipe, "kd_kind", None) or not hasattr(pipe, "teacher_outputs"):
            raise ValueError(Errors.E226.format(component=component, path=self.path, type=type(pipe).__name__))
        self.component = component
        self.kind: str = pipe.kd_kind
        self.lang: str = self.nlp.lang
        self.fingerprint = fingerprint_pipeline(self.nlp, component)
        self.space = potentials_space(self.kind)

    def __call__(self, words_batch: Sequence[Sequence[str]]) -> List[Arrays]:
        """Per sentence, exactly the arrays `structural_kd` stores in its potentials cache."""
        return run_teacher(self.nlp, self.component, words_batch)

    def open_cache(self, directory: Union[str, Path]) -> TeacherCache:
        """This teacher's potentials namespace in `directory`."""
        return potentials_cache(directory, self.fingerprint, self.kind)


# --- texts and shards -------------------------------------------------------------------------


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


def read_texts(path: Union[str, Path], lang: str) -> Iterator[Words]:
    """The words of every text in order, duplicates included: a `.spacy` DocBin's docs, or a
    raw-text file or folder read exactly as `spacy-skd.RawText.v1` reads it in a student
    pipeline (stripped lines, blank ones skipped, `spacy.blank(lang).make_doc`)."""
    path = Path(path)
    if not path.exists():
        raise ValueError(Errors.E227.format(path=path))
    nlp = spacy.blank(lang)
    if _is_docbin(path):
        for doc in DocBin().from_disk(path).get_docs(nlp.vocab):
            yield tuple(token.text for token in doc)
        return
    for eg in RawTextCorpus(path)(nlp):
        yield tuple(token.text for token in eg.predicted)


def split_texts(texts: Iterator[Words], n_shards: int,
                keep: Optional[Sequence[int]] = None) -> Tuple[Dict[int, List[Words]], int]:
    """The deduplicated texts of the shards in `keep` (default all; text k goes to shard k % N),
    in one pass, and the number of distinct texts in the whole input. Only the kept shards'
    words are held in memory."""
    parts: Dict[int, List[Words]] = {i: [] for i in (range(n_shards) if keep is None else keep)}
    seen = set()
    for words in texts:
        key = sentence_key(words)
        if key in seen:
            continue
        part = parts.get(len(seen) % n_shards)
        if part is not None:
            part.append(words)
        seen.add(key)
    return parts, len(seen)


class InputSplit:
    """One input read once for the shards of one call (`--shard all/N` in one process): the texts
    are read, tokenized and deduplicated on the first shard that needs them, and the input is
    hashed once, instead of once per shard. Holds the words of the shards in `keep` (default
    all) in memory."""

    def __init__(self, texts_path: Union[str, Path], n_shards: int, lang: str,
                 keep: Optional[Sequence[int]] = None) -> None:
        self.texts_path, self.n_shards, self.lang, self.keep = Path(texts_path), n_shards, lang, keep
        self._sha256: Optional[str] = None
        self._split: Optional[Tuple[Dict[int, List[Words]], int]] = None

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            self._sha256 = hash_input(self.texts_path)
        return self._sha256

    def shard(self, i: int) -> Tuple[List[Words], int]:
        """The texts of shard i and the number of distinct texts in the whole input."""
        if self._split is None:
            self._split = split_texts(read_texts(self.texts_path, self.lang), self.n_shards, keep=self.keep)
        parts, n_distinct = self._split
        return parts[i], n_distinct

    def check(self, texts_path: Union[str, Path], n_shards: int, lang: str) -> None:
        """Refuse a split of another input, shard count or tokenizer (a caller's mistake)."""
        if (Path(texts_path), n_shards, lang) != (self.texts_path, self.n_shards, self.lang):
            raise ValueError(Errors.E250.format(split=(str(self.texts_path), self.n_shards, self.lang),
                                                call=(str(texts_path), n_shards, lang)))


def shard_dir(output: Union[str, Path], shard: Tuple[int, int]) -> Path:
    return Path(output) / f"shard-{shard[0]:05d}-of-{shard[1]:05d}"


def hash_input(path: Union[str, Path]) -> str:
    """SHA-256 of the input: the file's bytes, or a folder's files (names and bytes, sorted)."""
    path, digest = Path(path), hashlib.sha256()
    for loc in _walk(path):
        if path.is_dir():
            digest.update(loc.name.encode("utf8") + b"\0")
        with open(loc, "rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
    return digest.hexdigest()


# --- annotate ---------------------------------------------------------------------------------


def check_store(store: str, student_config: Optional[Union[str, Path]] = None,
                overrides: Optional[Dict[str, object]] = None) -> None:
    """A known store, with a student config exactly when it stores a student's targets."""
    if store not in STORES:
        raise ValueError(Errors.E236.format(name="--store", value=store, options=", ".join(STORES)))
    if store == "targets" and not student_config:
        raise ValueError(Errors.E242)
    if store != "targets" and (student_config or overrides):
        raise ValueError(Errors.E249.format(store=store, config=student_config, overrides=overrides or {}))


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
                  "format": "docbin" if _is_docbin(Path(texts_path)) else "text", "lang": lang},
        "shard": {"index": shard[0], "count": shard[1]},
        "complete": False,
    }
    if student is not None:
        manifest["student"] = student.identity
    return manifest


def manifest_cache(directory: Union[str, Path], manifest: Dict[str, object]) -> TeacherCache:
    """The namespace a shard's manifest says it holds, opened in `directory`."""
    storage = manifest["storage"]
    return TeacherCache(directory, fingerprint=manifest["teacher"]["fingerprint"], space=manifest["space"],
                        temperature=storage["temperature"], mode=storage["mode"])


def check_shard(directory: Path, manifest: Dict[str, object]) -> Optional[Dict[str, object]]:
    """The manifest already in a shard folder (None if new); E228 if it was written by another
    teacher, input or setting, so a shard is never silently overwritten."""
    found = read_manifest(directory) if (directory / MANIFEST).exists() else None
    if found is not None:
        diff = _differences(found, manifest, fields=_IDENTITY + (("shard", "index"),))
        if diff:
            raise ValueError(Errors.E228.format(path=directory, diff="; ".join(diff)))
    return found



def annotate(teacher: Union[str, Path, Language, TeacherRunner], texts_path: Union[str, Path],
             output: Union[str, Path], *, shard: Union[str, Tuple[int, int]] = (0, 1), component: str = "ner",
             batch_size: int = 64, gpu_id: int = -1, lang: Optional[str] = None, store: str = "potentials",
             student_config: Optional[Union[str, Path]] = None, overrides: Optional[Dict[str, object]] = None,
             progress: bool = True, split: Optional[InputSplit] = None) -> Dict[str, object]:
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
    RETURNS (Dict[str, object]): texts, computed, reused, seconds, sentences_per_second
        (computed / seconds), skipped (the shard was already complete), shard_dir, cache_path.
    """
    i, n = parse_shard(shard)
    _check_int("batch_size", batch_size, 1)
    check_store(store, student_config, overrides)
    if not Path(texts_path).exists():
        raise ValueError(Errors.E227.format(path=texts_path))
    runner = teacher if isinstance(teacher, TeacherRunner) else TeacherRunner(teacher, component, gpu_id)
    student = None
    if store == "targets":
        from .student_targets import StudentTargets  # it imports this module

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
    summary = {"computed": 0, "reused": 0, "skipped": False, "shard_dir": str(directory)}
    found = check_shard(directory, manifest)
    if found is not None and found.get("complete"):  # checked before reading: skipping is cheap
        with manifest_cache(directory, manifest) as cache:
            cache_path = str(cache.path)
        summary.update(texts=found["texts"], reused=found["texts"], skipped=True, cache_path=cache_path,
                       seconds=time.perf_counter() - start, sentences_per_second=0.0)
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
    else:
        _store_potentials(runner, directory, texts, batch_size, summary, progress=progress, desc=f"shard {i}/{n}")
    write_manifest(directory, {**manifest, "complete": True})
    if not texts and not n_distinct:
        warnings.warn(Warnings.W154.format(path=texts_path, i=i, n=n, shard=directory))
    seconds = time.perf_counter() - start
    summary.update(seconds=seconds, sentences_per_second=summary["computed"] / seconds if seconds else 0.0)
    return summary


def _store_potentials(runner: TeacherRunner, directory: Path, texts: Sequence[Words], batch_size: int,
                      summary: Dict[str, object], *, progress: bool, desc: str) -> None:
    """The teacher's outputs for the texts the shard lacks, one transaction per batch."""
    with runner.open_cache(directory) as cache, \
            tqdm(total=len(texts), desc=f"[annotate] {desc}", unit="sent",
                 disable=None if progress else True) as bar:
        summary["cache_path"] = str(cache.path)
        for offset in range(0, len(texts), batch_size):
            chunk = texts[offset : offset + batch_size]
            todo = [words for words, hit in zip(chunk, cache.get_many(chunk)) if hit is None]
            if todo:
                cache.put_many(todo, runner(todo))  # one transaction: all of the batch or none
            summary["computed"] += len(todo)
            summary["reused"] += len(chunk) - len(todo)
            bar.update(len(chunk))


# --- manifests and merging --------------------------------------------------------------------


def read_manifest(directory: Union[str, Path]) -> Dict[str, object]:
    """The manifest of a shard folder (E229 if it cannot be read)."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf8"))
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format') if isinstance(manifest, dict) else manifest!r}, "
                             f"expected {MANIFEST_FORMAT}")
        for field in _IDENTITY + (("shard", "index"),):
            _lookup(manifest, field)
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
        key = tuple(json.dumps(_lookup(manifest, field)) for field in _INPUT)
        group = inputs.setdefault(key, {"first": directory, "manifest": manifest, "by_index": {}, "texts": 0})
        for field in _IDENTITY:
            if field in _INPUT:
                continue
            # the namespace is every shard's; the rest (the shard count) is one input's
            if field in _NAMESPACE:
                reference, expected = dirs[0], first
            else:
                reference, expected = group["first"], group["manifest"]
            a, b = _lookup(expected, field), _lookup(manifest, field)
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
    copied = 0
    with manifest_cache(output, first) as target:  # the namespace the (agreeing) manifests name
        for directory in dirs:
            with manifest_cache(directory, first) as source:
                copied += target.copy_from(source)
        cache_path, stored = str(target.path), len(target)
    texts = sum(summary["texts"] for summary in summaries)
    record = {key: value for key, value in first.items() if key not in ("shard", "texts", "complete", "input")}
    write_manifest(output, _merged_record(Path(output), record, summaries, stored), name=MERGED)
    return {"shards": len(dirs), "entries": copied, "texts": texts, "inputs": summaries,
            "missing": {summary["name"]: summary["missing"] for summary in summaries if summary["missing"]},
            "seconds": time.perf_counter() - start, "cache_path": cache_path}


def _merged_record(output: Path, namespace: Dict[str, object], summaries: List[Dict[str, object]],
                   stored: int) -> Dict[str, object]:
    """The new `merged.json` of a cache folder: this merge's namespace, with every input merged
    into it so far (one merge per language adds to, not replaces, the list), and the records of
    the other namespaces (other teachers) merged into the same folder under `others`."""
    def key(record: Dict[str, object]) -> str:  # the identity fields, not version or teacher path
        return json.dumps([_lookup(record, field) for field in _NAMESPACE], sort_keys=True)

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


# --- helpers ----------------------------------------------------------------------------------


def _is_docbin(path: Path) -> bool:
    return path.is_file() and path.suffix == ".spacy"


def _check_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(Errors.E235.format(name=name, low=low, value=value))


def _lookup(manifest: Dict[str, object], field: Tuple[str, ...]) -> object:
    """The value of a manifest field; None for a section only some shards have (`student`)."""
    if field[0] in _OPTIONAL and field[0] not in manifest:
        return None
    value = manifest
    for key in field:
        value = value[key]
    return value


def _differences(found: Dict[str, object], expected: Dict[str, object], fields) -> List[str]:
    """'field: found vs expected' for each identity field that differs."""
    diff = []
    for field in fields:
        a, b = _lookup(found, field), _lookup(expected, field)
        if a != b:
            diff.append(f"{'.'.join(field)}: {json.dumps(a, sort_keys=True)} here, "
                        f"{json.dumps(b, sort_keys=True)} in this run")
    return diff
