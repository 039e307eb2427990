"""How lossless are the dependency label encodings on UD English EWT?

For each encoding: encode every gold training tree, then decode it back (a) with the pure
sequence-labelling decoder and its heuristic repair and (b) with LabelSpace.decode, i.e. MST over
head scores from one-hot label distributions. Reports the label vocabulary size, the share of
trees recovered exactly (heads, heads + relations), the dev tokens whose label the training
vocabulary lacks (the mass a student can never predict), and times.

    python benchmarks/seqlabel_roundtrip.py --data ../shared/data
"""
import argparse
import gzip
import time
from pathlib import Path

import conllu
import torch

from spacy_skd.structs._util import log_zero
from spacy_skd.structs.parse_labels import LabelSpace, get_encoding


def read_trees(path: Path):
    """(heads, rels, upos) per sentence; multiword ranges and empty nodes are skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf8") as f:
        for sent in conllu.parse_incr(f):
            words = [t for t in sent if isinstance(t["id"], int)]
            if words:
                yield [t["head"] for t in words], [t["deprel"] for t in words], [t["upos"] for t in words]


def mst_round_trip(space, trees, batch_size):
    """Exact (heads, heads + rels) counts of LabelSpace.decode on one-hot label distributions."""
    pos_index = {p: j for j, p in enumerate(space.pos_tags)}
    order = sorted(range(len(trees)), key=lambda k: len(trees[k][0]))  # similar lengths per batch
    exact_heads = exact_all = 0
    for start in range(0, len(order), batch_size):
        batch = [trees[k] for k in order[start:start + batch_size]]
        B, N = len(batch), max(len(h) for h, _, _ in batch)
        lp = torch.full((B, N, len(space)), log_zero(torch.float32))
        pos_ids = torch.zeros(B, N + 1, dtype=torch.long)
        for b, (heads, rels, pos) in enumerate(batch):
            ids = space.label_ids(heads, rels, pos if space.encoding.needs_pos else None)
            lp[b, torch.arange(len(ids)), torch.tensor(ids)] = 0.0
            if space.encoding.needs_pos:
                pos_ids[b, 1:len(pos) + 1] = torch.tensor([pos_index[p] for p in pos])
        lengths = torch.tensor([len(h) for h, _, _ in batch])
        heads_out, rels_out = space.decode(lp, lengths, pos_ids if space.encoding.needs_pos else None)
        for b, (heads, rels, _) in enumerate(batch):
            ok = heads_out[b, 1:len(heads) + 1].tolist() == heads
            exact_heads += ok
            exact_all += ok and rels_out[b] == rels
    return exact_heads, exact_all


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="shared data folder")
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per MST decoding batch")
    parser.add_argument("--limit", type=int, default=0, help="use the first N training trees (0 = all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    folder = args.data / "ud_en_ewt"
    train = list(read_trees(folder / "en_ewt-ud-train.conllu.gz"))
    dev = list(read_trees(folder / "en_ewt-ud-dev.conllu"))
    if args.limit:
        train = train[:args.limit]
    n_tokens = sum(len(h) for h, _, _ in train)
    print(f"EWT train: {len(train)} trees, {n_tokens} words; dev: {len(dev)} trees")
    rels = sorted({r for _, rs, _ in train for r in rs})
    tags = sorted({p for _, _, ps in train + dev for p in ps})
    header = f"{'encoding':<8} {'|V|':>6} {'dev OOV':>8} {'decode':>7} {'heads':>8} {'heads+rel':>10} {'time':>8}"
    print(header)
    print("-" * len(header))
    for name in ["offset", "relpos"]:
        enc = get_encoding(name)
        t0 = time.perf_counter()
        encoded = [enc.encode(h, r, p) for h, r, p in train]
        t_encode = time.perf_counter() - t0
        vocab = sorted({label for labels in encoded for label in labels})
        seen = set(vocab)
        dev_words = sum(len(h) for h, _, _ in dev)
        dev_oov = sum(label not in seen for h, r, p in dev for label in enc.encode(h, r, p)) / dev_words
        t0 = time.perf_counter()
        decoded = [enc.decode(labels, p) for labels, (_, _, p) in zip(encoded, train)]
        t_heur = time.perf_counter() - t0
        heur_heads = sum(d[0] == h for d, (h, _, _) in zip(decoded, train))
        heur_all = sum(d == (h, r) for d, (h, r, _) in zip(decoded, train))
        space = LabelSpace(vocab, rels, name, pos_tags=tags if enc.needs_pos else None)
        t0 = time.perf_counter()
        mst_heads, mst_all = mst_round_trip(space, train, args.batch_size)
        t_mst = time.perf_counter() - t0
        rows = [("heur", heur_heads, heur_all, t_heur), ("mst", mst_heads, mst_all, t_mst)]
        for mode, exact_h, exact_a, secs in rows:
            print(f"{name:<8} {len(vocab):>6} {dev_oov:>8.3%} {mode:>7} {exact_h / len(train):>8.3%} "
                  f"{exact_a / len(train):>10.3%} {secs:>7.1f}s")
        print(f"{'':<8} encode {t_encode:.1f}s; relations {len(rels)}, PoS tags {len(tags)}")


if __name__ == "__main__":
    main()
