#!/usr/bin/env python
"""Low-resource splits of a SNIPS/ATIS slot-filling dataset (SenTScore, Farina et al. 2023, §5).

Given a dataset folder in the SlotGated-SLU layout (`train/`, `valid/`, `test/`, each holding the
line-aligned files `seq.in`, `seq.out` and optionally `label`), writes to OUTPUT:

* `gold-train/`: N utterances drawn from train without replacement by `random.Random(seed)`;
* `gold-dev/`: M utterances drawn from valid the same way (an rng of its own, seeded alike, so
  the dev sample does not depend on N);
* `silver/`: the rest of train, in its original order. Its `seq.out` is kept so that the
  teacher's silver labels can be scored, but the split is meant to be used unlabeled;
* `test/`: a copy of test.

Every output folder has the input's files, line-aligned, the samples in their original order,
each line copied byte-for-byte (a line without a final newline gets one; a leading UTF-8 BOM is
dropped, as the reader drops it). The same dataset, sizes and seed always give byte-identical
outputs. Lines blank in both `seq.in` and `seq.out` (the reader skips them) are neither sampled
nor written to silver. Each input split is also read with `spacy-skd.SlotFilling.v1`, so a
malformed tag or a misaligned line fails here, not at the first training epoch.

No one-utterance-per-line text file of the silver set (for `spacy-skd.RawText.v1`) is written:
that reader tokenizes with `nlp.make_doc`, and a blank English tokenizer splits 4.6% of SNIPS
and 9.5% of ATIS training utterances differently from the dataset's whitespace tokens (`i'd` ->
`i 'd`, `st.` -> `st .`, `whats` -> `what s`, `top-rated` -> `top - rated`, `ii:` -> `ii :`).
Read `silver/` with `spacy-skd.SlotFilling.v1` instead, which keeps the dataset's tokens.

    python scripts/slot_splits.py assets/snips --gold-train 100 --gold-dev 50 --seed 0 \
        --output corpus/snips-100-seed0
"""
import argparse
import random
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Union

SPLITS = ("train", "valid", "test")
REQUIRED = ("seq.in", "seq.out")
FILES = ("seq.in", "seq.out", "label")
BOM = b"\xef\xbb\xbf"

PathLike = Union[str, Path]


class SlotSplit(NamedTuple):
    """One split folder read as raw lines (bytes, without their b"\\n"), keyed by file name."""

    path: Path
    lines: Dict[str, List[bytes]]
    keep: List[int]  # indices of the utterances (lines not blank in both seq.in and seq.out)
    scheme: str

    def __len__(self) -> int:
        return len(self.keep)

    def slot_types(self, indices: Optional[Sequence[int]] = None) -> Counter:
        """Slot counts (spans, as the reader decodes them) by type over `indices` (default: all)."""
        from spacy_skd.structs.tag_schemes import tags_to_spans

        counts: Counter = Counter()
        for i in self.keep if indices is None else indices:
            tags = [t.decode("utf-8") for t in self.lines["seq.out"][i].split()]
            counts.update(label for _, _, label in tags_to_spans(tags, self.scheme))
        return counts

    def intents(self, indices: Optional[Sequence[int]] = None) -> Counter:
        if "label" not in self.lines:
            return Counter()
        return Counter(self.lines["label"][i].decode("utf-8").strip()
                       for i in (self.keep if indices is None else indices))


class SplitResult(NamedTuple):
    train: SlotSplit
    valid: SlotSplit
    test: SlotSplit
    gold_train: List[int]
    gold_dev: List[int]
    silver: List[int]


def read_split(path: PathLike, scheme: str = "IOB2") -> SlotSplit:
    """Read a SlotGated-SLU split folder line by line, validated by `spacy-skd.SlotFilling.v1`.

    path (PathLike): the split's folder, holding `seq.in`, `seq.out` and optionally `label`.
    scheme (str): tag scheme of `seq.out`.
    RETURNS (SlotSplit): the raw lines of each file and the indices of the non-blank utterances.
    """
    import spacy

    from spacy_skd.training.readers import create_slot_filling_reader

    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"{path}: split folder not found (expected a folder with seq.in and seq.out)")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}; a split folder holds seq.in, "
                         f"seq.out and optionally label")
    lines = {name: _read_lines(path / name) for name in FILES if (path / name).is_file()}
    counts = {name: len(value) for name, value in lines.items()}
    if len(set(counts.values())) > 1:
        raise ValueError(f"{path}: the files are not line-aligned ({counts} lines)")
    keep = [i for i, (x, y) in enumerate(zip(lines["seq.in"], lines["seq.out"]))
            if x.split() or y.split()]
    # The reader validates the tags and the token/tag alignment and skips the same blank lines.
    nlp = spacy.blank("xx")  # only a vocab is needed; the words are given, not tokenized
    words = [tuple(t.text for t in eg.reference) for eg in create_slot_filling_reader(path, scheme=scheme)(nlp)]
    # bytes.split() splits on ASCII whitespace only, as the reader does.
    if words != [tuple(w.decode("utf-8") for w in lines["seq.in"][i].split()) for i in keep]:
        raise ValueError(f"{path}: {len(keep)} utterances read line by line but {len(words)} by "
                         f"spacy-skd.SlotFilling.v1, or different words")
    return SlotSplit(path, lines, keep, scheme)


def sample(n: int, size: int, seed: int, what: str) -> List[int]:
    """`size` of the positions 0..n-1 without replacement by `random.Random(seed)`, sorted."""
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"{what}: the sample size must be a positive integer, got {size!r}")
    if size > n:
        raise ValueError(f"{what}: cannot draw {size} utterances from a split of {n}")
    return sorted(random.Random(seed).sample(range(n), size))


def make_splits(dataset: PathLike, output: PathLike, *, gold_train: int, gold_dev: int, seed: int = 0,
                scheme: str = "IOB2") -> SplitResult:
    """Write gold-train, gold-dev, silver and test folders of a SNIPS/ATIS dataset to `output`.

    dataset (PathLike): folder with `train/`, `valid/` and `test/` in the SlotGated-SLU format.
    output (PathLike): output folder; its four split folders are replaced.
    gold_train (int): number of gold training utterances, drawn from train.
    gold_dev (int): number of gold dev utterances, drawn from valid.
    seed (int): seed of both samples.
    scheme (str): tag scheme of `seq.out`, used to validate it.
    RETURNS (SplitResult): the input splits and the indices (into their lines) of each output.
    """
    dataset, output = Path(dataset), Path(output)
    if not dataset.is_dir():
        raise ValueError(f"{dataset}: dataset folder not found")
    missing = [name for name in SPLITS if not (dataset / name).is_dir()]
    if missing:
        raise ValueError(f"{dataset}: missing split folder(s) {', '.join(missing)}; expected "
                         f"{', '.join(SPLITS)} (SlotGated-SLU layout, dev is called 'valid')")
    train, valid, test = (read_split(dataset / name, scheme=scheme) for name in SPLITS)
    gold_pos = sample(len(train), gold_train, seed, f"--gold-train ({train.path})")
    dev_pos = sample(len(valid), gold_dev, seed, f"--gold-dev ({valid.path})")
    gold = [train.keep[p] for p in gold_pos]
    dev = [valid.keep[p] for p in dev_pos]
    chosen = set(gold)
    silver = [i for i in train.keep if i not in chosen]
    _write_split(output / "gold-train", train, gold)
    _write_split(output / "gold-dev", valid, dev)
    _write_split(output / "silver", train, silver)
    _write_split(output / "test", test, test.keep)
    return SplitResult(train, valid, test, gold, dev, silver)


def summarize(result: SplitResult) -> str:
    """Sizes, and the slot types and intents of the gold sample against full train and test."""
    train, test = result.train, result.test
    full_slots, gold_slots, test_slots = train.slot_types(), train.slot_types(result.gold_train), test.slot_types()
    full_int, gold_int, test_int = train.intents(), train.intents(result.gold_train), test.intents()
    n_train_blank = len(train.lines["seq.in"]) - len(train)
    lines = [
        (f"gold-train {len(result.gold_train)} / silver {len(result.silver)} (of train {len(train)}), "
         f"gold-dev {len(result.gold_dev)} (of valid {len(result.valid)}), test {len(test)}"),
        f"slot types: {len(gold_slots)} of the {len(full_slots)} in full train occur in gold-train",
        f"  missing from gold-train: {_names(set(full_slots) - set(gold_slots), full_slots)}",
        f"  in test but not in full train: {_names(set(test_slots) - set(full_slots), test_slots)}",
        (f"  in test but not in gold-train: {len(set(test_slots) - set(gold_slots))} types, "
         f"{sum(n for s, n in test_slots.items() if s not in gold_slots)} of {sum(test_slots.values())} test slots"),
    ]
    if full_int:
        lines += [
            f"intents: {len(gold_int)} of the {len(full_int)} in full train occur in gold-train",
            f"  missing from gold-train: {_names(set(full_int) - set(gold_int), full_int)}",
            f"  in test but not in full train: {_names(set(test_int) - set(full_int), test_int)}",
        ]
    if n_train_blank:
        lines.append(f"{n_train_blank} blank train line(s) skipped")
    return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------------


def _read_lines(path: Path) -> List[bytes]:
    """The lines of a file as bytes without their b"\\n" (split as the reader splits them)."""
    data = path.read_bytes()
    if data.startswith(BOM):
        data = data[len(BOM):]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line, it does not start a new one
    return lines


def _write_split(path: Path, split: SlotSplit, indices: Sequence[int]) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    for name, lines in split.lines.items():
        (path / name).write_bytes(b"".join(lines[i] + b"\n" for i in indices))


def _names(names, counts: Counter) -> str:
    """`name (count)` by decreasing count, or `none`."""
    if not names:
        return "none"
    ordered = sorted(names, key=lambda s: (-counts[s], s))
    return f"{len(ordered)}: " + ", ".join(f"{s} ({counts[s]})" for s in ordered)


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="folder with train/, valid/ and test/ (SlotGated-SLU format)")
    parser.add_argument("--gold-train", type=int, required=True, help="gold training utterances, drawn from train")
    parser.add_argument("--gold-dev", type=int, required=True, help="gold dev utterances, drawn from valid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the samples (0)")
    parser.add_argument("--output", type=Path, required=True, help="output folder")
    parser.add_argument("--scheme", default="IOB2", help="tag scheme of seq.out (IOB2)")
    args = parser.parse_args(argv)
    try:
        result = make_splits(args.dataset, args.output, gold_train=args.gold_train,
                             gold_dev=args.gold_dev, seed=args.seed, scheme=args.scheme)
    except ValueError as err:
        parser.error(str(err))
    print(f"{args.dataset} -> {args.output} (seed {args.seed})")
    print(summarize(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
