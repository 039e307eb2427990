"""Words/s of one student with thinc's blis matrix products against numpy's (spacy-skd.numpy_gemm.v1).

The same loaded pipeline is timed with each backend in turn, alternating over several rounds, so
both see the same machine state; the raw products ([n, 384] x [384, 384], a CNN-128 layer) are timed
the same way. Run with one thread, as the pareto table is:

    OMP_NUM_THREADS=1 python benchmarks/gemm_backend.py training/pareto-probe-train/structural-seed0/model-best \
        corpus/conll2003_en/test.spacy [--rounds 3] [--output benchmarks/results/gemm_backend.json]
"""
import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy
import spacy
from spacy.tokens import DocBin
from thinc.api import NumpyOps

from spacy_skd.models.cpu_ops import numpy_gemm


def set_backend(nlp: spacy.Language, use_blis: bool) -> None:
    """blis: thinc's default NumpyOps on every node; numpy: what spacy-skd.numpy_gemm.v1 does."""
    ops = NumpyOps(use_blis=use_blis)
    for _, pipe in nlp.pipeline:
        if use_blis:
            for node in pipe.model.walk():
                if type(node.ops) is NumpyOps:
                    node.ops = ops
        else:
            numpy_gemm(pipe.model, ops)


def words_per_s(nlp: spacy.Language, texts: List[str], batch_size: int) -> float:
    start, words = time.perf_counter(), 0
    for doc in nlp.pipe(texts, batch_size=batch_size):
        words += len(doc)
    return words / (time.perf_counter() - start)


def product_ms(multiply: Callable[[], object], repeats: int = 20) -> float:
    multiply()
    start = time.perf_counter()
    for _ in range(repeats):
        multiply()
    return (time.perf_counter() - start) / repeats * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path, help=".spacy file whose texts are parsed")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    nlp = spacy.load(args.model)
    texts = [doc.text for doc in DocBin().from_disk(args.data).get_docs(nlp.vocab)]
    x = numpy.random.default_rng(0).random((8000, 384), dtype="float32")
    w = numpy.random.default_rng(1).random((384, 384), dtype="float32")
    results: Dict[str, Dict[str, List[float]]] = {"blis": {"words_per_s": [], "product_ms": []},
                                                  "numpy": {"words_per_s": [], "product_ms": []}}
    words_per_s(nlp, texts[:200], args.batch_size)  # warm-up
    for _ in range(args.rounds):
        for backend in ("blis", "numpy"):
            set_backend(nlp, use_blis=backend == "blis")
            ops = NumpyOps(use_blis=backend == "blis")
            results[backend]["product_ms"].append(product_ms(lambda: ops.gemm(x, w, trans2=True)))
            results[backend]["words_per_s"].append(words_per_s(nlp, texts, args.batch_size))
    summary = {backend: {key: statistics.mean(values) for key, values in row.items()} for backend, row in results.items()}
    summary["speedup_words_per_s"] = summary["numpy"]["words_per_s"] / summary["blis"]["words_per_s"]
    summary["speedup_product"] = summary["blis"]["product_ms"] / summary["numpy"]["product_ms"]
    summary["model"], summary["rounds"] = str(args.model), args.rounds
    print(json.dumps(summary, indent=2))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
