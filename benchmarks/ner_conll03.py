"""CoNLL-2003 English: skd_crf_tagger vs skd_maxent_tagger vs spaCy's built-in `ner`.

All three share one CNN tok2vec config (configs/*_efficiency.cfg). The script trains each with
unmodified `spacy train`, scores model-best on the test set with `spacy evaluate`, then measures
words/second with `spacy benchmark speed`, all speeds in one quiet phase after training, so the
ratios are measured side by side on the same machine state.

    python benchmarks/ner_conll03.py                       # full run (trains three pipelines)
    python benchmarks/ner_conll03.py --max-steps 200       # smoke run
    python benchmarks/ner_conll03.py --reuse               # re-score existing model-best dirs

Prints a table and writes benchmarks/results/ner_conll03.json.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from spacy_skd.cli.convert import convert_corpus

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = {
    "skd_crf_tagger": ROOT / "configs" / "crf_tagger_efficiency.cfg",
    "skd_maxent_tagger": ROOT / "configs" / "maxent_tagger_efficiency.cfg",
    "ner (spaCy built-in)": ROOT / "configs" / "ner_efficiency.cfg",
}


def to_docbin(conll: Path, out: Path) -> Path:
    """Reference docs of a CoNLL file as a .spacy file, the input `spacy evaluate` expects."""
    if not out.exists():
        convert_corpus(conll, out, fmt="conll", scheme="IOB1")
    return out


def train(name: str, config: Path, out: Path, args) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "spacy", "train", str(config), "-o", str(out),
           "--paths.train", str(args.data / "train.conll"), "--paths.dev", str(args.data / "dev.conll"),
           "--training.max_steps", str(args.max_steps), "--system.seed", str(args.seed)]
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / "train.log", "w")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # one core per job
    print(f"[train] {name}: {' '.join(cmd[1:])}", flush=True)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)


def evaluate(model: Path, data: Path) -> dict:
    metrics = model.parent / "test_metrics.json"
    subprocess.run([sys.executable, "-m", "spacy", "evaluate", str(model), str(data), "--output", str(metrics)],
                   check=True, cwd=ROOT, capture_output=True)
    return json.loads(metrics.read_text())


def speed(model: Path, data: Path, n_batches: int, warmup: int = 3, batch_size: int = 1000) -> float:
    """Mean words/s of `spacy benchmark speed` (batch_size counts docs, not words)."""
    out = subprocess.run([sys.executable, "-m", "spacy", "benchmark", "speed", str(model), str(data),
                          "--batch-size", str(batch_size), "--batches", str(n_batches), "--warmup", str(warmup)],
                         check=True, cwd=ROOT, capture_output=True, text=True).stdout
    match = re.search(r"Mean:\s*([\d.]+)\s*words/s", out)
    if not match:
        raise RuntimeError(f"could not read words/s from `spacy benchmark speed` output:\n{out}")
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "conll2003_en")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ner_conll03")
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="trainings run in parallel (one core each)")
    parser.add_argument("--n-batches", type=int, default=50, help="speed benchmark batches")
    parser.add_argument("--reuse", action="store_true", help="skip training where model-best exists")
    args = parser.parse_args()
    if not (args.data / "train.conll").exists():
        sys.exit(f"CoNLL-2003 not found in {args.data}; pass --data DIR with train/dev/test.conll")

    test = to_docbin(args.data / "test.conll", args.out / "corpus" / "test.spacy")
    pending = [(n, c) for n, c in CONFIGS.items() if not (args.reuse and (args.out / _slug(n) / "model-best").exists())]
    running, wall = [], {}
    while pending or running:
        while pending and len(running) < args.jobs:
            name, config = pending.pop(0)
            running.append((name, train(name, config, args.out / _slug(name), args), time.time()))
        time.sleep(5)
        for item in list(running):
            name, proc, started = item
            if proc.poll() is not None:
                running.remove(item)
                wall[name] = time.time() - started
                if proc.returncode:
                    sys.exit(f"training {name} failed; see {args.out / _slug(name) / 'train.log'}")
                print(f"[train] {name} done in {wall[name] / 60:.1f} min", flush=True)

    rows = {}
    for name in CONFIGS:
        model = args.out / _slug(name) / "model-best"
        metrics = evaluate(model, test)
        rows[name] = {"test_ents_f": 100 * metrics["ents_f"], "test_ents_p": 100 * metrics["ents_p"],
                      "test_ents_r": 100 * metrics["ents_r"], "train_minutes": wall.get(name, float("nan")) / 60,
                      "dev_ents_f": 100 * json.loads((model / "meta.json").read_text())["performance"]["ents_f"]}
    for name in CONFIGS:  # speeds last, in one quiet phase
        rows[name]["words_per_second"] = speed(args.out / _slug(name) / "model-best", test, args.n_batches)
    peer = rows["ner (spaCy built-in)"]
    print(f"\nCoNLL-2003 English test, max_steps={args.max_steps}, seed={args.seed}, CPU threads=1 per training")
    print(f"{'pipeline':24} {'dev F1':>7} {'test F1':>8} {'P':>6} {'R':>6} {'words/s':>9} {'x ner':>6}")
    for name, r in rows.items():
        ratio = r["words_per_second"] / peer["words_per_second"]
        r["speed_vs_ner"] = ratio
        print(f"{name:24} {r['dev_ents_f']:7.2f} {r['test_ents_f']:8.2f} {r['test_ents_p']:6.2f} "
              f"{r['test_ents_r']:6.2f} {r['words_per_second']:9.0f} {ratio:6.2f}")
    (args.out / "ner_conll03.json").write_text(json.dumps({"max_steps": args.max_steps, "rows": rows}, indent=2))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


if __name__ == "__main__":
    main()
