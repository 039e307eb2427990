#!/usr/bin/env python
"""Every distillation case on a GPU, in one command, with a table of what ran and how fast.

    python scripts/gpu_check.py --bundle wheelhouse/bundle.tar.xz --gpu-id 0   # make gpu-check
    python scripts/gpu_check.py --device cpu --steps 3 --tiny --data DIR        # the CPU dry run

For a machine with an NVIDIA GPU, torch, CuPy and numpy but no package index. With `--bundle`
(made by `scripts/gpu_wheelhouse.py`) it unpacks the wheels and data slices, installs the wheels
offline into a virtual environment that sees the system's torch and CuPy (the pinned transformers
shadows a newer system one), and reruns itself there. Then, for each case (1a, 1b, 2a, 2b, 3, 4,
SenTScore), through the command line as a user runs it:

    python -m spacy train TEACHER_CONFIG ... --training.max_steps STEPS --gpu-id G
    python -m spacy skd annotate TEACHER RAW_TEXT OUT --gpu-id G         # the teacher pass
    python -m spacy train STUDENT_CONFIG ... --paths.cache OUT/shard-0-of-1 --gpu-id G

and `scripts/gpu_measure.py` (one process for all cases) measures words/s of teacher and student,
the KD training step, the CPU-vs-device agreement of the structures and the SenTScore teacher's
batched vs one-at-a-time decoding. Losses must be finite. The table goes to stdout and to
OUTPUT/gpu_check.md and OUTPUT/gpu_check.json; the exit status is 1 if anything failed.

This file needs only the standard library: it runs before anything is installed.
"""
import argparse
import contextlib
import io
import json
import math
import os
import re
import shutil
import site
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
sys.path.insert(0, str(SCRIPTS))
from gpu_wheelhouse import install_command  # noqa: E402  (standard library only, like this file)
from offline import OFFLINE_ENV  # noqa: E402


class Data(NamedTuple):
    """Files of one kind of data under --data (the layout gpu_wheelhouse.py writes)."""

    train: str
    dev: str
    raw: str  # one text per line: what the teacher pass annotates and the students' unlabeled part


DATA = {
    "ner": Data("conll2003_en/train.conll", "conll2003_en/dev.conll", "raw/conll.txt"),
    "parse": Data("ud_en_ewt/train.conllu", "ud_en_ewt/dev.conllu", "raw/ewt.txt"),
    "slots": Data("snips/train", "snips/valid", "snips/silver/seq.in"),
}


class Teacher(NamedTuple):
    config: str
    data: str  # key of DATA
    component: str
    overrides: Tuple[str, ...] = ()
    tiny: Tuple[str, ...] = ()  # --tiny: smaller models for the CPU dry run


CNN_TINY = ("--components.tok2vec.model.encode.width", "32")
TEACHERS = {
    "crf": Teacher("configs/crf_tagger_efficiency.cfg", "ner", "ner", tiny=CNN_TINY),
    "maxent": Teacher("configs/maxent_tagger_efficiency.cfg", "ner", "ner", tiny=CNN_TINY),
    "span": Teacher("configs/span_ner_teacher.cfg", "ner", "ner", tiny=CNN_TINY),
    "biaffine": Teacher("configs/parser_biaffine_teacher.cfg", "parse", "parser", tiny=CNN_TINY),
    "mfvi": Teacher("configs/parser_mfvi_teacher.cfg", "parse", "parser", tiny=CNN_TINY),
    # no pretrained weights travel: a T5 built from scratch, its tokenizer trained on the train text
    "sentscore": Teacher("configs/sentscore_teacher.cfg", "slots", "slots",
                         # larger decoding batches than the config's CPU-tuned 8: a GPU is wide
                         overrides=("--components.slots.model.init", "scratch", "--components.slots.batch_size", "64"),
                         tiny=("--components.slots.model.d_model", "32", "--components.slots.model.d_ff", "64",
                               "--components.slots.model.n_layers", "1", "--components.slots.model.n_heads", "2",
                               "--components.slots.model.vocab_size", "200",
                               "--components.slots.model.n_sentinels", "40")),
}


class Case(NamedTuple):
    name: str
    teacher: str  # key of TEACHERS
    student_config: str
    overrides: Tuple[str, ...] = ()


CASES = (
    Case("1a", "crf", "configs/student_crf_kd.cfg"),
    Case("1b", "biaffine", "configs/student_seqlabel_kd.cfg"),
    Case("2a", "crf", "configs/student_maxent_kd.cfg"),
    Case("2b", "mfvi", "configs/student_seqlabel_kd.cfg"),
    # zero-shot, as project.yml runs it: unlabeled text only, an unconstrained CRF student
    Case("3", "maxent", "configs/student_crf_kd.cfg",
         ("--components.ner.constrained", "false", "--paths.train", "null", "--corpora.train.gold", "null")),
    Case("4", "span", "configs/student_maxent_span_kd.cfg"),
    Case("SenTScore", "sentscore", "configs/student_bilstm_sentscore_kd.cfg"),
)
RATE = re.compile(r"([0-9.]+) sentences/s")


class Runner:
    """Runs `python -m spacy ...` and `scripts/gpu_measure.py`: as subprocesses (what a user
    runs), or with `in_process` in this interpreter (the test suite's dry run: no start-up cost)."""

    def __init__(self, python: str, in_process: bool, log: Path, timeout: float):
        self.python = python
        self.in_process = in_process
        self.log = log
        self.timeout = timeout  # seconds per subprocess: a hung command fails, the others still run

    def __call__(self, label: str, args: Sequence[str], script: Optional[Path] = None,
                 timeout_factor: float = 1.0) -> Tuple[bool, str, float]:
        """(succeeded, output, seconds) of `python -m spacy ARGS` (or of `python SCRIPT ARGS`)."""
        timeout = self.timeout * timeout_factor
        shown = ["python", str(script.relative_to(ROOT)) if script else "-m spacy", *args]
        print(f"$ {' '.join(shown)}", flush=True)
        start = time.perf_counter()
        if self.in_process:
            ok, out = self._in_process(args, script)
        else:
            cmd = [self.python, str(script)] if script else [self.python, "-m", "spacy"]
            env = {**os.environ, **OFFLINE_ENV, "PYTHONPATH": _pythonpath()}  # no network: weights never download
            try:
                done = subprocess.run([*cmd, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=env, timeout=timeout)
                ok, out = done.returncode == 0, done.stdout
            except subprocess.TimeoutExpired as err:
                partial = err.output.decode(errors="replace") if isinstance(err.output, bytes) else err.output or ""
                ok, out = False, f"{partial}\nstopped after {timeout:.0f} s (--timeout)"
        seconds = time.perf_counter() - start
        with open(self.log, "a", encoding="utf8") as f:
            f.write(f"\n### {label} ({seconds:.1f} s, {'ok' if ok else 'FAILED'})\n$ {' '.join(shown)}\n{out}")
        if not ok:
            print(out[-4000:], file=sys.stderr)
        return ok, out, seconds

    @staticmethod
    def _in_process(args: Sequence[str], script: Optional[Path]) -> Tuple[bool, str]:
        buffer = io.StringIO()
        code = 0
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            try:
                if script:
                    import gpu_measure  # imported only here: it needs spaCy and torch

                    code = gpu_measure.main(list(args))
                else:
                    import spacy_skd.cli  # noqa: F401  (registers `spacy skd`, as the entry point does)
                    from spacy.cli import app
                    from typer.main import get_command

                    get_command(app).main(args=list(args), prog_name="spacy", standalone_mode=False)
            except SystemExit as err:
                code = err.code if isinstance(err.code, int) else 1
            except Exception as err:  # noqa: BLE001  (a failing case is reported, the others still run)
                print(f"{type(err).__name__}: {err}")
                code = 1
        return code == 0, buffer.getvalue()


def _pythonpath() -> str:
    """This checkout first, so the code under test is the working tree's."""
    return os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])


def train_args(config: str, output: Path, data: Data, data_dir: Path, steps: int, gpu_id: int,
               extra: Sequence[str]) -> List[str]:
    return ["train", config, "--output", str(output),
            "--paths.train", str(data_dir / data.train), "--paths.dev", str(data_dir / data.dev),
            "--training.max_steps", str(steps), "--training.eval_frequency", str(steps),
            "--gpu-id", str(gpu_id), *extra]


def recorded_losses(model: Path) -> Dict[str, float]:
    """The losses spaCy recorded at the last evaluation (model/meta.json)."""
    meta = json.loads((model / "meta.json").read_text(encoding="utf8"))
    return {k: float(v) for k, v in meta.get("performance", {}).items() if k.endswith("_loss")}


def run_teacher(run: Runner, key: str, out: Path, data_dir: Path, args) -> Dict:
    t = TEACHERS[key]
    data = DATA[t.data]
    folder = out / "teachers" / key
    extra = [*t.overrides, *(t.tiny if args.tiny else ())]
    ok, _, seconds = run(f"teacher {key}", train_args(t.config, folder, data, data_dir, args.steps, args.gpu_id, extra))
    result = {"teacher": key, "teacher_train_s": seconds, "teacher_ok": ok, "model": str(folder / "model-last")}
    if not ok:
        return result
    result["teacher_losses"] = recorded_losses(folder / "model-last")
    shards = out / "annotate" / key
    ok, text, seconds = run(f"annotate {key}", ["skd", "annotate", result["model"], str(data_dir / data.raw),
                                                str(shards), "--component", t.component, "--gpu-id", str(args.gpu_id)])
    n_texts = sum(1 for line in open(data_dir / data.raw, encoding="utf8") if line.strip())
    rates = [float(r) for r in RATE.findall(text)]
    result.update(annotate_ok=ok, annotate_s=seconds, annotate_texts=n_texts,
                  # the command's own rate (teacher pass only); else texts over the whole command
                  annotate_sentences_per_s=rates[-1] if rates else n_texts / seconds,
                  cache=str(shards / "shard-0-of-1"))
    return result


def run_student(run: Runner, case: Case, teacher: Dict, out: Path, data_dir: Path, args) -> Dict:
    t = TEACHERS[case.teacher]
    data = DATA[t.data]
    folder = out / "students" / case.name
    extra = ["--paths.teacher", teacher["model"], "--paths.cache", teacher["cache"]]
    if t.data == "slots":
        extra += ["--paths.silver", str(data_dir / Path(data.raw).parent)]
    else:
        extra += ["--paths.raw", str(data_dir / data.raw)]
    extra += [*case.overrides, *(CNN_TINY if args.tiny and t.data != "slots" else ())]
    ok, _, seconds = run(f"student {case.name}", train_args(case.student_config, folder, data, data_dir,
                                                            args.steps, args.gpu_id, extra))
    result = {"student_ok": ok, "student_train_s": seconds, "student": str(folder / "model-last")}
    if ok:
        result["student_losses"] = recorded_losses(folder / "model-last")
    return result


def failures(row: Dict) -> List[str]:
    """What went wrong in one case's row (empty: it passed)."""
    problems = [step for step in ("teacher_ok", "annotate_ok", "student_ok", "measure_ok") if row.get(step) is False]
    for key in ("teacher_losses", "student_losses"):
        bad = [k for k, v in row.get(key, {}).items() if not math.isfinite(v)]
        problems += [f"{key[:-7]} {k} not finite" for k in bad]
    if row.get("student_ok") and not row.get("student_losses"):
        problems.append("no student loss recorded")
    return problems


def _num(value, fmt: str = "{:,.0f}") -> str:
    return "–" if value is None else fmt.format(value)


def markdown(report: Dict) -> str:
    """The tables of a report (as written to gpu_check.json) in Markdown."""
    lines = [f"Device: {report['device']}; {report['steps']} training steps per model; "
             f"total {report['total_s']:.0f} s.", "",
             "| case | teacher | teacher words/s | student words/s | KD step ms (x plain) | "
             "teacher pass sentences/s | losses finite | status |",
             "|---|---|---|---|---|---|---|---|"]
    for row in report["cases"]:
        kd = row.get("kd_step_ms")
        kd_text = "–" if kd is None else f"{kd:.1f} (x{row['kd_step_ratio']:.2f})"
        losses = {**row.get("teacher_losses", {}), **row.get("student_losses", {})}
        finite = "–" if not losses else ("yes" if all(map(math.isfinite, losses.values())) else "NO")
        problems = failures(row)
        lines.append(f"| {row['case']} | {row['teacher']} | {_num(row.get('teacher_words_per_s'))} | "
                     f"{_num(row.get('student_words_per_s'))} | {kd_text} | "
                     f"{_num(row.get('annotate_sentences_per_s'), '{:,.1f}')} | {finite} | "
                     f"{'ok' if not problems else 'FAILED: ' + '; '.join(problems)} |")
    structs = report.get("structures", [])
    if structs:
        lines += ["", f"Structures, CPU vs {report['device']}, same random inputs:", "",
                  "| structure | quantity | max abs difference | tolerance | ok |", "|---|---|---|---|---|"]
        for s in structs:
            lines.append(f"| {s['structure']} | {s['quantity']} | {s['max_abs_diff']:.2e} | {s['tolerance']:.0e} | "
                         f"{'yes' if s['ok'] else 'NO'} |")
    ratio = report.get("sentscore_batching")
    if ratio:
        lines += ["", f"SenTScore teacher, {ratio['sentences']} sentences: batch {ratio['batch_size']} "
                      f"{ratio['batched_per_s']:.1f} sentences/s, one at a time {ratio['single_per_s']:.1f} "
                      f"sentences/s: x{ratio['ratio']:.1f}; same tags: {'yes' if ratio['same'] else 'NO'}"]
    for problem in report.get("problems", []):
        lines.append(f"\nFAILED: {problem}")
    return "\n".join(lines) + "\n"


def check(args) -> int:
    """Run every case; write and print the report; 0 if everything passed."""
    started = time.perf_counter()
    out = args.output.resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = Runner(sys.executable, args.in_process, out / "commands.log", args.timeout)
    data_dir = args.data.resolve()
    cases = [c for c in CASES if c.name in args.cases]
    teachers: Dict[str, Dict] = {}
    rows = []
    for case in cases:
        if case.teacher not in teachers:
            teachers[case.teacher] = run_teacher(run, case.teacher, out, data_dir, args)
        teacher = teachers[case.teacher]
        row = {"case": case.name, **teacher}
        if teacher["teacher_ok"] and teacher.get("annotate_ok"):
            row.update(run_student(run, case, teacher, out, data_dir, args))
        rows.append(row)
    plan = out / "measure_plan.json"
    plan.write_text(json.dumps({"cases": [{"case": r["case"], "teacher": r["model"], "student": r.get("student"),
                                           "component": TEACHERS[r["teacher"]].component,
                                           "text": str(data_dir / DATA[TEACHERS[r["teacher"]].data].raw),
                                           "silver": str(data_dir / DATA["slots"].raw)}
                                          for r in rows if r.get("student_ok")]}, indent=2))
    measured = out / "measured.json"
    device = "cpu" if args.gpu_id < 0 else f"cuda:{args.gpu_id}"
    ok, _, _ = run("measure", [str(plan), str(measured), "--device", device, *(["--quick"] if args.tiny else [])],
                   script=SCRIPTS / "gpu_measure.py", timeout_factor=2)
    report = {"device": device, "steps": args.steps, "cases": rows, "problems": []}
    if ok and measured.is_file():
        results = json.loads(measured.read_text(encoding="utf8"))
        report["device"] = results.get("device_name", device)
        for row in rows:
            row.update(results["cases"].get(row["case"], {}))
        report["structures"] = results["structures"]
        report["sentscore_batching"] = results.get("sentscore_batching")
        report["problems"] += [f"{s['structure']} {s['quantity']}: CPU and device differ by {s['max_abs_diff']:.2e}"
                               for s in results["structures"] if not s["ok"]]
    else:
        report["problems"].append(f"gpu_measure.py failed (see {out / 'commands.log'})")
    report["problems"] += [f"case {row['case']}: {'; '.join(failures(row))}" for row in rows if failures(row)]
    report["total_s"] = time.perf_counter() - started
    text = markdown(report)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2), encoding="utf8")
    (out / "gpu_check.md").write_text(text, encoding="utf8")
    print("\n" + text)
    return 1 if report["problems"] else 0


def install(bundle: Path, folder: Path) -> Tuple[str, Path]:
    """Unpack the bundle and install its wheels offline into a virtual environment that sees the
    system's packages (torch, CuPy); (its python, the data folder). Done once per folder."""
    venv = folder / "venv"
    python = str(venv / "bin" / "python")
    if not (folder / ".installed").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        with tarfile.open(bundle) as tar:
            tar.extractall(folder, filter="data")
        # --without-pip: ensurepip may be missing; the system's pip is visible through the system packages
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                       check=True)
        # This interpreter's packages (torch, CuPy, pip) after the venv's own, also when this
        # interpreter is itself a venv or conda env (--system-site-packages reaches only the base one)
        purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout.strip()
        (Path(purelib) / "gpu_check_system.pth").write_text("\n".join(_site_dirs()) + "\n", encoding="utf8")
        subprocess.run(install_command(python, folder / "wheels"), check=True)
        (folder / ".installed").touch()
    return python, folder / "data"


def _site_dirs() -> List[str]:
    dirs = [*site.getsitepackages(), site.getusersitepackages()]
    return [d for d in dirs if Path(d).is_dir()]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, default=None,
                   help="wheels + data from scripts/gpu_wheelhouse.py: install them, then run the check")
    p.add_argument("--data", type=Path, default=None,
                   help="datasets in gpu_wheelhouse.py's slice layout (default: the bundle's)")
    p.add_argument("--gpu-id", type=int, default=0, help="-1: the CPU (the dry run)")
    p.add_argument("--device", choices=("gpu", "cpu"), default="gpu", help="cpu = --gpu-id -1")
    p.add_argument("--steps", type=int, default=40, help="training steps per teacher and student")
    p.add_argument("--cases", default=",".join(c.name for c in CASES))
    p.add_argument("--tiny", action="store_true", help="small models (the CPU dry run)")
    p.add_argument("--in-process", action="store_true", help="no subprocesses (the test suite)")
    p.add_argument("--timeout", type=float, default=240, help="seconds one command may take")
    p.add_argument("--output", type=Path, default=ROOT / "gpu_check")
    args = p.parse_args(argv)
    if args.device == "cpu":
        args.gpu_id = -1
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = set(args.cases) - {c.name for c in CASES}
    if unknown:
        p.error(f"--cases: unknown {sorted(unknown)}; choose from {', '.join(c.name for c in CASES)}")
    if args.bundle is not None:
        python, data = install(args.bundle.resolve(), args.bundle.resolve().parent / "installed")
        rest = ["--gpu-id", str(args.gpu_id), "--steps", str(args.steps), "--cases", ",".join(args.cases),
                "--output", str(args.output.resolve()), "--data", str((args.data or data).resolve()),
                "--timeout", str(args.timeout),
                *(["--tiny"] if args.tiny else [])]
        return subprocess.run([python, str(Path(__file__).resolve()), *rest],
                              env={**os.environ, "PYTHONPATH": _pythonpath()}).returncode
    if args.data is None:
        p.error("--data DIR (the slices gpu_wheelhouse.py writes) or --bundle is needed")
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
