#!/usr/bin/env python
"""Put the user's own train/dev/test data where a workflow reads its standard dataset.

The `data-*` commands of project.yml first place the standard dataset (scripts/fetch_assets.py),
then call this script with `--vars.train/dev/test`. Each path given replaces the matching file
under `assets/`, in the format the later steps expect there, so every workflow runs on the user's
data with no edit to project.yml and no change to the commands of the standard runs (empty paths,
the default, change nothing). Running a workflow again without the vars restores the standard
files: `fetch_assets.py` finds their MD5s wrong and copies them again.

- `conll2003_en` (NER cases 1a, 2a, 4, demo): CoNLL column files, the entity tag in the last
  column, in `--scheme` (IOB1, IOB2, BIOES or BILUO); written as IOB1, CoNLL-2003's scheme.
- `ud_en_ewt` (parsing cases 1b, 2b): CoNLL-U files, plain or gzipped (train is kept gzipped).
- `slots` (SenTScore): folders in the SlotGated-SLU layout (`seq.in`, `seq.out`, optional
  `label`, BIO tags), written to `assets/<slot_data>/{train,valid,test}/`.

    python scripts/own_data.py conll2003_en --train my/train.conll --dev my/dev.conll --test my/test.conll --scheme IOB2
"""
import argparse
import gzip
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

DESTINATIONS: Dict[str, Dict[str, str]] = {
    "conll2003_en": {"train": "conll2003_en/train.conll", "dev": "conll2003_en/dev.conll",
                     "test": "conll2003_en/test.conll"},
    "ud_en_ewt": {"train": "ud_en_ewt/en_ewt-ud-train.conllu.gz", "dev": "ud_en_ewt/en_ewt-ud-dev.conllu",
                  "test": "ud_en_ewt/en_ewt-ud-test.conllu"},
    "slots": {"train": "{slot_data}/train", "dev": "{slot_data}/valid", "test": "{slot_data}/test"},
}
SLOT_FILES = ("seq.in", "seq.out", "label")


def place(family: str, paths: Dict[str, str], assets: Path = Path("assets"), scheme: str = "IOB2",
          slot_data: str = "snips") -> List[Path]:
    """Copy each non-empty path of `paths` (train/dev/test) to its place; returns what was written."""
    if family not in DESTINATIONS:
        raise ValueError(f"Unknown data family '{family}'; use one of {', '.join(DESTINATIONS)}.")
    written = []
    for split, source in paths.items():
        if not source:
            continue
        source_path = Path(source)
        if not source_path.exists():
            raise ValueError(f"--{split} {source} does not exist: give the path of your own {split} data "
                             "relative to the project folder, or leave it empty for the standard dataset.")
        dest = assets / DESTINATIONS[family][split].format(slot_data=slot_data)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if family == "slots":
            _copy_slot_folder(source_path, dest)
        elif family == "conll2003_en":
            dest.write_text(_to_iob1(_read_text(source_path), scheme), encoding="utf8")
        else:
            _copy_text(source_path, dest)
        written.append(dest)
        print(f"own data {dest} <- {source}")
    return written


def _read_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf8") as f:
        return f.read()


def _copy_text(source: Path, dest: Path) -> None:
    """Copy, (un)compressing so that the destination's `.gz` suffix tells the truth."""
    if dest.suffix == ".gz":
        with gzip.open(dest, "wt", encoding="utf8") as f:
            f.write(_read_text(source))
    else:
        dest.write_text(_read_text(source), encoding="utf8")


def _to_iob1(text: str, scheme: str) -> str:
    """CoNLL lines with the last column's tags rewritten from `scheme` to IOB1, sentence by sentence."""
    from spacy_skd.structs.tag_schemes import convert_tags

    out: List[str] = []
    block: List[List[str]] = []

    def flush() -> None:
        if block:
            tags = convert_tags([fields[-1] for fields in block], scheme, "IOB1")
            out.extend(" ".join(fields[:-1] + [tag]) for fields, tag in zip(block, tags))
            block.clear()

    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] == "-DOCSTART-":
            flush()
            out.append(line)
        else:
            block.append(fields)
    flush()
    return "\n".join(out) + "\n"


def _copy_slot_folder(source: Path, dest: Path) -> None:
    if not source.is_dir() or not (source / "seq.in").is_file() or not (source / "seq.out").is_file():
        raise ValueError(f"{source} is not a slot-filling folder: it needs `seq.in` (words) and `seq.out` "
                         "(BIO tags), line-aligned, as in the SlotGated-SLU layout.")
    if dest.is_dir():
        shutil.rmtree(dest)  # a stale `label` of the dataset replaced must not survive
    dest.mkdir(parents=True)
    for name in SLOT_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, dest / name)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("family", choices=sorted(DESTINATIONS), help="which standard dataset to replace")
    for split in ("train", "dev", "test"):
        parser.add_argument(f"--{split}", default="", help=f"your {split} data ('': keep the standard one)")
    parser.add_argument("--scheme", default="IOB2", help="tag scheme of your NER files (IOB1, IOB2, BIOES, BILUO)")
    parser.add_argument("--slot-data", default="snips", help="assets/<name>/ folder of slot-filling data")
    parser.add_argument("--assets", type=Path, default=Path("assets"))
    args = parser.parse_args(argv)
    try:
        place(args.family, {"train": args.train, "dev": args.dev, "test": args.test}, args.assets,
              scheme=args.scheme, slot_data=args.slot_data)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
