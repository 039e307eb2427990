#!/usr/bin/env python
"""Bytes on disk per sentence of each teacher-cache layout (issue 7, item 4).

    python benchmarks/cache_bytes.py [--n 500] [--seed 0] [--teacher TRAINED_CRF_TEACHER]

Samples N real sentence lengths from CoNLL-2003 English train (taggers, span NER) and UD EWT
train (parsers), takes the real label-set sizes (4 entity types -> 9 IOB / 17 BIOES tags; EWT
relations; EWT's joint (head offset, relation) labels for a sequence-labelling parser), stores
one entry per sampled sentence in a `TeacherCache` for each layout and measures the folder on
disk (allocated blocks, like `du`), minus an empty cache's folder, divided by N. Arrays are
random with the right shapes and dtypes: bytes depend only on shapes. Student target layouts
are made by the real `make_targets` from random potentials, so their fields are exactly what
structural_kd stores. 1M sentences = the per-sentence figure x 10^6 (same length distribution).

It also measures what fp16 storage of CRF potentials would cost in exactness: the max abs
error of unary and pair marginals recomputed (in float64, as structural_kd does) from
fp16-rounded emissions vs fp32 ones: on synthetic peaked emissions, and on a trained teacher's
real emissions and transitions with --teacher. Skips (exit 0) when ../shared/data is absent.
"""
import argparse
import gzip
import os
import sys
import tempfile
from pathlib import Path

import numpy
import torch

from spacy_skd.kd.adapters import TeacherPotentials, make_targets
from spacy_skd.kd.parser_targets import SUPPORT_VALUES
from spacy_skd.kd.targets import crf_targets
from spacy_skd.structs.parse_labels import LabelSpace
from spacy_skd.training.cache import TeacherCache

DATA = Path(os.environ.get("SKD_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
N_TYPES = 4  # CoNLL-2003: PER, ORG, LOC, MISC


def conll_sentences(path: Path):
    """Token counts per sentence and entity lengths (IOB1) of a CoNLL-2003 file."""
    lengths, entities, n, tags = [], [], 0, []
    for line in list(path.read_text(encoding="utf8").splitlines()) + [""]:
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if n:
                lengths.append(n)
                entities.extend(_entity_lengths(tags))
            n, tags = 0, []
            continue
        n += 1
        tags.append(line.split()[-1])
    return lengths, entities


def _entity_lengths(tags):
    out, run, prev = [], 0, "O"
    for tag in tags + ["O"]:
        if tag == "O" or tag.startswith("B-") or tag[2:] != prev[2:]:
            if run:
                out.append(run)
            run = 0 if tag == "O" else 1
        else:
            run += 1
        prev = tag
    return out


def ewt_sentences(path: Path):
    """Word counts per sentence, relations (with subtypes) and joint (offset, relation) labels."""
    lengths, relations, joint, n = [], set(), set(), 0
    with gzip.open(path, "rt", encoding="utf8") if path.suffix == ".gz" else open(path, encoding="utf8") as f:
        for line in list(f) + [""]:
            if not line.strip():
                if n:
                    lengths.append(n)
                n = 0
                continue
            if line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            if not cols[0].isdigit():
                continue  # multiword tokens (1-2) and empty nodes (1.1)
            n += 1
            relations.add(cols[7])
            head = int(cols[6])
            joint.add((0 if head == 0 else head - int(cols[0]), cols[7]))
    return lengths, relations, joint


def du(path: Path) -> int:
    """Allocated bytes under `path` (st_blocks, like `du`)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def measure(root: Path, name: str, arrays_list) -> tuple:
    """(payload bytes, disk bytes) per sentence for one layout."""
    with TeacherCache(root / name, fingerprint="bench", space=name, temperature=1.0, mode="raw") as cache:
        empty = du(cache.path)
        words = [[f"s{k}"] for k in range(len(arrays_list))]  # keys only: bytes do not depend on words
        for start in range(0, len(arrays_list), 64):
            cache.put_many(words[start : start + 64], arrays_list[start : start + 64])
        path = cache.path
    disk = du(path) - empty
    payload = sum(a.nbytes for arrays in arrays_list for a in arrays.values())
    return payload / len(arrays_list), disk / len(arrays_list)


def peaked_emissions(n: int, L: int, rng) -> numpy.ndarray:
    """Emissions like a trained tagger's: noise plus a clear winner per token."""
    e = rng.normal(0.0, 2.0, (n, L)).astype("float32")
    e[numpy.arange(n), rng.integers(0, L, n)] += 8.0
    return e


def fp16_error(emissions, transitions, start, end) -> tuple:
    """Max abs error of unary and pair marginals from fp16-rounded emissions (float64 CRF)."""
    lengths = torch.tensor([e.shape[0] for e in emissions])
    N, L = int(lengths.max()), emissions[0].shape[1]
    batch = torch.zeros(len(emissions), N, L)
    for b, e in enumerate(emissions):
        batch[b, : len(e)] = torch.from_numpy(e)
    exact = crf_targets(batch, transitions, lengths, start, end, pairs=True, dtype=torch.float64)
    rounded = crf_targets(batch.half().float(), transitions, lengths, start, end, pairs=True, dtype=torch.float64)
    return (float((exact.unary - rounded.unary).abs().max()), float((exact.pairs - rounded.pairs).abs().max()),
            float(batch.abs().max()))


def targets_arrays(kind: str, student: str, emissions, L: int, rng):
    """The arrays structural_kd stores for (teacher kind, student kind), via make_targets."""
    out = []
    for e in emissions:
        lengths = torch.tensor([len(e)])
        x = torch.from_numpy(e).unsqueeze(0)
        teacher = (TeacherPotentials("crf", x, lengths, torch.randn(L, L), torch.randn(L), torch.randn(L))
                   if kind == "crf" else TeacherPotentials("maxent", x, lengths))
        targets = make_targets(teacher, student, "structural", temperature=1.0, mode="global")
        out.append(targets.to_arrays())
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=500, help="sentences sampled per corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--teacher", type=Path, default=None, help="trained CRF teacher for the fp16 error on real emissions")
    p.add_argument("--component", default="ner")
    args = p.parse_args(argv)
    conll, ewt = DATA / "conll2003_en" / "train.conll", DATA / "ud_en_ewt" / "en_ewt-ud-train.conllu.gz"
    if not conll.exists() or not ewt.exists():
        print(f"skipped: needs {conll} and {ewt} (set SKD_DATA_DIR)")
        return 0
    rng = numpy.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    ner_lengths, entity_lengths = conll_sentences(conll)
    dep_lengths, relations, joint = ewt_sentences(ewt)
    R, V, W = len(relations), len(joint), max(entity_lengths)
    # the student's label space: which labels can carry mass in an n-word sentence (LabelSpace.support)
    space = LabelSpace([f"{'ROOT' if o == 0 else f'{o:+d}'}_{r}" for o, r in sorted(joint)], sorted(relations),
                       "offset")
    L_iob, L_bioes, C = 2 * N_TYPES + 1, 4 * N_TYPES + 1, N_TYPES + 1
    ner = rng.choice(ner_lengths, args.n)
    dep = rng.choice(dep_lengths, args.n)
    print(f"CoNLL-2003 train: {len(ner_lengths)} sentences, mean length {numpy.mean(ner_lengths):.1f} "
          f"(sample of {args.n}: mean {ner.mean():.1f}, max {ner.max()}); longest entity {W} words")
    print(f"UD EWT train: {len(dep_lengths)} sentences, mean length {numpy.mean(dep_lengths):.1f} "
          f"(sample: mean {dep.mean():.1f}, max {dep.max()}); R = {R} relations (with subtypes), "
          f"V = {V} joint (head offset, relation) labels")
    print(f"labels: IOB {L_iob} tags, BIOES {L_bioes} tags, span classes {C} (4 types + none)")
    print("arrays are random with real shapes/dtypes (bytes depend only on shapes); "
          "disk = allocated blocks of the cache folder minus an empty cache's, / n\n")
    f32 = lambda *shape: rng.random(shape, dtype=numpy.float32)  # noqa: E731
    emis17 = [peaked_emissions(n, L_bioes, rng) for n in ner]
    emis9 = [peaked_emissions(n, L_iob, rng) for n in ner]
    layouts = [  # (name, corpus, shapes, per-sentence arrays)
        ("tagger potentials fp32 (stored now)", "conll", f"emissions [n,{L_iob}]", [{"emissions": e} for e in emis9]),
        ("tagger potentials fp32 (stored now)", "conll", f"emissions [n,{L_bioes}]", [{"emissions": e} for e in emis17]),
        ("tagger potentials fp16", "conll", f"emissions [n,{L_bioes}] f16",
         [{"emissions": e.astype("float16")} for e in emis17]),
        ("MaxEnt-student targets (case 2a, stored now)", "conll", "make_targets crf->maxent",
         targets_arrays("crf", "maxent", emis17, L_bioes, rng)),
        ("unary marginals fp32 only", "conll", f"unary [n,{L_bioes}]", [{"unary": f32(n, L_bioes)} for n in ner]),
        ("pair marginals fp16", "conll", f"pairs [n-1,{L_bioes},{L_bioes}] f16",
         [{"pairs": f32(max(n - 1, 0), L_bioes, L_bioes).astype("float16")} for n in ner]),
        ("pair marginals fp32", "conll", f"pairs [n-1,{L_bioes},{L_bioes}]",
         [{"pairs": f32(max(n - 1, 0), L_bioes, L_bioes)} for n in ner]),
        ("CRF-student targets (case 1a, stored now)", "conll", "make_targets crf->crf",
         targets_arrays("crf", "crf", emis17, L_bioes, rng)),
        ("span-NER potentials fp32 (stored now)", "conll", f"scores [n,n,{C}]", [{"scores": f32(n, n, C)} for n in ner]),
        (f"span-NER potentials, width <= {W} band", "conll", f"scores [n,{W},{C}]",
         [{"scores": f32(n, min(n, W), C)} for n in ner]),
        ("MaxEnt BIOES student targets from span teacher", "conll", f"unary [n,{L_bioes}] + top1 [n]",
         [{"unary": f32(n, L_bioes), "top1": rng.integers(0, L_bioes, n)} for n in ner]),
        ("parser potentials fp32 (stored now)", "ewt", f"arc [n,n+1] + rel [n,n+1,{R}]",
         [{"arc": f32(n, n + 1), "rel": f32(n, n + 1, R)} for n in dep]),
        ("parser potentials fp16", "ewt", "arc, rel as above, f16",
         [{"arc": f32(n, n + 1).astype("float16"), "rel": f32(n, n + 1, R).astype("float16")} for n in dep]),
        ("seqlabel-student targets fp32, dense", "ewt", f"unary [n,{V}] + top1 [n]",
         [{"unary": f32(n, V), "top1": rng.integers(0, V, n)} for n in dep]),
        ("seqlabel-student targets on the label support (stored now)", "ewt",
         f"{SUPPORT_VALUES} [K(n)] + top1 [n] + lost [n]",
         [{SUPPORT_VALUES: f32(int(space.support(n).sum())), "top1": rng.integers(0, V, n), "lost": f32(n)}
          for n in dep]),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, corpus, shapes, arrays in layouts:
            fields = ",".join(sorted(arrays[0]))
            payload, disk = measure(Path(tmp), f"layout{len(rows)}", arrays)
            rows.append((name, corpus, shapes if "make_targets" not in shapes else f"{shapes}: {fields}",
                         payload, disk, disk * 1e6 / 2**30))
    header = ("layout", "corpus", "arrays", "payload B/sent", "disk B/sent", "1M sent (GiB)")
    widths = [max(len(str(r[i])) if i < 3 else 12 for r in rows + [header]) for i in range(6)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in rows:
        cells = [r[0], r[1], r[2], f"{r[3]:.0f}", f"{r[4]:.0f}", f"{r[5]:.2f}"]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))

    print("\nfp16-stored CRF potentials: max abs error of marginals recomputed in float64")
    u, pr, scale = fp16_error(emis17[:200], torch.randn(L_bioes, L_bioes), torch.randn(L_bioes), torch.randn(L_bioes))
    print(f"  synthetic peaked emissions (N(0,2) + 8 on one tag, max |e| {scale:.1f}): unary {u:.2e}, pairs {pr:.2e}")
    if args.teacher is not None:
        from spacy_skd.teacher.runner import TeacherRunner

        runner = TeacherRunner(args.teacher, args.component)
        pipe = runner.nlp.get_pipe(args.component)
        words = [s.split() for s in _conll_texts(conll)[:200]]
        emissions = []
        for start in range(0, len(words), 32):
            emissions += [o["emissions"] for o in runner(words[start : start + 32])]
        transitions, start_, end_ = pipe.crf_parameters()
        u, pr, scale = fp16_error(emissions, transitions, start_, end_)
        print(f"  trained teacher {args.teacher.name} on 200 CoNLL train sentences (max |e| {scale:.1f}): "
              f"unary {u:.2e}, pairs {pr:.2e}")
    return 0


def _conll_texts(path: Path):
    texts, words = [], []
    for line in list(path.read_text(encoding="utf8").splitlines()) + [""]:
        if line.startswith("-DOCSTART-"):
            continue
        if not line.strip():
            if words:
                texts.append(" ".join(words))
            words = []
        else:
            words.append(line.split()[0])
    return texts


if __name__ == "__main__":
    sys.exit(main())
