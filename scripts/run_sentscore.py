#!/usr/bin/env python
"""Students of the SenTScore experiment (Farina et al. 2023, section 5) on one gold split.

For one split folder made by `scripts/slot_splits.py` (gold-train, gold-dev, silver, test) and a
trained `skd_sentscore` teacher, it evaluates the teacher on the test set with SenTScore and with
constrained SenT' decoding, then trains and evaluates the BiLSTM students, for each seed:

    gold     gold sentences only                        configs/student_bilstm_slots.cfg
    pseudo   gold + silver with the teacher's tags       configs/student_bilstm_sentscore_kd.cfg, kd_weight 0
    kd       gold + silver, tags + lambda_KL * KL         ...                                     kd_weight 1

writing metrics/<name>/{teacher,teacher-constrained,<kind>-seed<k>}.json (`spacy skd evaluate-slots`:
F1, exact match, speed) for `spacy skd results-table`. The pseudo and kd students share one
teacher pass through the teacher-output cache. A run whose metrics exist is skipped unless
`--force`; a failing run does not stop the others (exit status 1 at the end).
"""
import argparse
import subprocess
import sys
from pathlib import Path
from typing import List

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline import offline_env  # noqa: E402

KINDS = ("gold", "pseudo", "kd")
GOLD_CONFIG = "configs/student_bilstm_slots.cfg"
KD_CONFIG = "configs/student_bilstm_sentscore_kd.cfg"


def train_command(args, kind: str, seed: int, output: Path) -> List[str]:
    split = args.split
    command = [sys.executable, "-m", "spacy", "train", GOLD_CONFIG if kind == "gold" else KD_CONFIG,
               "--output", str(output), "--paths.train", str(split / "gold-train"),
               "--paths.dev", str(split / "gold-dev"), "--system.seed", str(seed), "--gpu-id", str(args.gpu_id)]
    if args.max_steps:
        command += ["--training.max_steps", str(args.max_steps)]
    if kind != "gold":
        command += ["--paths.silver", str(split / "silver"), "--paths.teacher", str(args.teacher),
                    "--paths.cache", str(args.cache), "--components.kd.kd_weight", "0" if kind == "pseudo" else "1",
                    "--corpora.train.max_unlabeled", str(args.max_unlabeled),
                    "--components.kd.temperature", str(args.temperature)]
    return command


def evaluate_command(args, model: Path, output: Path, *overrides: str) -> List[str]:
    """`spacy skd evaluate-slots` on the test split; `overrides` are config overrides at load,
    e.g. "--components.slots.decoding", "constrained"."""
    return [sys.executable, "-m", "spacy", "skd", "evaluate-slots", str(model), str(args.split / "test"),
            "--output", str(output), "--gpu-id", str(args.gpu_id), *overrides]


def run(command: List[str], env: dict) -> bool:
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, env=env).returncode == 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="metrics/<name>/ and training/<name>/")
    p.add_argument("--split", type=Path, required=True, help="folder from scripts/slot_splits.py")
    p.add_argument("--teacher", type=Path, required=True, help="trained skd_sentscore pipeline (model-best)")
    p.add_argument("--kinds", default="gold,pseudo,kd", help="comma-separated, of gold,pseudo,kd")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--max-steps", type=int, default=None, help="training.max_steps of the students")
    p.add_argument("--max-unlabeled", type=int, default=0, help="silver sentences used (0: all)")
    p.add_argument("--temperature", type=float, default=10.0, help="tau of the KD term (10, as in the paper)")
    p.add_argument("--cache", type=Path, default=None, help="teacher-output cache (default cache/<name>)")
    p.add_argument("--gpu-id", type=int, default=-1)
    p.add_argument("--training-dir", type=Path, default=Path("training"))
    p.add_argument("--metrics-dir", type=Path, default=Path("metrics"))
    p.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if set(kinds) - set(KINDS):
        p.error(f"--kinds: unknown {sorted(set(kinds) - set(KINDS))}; choose from {', '.join(KINDS)}")
    for folder in ("gold-train", "gold-dev", "silver", "test"):
        if not (args.split / folder).is_dir():
            p.error(f"{args.split / folder} not found: make the split with scripts/slot_splits.py")
    if not args.teacher.is_dir():
        p.error(f"teacher {args.teacher} not found: train it with configs/sentscore_teacher.cfg")
    args.cache = args.cache or Path("cache") / args.name
    metrics, training = args.metrics_dir / args.name, args.training_dir / args.name
    env = offline_env()
    failed = []
    for name, overrides in (("teacher", ()), ("teacher-constrained", ("--components.slots.decoding", "constrained"))):
        out = metrics / f"{name}.json"
        if (args.force or not out.exists()) and not run(evaluate_command(args, args.teacher, out, *overrides), env):
            failed.append(name)
    for seed in [int(s) for s in args.seeds.split(",") if s]:
        for kind in kinds:
            run_name = f"{kind}-seed{seed}"
            out = metrics / f"{run_name}.json"
            if out.exists() and not args.force:
                print(f"skip {run_name}: {out} exists")
                continue
            model = training / run_name
            ok = run(train_command(args, kind, seed, model), env) and \
                run(evaluate_command(args, model / "model-best", out), env)
            if not ok:
                failed.append(run_name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
