"""Peak memory and seconds for one long document through each parser at inference.

Each parser gets one doc of `--tokens` words (no sentence boundaries, so it is parsed in
windows of its `max_length`), and, with `--sentences`, the same words with a boundary every
`--sentence-length` words. The models are the default architectures, initialized on the EWT
fixture and given random head weights: untrained, so the figures measure cost, not accuracy.
Each measurement runs in its own subprocess, so the peak resident memory (ru_maxrss) is that
parser's alone; it includes Python, torch and spaCy (the baseline row loads them and parses
nothing).

    python benchmarks/long_docs.py --tokens 3000

`--teacher-pass` measures instead the training-time teacher pass (structural_kd's initialize: the
teacher over the corpus, then a CRF student's targets) over `--lines` short sentences plus one
line of `--tokens` words, with a tiny random CRF teacher, cache = false: once within the default
`max_batch_cost`, and once bounded by count alone (`--count-batch` sentences per batch, padded to
their longest: what the pass did before).

    python benchmarks/long_docs.py --teacher-pass --tokens 10000
"""
import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

FACTORIES = ("skd_biaffine_parser", "skd_mfvi_parser", "skd_seqlabel_parser")
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ewt_sample.conllu"


def measure(factory: str, n_tokens: int, sentence_length: int) -> dict:
    """Build, initialize and run one parser in this process; RETURNS the figures."""
    import spacy
    import torch
    from spacy.tokens import Doc

    from spacy_skd.training.conllu import create_conllu_reader

    torch.manual_seed(0)
    nlp = spacy.blank("en")
    examples = list(create_conllu_reader(FIXTURE)(nlp))
    words = [t.text for eg in examples for t in eg.reference]
    words = (words * (n_tokens // len(words) + 1))[:n_tokens]
    starts = None if sentence_length == 0 else [i % sentence_length == 0 for i in range(n_tokens)]
    if factory == "baseline":
        return {"parser": "baseline", "seconds": 0.0, "peak_mib": _peak_mib()}
    parser = nlp.add_pipe(factory)
    nlp.initialize(lambda: examples)
    with torch.no_grad():  # random head weights: the biaffine weights start at zero (all ties)
        for param in parser.model.get_ref("head").layers[0].shims[0]._model.parameters():
            param.normal_(0.0, 0.5)
    doc = Doc(nlp.vocab, words=words, sent_starts=starts)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the windows warning, expected here
        doc = nlp(doc)
    seconds = time.perf_counter() - start
    return {"parser": factory, "seconds": round(seconds, 2), "peak_mib": _peak_mib(),
            "max_length": parser.max_length, "trees": sum(1 for _ in doc.sents)}


def measure_teacher_pass(bounded: bool, n_tokens: int, n_lines: int, count_batch: int) -> dict:
    """structural_kd's teacher pass over the lines and one long line, in this process."""
    import spacy
    import torch
    from spacy.training import Example

    from spacy_skd.teacher.runner import DEFAULT_MAX_BATCH_COST

    torch.manual_seed(0)
    teacher = spacy.blank("en")
    ner = teacher.add_pipe("skd_crf_tagger", name="ner")
    for label in ("LOC", "ORG", "PER"):  # 13 BIOES tags
        ner.add_label(label)
    doc = teacher.make_doc("Mary works at Google in London .")
    teacher.initialize(lambda: [Example(doc, doc)])
    student = spacy.blank("en")
    cost = DEFAULT_MAX_BATCH_COST if bounded else 2**62
    student.add_pipe("structural_kd", name="kd", config={"cache": False, "batch_size": count_batch,
                                                         "max_batch_cost": cost})
    student.add_pipe("skd_crf_tagger", name="ner")
    lines = [f"Sentence {i} is about Paris and Anna ." for i in range(n_lines)]
    lines.insert(n_lines // 2, " ".join(["word"] * n_tokens))
    examples = []
    for text in lines:
        ref = student.make_doc(text)
        ref.user_data["skd_unlabeled"] = True
        examples.append(Example(student.make_doc(text), ref))
    start = time.perf_counter()
    student.get_pipe("kd").initialize(lambda: examples, nlp=student, teacher=teacher)
    seconds = time.perf_counter() - start
    return {"parser": "bounded" if bounded else "count only", "seconds": round(seconds, 2),
            "peak_mib": _peak_mib(), "max_batch_cost": cost if bounded else None, "batch_size": count_batch}


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--sentences", action="store_true", help="also with sentence boundaries")
    parser.add_argument("--sentence-length", type=int, default=25)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # factory tokens sentence_length
    parser.add_argument("--teacher-pass", action="store_true", help="the KD teacher pass instead of the parsers")
    parser.add_argument("--lines", type=int, default=200, help="--teacher-pass: short lines beside the long one")
    parser.add_argument("--count-batch", type=int, default=16, help="--teacher-pass: sentences per batch")
    parser.add_argument("--one-pass", nargs=1, help=argparse.SUPPRESS)  # bounded | count
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
        return
    if args.one_pass:
        print(json.dumps(measure_teacher_pass(args.one_pass[0] == "bounded", args.tokens, args.lines,
                                              args.count_batch)))
        return
    if args.teacher_pass:
        print(f"teacher pass: {args.lines} lines and one of {args.tokens} tokens, random CRF teacher -> CRF "
              f"student, cache = false, one subprocess per row (CPU)")
        print(f"{'batches':<14}{'batch_size':>12}{'max_batch_cost':>16}{'seconds':>10}{'peak MiB':>10}")
        for mode in ("bounded", "count"):
            out = subprocess.run([sys.executable, __file__, "--one-pass", mode, "--tokens", str(args.tokens),
                                  "--lines", str(args.lines), "--count-batch", str(args.count_batch)],
                                 capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{row['parser']:<14}{row['batch_size']:>12}{str(row['max_batch_cost'] or '-'):>16}"
                  f"{row['seconds']:>10}{row['peak_mib']:>10}")
        return
    runs = [(f, 0) for f in ("baseline",) + FACTORIES]
    if args.sentences:
        runs += [(f, args.sentence_length) for f in FACTORIES]
    print(f"{args.tokens}-token doc, one subprocess per row (untrained random models, CPU)")
    print(f"{'parser':<22}{'boundaries':>12}{'seconds':>10}{'peak MiB':>10}{'max_length':>12}{'trees':>7}")
    for factory, sentence_length in runs:
        out = subprocess.run([sys.executable, __file__, "--one", factory, str(args.tokens), str(sentence_length)],
                             capture_output=True, text=True, check=True)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        where = "none" if sentence_length == 0 else f"every {sentence_length}"
        print(f"{row['parser']:<22}{where:>12}{row['seconds']:>10}{row['peak_mib']:>10}"
              f"{row.get('max_length', ''):>12}{row.get('trees', ''):>7}")


if __name__ == "__main__":
    main()
