"""Tag schemes: entity spans <-> per-token tags, with one documented repair policy.

A CRF tagger scores per-token tags, but the corpora, the metrics and the distillation targets
all speak about entity spans. This module is the single place where the two meet, for the five
schemes the package reads and trains with:

- IOB1 (CoNLL-2003): ``I-X`` begins or continues a chunk; ``B-X`` only begins a chunk that
  directly follows a chunk of the same type X.
- IOB2 (CoNLL-2002): every chunk begins with ``B-X`` and continues with ``I-X``.
- BIOES: ``B-X I-X* E-X`` for a multi-token chunk, ``S-X`` for a single token.
- BILUO: BIOES spelled ``B-X I-X* L-X`` and ``U-X`` (spaCy's internal scheme).
- sBIO (SenTScore, Farina et al. 2023; tag set T u {I, O}): the first token of a chunk is tagged
  with the bare label ``X``, continuation tokens with ``I``, outside tokens with ``O``.

Every function goes through spans: a tag sequence is decoded to spans (``tags_to_spans``) and
spans are encoded in the scheme's canonical form (``spans_to_tags``). A tag sequence is *valid*
(``is_valid``) iff it is that canonical form, i.e. iff decoding needed no repair, and
``allowed_transitions`` gives the same notion as start/transition/end masks for a CRF.

Malformed tag *strings* (``"X-PER"``, ``"B-"``, ``"B"``, a prefix the scheme lacks such as
``"S-PER"`` in IOB2, an empty or non-string sBIO tag) cannot be repaired and always raise E005.
Invalid *sequences* of well-formed tags raise E008 with ``strict=True`` and are otherwise
repaired with the lenient conlleval convention. Outside the rules below, begin and single tags
(``B-X`` except in IOB1, ``S-X``, ``U-X``, a bare sBIO label) always start a new chunk and ``O``
always closes the open one; those are the normal reading, not repairs.

Repair rules (``strict=False``; ``strict=True`` raises E008 at the first one):

1. An inside or end tag of type X (``I-X``, ``E-X``, ``L-X``) with no open X chunk to continue
   (sentence start, after ``O``, after a closed BIOES/BILUO chunk, or a type change such as
   ``B-PER I-LOC``) closes any open chunk and starts a new X chunk; for ``E-X``/``L-X`` that
   chunk is the single token. Not applicable to IOB1 ``I-X``, where this is the normal start.
2. BIOES/BILUO: a chunk left open (``B-X``/``I-X`` not followed by ``I-X`` or ``E-X``/``L-X``)
   is closed after its last token, i.e. before the next ``O``, begin, single or type-changing
   tag, or at the sentence end.
3. IOB1: ``B-X`` that does not directly follow an X chunk (sentence start, after ``O``, after a
   chunk of another type) begins a chunk exactly as ``I-X`` would. CoNLL-2003 train has two
   ``B-MISC`` after ``O``.
4. sBIO: ``I`` with no open chunk (sentence start, after ``O``) carries no type and is read as
   ``O``.

Round trips: ``spans_to_tags(tags_to_spans(t), len(t)) == t`` for every valid ``t``;
``tags_to_spans(spans_to_tags(s, n)) == sorted(s)`` for all spans; repair is idempotent and
``convert_tags`` preserves spans between any two schemes whose label rules both accept them.
"""
import operator
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from ..errors import Errors

SCHEMES: Tuple[str, ...] = ("IOB1", "IOB2", "BIOES", "BILUO", "sBIO")
Span = Tuple[int, int, str]  # (start, end) token offsets, end exclusive, entity label

# Parsed tags are (kind, label) with kind one of "O" (outside), "B" (begin), "I" (inside),
# "E" (end: E-/L-) and "S" (single: S-/U-). sBIO labels parse as "B"; its "I" has label None.
_Parsed = Tuple[str, Optional[str]]

# Surface prefix -> kind, per prefix scheme; the order is the order of tag_set.
_PREFIXES: Dict[str, Dict[str, str]] = {
    "IOB1": {"I": "I", "B": "B"},
    "IOB2": {"B": "B", "I": "I"},
    "BIOES": {"B": "B", "I": "I", "E": "E", "S": "S"},
    "BILUO": {"B": "B", "I": "I", "L": "E", "U": "S"},
}
# Kind -> surface prefix, per prefix scheme.
_SURFACE: Dict[str, Dict[str, str]] = {
    s: {k: p for p, k in m.items()} for s, m in _PREFIXES.items()
}
_EXAMPLES: Dict[str, str] = {
    "IOB1": "'I-PER', 'B-PER' or 'O'",
    "IOB2": "'B-PER', 'I-PER' or 'O'",
    "BIOES": "'B-PER', 'I-PER', 'E-PER', 'S-PER' or 'O'",
    "BILUO": "'B-PER', 'I-PER', 'L-PER', 'U-PER' or 'O'",
    "sBIO": "'PER' (a bare label), 'I' or 'O'",
}
_RESERVED: Dict[str, Tuple[str, ...]] = {
    "IOB1": (), "IOB2": (), "BIOES": (), "BILUO": (), "sBIO": ("O", "I"),
}
# Schemes whose chunks must be closed explicitly (E-/L- or S-/U-).
_CLOSING = frozenset({"BIOES", "BILUO"})


def check_scheme(scheme: str) -> str:
    """Return `scheme` if it is one of SCHEMES (case-sensitive), else raise E004.

    scheme (str): the scheme name.
    RETURNS (str): `scheme`, unchanged.

    >>> check_scheme("BILUO")
    'BILUO'
    """
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise ValueError(Errors.E004.format(scheme=scheme, options=", ".join(SCHEMES)))
    return scheme


def _check_label(label: object, scheme: str) -> str:
    if not isinstance(label, str) or not label or label in _RESERVED[scheme]:
        raise ValueError(Errors.E007.format(label=label, scheme=scheme, reserved=_RESERVED[scheme]))
    return label


def tag_set(labels: Iterable[str], scheme: str) -> List[str]:
    """The deterministic tag inventory of `scheme` over `labels`.

    "O" comes first; then, for each distinct label in sorted order, its prefixed tags in the
    order IOB1: I, B; IOB2: B, I; BIOES: B, I, E, S; BILUO: B, I, L, U. For sBIO the inventory
    is "O", "I", then the sorted labels themselves.

    labels (Iterable[str]): entity labels; duplicates are collapsed. A bad label raises E007.
    scheme (str): one of SCHEMES.
    RETURNS (List[str]): the tags.

    >>> tag_set(["PER", "LOC", "PER"], "IOB2")
    ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']
    >>> tag_set(["PER", "LOC"], "sBIO")
    ['O', 'I', 'LOC', 'PER']
    """
    check_scheme(scheme)
    distinct = sorted({_check_label(label, scheme) for label in labels})
    if scheme == "sBIO":
        return ["O", "I"] + distinct
    prefixes = list(_PREFIXES[scheme])
    return ["O"] + [f"{p}-{label}" for label in distinct for p in prefixes]


def _parse(tag: str, scheme: str) -> _Parsed:
    """Split a tag into (kind, label), or raise E005 for a malformed tag."""
    if tag == "O":
        return "O", None
    if isinstance(tag, str):
        if scheme == "sBIO":
            if tag == "I":
                return "I", None
            if tag:
                return "B", tag
        else:
            prefix, sep, label = tag.partition("-")
            kind = _PREFIXES[scheme].get(prefix)
            if sep and label and kind is not None:
                return kind, label
    raise ValueError(Errors.E005.format(tag=tag, scheme=scheme, example=_EXAMPLES[scheme]))


def _decode(
    tags: Sequence[str], scheme: str, strict: bool
) -> Tuple[List[Span], Optional[Tuple[int, str]]]:
    """Decode `tags` to spans under the repair rules; also return the first repair (i, rule).

    With `strict`, the first repair raises E008 instead.
    """
    check_scheme(scheme)
    parsed = [_parse(tag, scheme) for tag in tags]
    closing = scheme in _CLOSING
    end_prefix = "L" if scheme == "BILUO" else "E"
    spans: List[Span] = []
    repairs: List[Tuple[int, str]] = []
    # The open chunk: its start, label (None: no open chunk) and first tag, for messages.
    start, open_label, open_tag = 0, None, ""

    def repair(i: int, rule: str) -> None:
        if strict:
            raise ValueError(Errors.E008.format(tags=list(tags), scheme=scheme, i=i, rule=rule))
        if not repairs:
            repairs.append((i, rule))

    def unterminated(i: int) -> None:
        # Rule 2: the open BIOES/BILUO chunk's last token is i - 1.
        repair(i - 1, f"the {open_label} chunk opened by '{open_tag}' is not closed by "
                      f"{end_prefix}-{open_label}; it is closed after this token (rule 2)")

    for i, (kind, label) in enumerate(parsed):
        tag = tags[i]
        if kind == "I" and label is None:  # sBIO "I"
            if open_label is None:
                repair(i, "'I' has no open chunk to continue; it is read as O (rule 4)")
            continue
        if (kind == "I" or kind == "E") and open_label == label:  # continue the open chunk
            if kind == "E":
                spans.append((start, i + 1, label))
                open_label = None
            continue
        # Everything else closes the open chunk (if any) before this token.
        if kind == "B" and scheme == "IOB1" and open_label != label:
            repair(i, f"'{tag}' does not follow a {label} chunk; it begins one as I-{label} "
                      f"would (rule 3)")
        elif (kind == "I" and scheme != "IOB1") or kind == "E":
            repair(i, f"'{tag}' has no open {label} chunk to continue; it starts a new one "
                      f"(rule 1)")
        elif closing and open_label is not None:
            unterminated(i)
        if open_label is not None:
            spans.append((start, i, open_label))
            open_label = None
        if kind == "E" or kind == "S":
            spans.append((i, i + 1, label))
        elif kind != "O":
            start, open_label, open_tag = i, label, tag
    if open_label is not None:
        if closing:
            unterminated(len(parsed))
        spans.append((start, len(parsed), open_label))
    return spans, (repairs[0] if repairs else None)


def tags_to_spans(tags: Sequence[str], scheme: str, *, strict: bool = False) -> List[Span]:
    """Decode a tag sequence to entity spans, sorted by start.

    tags (Sequence[str]): one tag per token. A malformed tag raises E005.
    scheme (str): one of SCHEMES.
    strict (bool): raise E008 on an invalid sequence instead of repairing it (module docstring).
    RETURNS (List[Span]): (start, end, label) with end exclusive.

    >>> tags_to_spans(["B-PER", "I-PER", "O", "S-LOC"], "BIOES")
    [(0, 2, 'PER'), (3, 4, 'LOC')]
    >>> tags_to_spans(["O", "I-PER", "I-PER"], "IOB2")  # rule 1
    [(1, 3, 'PER')]
    """
    return _decode(tags, scheme, strict)[0]


def first_repair(tags: Sequence[str], scheme: str) -> Optional[Tuple[int, str]]:
    """Where and why `tags` needs a repair: (token index, rule text), or None if it is valid.

    Meant for warnings (W001) in readers; a malformed tag raises E005.

    tags (Sequence[str]): one tag per token.
    scheme (str): one of SCHEMES.
    RETURNS (Optional[Tuple[int, str]]): the first repair, or None.

    >>> first_repair(["O", "B-MISC"], "IOB1")[0]
    1
    """
    return _decode(tags, scheme, False)[1]


def is_valid(tags: Sequence[str], scheme: str) -> bool:
    """True iff `tags` needs no repair, i.e. it is the canonical encoding of its spans.

    A malformed tag raises E005 (it cannot be repaired either).

    tags (Sequence[str]): one tag per token.
    scheme (str): one of SCHEMES.
    RETURNS (bool): whether the sequence is valid.

    >>> is_valid(["O", "I-PER"], "IOB1"), is_valid(["O", "I-PER"], "IOB2")
    (True, False)
    """
    return first_repair(tags, scheme) is None


def _check_spans(spans: Iterable[Span], n: int, scheme: str) -> List[Span]:
    """Validate spans (E006/E007) and return them as sorted (int, int, str) tuples."""
    checked: List[Span] = []
    for span in spans:
        try:
            start, end, label = span
            start, end = operator.index(start), operator.index(end)
        except (TypeError, ValueError):
            raise ValueError(Errors.E006.format(start=span, end="?", label="?", n=n)) from None
        if not 0 <= start < end <= n:
            raise ValueError(Errors.E006.format(start=start, end=end, label=label, n=n))
        checked.append((start, end, _check_label(label, scheme)))
    checked.sort()
    for (_, prev_end, _), (start, end, label) in zip(checked, checked[1:]):
        if start < prev_end:
            raise ValueError(Errors.E006.format(start=start, end=end, label=label, n=n))
    return checked


def spans_to_tags(spans: Iterable[Span], n: int, scheme: str) -> List[str]:
    """Encode spans as the canonical (valid) tag sequence of `scheme`.

    IOB1 uses I- everywhere except B- for a chunk directly after a chunk of the same label.

    spans (Iterable[Span]): (start, end, label), end exclusive, in any order. They must be
        non-overlapping with 0 <= start < end <= n (E006) and have valid labels (E007).
    n (int): the number of tokens.
    scheme (str): one of SCHEMES.
    RETURNS (List[str]): n tags.

    >>> spans_to_tags([(2, 3, "PER"), (0, 2, "PER")], 4, "IOB1")
    ['I-PER', 'I-PER', 'B-PER', 'O']
    >>> spans_to_tags([(0, 2, "PER"), (3, 4, "LOC")], 4, "sBIO")
    ['PER', 'I', 'O', 'LOC']
    """
    check_scheme(scheme)
    tags = ["O"] * n
    prev_end, prev_label = -1, None
    for start, end, label in _check_spans(spans, n, scheme):
        inside = "I" if scheme == "sBIO" else f"I-{label}"
        tags[start + 1:end] = [inside] * (end - start - 1)
        if scheme == "sBIO":
            tags[start] = label
        elif scheme == "IOB1":
            first = "B" if (start == prev_end and label == prev_label) else "I"
            tags[start] = f"{first}-{label}"
        elif scheme == "IOB2":
            tags[start] = f"B-{label}"
        else:
            surface = _SURFACE[scheme]
            if end - start == 1:
                tags[start] = f"{surface['S']}-{label}"
            else:
                tags[start] = f"B-{label}"
                tags[end - 1] = f"{surface['E']}-{label}"
        prev_end, prev_label = end, label
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> List[str]:
    """Convert a tag sequence between schemes through its spans (repairing invalid input).

    tags (Sequence[str]): one `source` tag per token.
    source (str): the scheme of `tags`.
    target (str): the scheme to produce.
    RETURNS (List[str]): the canonical `target` tags of the same spans.

    >>> convert_tags(["I-PER", "I-PER", "B-PER", "O"], "IOB1", "BILUO")
    ['B-PER', 'L-PER', 'U-PER', 'O']
    """
    check_scheme(source)
    check_scheme(target)
    return spans_to_tags(tags_to_spans(tags, source), len(tags), target)


def allowed_transitions(
    tags: Sequence[str], scheme: str
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean CRF masks over a tag inventory: a sequence y is allowed by them (start[y_0],
    every trans[y_i-1, y_i], end[y_-1]) iff ``is_valid(y, scheme)``.

    tags (Sequence[str]): the inventory, e.g. from `tag_set`. A malformed tag raises E005.
    scheme (str): one of SCHEMES.
    RETURNS (Tuple[Tensor, Tensor, Tensor]): start [L], trans [L, L] (trans[a, b]: tag a may
        be followed by tag b) and end [L], all torch.bool.

    >>> start, trans, end = allowed_transitions(["O", "B-PER", "I-PER"], "IOB2")
    >>> start.tolist(), trans[0].tolist(), end.tolist()
    ([True, True, False], [True, True, False], [True, True, True])
    """
    check_scheme(scheme)
    parsed = [_parse(tag, scheme) for tag in tags]
    L = len(parsed)
    kinds = [kind for kind, _ in parsed]

    def mask(allowed: str) -> torch.Tensor:
        return torch.tensor([k in allowed for k in kinds], dtype=torch.bool).reshape(L)

    # Label ids: equal ids mean the same entity type; -1 for O and the untyped sBIO "I".
    ids: Dict[str, int] = {}
    lab = torch.tensor([ids.setdefault(label, len(ids)) if label is not None else -1
                        for _, label in parsed], dtype=torch.long).reshape(L)
    same = (lab[:, None] == lab[None, :]) & (lab[:, None] >= 0)
    typed = mask("BI")[:, None]  # row tag a is B-X/I-X (or an sBIO label / "I")
    if scheme == "IOB1":
        # Anything may be followed by O or I-X; B-X only directly after an X chunk (rule 3).
        start = mask("OI")
        trans = mask("OI")[None, :] | (mask("B")[None, :] & typed & same)
        end = torch.ones(L, dtype=torch.bool)
    elif scheme in ("IOB2", "sBIO"):
        # Anything may be followed by O or a begin tag; I-X only inside an X chunk (rules 1, 4).
        start = mask("OB")
        cont = typed if scheme == "sBIO" else typed & same
        trans = mask("OB")[None, :] | (mask("I")[None, :] & cont)
        end = torch.ones(L, dtype=torch.bool)
    else:
        # An open chunk (after B-X/I-X) must continue with I-X or E-X (rules 1, 2); a closed one
        # (after O/E/S) is followed by O, B or S.
        start = mask("OBS")
        trans = torch.where(typed, mask("IE")[None, :] & same, mask("OBS")[None, :].expand(L, L))
        end = mask("OES")
    return start, trans.reshape(L, L), end
