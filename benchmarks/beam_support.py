#!/usr/bin/env python
"""How much of a spaCy beam teacher's distribution lies outside its best parse, per beam setting.

    python benchmarks/beam_support.py TEACHER DEV.spacy [--n 400] [--setting 8:0.01 --setting 8:0 ...]

For each `width:density` setting it scores the first N sentences of DEV (a DocBin, e.g. corpus/conll2003_en/dev.spacy) with
the teacher's `ner` component through `TeacherRunner` (as `structural_kd` would) and prints the
mean number of complete parses the beam keeps, the mean probability of the best parse, the share
of sentences whose best parse holds over 99% of the mass, and the mean per-token probability that
the BILUO tag differs from the best parse's (the part of the signal Top-1 KD does not carry), for
temperature 1 and 2 (global T: parse k weighs p_k^(1/T)). A nearly one-point beam gives targets
close to Top-1; a lower density keeps more analyses.
"""
import argparse

import numpy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("teacher")
    parser.add_argument("dev")
    parser.add_argument("--component", default="ner")
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--setting", action="append", default=None, help="width:density (repeatable)")
    args = parser.parse_args()
    import spacy
    from spacy.tokens import DocBin

    from spacy_skd.teacher.runner import TeacherRunner

    settings = args.setting or ["8:0.01", "8:0", "16:0"]
    docs = DocBin().from_disk(args.dev).get_docs(spacy.blank("en").vocab)
    sentences = [tuple(t.text for t in doc) for doc in docs if len(doc)][: args.n]
    print(f"{len(sentences)} sentences of {args.dev}; teacher {args.teacher}")
    print("width  density  parses  best-mass  best>0.99  off-best/token T=1  T=2")
    for setting in settings:
        width, density = setting.split(":")
        runner = TeacherRunner(args.teacher, args.component, beam_width=int(width), beam_density=float(density))
        outputs = [out for start in range(0, len(sentences), 64) for out in runner(sentences[start:start + 64])]
        n_parses, best, off = [], [], {1.0: [], 2.0: []}
        for out in outputs:
            log_p = out["log_probs"].astype("float64")
            p = numpy.exp(log_p)
            n_parses.append(len(p))
            best.append(p.max())
            top = out["parses"][int(p.argmax())]
            for t in off:
                q = numpy.exp(log_p / t - numpy.logaddexp.reduce(log_p / t))
                disagree = (out["parses"] != top[None, :])  # [K, n]
                off[t].extend((q[:, None] * disagree).sum(0).tolist())
        best = numpy.array(best)
        print(f"{int(width):5d}  {float(density):7.3f}  {numpy.mean(n_parses):6.2f}  {best.mean():9.3f}  "
              f"{(best > 0.99).mean():9.2f}  {numpy.mean(off[1.0]):18.4f}  {numpy.mean(off[2.0]):.4f}")


if __name__ == "__main__":
    main()
