#!/usr/bin/env python
"""Words/second of several trained pipelines, measured one after another in one quiet phase with
`spacy benchmark speed`, as a table with each pipeline's ratio to the first (e.g. the teacher).

    python benchmarks/speed_table.py \
        teacher=training/teacher_biaffine/model-best@corpus/ud_en_ewt/test.spacy \
        student=training/case1b/structural-seed0/model-best@corpus/ud_en_ewt/test.spacy

Run it with nothing else on the machine: the figures are only comparable side by side. Uses
`OMP_NUM_THREADS` as set (1 thread is what the other benchmarks report).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ner_conll03 import speed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=MODEL@DATA.spacy, the first is the reference")
    parser.add_argument("--n-batches", type=int, default=30, help="benchmark batches (>= 30)")
    parser.add_argument("--warmup", type=int, default=1, help="passes over the data before timing")
    parser.add_argument("--batch-size", type=int, default=64, help="docs per batch (30 batches are timed)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    rows = []
    for run in args.runs:
        name, _, rest = run.partition("=")
        model, _, data = rest.partition("@")
        if not (name and model and data):
            parser.error(f"expected NAME=MODEL@DATA, got {run!r}")
        for path in (Path(model), Path(data)):
            if not path.exists():
                parser.error(f"{path} does not exist")
        wps = speed(Path(model).resolve(), Path(data).resolve(), args.n_batches, args.warmup, args.batch_size)
        rows.append({"name": name, "model": model, "data": data, "words_per_second": wps})
        print(f"{name}: {wps:,.0f} words/s", flush=True)
    base = rows[0]["words_per_second"]
    print(f"\n| pipeline | words/s | vs {rows[0]['name']} |\n|---|---|---|")
    for row in rows:
        row["ratio"] = row["words_per_second"] / base
        print(f"| {row['name']} | {row['words_per_second']:,.0f} | {row['ratio']:.2f}x |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
