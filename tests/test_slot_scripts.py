"""scripts/slot_splits.py (SenTScore §5, low-resource slot filling) on a tiny SlotGated-SLU dataset
built from the SNIPS fixture; the fixture and the oracle pipeline also serve tests/report/test_slots.py."""
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Span

from spacy_skd.training.readers import create_slot_filling_reader
from tests.conftest import FIXTURES, load_script

FILES = ("seq.in", "seq.out", "label")
N_TRAIN, N_VALID = 30, 12



splits_script = load_script("slot_splits")


@Language.factory("test_slot_oracle", default_config={"path": "", "keep": -1})
def make_slot_oracle(nlp: Language, name: str, path: str, keep: int):
    """Predicts the gold slots of the utterances in `path`: all of them (keep=-1) or the first
    `keep` of each utterance (keep=0 predicts nothing)."""
    gold = {tuple(t.text for t in eg.reference): [(e.start, e.end, e.label_) for e in eg.reference.ents]
            for eg in create_slot_filling_reader(path)(nlp)}

    def slot_oracle(doc):
        spans = gold[tuple(t.text for t in doc)]
        doc.ents = [Span(doc, s, e, label=label) for s, e, label in (spans if keep < 0 else spans[:keep])]
        return doc

    return slot_oracle


# --- data -----------------------------------------------------------------------------------


def _lines(path: Path) -> List[bytes]:
    lines = path.read_bytes().split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def _write_split(folder: Path, rows: List[Tuple[bytes, bytes, bytes]], final_newline: bool = True) -> None:
    folder.mkdir(parents=True)
    for k, name in enumerate(FILES):
        data = b"\n".join(row[k] for row in rows) + b"\n"
        (folder / name).write_bytes(data if final_newline or name != "seq.in" else data[:-1])


def _rows(prefix: str, n: int) -> List[Tuple[bytes, bytes, bytes]]:
    """n distinct utterances: the fixture's five (trailing spaces, a non-ASCII word) prefixed by a
    unique token, every sixth one replaced by an utterance without slots."""
    fixture = [_lines(FIXTURES / "snips_sample" / name) for name in FILES]
    rows = []
    for i in range(n):
        if i % 6 == 5:
            rows.append((f"{prefix}{i} hello there ".encode(), b"O O O ", b"Greet"))
        else:
            x, y, label = (lines[i % 6 % 5] for lines in fixture)
            rows.append((f"{prefix}{i} ".encode() + x, b"O " + y, label))
    return rows


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = tmp_path / "snips_tiny"
    _write_split(root / "train", _rows("t", N_TRAIN), final_newline=False)  # seq.in lacks its last \n
    _write_split(root / "valid", _rows("v", N_VALID))
    _write_split(root / "test", _rows("x", 7))
    return root


def _triples(folder: Path) -> Counter:
    """The aligned (seq.in, seq.out, label) lines of a split, as a multiset."""
    return Counter(zip(*(_lines(folder / name) for name in FILES)))


def _slot_types(folder: Path) -> set:
    return {tag.split("-", 1)[1] for line in _lines(folder / "seq.out") for tag in line.decode().split()
            if tag != "O"}


# --- slot_splits ----------------------------------------------------------------------------


def test_slot_splits_partition_train(dataset, tmp_path):
    out = tmp_path / "out"
    splits_script.make_splits(dataset, out, gold_train=7, gold_dev=4, seed=0)
    train = _triples(dataset / "train")
    gold, silver, dev = (_triples(out / name) for name in ("gold-train", "silver", "gold-dev"))
    assert sum(gold.values()) == 7 and sum(silver.values()) == N_TRAIN - 7
    assert not gold & silver  # disjoint (the utterances are distinct)
    assert gold + silver == train  # aligned triples: every file of a split picks the same lines
    assert sum(dev.values()) == 4 and not dev - _triples(dataset / "valid")
    # silver keeps the original order; the gold sample is written in original order too
    train_in = _lines(dataset / "train" / "seq.in")
    gold_in = set(_lines(out / "gold-train" / "seq.in"))
    assert _lines(out / "silver" / "seq.in") == [x for x in train_in if x not in gold_in]
    assert _lines(out / "gold-train" / "seq.in") == [x for x in train_in if x in gold_in]
    for name in FILES:
        assert (out / "test" / name).read_bytes() == (dataset / "test" / name).read_bytes()
    assert not (out / "silver.txt").exists()  # see test_blank_make_doc_splits_dataset_tokens
    nlp = spacy.blank("en")
    for name, n in (("gold-train", 7), ("gold-dev", 4), ("silver", N_TRAIN - 7), ("test", 7)):
        assert len(list(create_slot_filling_reader(out / name)(nlp))) == n


def _read_all(out: Path) -> Dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_slot_splits_deterministic_per_seed(dataset, tmp_path):
    outputs = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1), ("d", 2)):
        splits_script.make_splits(dataset, tmp_path / name, gold_train=7, gold_dev=4, seed=seed)
        outputs[name] = _read_all(tmp_path / name)
    assert outputs["a"] == outputs["b"]
    gold = {name: files["gold-train/seq.in"] for name, files in outputs.items()}
    dev = {name: files["gold-dev/seq.in"] for name, files in outputs.items()}
    assert len({gold["a"], gold["c"], gold["d"]}) == 3
    assert len({dev["a"], dev["c"], dev["d"]}) == 3
    # the dev sample depends on the seed and its own size only
    splits_script.make_splits(dataset, tmp_path / "e", gold_train=11, gold_dev=4, seed=0)
    assert (tmp_path / "e" / "gold-dev" / "seq.in").read_bytes() == dev["a"]


def test_slot_splits_summary_label_coverage(dataset, tmp_path):
    out = tmp_path / "out"
    result = splits_script.make_splits(dataset, out, gold_train=3, gold_dev=2, seed=0)
    full, gold = _slot_types(dataset / "train"), _slot_types(out / "gold-train")
    summary = splits_script.summarize(result)
    assert f"slot types: {len(gold)} of the {len(full)} in full train occur in gold-train" in summary
    assert len(gold) < len(full)
    for missing in full - gold:
        assert f" {missing} (" in summary
    assert "in test but not in full train: none" in summary
    assert summary.splitlines()[0] == "gold-train 3 / silver 27 (of train 30), gold-dev 2 (of valid 12), test 7"


@pytest.mark.parametrize("kwargs,match", [
    ({"gold_train": 0}, r"positive integer, got 0"),
    ({"gold_train": -3}, r"positive integer, got -3"),
    ({"gold_train": N_TRAIN + 1}, rf"cannot draw {N_TRAIN + 1} utterances from a split of {N_TRAIN}"),
    ({"gold_dev": N_VALID + 1}, rf"--gold-dev .*cannot draw {N_VALID + 1} .* of {N_VALID}"),
    ({"gold_dev": 0}, r"--gold-dev .*positive integer"),
])
def test_slot_splits_bad_sizes(dataset, tmp_path, kwargs, match):
    sizes = {"gold_train": 7, "gold_dev": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        splits_script.make_splits(dataset, tmp_path / "out", seed=0, **sizes)


def test_slot_splits_missing_folders(dataset, tmp_path):
    with pytest.raises(ValueError, match=r"dataset folder not found"):
        splits_script.make_splits(tmp_path / "nope", tmp_path / "out", gold_train=1, gold_dev=1)
    (dataset / "valid" / "seq.out").unlink()
    with pytest.raises(ValueError, match=r"valid: missing seq.out"):
        splits_script.make_splits(dataset, tmp_path / "out", gold_train=1, gold_dev=1)
    shutil.rmtree(dataset / "valid")
    with pytest.raises(ValueError, match=r"missing split folder\(s\) valid"):
        splits_script.make_splits(dataset, tmp_path / "out", gold_train=1, gold_dev=1)


def test_slot_splits_cli(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert splits_script.main([str(dataset), "--gold-train", "5", "--gold-dev", "3", "--seed", "1",
                               "--output", str(out)]) == 0
    assert "gold-train 5 / silver 25 (of train 30)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as err:
        splits_script.main([str(dataset), "--gold-train", "0", "--gold-dev", "3", "--output", str(out)])
    assert err.value.code == 2
    assert "positive integer, got 0" in capsys.readouterr().err


def test_blank_make_doc_splits_dataset_tokens():
    """Why slot_splits writes no silver.txt for spacy-skd.RawText.v1: `nlp.make_doc` of a blank
    English pipeline splits some SNIPS/ATIS whitespace tokens (and keeps others whole)."""
    nlp = spacy.blank("en")
    for token in ("i'd", "what's", "st.", "whats", "top-rated", "ii:"):
        assert len(nlp.make_doc(token)) > 1, token
    for token in ("'s", "8:30", "café", "a.m."):
        assert [t.text for t in nlp.make_doc(token)] == [token]
