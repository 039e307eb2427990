#!/usr/bin/env python
"""Train and evaluate the students of one distillation case: every objective x seed.

Weasel has no loops, so one `students-<case>` command in project.yml calls this driver instead
of listing (objectives x seeds) train and evaluate commands. For each seed, and each objective in
the order given, it runs

    python -m spacy train STUDENT_CONFIG -o training/<case>/<objective>-seed<k> \
        --paths.train ... --paths.raw ... --paths.dev ... --paths.teacher ... --paths.cache ... \
        --components.kd.objective <objective> --system.seed <k> --gpu-id G \
        [--components.kd.temperature T] [--training.max_steps N] [--paths.vectors V] [--KEY VALUE ...]
    python -m spacy evaluate training/<case>/<objective>-seed<k>/model-best TEST \
        --output metrics/<case>/<objective>-seed<k>.json --gpu-id G

after evaluating the teacher once on the same test set (`metrics/<case>/teacher.json`).
`python -m spacy skd results-table metrics/<case>` turns the JSON files into the report.

Runs are resumable: a run is skipped when its metrics exist and were produced from the same
command and the same inputs (config, teacher, data, vectors: MD5s recorded beside the results in
`<run>.inputs.json` and `training/.../skd_run.json`); a finished training whose evaluation is
missing is only evaluated. `--force` reruns everything. A failing run does not stop the others;
the exit status is 1 if any failed, and the report marks it missing.

Objectives listed in `--gold-only` (default: `none`, "w/o KD") train on gold data alone
(`--paths.raw null`), on `--gold-only-train` when given: in the zero-shot case 3 the KD students
learn from target-language raw text only (`--train null`, which also sets
`--corpora.train.gold null` in the student config's `spacy-skd.Mixed.v1` corpus) while `none` is
the direct-transfer student trained on source-language gold. Subprocesses run with HF_HUB_OFFLINE=1 and
TRANSFORMERS_OFFLINE=1 (transformer teachers load from local paths only) and SKD_CACHE_DIR set
to the teacher-output cache.
"""
import argparse
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from weasel.util import get_checksum

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline import OFFLINE_ENV  # noqa: E402

NULL = "null"


def checksum(path: Path) -> str:
    """MD5 of a file, or of all files of a folder in sorted order (as weasel computes it)."""
    return _checksum(Path(path).resolve())


@functools.lru_cache(maxsize=None)
def _checksum(path: Path) -> str:
    return get_checksum(path)  # weasel's own, so a run's record matches what weasel would compute


def fingerprint(command: Sequence[str], inputs: Sequence[Optional[str]]) -> Dict:
    """The command (without the interpreter) and the MD5 of every input that is a path."""
    files = {}
    for value in inputs:
        if value and value != NULL and Path(value).exists():
            files[value] = checksum(Path(value))
    return {"command": list(command[1:]), "inputs": files}


class Case:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.name = args.case
        self.train_root = Path(args.training_dir) / self.name
        self.metrics_root = Path(args.metrics_dir) / self.name
        self.cache = args.cache or str(Path("cache") / self.name)
        self.env = {**os.environ, **OFFLINE_ENV, "SKD_CACHE_DIR": self.cache}
        self.failed: List[str] = []

    # -- commands ------------------------------------------------------------------------------
    def train_command(self, objective: str, seed: int) -> List[str]:
        a = self.args
        gold_only = objective in a.gold_only
        train = (a.gold_only_train or a.train) if gold_only else a.train
        raw = NULL if gold_only else a.raw
        cmd = [sys.executable, "-m", "spacy", "train", a.student_config,
               "-o", str(self.train_root / f"{objective}-seed{seed}"),
               "--paths.train", train, "--paths.raw", raw, "--paths.dev", a.dev,
               "--paths.teacher", a.teacher, "--paths.cache", self.cache,
               "--components.kd.objective", objective, "--system.seed", str(seed), "--gpu-id", str(a.gpu_id)]
        if a.temperature is not None:
            cmd += ["--components.kd.temperature", str(a.temperature)]
        if train == NULL:  # unlabeled text only: drop the gold reader of the spacy-skd.Mixed.v1 corpus
            cmd += ["--corpora.train.gold", NULL]
        if a.max_steps is not None:
            cmd += ["--training.max_steps", str(a.max_steps)]
        if a.vectors != NULL:  # the default students read them through [initialize] vectors alone
            cmd += ["--paths.vectors", a.vectors]
        for setting in a.set:
            key, sep, value = setting.partition("=")
            if not sep or not key:
                raise SystemExit(f"--set expects KEY=VALUE, got {setting!r}")
            cmd += [f"--{key.lstrip('-')}", value]
        return cmd

    def evaluate_command(self, model: str, output: Path) -> List[str]:
        return [sys.executable, "-m", "spacy", "evaluate", model, self.args.test,
                "--output", str(output), "--gpu-id", str(self.args.gpu_id)]

    # -- running -------------------------------------------------------------------------------
    def run(self) -> int:
        a = self.args
        for objective in a.objectives:
            if objective in a.gold_only and (a.gold_only_train or a.train) in (None, NULL):
                raise SystemExit(f"'{objective}' trains on gold only, but --train is null: pass --gold-only-train")
        if not a.dry_run:
            missing = [p for p in (a.student_config, a.teacher, a.dev, a.test) if not Path(p).exists()]
            if missing:
                raise SystemExit(f"[{self.name}] not found: {', '.join(missing)}")
            self.metrics_root.mkdir(parents=True, exist_ok=True)
        self.evaluate("teacher", a.teacher, fingerprint(["", a.teacher], [a.teacher]))
        for seed in a.seeds:
            for objective in a.objectives:
                run = f"{objective}-seed{seed}"
                cmd = self.train_command(objective, seed)
                gold_only = objective in a.gold_only
                data = [(a.gold_only_train or a.train) if gold_only else a.train,
                        None if gold_only else a.raw, a.dev]
                train_fp = fingerprint(cmd, [a.student_config, a.teacher, *data, a.vectors])
                if self.train(run, cmd, train_fp):
                    model = str(self.train_root / run / "model-best")
                    self.evaluate(run, model, train_fp)
        if self.failed:
            print(f"[{self.name}] failed: {', '.join(self.failed)}", file=sys.stderr)
            return 1
        print(f"[{self.name}] done: metrics in {self.metrics_root}")
        return 0

    def train(self, run: str, cmd: List[str], fp: Dict) -> bool:
        """Train unless an identical finished training exists; False if training failed."""
        record = self.train_root / run / "skd_run.json"
        if not self.args.force and _read_json(record) == fp and (self.train_root / run / "model-best").is_dir():
            print(f"[{self.name}] {run}: trained already (same command and inputs)")
            return True
        if not self.args.dry_run:  # results of an earlier, different run must not outlive it
            for stale in (record, self.metrics_root / f"{run}.json", self.metrics_root / f"{run}.inputs.json"):
                stale.unlink(missing_ok=True)
        if self._call(f"{run}: train", cmd):
            if not self.args.dry_run:
                record.write_text(json.dumps(fp, indent=2), encoding="utf8")
            return True
        self.failed.append(run)
        return False

    def evaluate(self, run: str, model: str, upstream: Dict) -> None:
        output = self.metrics_root / f"{run}.json"
        cmd = self.evaluate_command(model, output)
        fp = {"model": upstream, **fingerprint(cmd, [self.args.test])}
        record = self.metrics_root / f"{run}.inputs.json"
        if not self.args.force and output.is_file() and _read_json(record) == fp:
            print(f"[{self.name}] {run}: evaluated already (same model and test set)")
            return
        if self._call(f"{run}: evaluate", cmd):
            if not self.args.dry_run:
                record.write_text(json.dumps(fp, indent=2), encoding="utf8")
        else:
            self.failed.append(run)

    def _call(self, what: str, cmd: List[str]) -> bool:
        shown = " ".join(["python", *cmd[1:]])
        print(f"[{self.name}] {what}\n  {shown}", flush=True)
        if self.args.dry_run:
            return True
        return subprocess.call(cmd, env=self.env) == 0


def _read_json(path: Path) -> Optional[Dict]:
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None


def _csv(value: str) -> List[str]:
    return [v.strip() for v in str(value).split(",") if v.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("case", help="name of the case: training/<case>/, metrics/<case>/")
    p.add_argument("--student-config", required=True, help="student config with a [components.kd] block")
    p.add_argument("--teacher", required=True, help="the teacher pipeline (its model-best)")
    p.add_argument("--objectives", required=True, type=_csv, help="comma-separated: none,top1,token,posterior,structural")
    p.add_argument("--seeds", default=[0], type=lambda v: [int(s) for s in _csv(v)], help="comma-separated seeds (0)")
    p.add_argument("--train", required=True, help="gold training data of the students, or null (raw text only)")
    p.add_argument("--raw", default=NULL, help="unlabeled text for the KD objectives, or null")
    p.add_argument("--gold-only", default=["none"], type=_csv, help="objectives trained on gold only (none)")
    p.add_argument("--gold-only-train", default=None, help="gold data of those objectives (default: --train)")
    p.add_argument("--dev", required=True, help="dev data (model-best selection)")
    p.add_argument("--test", required=True, help="test data as .spacy (spacy skd convert)")
    p.add_argument("--max-steps", type=int, default=None, help="training.max_steps of the students")
    p.add_argument("--temperature", type=float, default=None, help="KD temperature (default: the config's)")
    p.add_argument("--gpu-id", type=int, default=-1)
    p.add_argument("--cache", default=None, help="teacher-output cache folder (default cache/<case>)")
    p.add_argument("--vectors", default=NULL, help="static vectors of the students (paths.vectors), or null; "
                   "a rebuilt table retrains the runs")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra spacy train override, e.g. components.ner.constrained=false (repeatable)")
    p.add_argument("--training-dir", default="training")
    p.add_argument("--metrics-dir", default="metrics")
    p.add_argument("--force", action="store_true", help="rerun finished runs too")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return Case(parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
