"""Tag schemes: inventories, span round trips, the repair rules and the CRF transition masks."""
import doctest
import itertools
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs import tag_schemes
from spacy_skd.structs.tag_schemes import (
    SCHEMES,
    allowed_transitions,
    check_scheme,
    convert_tags,
    first_repair,
    is_valid,
    spans_to_tags,
    tag_set,
    tags_to_spans,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = settings(max_examples=200, deadline=None)
# "X-Y" checks that only the first "-" separates prefix and label.
LABELS = ("PER", "LOC", "X-Y")


@st.composite
def span_lists(draw, max_spans: int = 4):
    """(spans in random order, n): non-overlapping spans with gaps of 0..2 tokens."""
    spans, pos = [], 0
    for _ in range(draw(st.integers(0, max_spans))):
        start = pos + draw(st.integers(0, 2))
        end = start + draw(st.integers(1, 3))
        spans.append((start, end, draw(st.sampled_from(LABELS))))
        pos = end
    n = pos + draw(st.integers(0, 2))
    return draw(st.permutations(spans)), n


def tag_lists(scheme: str, max_size: int = 10):
    return st.lists(st.sampled_from(tag_set(LABELS, scheme)), max_size=max_size)


def canonical(tags, scheme):
    return spans_to_tags(tags_to_spans(tags, scheme), len(tags), scheme)


def masks_allow(y, masks):
    start, trans, end = masks
    if not y:
        return True
    return bool(start[y[0]] and end[y[-1]] and all(trans[a, b] for a, b in zip(y, y[1:])))


# --- schemes and inventories ---

def test_schemes():
    assert SCHEMES == ("IOB1", "IOB2", "BIOES", "BILUO", "sBIO")
    for scheme in SCHEMES:
        assert check_scheme(scheme) == scheme


@pytest.mark.parametrize("bad", ["iob2", "BIO", "IOBES", "", None])
def test_check_scheme_unknown(bad):
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        check_scheme(bad)
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        tags_to_spans([], bad)
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        spans_to_tags([], 0, bad)
    with pytest.raises(ValueError, match=r"\[skd-E004\]"):
        allowed_transitions(["O"], bad)


@pytest.mark.parametrize("scheme,expected", [
    ("IOB1", ["O", "I-LOC", "B-LOC", "I-PER", "B-PER"]),
    ("IOB2", ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]),
    ("BIOES", ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]),
    ("BILUO", ["O", "B-LOC", "I-LOC", "L-LOC", "U-LOC", "B-PER", "I-PER", "L-PER", "U-PER"]),
    ("sBIO", ["O", "I", "LOC", "PER"]),
])
def test_tag_set_order(scheme, expected):
    assert tag_set(["PER", "LOC", "PER"], scheme) == expected
    assert tag_set(iter(["LOC", "PER"]), scheme) == expected
    assert tag_set([], scheme) == (["O", "I"] if scheme == "sBIO" else ["O"])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("label", ["", None, 3])
def test_tag_set_bad_label(scheme, label):
    with pytest.raises(ValueError, match=r"\[skd-E007\]"):
        tag_set(["PER", label], scheme)


@pytest.mark.parametrize("label", ["O", "I"])
def test_tag_set_sbio_reserved(label):
    with pytest.raises(ValueError, match=r"\[skd-E007\]"):
        tag_set(["PER", label], "sBIO")
    # A prefix scheme can tell B-O from O.
    assert tag_set([label], "IOB2") == ["O", f"B-{label}", f"I-{label}"]


# --- round trips ---

@pytest.mark.parametrize("scheme", SCHEMES)
def test_empty(scheme):
    assert tags_to_spans([], scheme) == []
    assert tags_to_spans([], scheme, strict=True) == []
    assert spans_to_tags([], 0, scheme) == []
    assert is_valid([], scheme)
    assert convert_tags([], scheme, "IOB2") == []
    assert spans_to_tags([], 3, scheme) == ["O", "O", "O"]


@pytest.mark.parametrize("scheme", SCHEMES)
@SETTINGS
@given(data=span_lists())
def test_spans_round_trip(scheme, data):
    spans, n = data
    tags = spans_to_tags(spans, n, scheme)
    assert len(tags) == n
    assert is_valid(tags, scheme)
    assert tags_to_spans(tags, scheme, strict=True) == sorted(spans)


@pytest.mark.parametrize("scheme", SCHEMES)
@SETTINGS
@given(data=st.data())
def test_any_tags_repair(scheme, data):
    tags = data.draw(tag_lists(scheme))
    spans = tags_to_spans(tags, scheme)
    assert spans == sorted(spans)
    fixed = spans_to_tags(spans, len(tags), scheme)  # spans are well-formed (no E006)
    assert tags_to_spans(fixed, scheme) == spans  # repair is idempotent
    assert is_valid(tags, scheme) == (fixed == tags)  # valid iff canonical
    assert (first_repair(tags, scheme) is None) == is_valid(tags, scheme)
    if is_valid(tags, scheme):
        assert tags_to_spans(tags, scheme, strict=True) == spans
    else:
        with pytest.raises(ValueError, match=r"\[skd-E008\]"):
            tags_to_spans(tags, scheme, strict=True)


@pytest.mark.parametrize("source", SCHEMES)
@SETTINGS
@given(data=st.data())
def test_convert_preserves_spans(source, data):
    tags = data.draw(tag_lists(source))
    spans = tags_to_spans(tags, source)
    for target in SCHEMES:
        out = convert_tags(tags, source, target)
        assert len(out) == len(tags), target
        assert is_valid(out, target), target
        assert tags_to_spans(out, target) == spans, target
        assert convert_tags(out, target, source) == canonical(tags, source), target


# --- transition masks: exhaustive agreement with is_valid ---

@pytest.mark.parametrize("scheme", SCHEMES)
def test_masks_agree_with_is_valid(scheme):
    inventory = tag_set(["A", "B"], scheme)
    masks = allowed_transitions(inventory, scheme)
    L = len(inventory)
    assert [m.shape for m in masks] == [(L,), (L, L), (L,)]
    assert all(m.dtype == torch.bool for m in masks)
    n_valid = 0
    for n in range(5):
        for y in itertools.product(range(L), repeat=n):
            tags = [inventory[i] for i in y]
            valid = is_valid(tags, scheme)
            assert masks_allow(y, masks) == valid, tags
            assert (canonical(tags, scheme) == tags) == valid, tags
            n_valid += valid
    assert n_valid > 0


@pytest.mark.parametrize("scheme", SCHEMES)
def test_masks_any_inventory_order(scheme):
    """Masks follow the tags, not their position: a shuffled inventory gives permuted masks."""
    inventory = tag_set(["A", "B"], scheme)
    perm = list(reversed(range(len(inventory))))
    start, trans, end = allowed_transitions(inventory, scheme)
    p_start, p_trans, p_end = allowed_transitions([inventory[i] for i in perm], scheme)
    idx = torch.tensor(perm)
    assert torch.equal(p_start, start[idx])
    assert torch.equal(p_end, end[idx])
    assert torch.equal(p_trans, trans[idx][:, idx])
    assert [m.shape for m in allowed_transitions([], scheme)] == [(0,), (0, 0), (0,)]


def test_masks_by_hand_iob1():
    inventory = ["O", "I-PER", "B-PER", "I-LOC"]
    start, trans, end = allowed_transitions(inventory, "IOB1")
    assert start.tolist() == [True, True, False, True]
    assert end.tolist() == [True, True, True, True]
    # B-PER only after I-PER or B-PER.
    assert trans[:, 2].tolist() == [False, True, True, False]
    assert trans[:, [0, 1, 3]].all()


# --- repair rules, by hand ---

REPAIRS = [
    # (scheme, tags, spans, valid)
    # IOB1: CoNLL-2003 train "B-MISC" after "O" (rule 3) just begins a chunk.
    ("IOB1", ["O", "B-MISC", "I-MISC", "O"], [(1, 3, "MISC")], False),
    ("IOB1", ["B-PER", "O"], [(0, 1, "PER")], False),
    ("IOB1", ["I-PER", "B-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], False),
    ("IOB1", ["I-PER", "B-PER"], [(0, 1, "PER"), (1, 2, "PER")], True),  # adjacent same type
    ("IOB1", ["I-PER", "I-PER", "B-PER", "I-PER"], [(0, 2, "PER"), (2, 4, "PER")], True),
    ("IOB1", ["O", "I-PER", "I-LOC"], [(1, 2, "PER"), (2, 3, "LOC")], True),
    ("IOB2", ["O", "I-PER", "I-PER"], [(1, 3, "PER")], False),  # rule 1
    ("IOB2", ["B-PER", "I-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], False),  # type change
    ("IOB2", ["B-PER", "B-PER", "I-PER"], [(0, 1, "PER"), (1, 3, "PER")], True),
    ("IOB2", ["I-X-Y"], [(0, 1, "X-Y")], False),
    ("BIOES", ["B-PER", "O"], [(0, 1, "PER")], False),  # rule 2 at O
    ("BIOES", ["B-PER", "I-PER"], [(0, 2, "PER")], False),  # rule 2 at sentence end
    ("BIOES", ["B-PER", "S-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], False),  # rule 2 at S
    ("BIOES", ["B-PER", "B-PER", "E-PER"], [(0, 1, "PER"), (1, 3, "PER")], False),  # rule 2 at B
    ("BIOES", ["O", "E-PER"], [(1, 2, "PER")], False),  # rule 1, single token
    ("BIOES", ["I-PER", "E-PER"], [(0, 2, "PER")], False),  # rule 1
    ("BIOES", ["B-PER", "I-LOC", "E-LOC"], [(0, 1, "PER"), (1, 3, "LOC")], False),
    ("BIOES", ["B-PER", "E-LOC"], [(0, 1, "PER"), (1, 2, "LOC")], False),
    ("BIOES", ["S-PER", "E-PER"], [(0, 1, "PER"), (1, 2, "PER")], False),
    ("BIOES", ["B-PER", "E-PER", "S-PER"], [(0, 2, "PER"), (2, 3, "PER")], True),
    ("BILUO", ["B-PER", "O"], [(0, 1, "PER")], False),
    ("BILUO", ["I-PER", "L-PER", "U-LOC"], [(0, 2, "PER"), (2, 3, "LOC")], False),
    ("BILUO", ["B-PER", "I-PER", "L-PER", "U-PER"], [(0, 3, "PER"), (3, 4, "PER")], True),
    ("sBIO", ["I", "I", "PER", "I"], [(2, 4, "PER")], False),  # rule 4: leading I
    ("sBIO", ["PER", "O", "I"], [(0, 1, "PER")], False),  # rule 4: I after O
    ("sBIO", ["PER", "LOC", "I"], [(0, 1, "PER"), (1, 3, "LOC")], True),
    ("sBIO", ["PER", "PER"], [(0, 1, "PER"), (1, 2, "PER")], True),
    ("sBIO", ["B-PER", "I"], [(0, 2, "B-PER")], True),  # any non-O/I tag is a bare label
]


@pytest.mark.parametrize("scheme,tags,spans,valid", REPAIRS)
def test_repairs(scheme, tags, spans, valid):
    assert tags_to_spans(tags, scheme) == spans
    assert is_valid(tags, scheme) == valid
    if valid:
        assert tags_to_spans(tags, scheme, strict=True) == spans
    else:
        with pytest.raises(ValueError, match=r"\[skd-E008\]"):
            tags_to_spans(tags, scheme, strict=True)


@pytest.mark.parametrize("scheme,tags,i,rule", [
    ("IOB1", ["O", "B-MISC"], 1, "rule 3"),
    ("IOB2", ["B-PER", "I-LOC"], 1, "rule 1"),
    ("BIOES", ["O", "B-PER", "O"], 1, "rule 2"),
    ("BILUO", ["O", "B-PER", "I-PER"], 2, "rule 2"),
    ("sBIO", ["O", "I"], 1, "rule 4"),
])
def test_first_repair(scheme, tags, i, rule):
    found = first_repair(tags, scheme)
    assert found is not None and found[0] == i and rule in found[1]
    with pytest.raises(ValueError, match=rf"\[skd-E008\].*position {i}.*{rule}"):
        tags_to_spans(tags, scheme, strict=True)


@pytest.mark.parametrize("scheme,expected", [
    ("IOB1", ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-PER"]),
    ("IOB2", ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-PER"]),
    ("BIOES", ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-PER"]),
    ("BILUO", ["B-PER", "L-PER", "U-PER", "O", "U-LOC", "U-PER"]),
    ("sBIO", ["PER", "I", "PER", "O", "LOC", "PER"]),
])
def test_spans_to_tags_canonical(scheme, expected):
    spans = [(5, 6, "PER"), (0, 2, "PER"), (4, 5, "LOC"), (2, 3, "PER")]
    assert spans_to_tags(spans, 6, scheme) == expected


def test_convert_iob1_to_bioes():
    # CoNLL-2003 style: IOB1 with a leading B-MISC after O and two adjacent PER chunks.
    tags = ["O", "B-MISC", "I-MISC", "O", "I-PER", "I-PER", "B-PER", "O", "I-ORG", "I-LOC"]
    assert convert_tags(tags, "IOB1", "BIOES") == [
        "O", "B-MISC", "E-MISC", "O", "B-PER", "E-PER", "S-PER", "O", "S-ORG", "S-LOC"]
    assert convert_tags(tags, "IOB1", "sBIO") == [
        "O", "MISC", "I", "O", "PER", "I", "PER", "O", "ORG", "LOC"]
    back = convert_tags(convert_tags(tags, "IOB1", "BIOES"), "BIOES", "IOB1")
    assert back == ["O", "I-MISC", "I-MISC", "O", "I-PER", "I-PER", "B-PER", "O", "I-ORG", "I-LOC"]


def test_convert_label_not_allowed_in_target():
    with pytest.raises(ValueError, match=r"\[skd-E007\]"):
        convert_tags(["B-O"], "IOB2", "sBIO")


# --- errors ---

MALFORMED = [
    ("IOB1", "E-PER"), ("IOB1", "S-PER"), ("IOB1", "B-"), ("IOB1", "PER"),
    ("IOB2", "S-PER"), ("IOB2", "X-PER"), ("IOB2", "B-"), ("IOB2", "B"), ("IOB2", "I"),
    ("IOB2", ""), ("IOB2", None), ("IOB2", "b-PER"), ("IOB2", "-PER"),
    ("BIOES", "L-PER"), ("BIOES", "U-PER"), ("BIOES", "E"),
    ("BILUO", "E-PER"), ("BILUO", "S-PER"), ("BILUO", "L-"),
    ("sBIO", ""), ("sBIO", None), ("sBIO", 3),
]


@pytest.mark.parametrize("scheme,tag", MALFORMED)
def test_malformed_tag(scheme, tag):
    tags = ["O", tag, "O"]
    for strict in (False, True):
        with pytest.raises(ValueError, match=r"\[skd-E005\]"):
            tags_to_spans(tags, scheme, strict=strict)
    with pytest.raises(ValueError, match=r"\[skd-E005\]"):
        is_valid(tags, scheme)
    with pytest.raises(ValueError, match=r"\[skd-E005\]"):
        convert_tags(tags, scheme, "IOB2")
    with pytest.raises(ValueError, match=r"\[skd-E005\]"):
        allowed_transitions(["O", tag], scheme)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("spans,n", [
    ([(-1, 1, "PER")], 3),
    ([(0, 4, "PER")], 3),
    ([(1, 1, "PER")], 3),
    ([(2, 1, "PER")], 3),
    ([(0, 2, "PER"), (1, 3, "LOC")], 3),
    ([(1, 3, "LOC"), (0, 2, "PER")], 3),
    ([(0, 2, "PER"), (0, 2, "PER")], 3),
    ([(0, 1)], 3),
    ([("0", 1, "PER")], 3),
    ([(0, 1, "PER")], 0),
])
def test_bad_spans(scheme, spans, n):
    with pytest.raises(ValueError, match=r"\[skd-E006\]"):
        spans_to_tags(spans, n, scheme)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("label", ["", None])
def test_bad_span_label(scheme, label):
    with pytest.raises(ValueError, match=r"\[skd-E007\]"):
        spans_to_tags([(0, 1, label)], 2, scheme)


@pytest.mark.parametrize("label", ["O", "I"])
def test_sbio_reserved_span_label(label):
    with pytest.raises(ValueError, match=r"\[skd-E007\]"):
        spans_to_tags([(0, 1, label)], 2, "sBIO")
    assert spans_to_tags([(0, 1, label)], 2, "BILUO") == [f"U-{label}", "O"]


def test_span_offsets_accept_index_types():
    spans = [(torch.tensor(0), torch.tensor(2), "PER")]
    assert spans_to_tags(spans, 3, "IOB2") == ["B-PER", "I-PER", "O"]


# --- module hygiene ---

def test_doctests():
    result = doctest.testmod(tag_schemes)
    assert result.attempted > 0 and result.failed == 0


def test_no_spacy_or_thinc_import():
    code = ("import sys, spacy_skd.structs.tag_schemes; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('spacy', 'thinc')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"
