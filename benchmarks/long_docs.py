"""Peak memory and seconds for one long document through each parser at inference.

Each parser gets one doc of `--tokens` words (no sentence boundaries, so it is parsed in
windows of its `max_length`), and, with `--sentences`, the same words with a boundary every
`--sentence-length` words. The models are the default architectures, initialized on the EWT
fixture and given random head weights: untrained, so the figures measure cost, not accuracy.
Each measurement runs in its own subprocess, so the peak resident memory (ru_maxrss) is that
parser's alone; it includes Python, torch and spaCy (the baseline row loads them and parses
nothing).

    python benchmarks/long_docs.py --tokens 3000
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


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--sentences", action="store_true", help="also with sentence boundaries")
    parser.add_argument("--sentence-length", type=int, default=25)
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # factory tokens sentence_length
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), int(args.one[2]))))
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
