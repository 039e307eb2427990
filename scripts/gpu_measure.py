#!/usr/bin/env python
"""The measurements of `scripts/gpu_check.py`, in one process for all cases.

    python scripts/gpu_measure.py PLAN.json RESULTS.json --device cuda:0 [--quick]

PLAN lists the trained teacher and student of each case. Per case: words/s of the teacher and of
the student (`nlp.pipe` over the case's raw text), and the student's training step with its `kd`
component from the warm teacher cache against the same step without it (as
`benchmarks/kd_step_time.py` builds them). Then the structures of `spacy_skd.structs` on the same
random inputs on the CPU and on the device (max abs difference of each result), and the SenTScore
teacher's decoding in batches vs one sentence at a time (`benchmarks/sentscore_throughput.py`).
"""
import argparse
import gzip
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import minibatch, registry

from spacy_skd.structs.chain import LinearChainCRF
from spacy_skd.structs.mfvi import SecondOrderMFVI
from spacy_skd.structs.span import SpanNER
from spacy_skd.structs.tree import mst
from spacy_skd.training.strip_kd import restore_kd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from kd_step_time import build  # noqa: E402  (the KD and plain students, built alike)

# float32 on both sides, as the models run: differences are rounding, orders of magnitude below these
TOLERANCE = {"log Z": 1e-3, "marginals": 1e-4, "Viterbi tags": 0.0, "heads": 0.0, "head log-probs": 1e-3}


def read_sentences(path: Path, limit: int) -> List[List[str]]:
    """Word lists of a text file (one sentence a line, words split at spaces), a CoNLL or CoNLL-U
    (.gz ok) file or a SlotGated-SLU folder (seq.in)."""
    path = Path(path)
    if path.is_dir() or ".conll" not in path.name:
        lines = (path / "seq.in" if path.is_dir() else path).read_text(encoding="utf8").splitlines()
        return [line.split() for line in lines if line.split()][:limit]
    opener = gzip.open if path.suffix == ".gz" else open
    column = 1 if ".conllu" in path.name else 0
    sentences, words = [], []
    with opener(path, "rt", encoding="utf8") as f:
        for line in f:
            cells = line.split("\t" if column else None)
            if not line.strip():
                if words:
                    sentences.append(words)
                    words = []
            elif line.startswith("#") and column or line.startswith("-DOCSTART-"):
                continue
            elif not column or cells[0].isdigit():  # CoNLL-U: skip multiword ranges, empty nodes
                words.append(cells[column])
            if len(sentences) >= limit:
                break
    return sentences + ([words] if words and len(sentences) < limit else [])


def words_per_second(nlp, sentences: List[List[str]], batch_size: int) -> float:
    docs = [Doc(nlp.vocab, words=words) for words in sentences]
    list(nlp.pipe([d.copy() for d in docs[:batch_size]], batch_size=batch_size))  # warm-up
    _sync()
    start = time.perf_counter()
    list(nlp.pipe([d.copy() for d in docs], batch_size=batch_size))
    _sync()
    return sum(map(len, docs)) / (time.perf_counter() - start)


def _sync() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def kd_step(student: Path, teacher: str, steps: int, size: int) -> Dict[str, float]:
    """Median ms of a training step of the student with KD (warm cache) and without, interleaved."""
    # the training config, with the command line's overrides and the KD component the saved
    # student was stripped of (strip_kd keeps its settings in meta.json)
    meta = json.loads((student / "meta.json").read_text(encoding="utf8"))
    saved = restore_kd(spacy.util.load_config(student / "config.cfg"), meta)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.cfg"
        saved.to_disk(config)
        cache_dir = Path(saved["paths"].get("cache") or tmp)
        objective = saved["components"]["kd"]["objective"]
        nlp_kd = build(config, Path(teacher), cache_dir, objective, with_kd=True)
        nlp_plain = build(config, Path(teacher), cache_dir, objective, with_kd=False)
        corpus = registry.resolve(nlp_kd.config.interpolate()["corpora"])["train"]
        examples = [eg for _, eg in zip(range(size * (steps + 1)), corpus(nlp_kd))]
        opt_kd = nlp_kd.initialize(lambda: examples)
        # the KD student may take its labels from the teacher (case 3 has no gold): give them to both
        student = saved["components"]["kd"]["student"]
        for label in nlp_kd.get_pipe(student).labels:
            nlp_plain.get_pipe(student).add_label(label)
        opt_plain = nlp_plain.initialize(lambda: examples)
        # steps + 1 batches, cycling through small corpora; the first step of each is a warm-up
        batches = list(minibatch(itertools.islice(itertools.cycle(examples), size * (steps + 1)), size=size))
        times: Dict[str, List[float]] = {"kd": [], "plain": []}
        for i, batch in enumerate(batches):
            for name, nlp, opt in (("plain", nlp_plain, opt_plain), ("kd", nlp_kd, opt_kd)):
                copied = [Example(eg.predicted.copy(), eg.reference) for eg in batch]
                _sync()
                start = time.perf_counter()
                nlp.update(copied, sgd=opt, drop=0.1)
                _sync()
                if i:
                    times[name].append(time.perf_counter() - start)
    kd, plain = 1000 * statistics.median(times["kd"]), 1000 * statistics.median(times["plain"])
    return {"kd_step_ms": kd, "plain_step_ms": plain, "kd_step_ratio": kd / plain}


def measure_case(case: Dict, quick: bool) -> Dict:
    sentences = read_sentences(Path(case["text"]), 32 if quick else 2000)
    teacher, student = spacy.load(case["teacher"]), spacy.load(case["student"])
    return {"teacher_words_per_s": words_per_second(teacher, sentences, 64),
            "student_words_per_s": words_per_second(student, sentences, 256),
            **kd_step(Path(case["student"]), case["teacher"], *((2, 8) if quick else (10, 32)))}


def sentscore_batching(teacher: str, silver: Path, component: str, quick: bool) -> Dict:
    """Sentences/s of the SenTScore teacher's decoder, one sentence at a time vs in batches."""
    scorer = spacy.load(teacher).get_pipe(component).sentscorer
    sentences = [line.split() for line in Path(silver).read_text(encoding="utf8").splitlines() if line.split()]
    sentences = sentences[: 8 if quick else 256]
    batch = 4 if quick else 64
    rates, outputs = {}, {}
    for size in (1, batch):
        scorer.decode(sentences[:size], batch_size=size)  # warm-up
        _sync()
        start = time.perf_counter()
        outputs[size] = scorer.decode(sentences, batch_size=size)
        _sync()
        rates[size] = len(sentences) / (time.perf_counter() - start)
    same = all((a.tags == b.tags).all() for a, b in zip(outputs[1], outputs[batch]))
    return {"sentences": len(sentences), "batch_size": batch, "single_per_s": rates[1],
            "batched_per_s": rates[batch], "ratio": rates[batch] / rates[1], "same": bool(same)}


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().double().cpu() - b.detach().double().cpu()).abs().max()) if a.numel() else 0.0


def structure_agreement(device: str, quick: bool = False, seed: int = 0) -> List[Dict]:
    """Each structure on the same random inputs on the CPU and on `device`: max abs differences."""
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.randn(*shape, generator=gen)  # noqa: E731
    rows = []

    def compare(structure: str, make: Callable, inputs: List[torch.Tensor], quantities: Dict[str, Callable]):
        on_cpu = make(*inputs)
        on_device = make(*[x.to(device) for x in inputs])
        for quantity, get in quantities.items():
            kind = quantity.split(":")[0]
            diff = _diff(get(on_cpu), get(on_device))
            rows.append({"structure": structure, "quantity": quantity, "max_abs_diff": diff,
                         "tolerance": TOLERANCE[kind], "ok": diff <= TOLERANCE[kind]})

    B, N, L = (4, 8, 5) if quick else (16, 30, 17)
    lengths = torch.randint(1, N + 1, (B,), generator=gen)
    compare("LinearChainCRF", lambda e, t, n: LinearChainCRF(e, t, n), [rand(B, N, L), rand(L, L), lengths],
            {"log Z": lambda c: c.log_partition, "marginals": lambda c: c.marginals,
             "marginals: pairs": lambda c: c.pair_marginals, "Viterbi tags": lambda c: c.argmax.float()})
    R = 4
    compare("SpanNER (BIOES DP)", lambda s, n: SpanNER(s, n), [rand(B, N, N, R + 1), lengths],
            {"log Z": lambda s: s.log_partition, "marginals": lambda s: s.bioes_log_marginals.exp(),
             "marginals: spans": lambda s: s.span_marginals})
    H, R = (7, 3) if quick else (21, 5)
    words = torch.randint(1, H, (B,), generator=gen)
    compare("SecondOrderMFVI", lambda a, r, s, c, g, n: SecondOrderMFVI(a, r, n, sib=s, cop=c, grd=g, iterations=3),
            [rand(B, H, H), rand(B, H, H, R), *(0.5 * rand(B, H, H, H) for _ in range(3)), words],
            {"head log-probs": lambda m: m.arc_log_probs, "marginals: relations": lambda m: m.rel_log_probs.exp()})
    compare("MST (Chu-Liu/Edmonds)", lambda s, n: (s, n), [rand(B, H, H), words],
            {"heads": lambda sn: mst(*sn).float()})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("plan", type=Path)
    p.add_argument("output", type=Path)
    p.add_argument("--device", default="cpu", help="cpu or cuda:N")
    p.add_argument("--quick", action="store_true", help="few sentences and steps (the CPU dry run)")
    args = p.parse_args(argv)
    if args.device != "cpu":
        spacy.require_gpu(int(args.device.split(":")[1]))
        from thinc.api import set_gpu_allocator

        set_gpu_allocator("pytorch")
    plan = json.loads(args.plan.read_text(encoding="utf8"))
    results: Dict = {"device": args.device, "cases": {}, "failed": []}
    results["device_name"] = torch.cuda.get_device_name(args.device) if args.device != "cpu" else "CPU"
    results["structures"] = structure_agreement(args.device, args.quick)
    for case in plan["cases"]:
        try:
            results["cases"][case["case"]] = {"measure_ok": True, **measure_case(case, args.quick)}
        except Exception as err:  # noqa: BLE001  (one failing case must not hide the others' figures)
            print(f"case {case['case']}: {type(err).__name__}: {err}", file=sys.stderr)
            results["cases"][case["case"]] = {"measure_ok": False, "measure_error": f"{type(err).__name__}: {err}"}
        if case["component"] == "slots" and results["cases"][case["case"]]["measure_ok"]:
            results["sentscore_batching"] = sentscore_batching(case["teacher"], Path(case["silver"]),
                                                               case["component"], args.quick)
    args.output.write_text(json.dumps(results, indent=2), encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
