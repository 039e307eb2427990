"""Dependency parsing as sequence labelling (Strzyz et al. 2019) and the teacher -> student label map.

Each word gets one label that names its head and relation, so a tagger can be a parser student
(docs/algorithms.md §5.1, §5.2). Label grammar, for word i (1-based) with head h (0 = ROOT) and relation r:

    label  := head "_" rel   split at the FIRST "_": head parts never contain "_", relations may
                             (and may contain ":", e.g. "obl:tmod", "nmod:poss"); rel is non-empty.
    offset: head := "ROOT" | ("+" | "-") k   "ROOT" when h == 0, else the offset h - i (k >= 1).
    relpos: head := ("+" | "-") k "@" P      h is the k-th word (k >= 1) tagged P right (+) / left (-)
                                             of i; the root is "-1@ROOT". P has no "_" or "@" and is
                                             never "ROOT".
e.g. offset "+1_det", "-2_nsubj", "ROOT_root"; relpos "+1@NOUN_det", "-1@ROOT_root".

`decode` is the pure sequence-labelling decoder with heuristic repair; `LabelSpace` maps a teacher
parser's arc x relation distribution onto the student's label vocabulary with tensor gathers and
decodes label distributions with MST (always a well-formed tree).
"""
import re
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import Errors
from ._util import check_float, check_shape, log_zero
from .tree import _find_cycle, mst

ROOT = "ROOT"
# Label-support indices kept by a LabelSpace (32 MiB of int64): every length of EWT up to ~110 words.
SUPPORT_CACHE_ENTRIES = 2**22
UNKNOWN_REL = "dep"  # relation given to words whose label does not parse (UD's generic relation)
_OFFSET = re.compile(r"[+-][1-9][0-9]*")
_RELPOS = re.compile(r"([+-])([1-9][0-9]*)@([^@]+)")
# A parsed head part: offset -> signed offset (0 = ROOT); relpos -> (signed k, PoS) with (-1, "ROOT") = ROOT.
HeadSpec = Union[int, Tuple[int, str]]


class _Encoding:
    name = ""
    needs_pos = False

    def encode(self, heads: Sequence[int], rels: Sequence[str], pos: Optional[Sequence[str]] = None) -> List[str]:
        """heads[i] = head of word i+1 (0 = ROOT). RETURNS one label per word."""
        n = len(heads)
        if len(rels) != n:
            raise ValueError(Errors.E013.format(n_heads=n, n_rels=len(rels)))
        pos = self._check_pos(pos, n)
        labels = []
        for i, (h, r) in enumerate(zip(heads, rels), 1):
            if not 0 <= h <= n or h == i:
                raise ValueError(Errors.E014.format(head=h, word=i, n=n))
            if not isinstance(r, str) or not r:
                raise ValueError(Errors.E015.format(rel=r, word=i))
            labels.append(f"{self._head_part(i, int(h), pos)}_{r}")
        return labels

    def decode(self, labels: Sequence[str], pos: Optional[Sequence[str]] = None) -> Tuple[List[int], List[str]]:
        """Labels -> (heads, rels), always a single-root tree. Unparseable labels and heads that
        cannot be found count as headless; `repair` then fixes roots, headless words and cycles."""
        pos = self._check_pos(pos, len(labels))
        heads, rels = [], []
        for i, label in enumerate(labels, 1):
            parsed = self.parse(label)
            heads.append(-1 if parsed is None else self._find_head(i, parsed[0], pos, len(labels)))
            rels.append(UNKNOWN_REL if parsed is None else parsed[1])
        return repair(heads, rels), rels

    def parse(self, label: str) -> Optional[Tuple[HeadSpec, str]]:
        """label -> (head spec, relation), or None when it does not follow the grammar."""
        head, sep, rel = label.partition("_") if isinstance(label, str) else ("", "", "")
        spec = self._parse_head(head) if sep and rel else None
        return None if spec is None else (spec, rel)

    def _check_pos(self, pos, n) -> Optional[List[str]]:
        if not self.needs_pos:
            return None
        if pos is None or len(pos) != n:
            raise ValueError(Errors.E012.format(name=self.name, got=None if pos is None else len(pos), n=n))
        for i, p in enumerate(pos, 1):
            if not isinstance(p, str) or not p or "_" in p or "@" in p or p == ROOT:
                raise ValueError(Errors.E016.format(tag=p, word=i))
        return list(pos)

    def _head_part(self, i: int, h: int, pos: Optional[List[str]]) -> str:
        raise NotImplementedError

    def _parse_head(self, part: str) -> Optional[HeadSpec]:
        raise NotImplementedError

    def _find_head(self, i: int, spec: HeadSpec, pos: Optional[List[str]], n: int) -> int:
        raise NotImplementedError


class RelOffsetEncoding(_Encoding):
    """Head as the signed position offset h - i (StructuralKD's encoding), with one ROOT symbol
    instead of the position-dependent offset -i, so the root needs one label per relation."""

    name = "offset"
    needs_pos = False

    def _head_part(self, i, h, pos):
        return ROOT if h == 0 else f"{h - i:+d}"

    def _parse_head(self, part):
        if part == ROOT:
            return 0
        return int(part) if _OFFSET.fullmatch(part) else None

    def _find_head(self, i, spec, pos, n):
        if spec == 0:
            return 0
        h = i + spec
        return h if 1 <= h <= n else -1


class RelPosEncoding(_Encoding):
    """Head as the k-th word with the head's PoS to the right (+k) or left (-k) (Strzyz et al. 2019,
    dep2label). Needs PoS tags at training and decoding time (gold or predicted)."""

    name = "relpos"
    needs_pos = True

    def _head_part(self, i, h, pos):
        if h == 0:
            return f"-1@{ROOT}"
        p = pos[h - 1]
        if h > i:
            return f"+{sum(q == p for q in pos[i:h])}@{p}"  # words i+1..h
        return f"-{sum(q == p for q in pos[h - 1:i - 1])}@{p}"  # words h..i-1

    def _parse_head(self, part):
        if part == f"-1@{ROOT}":
            return (-1, ROOT)
        m = _RELPOS.fullmatch(part)
        if m is None or m.group(3) == ROOT:
            return None
        return (int(m.group(2)) * (1 if m.group(1) == "+" else -1), m.group(3))

    def _find_head(self, i, spec, pos, n):
        k, p = spec
        if p == ROOT:
            return 0
        span = range(i + 1, n + 1) if k > 0 else range(i - 1, 0, -1)  # nearest first
        found = [j for j in span if pos[j - 1] == p]
        k = abs(k)
        if len(found) >= k:
            return found[k - 1]
        # dep2label's fallback: the (k-1)-th such word. Its further k+1 retry in the same direction
        # can never succeed once the k-th word is missing, so it is left out.
        if k > 1 and len(found) == k - 1:
            return found[-1]
        return -1


ENCODINGS: Dict[str, type] = {"offset": RelOffsetEncoding, "relpos": RelPosEncoding}


def get_encoding(name: str) -> _Encoding:
    """Encoding by its config name, "offset" or "relpos".

    >>> get_encoding("offset").encode([2, 0], ["det", "root"])
    ['+1_det', 'ROOT_root']
    >>> get_encoding("relpos").decode(["+1@NOUN_det", "-1@ROOT_root"], ["DET", "NOUN"])
    ([2, 0], ['det', 'root'])
    """
    if name not in ENCODINGS:
        raise ValueError(Errors.E011.format(name=name, options=", ".join(ENCODINGS)))
    return ENCODINGS[name]()


def repair(heads: Sequence[int], rels: Sequence[str]) -> List[int]:
    """Make a single-root tree from decoded heads (-1 = headless) as dep2label's post-processing
    does: (1) no root: promote the words whose relation is 'root', else word 1; (2) several roots:
    keep the first, attach the others to it; (3) attach headless words to the root word; (4) while
    there is a cycle, attach its first revisited word to the root word."""
    heads = [int(h) for h in heads]
    n = len(heads)
    if n == 0:
        return heads
    roots = [i for i, h in enumerate(heads, 1) if h == 0]
    if not roots:
        roots = [i for i, r in enumerate(rels, 1) if r.lower() == "root"] or [1]
    root = roots[0]
    for i in roots[1:]:
        heads[i - 1] = root
    heads[root - 1] = 0
    heads = [root if h < 0 else h for h in heads]
    while True:
        cycle = _find_cycle([-1] + heads)
        if cycle is None:
            return heads
        heads[cycle[0] - 1] = root


class LabelSpace:
    """The student's label vocabulary as tensors, so the teacher -> student map is a gather.

    labels (Sequence[str]): the student's labels (vocabulary V).
    rels (Sequence[str]): the teacher's relations in the teacher's order (R). A label whose
        relation is not among them never receives teacher mass.
    encoding (str or encoding): "offset" or "relpos" (or an instance from `get_encoding`).
    pos_tags (Sequence[str]): relpos only, the PoS inventory that `pos_ids` index. Column 0 of
        `pos_ids` (the ROOT position) is ignored, so any id may sit there: the root is addressed by
        the dedicated "-1@ROOT" head, never through a PoS. Ids outside the inventory match no label.
    Labels that do not parse (or name a PoS outside `pos_tags`) never point at any head.
    """

    def __init__(self, labels: Sequence[str], rels: Sequence[str], encoding: Union[str, _Encoding],
                 pos_tags: Optional[Sequence[str]] = None):
        self.encoding = get_encoding(encoding) if isinstance(encoding, str) else encoding
        if self.encoding.needs_pos and pos_tags is None:
            raise ValueError(Errors.E017.format(what="the PoS inventory `pos_tags`"))
        self.labels, self.rels = list(labels), list(rels)
        self.pos_tags = list(pos_tags or [])
        self._index = {label: v for v, label in enumerate(self.labels)}
        rel_index = {r: j for j, r in enumerate(self.rels)}
        pos_index = {p: j for j, p in enumerate(self.pos_tags)}
        ok, root, step, pos_id, rel_id, self.label_rels = [], [], [], [], [], []
        for label in self.labels:
            parsed = self.encoding.parse(label)
            spec, rel = parsed if parsed is not None else (0, "")
            k, tag = spec if isinstance(spec, tuple) else (spec, None)
            is_root = parsed is not None and (tag == ROOT if isinstance(spec, tuple) else spec == 0)
            ok.append(parsed is not None and (tag is None or is_root or tag in pos_index))
            root.append(is_root)
            step.append(k)
            pos_id.append(pos_index.get(tag, 0))
            rel_id.append(rel_index.get(rel, -1))
            self.label_rels.append(rel)
        self._ok = torch.tensor(ok, dtype=torch.bool)  # [V] label points at some head
        self._root = torch.tensor(root, dtype=torch.bool)  # [V] head is ROOT
        self._step = torch.tensor(step, dtype=torch.long)  # [V] offset or signed k
        self._pos = torch.tensor(pos_id, dtype=torch.long)  # [V] relpos: head PoS id
        self._rel = torch.tensor(rel_id, dtype=torch.long)  # [V] teacher relation id, -1 = none
        # n -> support_index(n), least recently used first, at most SUPPORT_CACHE_ENTRIES indices in all
        self._support_index: "OrderedDict[int, torch.Tensor]" = OrderedDict()

    def __len__(self) -> int:
        return len(self.labels)

    def support(self, n: int) -> torch.Tensor:
        """[n, V] bool: the labels that can receive teacher mass from each word of an n-word
        sentence (`teacher_log_probs` gives every other label log_zero). With the offset encoding
        it depends on n alone, so a sentence's targets can be stored as their values on it.
        Offset only: relpos heads depend on the sentence's PoS tags."""
        if self.encoding.needs_pos:
            raise ValueError(Errors.E017.format(what="PoS tags per sentence: its support is not fixed by "
                                                     "the length alone"))
        n = int(n)
        _, valid = self._heads(torch.tensor([n]), 1, n, None, torch.device("cpu"))
        return valid[0] & (self._rel >= 0)

    def support_index(self, n: int) -> torch.Tensor:
        """[K] long: the positions of `support(n)` in the flattened [n * V] label scores, in order.
        Kept for the recently used lengths (a training step places each sentence's stored values
        with one index_copy), within SUPPORT_CACHE_ENTRIES indices: the long texts of an
        unlabeled corpus, each of its own length, must not pile up ~n * V indices apiece."""
        n = int(n)
        index = self._support_index.get(n)
        if index is None:
            index = self.support(n).reshape(-1).nonzero().squeeze(1)
            self._support_index[n] = index
            kept = sum(x.numel() for x in self._support_index.values())
            while kept > SUPPORT_CACHE_ENTRIES and len(self._support_index) > 1:
                kept -= self._support_index.popitem(last=False)[1].numel()
        self._support_index.move_to_end(n)
        return index

    def teacher_log_probs(self, arc_log_probs: torch.Tensor, rel_log_probs: torch.Tensor, lengths: torch.Tensor,
                          pos_ids: Optional[torch.Tensor] = None, *, with_lost: bool = True,
                          dtype: Optional[torch.dtype] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Teacher mass on each student label: log P(h) + log P(r | h) at the label's (head, rel).

        arc_log_probs (Tensor): [B, N, N+1], log P_t(head = h | word i+1), h = 0..N (0 = ROOT).
        rel_log_probs (Tensor): [B, N, N+1, R], log P_t(rel = r | word i+1, head h).
        lengths (LongTensor): [B]. pos_ids (LongTensor): [B, N+1], relpos only (column 0 = ROOT).
        with_lost (bool): also return `lost` (below).
        dtype (Optional[torch.dtype]): of log_q (default: the inputs'). The sum is taken in it
            after the gather, so float32 scores give float64 targets without a float64 copy of
            the [B, N, N+1, R] relation scores.
        RETURNS (Tuple[Tensor, Tensor]): log_q [B, N, V], log_zero where the label's head is not a
            word of the sentence (or ROOT), is the word itself, or its relation is not the
            teacher's, and on padding; lost [B, N], the teacher mass on (head, rel) pairs no label
            covers (including mass on invalid heads), 0 past lengths. Exact: no probability floor
            and no renormalisation, so exp(log_q).sum(-1) + lost is the teacher's total mass.
            None if not `with_lost`: it takes an exp over all [B, N, N+1, R] (head, rel) pairs,
            most of the cost, and only the report at initialize reads it.
        """
        check_float(arc_log_probs)
        if arc_log_probs.dim() != 3 or arc_log_probs.shape[2] != arc_log_probs.shape[1] + 1:
            raise ValueError(Errors.E002.format(name="arc_log_probs", expected="[B, N, N+1]",
                                                shape=tuple(arc_log_probs.shape)))
        B, N, H = arc_log_probs.shape
        R = len(self.rels)
        check_shape("rel_log_probs", rel_log_probs, (B, N, H, R))
        head, valid = self._heads(lengths, B, N, pos_ids, arc_log_probs.device)  # [B, N, V]
        rel = self._rel.to(arc_log_probs.device)
        valid = valid & (rel >= 0)
        flat = head * R + rel.clamp_min(0)  # [B, N, V] index into (head, rel)
        dtype = dtype or arc_log_probs.dtype
        neg = log_zero(dtype)
        # log P(h) + log P(r | h) at each label's (head, rel): two gathers, no [B, N, H, R] sum
        log_q = arc_log_probs.gather(2, head).to(dtype) + rel_log_probs.reshape(B, N, H * R).gather(2, flat).to(dtype)
        log_q = log_q.clamp_min(neg).masked_fill(~valid, neg)
        if not with_lost:
            return log_q, None
        joint = arc_log_probs.unsqueeze(-1).to(dtype) + rel_log_probs.to(dtype)  # [B, N, H, R]
        # Each (word, head, rel) has at most one label, so covered mass is exact; invalid labels
        # scatter into a spare column H * R that is dropped.
        covered = torch.zeros(B, N, H * R + 1, dtype=torch.bool, device=joint.device)
        covered.scatter_(2, torch.where(valid, flat, H * R), True)
        uncovered = joint.reshape(B, N, H * R).exp().masked_fill(covered[..., :-1], 0.0)
        words = torch.arange(N, device=joint.device) < lengths.to(joint.device).unsqueeze(1)  # [B, N]
        return log_q, uncovered.sum(-1) * words

    def head_scores(self, label_log_probs: torch.Tensor, lengths: torch.Tensor,
                    pos_ids: Optional[torch.Tensor] = None, top_k: Optional[int] = None) -> torch.Tensor:
        """label_log_probs [B, N, V] -> dependent x head scores [B, N+1, N+1] for `mst`: the
        log-sum-exp over the labels that point at each head; log_zero where none does; row 0 dummy.
        top_k: only each word's k most probable labels count (None: all, exact). Decoding needs
        the few likely heads, not the tail of ~1000 labels, and skips [B, N, V] index work."""
        check_float(label_log_probs)
        if label_log_probs.dim() != 3 or label_log_probs.shape[2] != len(self):
            raise ValueError(Errors.E002.format(name="label_log_probs", expected=f"[B, N, {len(self)}]",
                                                shape=tuple(label_log_probs.shape)))
        lp, labels = self._candidates(label_log_probs, top_k)
        return self._head_scores(lp, labels, lengths, pos_ids)

    def _candidates(self, label_log_probs: torch.Tensor, top_k: Optional[int]):
        """(log-probs [B, N, K], label ids [B, N, K] or None for all V labels)."""
        if top_k is None or top_k >= label_log_probs.shape[-1]:
            return label_log_probs, None
        return label_log_probs.topk(max(int(top_k), 1), dim=-1)

    def _head_scores(self, lp: torch.Tensor, labels: Optional[torch.Tensor], lengths: torch.Tensor,
                     pos_ids: Optional[torch.Tensor]) -> torch.Tensor:
        B, N, _ = lp.shape
        H = N + 1
        head, valid = self._heads(lengths, B, N, pos_ids, lp.device, labels)
        neg = log_zero(lp.dtype)
        idx = torch.where(valid, head, H)  # labels with no head go to a spare column H
        lp = lp.masked_fill(~valid, neg)
        top = lp.new_full((B, N, H + 1), neg).scatter_reduce(2, idx, lp, "amax")  # [B, N, H+1]
        total = lp.new_zeros(B, N, H + 1).scatter_add(2, idx, (lp - top.gather(2, idx)).exp())
        scores = torch.where(total > 0, top + total.clamp_min(1e-30).log(), lp.new_full((), neg))
        return torch.cat([lp.new_full((B, 1, H), neg), scores[..., :H]], dim=1)

    def decode(self, label_log_probs: torch.Tensor, lengths: torch.Tensor,
               pos_ids: Optional[torch.Tensor] = None,
               top_k: Optional[int] = None) -> Tuple[torch.Tensor, List[List[str]]]:
        """Tree decoding: MST over `head_scores` (always a single-root tree); each word's relation
        is that of its best label pointing at the chosen head (of its best label overall when none
        does). top_k as for `head_scores`. RETURNS heads [B, N+1] (as `mst`) and the relations of
        each sentence's words."""
        check_float(label_log_probs)
        lp, labels = self._candidates(label_log_probs, top_k)
        heads = mst(self._head_scores(lp, labels, lengths, pos_ids), lengths)
        B, N, K = lp.shape
        head, valid = self._heads(lengths, B, N, pos_ids, lp.device, labels)
        match = valid & (head == heads[:, 1:].unsqueeze(-1))  # [B, N, K]
        at_head = lp.masked_fill(~match, float("-inf")).argmax(-1)  # [B, N]
        best = torch.where(match.any(-1), at_head, lp.argmax(-1))  # position among the candidates
        if labels is not None:
            best = labels.gather(2, best.unsqueeze(-1)).squeeze(-1)
        best = best.tolist()
        rels = [[self.label_rels[v] or UNKNOWN_REL for v in best[b][:n]] for b, n in enumerate(lengths.tolist())]
        return heads, rels

    def label_ids(self, heads: Sequence[int], rels: Sequence[str], pos: Optional[Sequence[str]] = None) -> List[int]:
        """Encode a gold tree (heads[i] = head of word i+1) to vocabulary ids; -1 = label not in V."""
        return [self._index.get(label, -1) for label in self.encoding.encode(heads, rels, pos)]

    def _heads(self, lengths, B, N, pos_ids, device, labels: Optional[torch.Tensor] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """RETURNS head [B, N, V] (long, in 0..N) each label points at from word i+1, and valid
        [B, N, V]: the head exists in the sentence and the word itself is not padding. With
        `labels` [B, N, K] (label ids per word), the same for those labels only: [B, N, K]."""
        check_shape("lengths", lengths, (B,))
        lengths = lengths.to(device=device, dtype=torch.long)
        if B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
            raise ValueError(Errors.E003.format(max_len=N, lengths=lengths.tolist()))
        ok, root, step = self._ok.to(device), self._root.to(device), self._step.to(device)
        if labels is not None:
            ok, root, step = ok[labels], root[labels], step[labels]  # [B, N, K]
        i = torch.arange(1, N + 1, device=device)  # [N] word positions
        word = (i <= lengths.unsqueeze(1)).unsqueeze(-1)  # [B, N, 1]
        n = lengths.view(B, 1, 1)
        if not self.encoding.needs_pos:
            h = (i.unsqueeze(1) + step).expand(B, N, -1)  # [B, N, V]
            valid = ok & word & (root | ((h >= 1) & (h <= n)))
        else:
            h, found = self._relpos_heads(lengths, B, N, pos_ids, device, labels)
            valid = ok & word & (root | found)
        head = torch.where(root | ~valid, 0, h)
        return head, valid

    def _relpos_heads(self, lengths, B, N, pos_ids, device, labels: Optional[torch.Tensor] = None
                      ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Head of each (word, relpos label) by prefix counts C[b, j, p] = #{words <= j tagged p}:
        "+k@p" from word i is the (C[i, p] + k)-th p-word, "-k@p" the (C[i-1, p] - k + 1)-th."""
        if pos_ids is None:
            raise ValueError(Errors.E017.format(what="`pos_ids`"))
        check_shape("pos_ids", pos_ids, (B, N + 1))
        P = max(len(self.pos_tags), 1)
        tags = pos_ids[:, 1:].to(device=device, dtype=torch.long)  # [B, N]
        j = torch.arange(1, N + 1, device=device)
        real = (j <= lengths.unsqueeze(1)) & (tags >= 0) & (tags < len(self.pos_tags))
        onehot = torch.nn.functional.one_hot(tags.clamp(0, P - 1), P) * real.unsqueeze(-1)  # [B, N, P]
        C = torch.cat([onehot.new_zeros(B, 1, P), onehot.cumsum(1)], dim=1)  # [B, N+1, P]
        # occ[b, p, t] = position of the t-th word tagged p (0 = none); padding writes 0 into slot 0.
        t_word = C[:, 1:].gather(2, tags.clamp(0, P - 1).unsqueeze(-1)).squeeze(-1)  # [B, N]
        slot = torch.where(real, tags.clamp(0, P - 1) * (N + 2) + t_word, 0)
        occ = C.new_zeros(B, P * (N + 2)).scatter_(1, slot, torch.where(real, j, 0))
        if labels is None:
            V = len(self)
            pos = self._pos.to(device).view(1, 1, V).expand(B, N, V)
            step = self._step.to(device)
        else:
            V = labels.shape[-1]
            pos, step = self._pos.to(device)[labels], self._step.to(device)[labels]  # [B, N, K]
        here = C[:, 1:].gather(2, pos)  # [B, N, V] count up to word i
        before = C[:, :-1].gather(2, pos)  # [B, N, V] count up to word i-1
        t = torch.where(step > 0, here + step, before + step + 1)  # [B, N, V] occurrence number
        in_range = (t >= 1) & (t <= N)
        h = occ.gather(1, (pos * (N + 2) + t.clamp(0, N + 1)).view(B, N * V)).view(B, N, V)
        return h, in_range & (h >= 1)
