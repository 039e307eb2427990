"""One table of students: how much of the teacher's test F1 each keeps, at what speed and size.

Each row is a student setting trained by `scripts/run_case.py` (one folder per setting, one run
per objective and seed): its test scores are read from `metrics/<case>/<objective>-seed<k>.json`,
its model from `training/<case>/<objective>-seed<k>/model-best`. The teacher and the first seed's
model of every row are timed one after another in this one run with `spacy benchmark speed`
(one torch thread unless OMP_NUM_THREADS says otherwise), so the words/s ratios are measured side
by side on the same machine state.

    OMP_NUM_THREADS=1 python benchmarks/student_pareto.py \
        --teacher training/teacher_crf/model-best --test corpus/conll2003_en/test.spacy \
        --row "CNN-96 CRF, hash only=case1a-full:structural" \
        --row "CNN-96 CRF, teacher vectors=pareto-tv:structural" \
        --output docs/results/pareto.json --plot docs/results/pareto.png

Writes one JSON row per student (`student`, `case`, `objective`, `params`, `words_per_s`,
`teacher_words_per_s`, `speedup`, `f1_mean`, `f1_std`, `seeds`, `teacher_f1`, `retained` =
f1_mean / teacher_f1, `timed` = the date of the timing run), prints them as a Markdown table and
draws speed against F1 with the teacher's point. The goal line of the issue it serves: retained
>= 0.97 at speedup >= 10. `--keep` keeps the rows of an existing OUTPUT that this run does not
measure (their students trained elsewhere): each keeps the speed ratio of its own timing run.
"""
import argparse
import datetime
import io
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import srsly
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ner_conll03 import speed  # noqa: E402

GOAL_RETAINED, GOAL_SPEEDUP = 0.97, 10.0


def torch_params(shim) -> int:
    """Weights of a thinc PyTorchShim, from its public serialization (msgpack of the config and
    the torch state dict's bytes); 0 for a shim that holds no torch module."""
    try:
        state = srsly.msgpack_loads(shim.to_bytes())["state"]
        weights = torch.load(io.BytesIO(state), map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001  (another kind of shim: nothing to count here)
        return 0
    return sum(int(t.numel()) for t in weights.values() if isinstance(t, torch.Tensor))


def count_params(path: Path) -> int:
    """Parameters of every component of a pipeline: thinc params and the weights of wrapped torch
    modules (read from the shim's serialized state, not from its private members)."""
    nlp = spacy.load(path)
    total = 0
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None or not hasattr(model, "walk"):
            continue
        for node in model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    total += int(node.get_param(name).size)
            for shim in node.shims:
                total += torch_params(shim)
    # the static vectors table is part of what ships
    total += int(nlp.vocab.vectors.data.size) if nlp.vocab.vectors.shape[0] else 0
    return total


def read_scores(metrics: Path, objective: str, metric: str) -> Dict[int, float]:
    """Test score x 100 per seed of one objective."""
    scores = {}
    for path in sorted(metrics.glob(f"{objective}-seed*.json")):
        match = re.fullmatch(rf"{re.escape(objective)}-seed(\d+)\.json", path.name)
        if match:
            value = json.loads(path.read_text(encoding="utf8")).get(metric)
            if value is not None:
                scores[int(match.group(1))] = 100.0 * float(value)
    return scores


def teacher_score(args: argparse.Namespace, cases: List[str]) -> float:
    """The teacher's test score: --teacher-metrics, else the first case's teacher.json."""
    candidates = [args.teacher_metrics] if args.teacher_metrics else [args.metrics / c / "teacher.json" for c in cases]
    for path in candidates:
        if path and Path(path).is_file():
            return 100.0 * float(json.loads(Path(path).read_text(encoding="utf8"))[args.metric])
    raise SystemExit(f"no teacher metrics found (tried {', '.join(map(str, candidates))}); pass --teacher-metrics")


def parse_row(spec: str) -> Dict[str, str]:
    name, sep, rest = spec.partition("=")
    case, sep2, objective = rest.partition(":")
    if not (sep and sep2 and name and case and objective):
        raise SystemExit(f"--row expects 'NAME=CASE:OBJECTIVE', got {spec!r}")
    return {"student": name.strip(), "case": case.strip(), "objective": objective.strip()}


def build_rows(args: argparse.Namespace) -> List[Dict[str, object]]:
    specs = [parse_row(spec) for spec in args.row]
    teacher_f1 = teacher_score(args, [s["case"] for s in specs])
    print(f"teacher: timing {args.teacher}", flush=True)
    teacher_wps = speed(args.teacher.resolve(), args.test.resolve(), args.n_batches, args.warmup, args.batch_size)
    rows = []
    for spec in specs:
        scores = read_scores(args.metrics / spec["case"], spec["objective"], args.metric)
        if not scores:
            print(f"skipped {spec['student']}: no metrics in {args.metrics / spec['case']}", file=sys.stderr)
            continue
        seed = min(scores)
        model = args.training / spec["case"] / f"{spec['objective']}-seed{seed}" / "model-best"
        if not model.is_dir():
            print(f"skipped {spec['student']}: {model} not found", file=sys.stderr)
            continue
        print(f"{spec['student']}: timing {model}", flush=True)
        wps = speed(model.resolve(), args.test.resolve(), args.n_batches, args.warmup, args.batch_size)
        values = [scores[k] for k in sorted(scores)]
        mean = statistics.mean(values)
        rows.append({**spec, "params": count_params(model), "words_per_s": round(wps),
                     "teacher_words_per_s": round(teacher_wps), "speedup": round(wps / teacher_wps, 2),
                     "f1_mean": round(mean, 2), "f1_std": round(statistics.stdev(values), 2) if len(values) > 1 else None,
                     "seeds": len(values), "teacher_f1": round(teacher_f1, 2), "retained": round(mean / teacher_f1, 4),
                     "timed": datetime.date.today().isoformat()})
    return rows


def kept_rows(path: Path, measured: List[Dict[str, object]]) -> List[Dict[str, object]]:
    """The rows of an earlier table at `path` that `measured` does not replace (same case and
    objective), each with the ratios of its own timing run."""
    if not path.is_file():
        return []
    done = {(row["case"], row["objective"]) for row in measured}
    kept = [row for row in json.loads(path.read_text(encoding="utf8")) if (row["case"], row["objective"]) not in done]
    return [{**row, "timed": row.get("timed") or "an earlier run"} for row in kept]


def markdown(rows: List[Dict[str, object]]) -> str:
    lines = ["| student | objective | params | words/s | x teacher | test F1 | seeds | retained | timed |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        std = f" ± {row['f1_std']:.2f}" if row["f1_std"] is not None else ""
        goal = " **(goal)**" if row["retained"] >= GOAL_RETAINED and row["speedup"] >= GOAL_SPEEDUP else ""
        lines.append(f"| {row['student']} | `{row['objective']}` | {row['params'] / 1e6:.2f} M | "
                     f"{row['words_per_s']:,} | {row['speedup']:.1f} | {row['f1_mean']:.2f}{std} | {row['seeds']} | "
                     f"{100 * row['retained']:.1f}%{goal} | {row.get('timed', '')} |")
    if rows:
        lines.append(f"| teacher | | | {rows[0]['teacher_words_per_s']:,} | 1.0 | {rows[0]['teacher_f1']:.2f} | | 100% | "
                     f"{rows[0].get('timed', '')} |")
    return "\n".join(lines)


def plot(rows: List[Dict[str, object]], path: Path) -> Path:
    """Words/s (log) against test F1: every student, the teacher, and the goal region."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # x = speed as a multiple of the teacher's words/s in the row's own timing run, so rows timed
    # in different runs (kept with --keep) stay comparable; points are numbered, the key says which
    fig, ax = plt.subplots(figsize=(9, 6))
    teacher_f1 = rows[0]["teacher_f1"]
    speedups = [row["words_per_s"] / row["teacher_words_per_s"] for row in rows]
    ax.fill_between([GOAL_SPEEDUP, max(speedups) * 2], GOAL_RETAINED * teacher_f1, teacher_f1 + 1,
                    color="#2ca02c", alpha=0.12,
                    label=f"goal: ≥ {GOAL_RETAINED:.0%} of the teacher's F1 at ≥ {GOAL_SPEEDUP:.0f}x its speed")
    ax.scatter([1.0], [teacher_f1], marker="^", s=120, color="#4d4d4d", zorder=3, label="teacher")
    markers = {"structural": "*", "top1": "o", "token": "s", "none": "x", "posterior": "D"}
    for number, (row, speedup) in enumerate(zip(rows, speedups), start=1):
        ax.errorbar(speedup, row["f1_mean"], yerr=row["f1_std"] or 0, fmt=markers.get(row["objective"], "o"),
                    markersize=11 if row["objective"] == "structural" else 7, capsize=3, zorder=3,
                    label=f"{number}: {row['student']} ({row['objective']})")
        ax.annotate(str(number), (speedup, row["f1_mean"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("speed as a multiple of the teacher's words/s (spacy benchmark speed, one CPU thread; log scale)")
    ax.set_ylabel("CoNLL-2003 English test F1 × 100")
    ax.set_title("Students: speed against accuracy, with the teacher")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, which="both")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="the teacher pipeline (model-best)")
    parser.add_argument("--test", type=Path, required=True, help="test data as .spacy")
    parser.add_argument("--row", action="append", required=True, help="NAME=CASE:OBJECTIVE (repeatable)")
    parser.add_argument("--metric", default="ents_f")
    parser.add_argument("--metrics", type=Path, default=Path("metrics"))
    parser.add_argument("--training", type=Path, default=Path("training"))
    parser.add_argument("--teacher-metrics", type=Path, default=None, help="default: metrics/<first case>/teacher.json")
    parser.add_argument("--n-batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", type=Path, default=Path("docs/results/pareto.json"))
    parser.add_argument("--plot", type=Path, default=None, help="PNG of speed against F1")
    parser.add_argument("--keep", action="store_true", help="keep OUTPUT's rows that this run does not measure")
    args = parser.parse_args(argv)
    for path in (args.teacher, args.test):
        if not path.exists():
            parser.error(f"{path} does not exist")
    rows = build_rows(args)
    if not rows:
        raise SystemExit("no row had metrics and a model: run the students first")
    if args.keep:
        rows = rows + kept_rows(args.output, rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf8")
    print(markdown(rows))
    if args.plot:
        print(f"plot: {plot(rows, args.plot)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
