#!/usr/bin/env python
"""SenTScore teacher throughput, batched vs one sentence at a time, and student vs teacher speed.

    python benchmarks/sentscore_throughput.py TEACHER SPLIT [--student STUDENT] [--n 128]
        [--batch-sizes 1,8,32] [--beam 1]

Decodes the first N utterances of a SlotGated-SLU split folder with the teacher's SenTScore
scorer (greedy unless --beam), at each batch size, in one run, and prints sentences/second and
the speed-up over batch size 1; the tags and scores of every batch size are checked to be the
same. With --student it also times `nlp.pipe` of the student and of the teacher pipeline on
the same docs (words/second) and prints their ratio.
"""
import argparse
import sys
import time
from pathlib import Path

import numpy
import spacy
import torch



def read_words(split: Path, n: int):
    lines = (split / "seq.in").read_text(encoding="utf8").splitlines()
    return [line.split() for line in lines[:n] if line.split()]


def pipe_speed(nlp, docs, batch_size: int) -> float:
    list(nlp.pipe([d.copy() for d in docs[:batch_size]], batch_size=batch_size))  # warm-up
    start = time.perf_counter()
    list(nlp.pipe([d.copy() for d in docs], batch_size=batch_size))
    return sum(len(d) for d in docs) / (time.perf_counter() - start)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("teacher", type=Path)
    p.add_argument("split", type=Path)
    p.add_argument("--student", type=Path, default=None)
    p.add_argument("--component", default="slots")
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--beam", type=int, default=1)
    args = p.parse_args(argv)
    print(f"torch threads: {torch.get_num_threads()}")
    teacher = spacy.load(args.teacher)
    scorer = teacher.get_pipe(args.component).sentscorer
    sentences = read_words(args.split, args.n)
    n_words = sum(map(len, sentences))
    print(f"{len(sentences)} utterances, {n_words} words, {len(scorer.tags)} tags, beam {args.beam}")
    reference, base = None, None
    for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
        scorer.decode(sentences[:batch_size], beam_size=args.beam, batch_size=batch_size)  # warm-up
        start = time.perf_counter()
        out = scorer.decode(sentences, beam_size=args.beam, batch_size=batch_size)
        rate = len(sentences) / (time.perf_counter() - start)
        base = base or rate
        if reference is None:
            reference = out
        same = all((a.tags == b.tags).all() and numpy.allclose(a.scores, b.scores, atol=1e-4)
                   for a, b in zip(out, reference))
        print(f"batch {batch_size:>4}: {rate:8.2f} sentences/s  {rate * n_words / len(sentences):9.1f} words/s"
              f"  x{rate / base:5.2f}  same outputs as the first: {same}")
    if args.student is not None:
        student = spacy.load(args.student)
        docs = [spacy.tokens.Doc(student.vocab, words=words) for words in sentences]
        s_speed = pipe_speed(student, docs, 256)
        t_speed = pipe_speed(teacher, docs, 32)
        print(f"student: {s_speed:10.1f} words/s\nteacher: {t_speed:10.1f} words/s\n"
              f"student/teacher: {s_speed / t_speed:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
