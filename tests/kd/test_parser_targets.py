"""Cases 1b / 2b targets (spacy_skd.kd.parser_targets): a parser teacher's P(h) P(r | h) in a
sequence-labelling student's joint label vocabulary, against a plain double loop over
(word, label) on small random teachers and random vocabularies (labels pointing outside the
sentence, relations the teacher lacks, unparseable labels), and the teacher's best tree
against enumeration of every tree."""
import itertools
import math
from typing import List, Optional, Tuple

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.kd.objectives import token_kl_loss
from spacy_skd.kd.parser_targets import SUPPORT_VALUES, ParserPotentials, pack_targets, parser_targets, unpack_targets
from spacy_skd.kd.targets import KDTargets
from spacy_skd.structs._util import log_zero
from spacy_skd.structs.parse_labels import LabelSpace

RELS = ("a", "b", "c")
MISSING_REL = "zz"  # a relation the teacher never predicts
SETTINGS = settings(max_examples=25, deadline=None)
dims = dict(seed=st.integers(0, 2**16), N=st.integers(1, 5), R=st.integers(1, 3))
NEG32 = log_zero(torch.float32)


def random_teacher(seed: int, N: int, R: int, B: int = 2) -> ParserPotentials:
    """Word rows as `DependencyParser.teacher_batch` pads them (float32): log P(h) normalised over
    ROOT and the other words, log_zero at the word itself, past its length and on padded rows;
    log P(r | h) normalised over relations, zeros on padded rows."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, N + 1, (B,), generator=g)
    lengths[0] = N  # at least one full sentence
    arc = torch.full((B, N, N + 1), NEG32)
    rel = torch.zeros(B, N, N + 1, R)
    for b, n in enumerate(lengths.tolist()):
        for i in range(n):
            heads = [h for h in range(n + 1) if h != i + 1]
            scores = torch.randn(len(heads), generator=g) * 2.0
            arc[b, i, heads] = scores.log_softmax(-1)
            rel[b, i, : n + 1] = (torch.randn(n + 1, R, generator=g) * 2.0).log_softmax(-1)
    return ParserPotentials("biaffine", arc, rel, lengths)


def random_vocabulary(seed: int, R: int) -> List[str]:
    """About half of every (head, relation) label with offsets up to +-6 (beyond N <= 5), with the
    teacher's relations and one it lacks, plus sometimes an unparseable label; shuffled."""
    g = torch.Generator().manual_seed(seed + 1)
    heads = ["ROOT"] + [f"{sign}{k}" for k in range(1, 7) for sign in "+-"]
    candidates = [f"{h}_{r}" for h in heads for r in RELS[:R] + (MISSING_REL,)] + ["junk", "+1x_a"]
    keep = torch.rand(len(candidates), generator=g) < 0.5
    keep[int(torch.randint(len(candidates), (1,), generator=g))] = True
    labels = [label for label, k in zip(candidates, keep.tolist()) if k]
    return [labels[j] for j in torch.randperm(len(labels), generator=g).tolist()]


def label_target(label: str, word: int, n: int, rels) -> Optional[Tuple[int, int]]:
    """(head, relation id) that `label` names for 1-based `word` in a sentence of n words, or None
    when the head lies outside the sentence or the teacher lacks the relation."""
    head, sep, rel = label.partition("_")
    if not sep or rel not in rels:
        return None
    if head == "ROOT":
        return 0, rels.index(rel)
    if len(head) < 2 or head[0] not in "+-" or not head[1:].isdigit():
        return None
    h = word + int(head)
    return (h, rels.index(rel)) if 1 <= h <= n else None


def reference_mass(teacher: ParserPotentials, labels: List[str]) -> torch.Tensor:
    """p[b, i, v] = P(h_v | i) P(r_v | i, h_v) for every word and label, 0 where v is impossible."""
    B, N, _ = teacher.arc.shape
    rels = list(RELS[: teacher.rel.shape[-1]])
    p = torch.zeros(B, N, len(labels), dtype=torch.float64)
    for b, n in enumerate(teacher.lengths.tolist()):
        for i in range(n):
            for v, label in enumerate(labels):
                target = label_target(label, i + 1, n, rels)
                if target is not None:
                    h, r = target
                    p[b, i, v] = math.exp(teacher.arc[b, i, h]) * math.exp(teacher.rel[b, i, h, r])
    return p


def reference_global(teacher: ParserPotentials, labels: List[str], T: float) -> torch.Tensor:
    """q[b, i, v] ∝ P_T(h_v | i) P_T(r_v | i, h_v), each factor tempered and renormalised on its
    own (over ROOT and the other words; over relations), then renormalised over the labels."""
    B, N, _ = teacher.arc.shape
    R = teacher.rel.shape[-1]
    rels = list(RELS[:R])
    q = torch.zeros(B, N, len(labels), dtype=torch.float64)
    for b, n in enumerate(teacher.lengths.tolist()):
        for i in range(n):
            heads = [h for h in range(n + 1) if h != i + 1]
            z_arc = sum(math.exp(float(teacher.arc[b, i, h]) / T) for h in heads)
            for v, label in enumerate(labels):
                target = label_target(label, i + 1, n, rels)
                if target is None:
                    continue
                h, r = target
                z_rel = sum(math.exp(float(teacher.rel[b, i, h, s]) / T) for s in range(R))
                q[b, i, v] = (math.exp(float(teacher.arc[b, i, h]) / T) / z_arc
                              * math.exp(float(teacher.rel[b, i, h, r]) / T) / z_rel)
    return renormalise(q)


def renormalise(p: torch.Tensor) -> torch.Tensor:
    total = p.sum(-1, keepdim=True)
    return torch.where(total > 0, p / total.clamp_min(1e-300), torch.zeros_like(p))


def best_tree(arc: torch.Tensor, n: int) -> List[int]:
    """The highest-scoring single-root tree by enumeration: heads[i] of word i+1 (0 = ROOT)."""
    best, best_score = None, -math.inf
    for heads in itertools.product(range(n + 1), repeat=n):
        if sum(h == 0 for h in heads) != 1 or any(h == i + 1 for i, h in enumerate(heads)):
            continue
        if not all(reaches_root(heads, i + 1) for i in range(n)):
            continue
        score = sum(float(arc[i, h]) for i, h in enumerate(heads))
        if score > best_score:
            best, best_score = list(heads), score
    return best


def reaches_root(heads, word: int) -> bool:
    for _ in range(len(heads)):
        word = heads[word - 1]
        if word == 0:
            return True
    return False


def space_for(labels: List[str], R: int) -> LabelSpace:
    return LabelSpace(labels, RELS[:R], "offset")


@SETTINGS
@given(**dims)
def test_parser_targets_t1_is_joint_renormalised_over_vocabulary(seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    expected = renormalise(reference_mass(teacher, labels))
    for mode in ("local", "global"):
        targets, _ = parser_targets(teacher, space_for(labels, R), temperature=1.0, mode=mode)
        assert targets.unary.shape == expected.shape
        assert targets.mode == "local" and targets.temperature == 1.0
        assert torch.allclose(targets.unary.double(), expected, atol=1e-6)


@SETTINGS
@given(**dims)
def test_parser_targets_lost_is_mass_outside_vocabulary(seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    p = reference_mass(teacher, labels)
    words = torch.arange(N) < teacher.lengths.unsqueeze(1)
    expected = (1.0 - p.sum(-1)) * words
    for T, mode in [(1.0, "local"), (3.0, "local"), (3.0, "global")]:  # lost is the T = 1 mass
        _, lost = parser_targets(teacher, space_for(labels, R), temperature=T, mode=mode)
        assert lost.shape == (2, N)
        assert torch.allclose(lost.double(), expected, atol=1e-6)


@pytest.mark.parametrize("T", [0.5, 2.0, 3.0])
@SETTINGS
@given(**dims)
def test_parser_targets_local_temperature_tempers_joint(T, seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    expected = renormalise(reference_mass(teacher, labels) ** (1.0 / T))
    targets, _ = parser_targets(teacher, space_for(labels, R), temperature=T, mode="local")
    assert targets.mode == "local" and targets.temperature == T
    assert torch.allclose(targets.unary.double(), expected, atol=1e-6)


@pytest.mark.parametrize("T", [0.5, 2.0, 3.0])
@SETTINGS
@given(**dims)
def test_parser_targets_global_temperature_tempers_each_factor(T, seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    expected = reference_global(teacher, labels, T)
    targets, _ = parser_targets(teacher, space_for(labels, R), temperature=T, mode="global")
    assert targets.mode == "global" and targets.temperature == T
    assert torch.allclose(targets.unary.double(), expected, atol=1e-6)


def test_parser_targets_local_and_global_temperature_by_hand():
    """One word, two heads with different relation distributions and every label in the
    vocabulary: local gives (P(h) P(r | h))^(1/T), global P_T(h) P_T(r | h), which differ."""
    p_h, p_r = [0.2, 0.8], [[0.5, 0.5], [0.9, 0.1]]  # word 1: heads ROOT, word 2; relations a, b
    arc = torch.tensor([[[math.log(p_h[0]), NEG32, math.log(p_h[1])], [0.0, NEG32, NEG32]]])  # word 2 -> ROOT
    rel = torch.zeros(1, 2, 3, 2)
    rel[0, 0, 0], rel[0, 0, 2] = torch.tensor(p_r[0]).log(), torch.tensor(p_r[1]).log()
    rel[0, 1] = torch.tensor([0.5, 0.5]).log()
    teacher = ParserPotentials("mfvi", arc, rel, torch.tensor([2]))
    space = LabelSpace(["ROOT_a", "ROOT_b", "+1_a", "+1_b"], ["a", "b"], "offset")
    joint = torch.tensor([p_h[0] * p_r[0][0], p_h[0] * p_r[0][1], p_h[1] * p_r[1][0], p_h[1] * p_r[1][1]],
                         dtype=torch.float64)
    T = 2.0
    local = joint ** (1 / T) / (joint ** (1 / T)).sum()
    h_T = torch.tensor(p_h, dtype=torch.float64) ** (1 / T)
    h_T = h_T / h_T.sum()
    r_T = torch.tensor(p_r, dtype=torch.float64) ** (1 / T)
    r_T = r_T / r_T.sum(-1, keepdim=True)
    glob = (h_T[:, None] * r_T).reshape(-1)
    assert not torch.allclose(local, glob, atol=1e-3)
    for mode, expected in (("local", local), ("global", glob)):
        targets, _ = parser_targets(teacher, space, temperature=T, mode=mode)
        assert torch.allclose(targets.unary[0, 0].double(), expected, atol=1e-6)


@pytest.mark.parametrize("mode", ["local", "global"])
@SETTINGS
@given(**dims)
def test_parser_targets_large_temperature_is_uniform_over_valid_labels(mode, seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    possible = reference_mass(teacher, labels) > 0
    expected = renormalise(possible.double())
    targets, _ = parser_targets(teacher, space_for(labels, R), temperature=1e4, mode=mode)
    assert torch.allclose(targets.unary.double(), expected, atol=2e-3)
    assert bool((targets.unary[~possible] == 0).all())  # impossible labels stay at zero


@pytest.mark.parametrize("T,mode", [(1.0, "local"), (3.0, "local"), (3.0, "global"), (0.5, "global")])
@SETTINGS
@given(**dims)
def test_parser_targets_rows_sum_to_one_and_zero_past_lengths(T, mode, seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    targets, lost = parser_targets(teacher, space_for(labels, R), temperature=T, mode=mode)
    has_mass = reference_mass(teacher, labels).sum(-1) > 0  # [B, N], False past lengths
    assert torch.allclose(targets.unary.sum(-1).double(), has_mass.double(), atol=1e-6)
    for b, n in enumerate(teacher.lengths.tolist()):
        assert bool((targets.unary[b, n:] == 0).all())
        assert bool((lost[b, n:] == 0).all())
        assert targets.top1[b, n:].tolist() == [-1] * (N - n)
    assert torch.equal(targets.lengths, teacher.lengths)


@SETTINGS
@given(**dims)
def test_parser_targets_top1_is_best_tree_encoded(seed, N, R):
    teacher, labels = random_teacher(seed, N, R), random_vocabulary(seed, R)
    targets, _ = parser_targets(teacher, space_for(labels, R), temperature=2.0, mode="local")
    index = {label: v for v, label in enumerate(labels)}
    for b, n in enumerate(teacher.lengths.tolist()):
        heads = best_tree(teacher.arc[b].double(), n) if n else []
        expected = []
        for i, h in enumerate(heads):
            r = int(teacher.rel[b, i, h].argmax())
            head = "ROOT" if h == 0 else f"{h - (i + 1):+d}"
            expected.append(index.get(f"{head}_{RELS[r]}", -1))
        assert targets.top1[b].tolist() == expected + [-1] * (N - n)


@pytest.mark.parametrize("T,mode", [(1.0, "local"), (3.0, "local"), (3.0, "global"), (100.0, "local"),
                                    (1e6, "local"), (1e-4, "local"), (1e-4, "global")])
def test_parser_targets_word_without_vocabulary_mass_gets_zero_row(T, mode):
    """Word 2 of 2 has no label it can take: "+1_a" points past the sentence and the teacher has
    no relation "zz". Its row is zero at every temperature (locally tempered log-zero used to
    rise above the "no mass" threshold for T > 2, giving a uniform row over impossible labels,
    and to overflow to NaN for tiny T)."""
    arc = torch.tensor([[[math.log(0.3), NEG32, math.log(0.7)], [math.log(0.4), math.log(0.6), NEG32]]])
    rel = torch.zeros(1, 2, 3, 1)  # one relation "a": P(a | h) = 1
    teacher = ParserPotentials("biaffine", arc, rel, torch.tensor([2]))
    space = LabelSpace(["+1_a", "-1_zz"], ["a"], "offset")
    targets, lost = parser_targets(teacher, space, temperature=T, mode=mode)
    assert targets.unary[0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert lost[0].tolist() == pytest.approx([0.3, 1.0], abs=1e-6)
    # teacher's tree: word 2 -> ROOT (0.4), word 1 -> word 2 (0.7); "ROOT_a" is not in the vocabulary
    assert targets.top1[0].tolist() == [0, -1]


def test_parser_targets_vocabulary_without_any_mass():
    """No label is possible anywhere: every row is zero and all the mass is lost."""
    teacher = random_teacher(0, 3, 2)
    targets, lost = parser_targets(teacher, LabelSpace(["+5_a", "ROOT_zz", "junk"], RELS[:2], "offset"),
                                   temperature=3.0, mode="local")
    assert bool((targets.unary == 0).all())
    words = torch.arange(3) < teacher.lengths.unsqueeze(1)
    assert torch.allclose(lost, words.double(), atol=1e-6)
    assert bool((targets.top1 == -1).all())


def test_parser_targets_bad_temperature():
    teacher = random_teacher(0, 2, 1)
    with pytest.raises(ValueError, match=r"\[skd-E150\]"):
        parser_targets(teacher, LabelSpace(["ROOT_a"], ["a"], "offset"), temperature=0.0)


# -- stored layout: the targets on the label support only (issue 18) --------------------------------
@SETTINGS
@given(T=st.sampled_from([1.0, 3.0]), mode=st.sampled_from(["local", "global"]), **dims)
def test_parser_targets_packed_on_support_unpack_to_the_same_targets_and_loss(T, mode, seed, N, R):
    """What a training step reads (stored entries, unpacked and stacked) is bit for bit the dense
    targets of one batch, so the student's KD loss and its gradient are unchanged."""
    teacher = random_teacher(seed, N, R)
    space = space_for(random_vocabulary(seed, R), R)
    targets, _ = parser_targets(teacher, space, temperature=T, mode=mode, with_lost=True)
    stored = [pack_targets(item, space) for item in targets.split()]
    for item, arrays in zip(targets.split(), stored):
        n = item.unary.shape[1]
        assert arrays[SUPPORT_VALUES].shape == (int(space.support(n).sum()),)
        assert not bool(item.unary[0][~space.support(n)].any())  # nothing left out of the layout
    lengths = targets.lengths.tolist()
    read = unpack_targets(stored, lengths, space, temperature=T, mode=targets.mode).pad_to(targets.unary.shape[1])
    one_by_one = [unpack_targets([a], [n], space, temperature=T, mode=targets.mode) for a, n in zip(stored, lengths)]
    assert torch.equal(KDTargets.stack(one_by_one).pad_to(targets.unary.shape[1]).unary, targets.unary)
    assert torch.equal(read.unary, targets.unary) and torch.equal(read.top1, targets.top1)
    assert torch.equal(read.lengths, targets.lengths) and torch.equal(read.lost, targets.lost)
    assert (read.temperature, read.mode) == (targets.temperature, targets.mode)
    # Σ p log p from the stored values alone (read.plogp) spares the loss a dense xlogy: the same KL
    # up to float32 summation order, the same gradient
    assert targets.plogp is None and read.plogp.shape == (len(lengths),)
    assert torch.allclose(read.plogp, torch.xlogy(targets.unary, targets.unary).sum((1, 2)), rtol=1e-5, atol=1e-6)
    logits = torch.randn(*targets.unary.shape, generator=torch.Generator().manual_seed(seed), requires_grad=True)
    losses = [token_kl_loss(logits, targets.lengths, t, temperature=T) for t in (targets, read)]
    grads = [torch.autograd.grad(loss.sum(), logits)[0] for loss in losses]
    assert torch.allclose(losses[0], losses[1], rtol=1e-5, atol=1e-5) and torch.equal(grads[0], grads[1])


def test_parser_targets_packed_for_another_vocabulary_errors():
    teacher = random_teacher(3, 4, 2)
    space = space_for(["ROOT_a", "+1_a", "-1_b", "+2_b", "-3_a"], 2)
    targets, _ = parser_targets(teacher, space, temperature=2.0, with_lost=True)
    arrays = pack_targets(targets.split()[0], space)
    # 4 words: ROOT_a for 4 of them, +1_a for words 1-3, -1_b for 2-4, +2_b for 1-2, -3_a for 4: 13
    assert int(space.support(4).sum()) == 13
    other = space_for(["ROOT_a", "+1_a", "-1_b"], 2)  # 4 + 3 + 3 possible labels
    with pytest.raises(ValueError, match=r"\[skd-E370\].*4-word sentence hold 13 values.*has 10"):
        unpack_targets([arrays], [4], other, temperature=2.0, mode="local")
    with pytest.raises(ValueError, match=r"\[skd-E370\].*hold no values"):
        unpack_targets([{"unary": targets.unary[0].numpy(), "top1": arrays["top1"]}], [4], space, temperature=2.0,
                       mode="local")
    with pytest.raises(ValueError, match=r"\[skd-E370\].*hold a Top-1 of shape \(4,\)"):
        unpack_targets([arrays], [5], space, temperature=2.0, mode="local")


def test_parser_targets_unpacked_batch_without_targets_for_a_sentence():
    """A sentence without stored targets (too long for the teacher) gets no mass and Top-1 -1."""
    teacher = random_teacher(5, 4, 2)
    space = space_for(["ROOT_a", "+1_a", "-1_b", "+2_b"], 2)
    targets, _ = parser_targets(teacher, space, temperature=1.0, with_lost=True)
    first = pack_targets(targets.split()[0], space)
    read = unpack_targets([None, first, None], [3, 4, 0], space, temperature=1.0, mode="local")
    assert read.unary.shape == (3, 4, 4) and torch.equal(read.lengths, torch.tensor([3, 4, 0]))
    assert torch.equal(read.unary[1], targets.unary[0]) and not bool(read.unary[[0, 2]].any())
    assert (read.top1[0] == -1).all() and torch.equal(read.lost[1], targets.lost[0])
