"""Dependency-parsing-as-sequence-labelling encodings and the teacher -> student label map,
checked against round trips and straightforward double loops over (head, relation)."""
import random
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spacy_skd.structs._util import log_zero
from spacy_skd.structs import parse_labels
from spacy_skd.structs.parse_labels import LabelSpace, get_encoding, repair
from spacy_skd.structs.tree import is_tree

SETTINGS = settings(max_examples=60, deadline=None)
ENCODINGS = ["offset", "relpos"]
RELS = ["root", "nsubj", "obl:tmod", "nmod:poss", "x_y", "det"]
TAGS = ["NOUN", "VERB", "DET", "-LRB-"]


def random_tree(rng, n, projective):
    """heads[i] = head of word i+1 (0 = ROOT). Projective trees grow contiguous subtrees."""
    heads = [0] * n
    if not projective:
        order = rng.sample(range(1, n + 1), n)
        for k, w in enumerate(order[1:], 1):
            heads[w - 1] = order[rng.randrange(k)]
        return heads  # order[0] keeps head 0: the root

    def build(lo, hi, parent):
        m = rng.randint(lo, hi)
        heads[m - 1] = parent
        segment(lo, m - 1, m)
        segment(m + 1, hi, m)

    def segment(lo, hi, parent):
        while lo <= hi:
            cut = rng.randint(lo, hi)
            build(lo, cut, parent)
            lo = cut + 1

    if n:
        build(1, n, 0)
    return heads


def random_sentence(rng, n, projective=False):
    heads = random_tree(rng, n, projective)
    rels = ["root" if h == 0 else rng.choice(RELS[1:]) for h in heads]
    return heads, rels, [rng.choice(TAGS) for _ in range(n)]


def ref_head_part(enc, i, h, pos):
    """Head part of word i's label for head h, written out from the definitions."""
    if enc == "offset":
        return "ROOT" if h == 0 else f"{h - i:+d}"
    if h == 0:
        return "-1@ROOT"
    between = range(i + 1, h + 1) if h > i else range(h, i)
    k = sum(pos[j - 1] == pos[h - 1] for j in between)
    return f"{'+' if h > i else '-'}{k}@{pos[h - 1]}"


@pytest.mark.parametrize("enc", ENCODINGS)
def test_parse_labels_examples(enc):
    heads, rels = [2, 0, 5, 5, 2], ["det", "root", "nmod:poss", "x_y", "obl:tmod"]
    pos = ["DET", "VERB", "NOUN", "NOUN", "NOUN"]
    expected = {
        "offset": ["+1_det", "ROOT_root", "+2_nmod:poss", "+1_x_y", "-3_obl:tmod"],
        "relpos": ["+1@VERB_det", "-1@ROOT_root", "+2@NOUN_nmod:poss", "+1@NOUN_x_y", "-1@VERB_obl:tmod"],
    }[enc]
    encoding = get_encoding(enc)
    assert encoding.encode(heads, rels, pos) == expected
    assert encoding.decode(expected, pos) == (heads, rels)
    assert encoding.needs_pos is (enc == "relpos")


@SETTINGS
@given(seed=st.integers(0, 2**16), n=st.integers(0, 12), projective=st.booleans(), enc=st.sampled_from(ENCODINGS))
def test_parse_labels_round_trip(seed, n, projective, enc):
    heads, rels, pos = random_sentence(random.Random(seed), n, projective)
    encoding = get_encoding(enc)
    labels = encoding.encode(heads, rels, pos)
    assert labels == [f"{ref_head_part(enc, i, h, pos)}_{r}" for i, (h, r) in enumerate(zip(heads, rels), 1)]
    assert encoding.decode(labels, pos) == (heads, rels)


@SETTINGS
@given(seed=st.integers(0, 2**16), n=st.integers(0, 10), enc=st.sampled_from(ENCODINGS))
def test_parse_labels_decode_garbage_is_a_tree(seed, n, enc):
    rng = random.Random(seed)
    junk = ["", "_", "foo", "ROOT", "ROOT_", "+0_det", "-0_det", "+99_det", "-3_det", "+1_det", "ROOT_root",
            "ROOT_nsubj", "-1@ROOT_root", "-1@ROOT_det", "+1@ROOT_det", "+2@NOUN_det", "-1@VERB_nsubj",
            "+3@DET_x_y", "+1@XX_det", "-2@NOUN_root", None]
    labels = [rng.choice(junk) for _ in range(n)]
    pos = [rng.choice(TAGS) for _ in range(n)]
    heads, rels = get_encoding(enc).decode(labels, pos)
    assert len(heads) == len(rels) == n
    assert is_tree(heads)


def test_parse_labels_repair_rules():
    # several roots: keep the first, attach the others to it (the reference's loop never ran)
    assert repair([0, 0, 0], ["root", "root", "det"]) == [0, 1, 1]
    # no root: promote the 'root' relation, else word 1
    assert repair([2, -1, 2], ["det", "root", "det"]) == [2, 0, 2]
    assert repair([2, 1, 2], ["det", "det", "det"]) == [0, 1, 2]
    # headless words go to the root word; a cycle is broken at a node attached to the root word
    assert repair([-1, 0, -1], ["a", "root", "b"]) == [2, 0, 2]
    fixed = repair([0, 3, 4, 2], ["root", "a", "b", "c"])
    assert is_tree(fixed) and fixed[0] == 0 and sum(h == 1 for h in fixed) == 1
    assert repair([], []) == []


def test_parse_labels_relpos_fallback_to_k_minus_one():
    # "+3@NOUN" from word 1 with only two NOUNs to its right: take the 2nd (k-1)
    heads, _ = get_encoding("relpos").decode(["+3@NOUN_det", "-1@ROOT_root", "-1@VERB_nsubj"], ["DET", "NOUN", "NOUN"])
    assert heads == [3, 0, 2]  # word 3 has no VERB to its left: headless, attached to the root word
    heads, _ = get_encoding("relpos").decode(["+2@NOUN_det", "-1@ROOT_root"], ["DET", "NOUN"])
    assert heads == [2, 0]


def vocabulary(enc, sentences, extra=()):
    encoding = get_encoding(enc)
    labels = sorted({label for h, r, p in sentences for label in encoding.encode(h, r, p)})
    return labels + list(extra)


def random_batch(seed, B, N):
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    lengths = [rng.randint(0, N) for _ in range(B)]
    sentences = [random_sentence(rng, n) for n in lengths]
    # Pad the batch to N with tags that must be ignored.
    pos_ids = torch.tensor([[0] + [TAGS.index(p) for p in pos] + [rng.randrange(4)] * (N - len(pos))
                            for _, _, pos in sentences])
    return rng, g, torch.tensor(lengths), sentences, pos_ids


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(1, 6), enc=st.sampled_from(ENCODINGS),
       peaked=st.booleans())
def test_parse_labels_teacher_log_probs_matches_double_loop(seed, B, N, enc, peaked):
    rng, g, lengths, sentences, pos_ids = random_batch(seed, B, N)
    # Vocabulary from other random trees (so some teacher (head, rel) pairs have no label), plus
    # labels the teacher cannot fill: unknown relation, unknown PoS, garbage.
    extra = ["+1_unknown", "ROOT_other", "+1@XX_det", "-1@ROOT_unknown", "junk", "+0_det"]
    others = [random_sentence(rng, rng.randint(1, N)) for _ in range(4)]
    labels = vocabulary(enc, others, extra)
    teacher_rels = [r for r in RELS if r != "x_y"]  # student labels with 'x_y' get no mass
    R = len(teacher_rels)
    space = LabelSpace(labels, teacher_rels, enc, pos_tags=TAGS if enc == "relpos" else None)
    scale = 4.0 if peaked else 1.0
    arc = torch.log_softmax(torch.randn(B, N, N + 1, generator=g, dtype=torch.float64) * scale, -1)
    rel = torch.log_softmax(torch.randn(B, N, N + 1, R, generator=g, dtype=torch.float64) * scale, -1)
    log_q, lost = space.teacher_log_probs(arc, rel, lengths, pos_ids if enc == "relpos" else None)
    assert log_q.shape == (B, N, len(labels)) and lost.shape == (B, N)
    alone, none = space.teacher_log_probs(arc, rel, lengths, pos_ids if enc == "relpos" else None, with_lost=False)
    assert none is None and torch.equal(alone, log_q)  # the lost mass is an optional extra
    index = {label: v for v, label in enumerate(labels)}
    for b, n in enumerate(lengths.tolist()):
        pos = sentences[b][2]
        for i in range(1, N + 1):
            q = torch.zeros(len(labels), dtype=torch.float64)
            miss = 0.0
            for h in range(N + 1):
                for r, rel_name in enumerate(teacher_rels):
                    p = float((arc[b, i - 1, h] + rel[b, i - 1, h, r]).exp())
                    label = None
                    if i <= n and h <= n and h != i:
                        label = f"{ref_head_part(enc, i, h, pos)}_{rel_name}"
                    if label in index:
                        q[index[label]] += p
                    else:
                        miss += p
            if i > n:
                assert float(lost[b, i - 1]) == 0.0
                assert (log_q[b, i - 1] == log_zero(torch.float64)).all()
                continue
            assert torch.allclose(log_q[b, i - 1].exp(), q, atol=1e-12)
            assert float(lost[b, i - 1]) == pytest.approx(miss, abs=1e-12)
            assert float(log_q[b, i - 1].exp().sum() + lost[b, i - 1]) == pytest.approx(1.0, abs=1e-9)
    for v in [index[label] for label in extra if label in index]:
        assert (log_q[..., v] == log_zero(torch.float64)).all()  # never any teacher mass


@SETTINGS
@given(seed=st.integers(0, 2**16), N=st.integers(0, 6))
def test_parse_labels_support_is_where_a_teacher_can_put_mass(seed, N):
    """support(n): the labels teacher_log_probs can give mass to in an n-word sentence, whatever
    the teacher (one with every (head, relation) probable fills exactly these)."""
    rng = random.Random(seed)
    others = [random_sentence(rng, rng.randint(1, 6)) for _ in range(4)]
    labels = vocabulary("offset", others, ["+1_unknown", "ROOT_other", "junk", "+0_det"])
    teacher_rels = [r for r in RELS if r != "x_y"]
    space = LabelSpace(labels, teacher_rels, "offset")
    g = torch.Generator().manual_seed(seed)
    arc = torch.log_softmax(torch.randn(1, N, N + 1, generator=g, dtype=torch.float64), -1)
    rel = torch.log_softmax(torch.randn(1, N, N + 1, len(teacher_rels), generator=g, dtype=torch.float64), -1)
    log_q, _ = space.teacher_log_probs(arc, rel, torch.tensor([N]), with_lost=False)
    support = space.support(N)
    assert support.shape == (N, len(labels)) and support.dtype == torch.bool
    assert torch.equal(support, log_q[0] > log_zero(torch.float64) / 2)
    assert torch.equal(space.support_index(N), support.reshape(-1).nonzero().squeeze(1))
    assert space.support_index(N) is space.support_index(N)  # kept for the lengths in use


def test_parse_labels_support_indices_kept_within_a_bound(monkeypatch):
    """Long texts of many lengths must not keep ~n * V indices each: least recently used go first."""
    monkeypatch.setattr(parse_labels, "SUPPORT_CACHE_ENTRIES", 40)
    space = LabelSpace(["ROOT_det", "+1_det", "-1_det"], ["det"], "offset")  # n + 2 (n - 1) labels
    sizes = {n: space.support_index(n).numel() for n in (2, 3, 5)}
    assert sizes == {2: 4, 3: 7, 5: 13}
    space.support_index(2)  # now the most recently used
    space.support_index(9)  # 25 more: 13 + 7 + 4 + 25 > 40, so 3 and then 5 go
    assert list(space._support_index) == [2, 9]
    assert torch.equal(space.support_index(5), space.support(5).reshape(-1).nonzero().squeeze(1))


def test_parse_labels_support_needs_offset_encoding():
    space = LabelSpace(["-1@ROOT_root", "+1@NOUN_det"], ["root", "det"], "relpos", pos_tags=TAGS)
    with pytest.raises(ValueError, match=r"\[skd-E017\]"):
        space.support(3)


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(1, 8), enc=st.sampled_from(ENCODINGS))
def test_parse_labels_mst_decode_recovers_one_hot_trees(seed, B, N, enc):
    _, g, lengths, sentences, pos_ids = random_batch(seed, B, N)
    labels = vocabulary(enc, sentences, ["junk"])
    space = LabelSpace(labels, RELS, enc, pos_tags=TAGS)
    pos_arg = pos_ids if enc == "relpos" else None
    one_hot = torch.full((B, N, len(labels)), log_zero(torch.float32))
    for b, (heads, rels, pos) in enumerate(sentences):
        ids = space.label_ids(heads, rels, pos)
        assert min(ids, default=0) >= 0
        one_hot[b, torch.arange(len(ids)), torch.tensor(ids, dtype=torch.long)] = 0.0
    heads, rels = space.decode(one_hot, lengths, pos_arg)
    for b, (gold_heads, gold_rels, _) in enumerate(sentences):
        n = len(gold_heads)
        assert heads[b].tolist() == [-1] + gold_heads + [-1] * (N - n)
        assert rels[b] == gold_rels
    # Any distribution decodes to a tree.
    noisy = torch.log_softmax(torch.randn(B, N, len(labels), generator=g), -1)
    heads, rels = space.decode(noisy, lengths, pos_arg)
    for b, n in enumerate(lengths.tolist()):
        assert is_tree(heads[b, 1:n + 1].tolist()) and len(rels[b]) == n


@SETTINGS
@given(seed=st.integers(0, 2**16), B=st.integers(1, 3), N=st.integers(1, 8), enc=st.sampled_from(ENCODINGS),
       k=st.integers(1, 6))
def test_parse_labels_top_k_head_scores_are_the_restricted_lse(seed, B, N, enc, k):
    """top_k = k equals the exact head scores of the distribution with every label outside each
    word's k best masked; k >= V is exact; decoding with top_k still gives trees."""
    _, g, lengths, sentences, pos_ids = random_batch(seed, B, N)
    labels = vocabulary(enc, sentences, ["junk"])
    space = LabelSpace(labels, RELS, enc, pos_tags=TAGS)
    pos_arg = pos_ids if enc == "relpos" else None
    lp = torch.log_softmax(torch.randn(B, N, len(labels), generator=g, dtype=torch.float64) * 3, -1)
    kept = lp.topk(min(k, len(labels)), -1).indices
    masked = torch.full_like(lp, log_zero(torch.float64)).scatter(2, kept, lp.gather(2, kept))
    assert torch.allclose(space.head_scores(lp, lengths, pos_arg, top_k=k), space.head_scores(masked, lengths, pos_arg))
    assert torch.equal(space.head_scores(lp, lengths, pos_arg, top_k=len(labels)), space.head_scores(lp, lengths, pos_arg))
    heads, rels = space.decode(lp, lengths, pos_arg, top_k=k)
    full_heads, _ = space.decode(masked, lengths, pos_arg)
    assert torch.equal(heads, full_heads)
    for b, n in enumerate(lengths.tolist()):
        assert is_tree(heads[b, 1:n + 1].tolist()) and len(rels[b]) == n


def test_parse_labels_head_scores_lse_over_labels():
    space = LabelSpace(["+1_det", "+1_nsubj", "ROOT_root", "-1_det", "junk"], RELS, "offset")
    lp = torch.log(torch.tensor([[[0.1, 0.2, 0.3, 0.15, 0.25], [0.1, 0.2, 0.3, 0.15, 0.25]]], dtype=torch.float64))
    s = space.head_scores(lp, torch.tensor([2]))
    assert s.shape == (1, 3, 3)
    assert s[0, 1, 2].exp().item() == pytest.approx(0.3)  # word 1 -> word 2: "+1_det" + "+1_nsubj"
    assert s[0, 1, 0].exp().item() == pytest.approx(0.3)
    assert s[0, 2, 1].exp().item() == pytest.approx(0.15)
    assert s[0, 1, 1] == s[0, 2, 2] == log_zero(torch.float64)  # "-1" from word 1 and "+1" from word 2 fall outside
    assert (s[0, 0] == log_zero(torch.float64)).all()


def test_parse_labels_errors():
    with pytest.raises(ValueError, match=r"\[skd-E011\].*offset, relpos"):
        get_encoding("absolute")
    relpos, offset = get_encoding("relpos"), get_encoding("offset")
    with pytest.raises(ValueError, match=r"\[skd-E012\]"):
        relpos.encode([0], ["root"])
    with pytest.raises(ValueError, match=r"\[skd-E012\]"):
        relpos.decode(["-1@ROOT_root"], ["NOUN", "VERB"])
    with pytest.raises(ValueError, match=r"\[skd-E013\]"):
        offset.encode([0, 1], ["root"])
    with pytest.raises(ValueError, match=r"\[skd-E014\]"):
        offset.encode([0, 3], ["root", "det"])
    with pytest.raises(ValueError, match=r"\[skd-E014\]"):
        offset.encode([0, 2], ["root", "det"])
    with pytest.raises(ValueError, match=r"\[skd-E015\]"):
        offset.encode([0], [""])
    for tag in ["ROOT", "A_B", "A@B", ""]:
        with pytest.raises(ValueError, match=r"\[skd-E016\]"):
            relpos.encode([0], ["root"], [tag])
    with pytest.raises(ValueError, match=r"\[skd-E017\]"):
        LabelSpace(["-1@ROOT_root"], ["root"], "relpos")
    space = LabelSpace(["-1@ROOT_root"], ["root"], "relpos", pos_tags=TAGS)
    with pytest.raises(ValueError, match=r"\[skd-E017\]"):
        space.head_scores(torch.zeros(1, 2, 1), torch.tensor([2]))
    with pytest.raises(ValueError, match=r"\[skd-E002\]"):
        space.teacher_log_probs(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3, 2), torch.tensor([2]),
                                torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[skd-E003\]"):
        space.head_scores(torch.zeros(1, 2, 1), torch.tensor([3]), torch.zeros(1, 3, dtype=torch.long))


def read_ewt(path):
    conllu = pytest.importorskip("conllu")
    with open(path, encoding="utf8") as f:
        for sent in conllu.parse_incr(f):
            words = [t for t in sent if isinstance(t["id"], int)]  # drop multiword ranges and empty nodes
            yield [t["head"] for t in words], [t["deprel"] for t in words], [t["upos"] for t in words]


@pytest.mark.data
@pytest.mark.parametrize("enc", ENCODINGS)
def test_parse_labels_ewt_dev_round_trip(shared_data, enc):
    path = shared_data / "ud_en_ewt" / "en_ewt-ud-dev.conllu"
    if not path.exists():
        pytest.skip(f"{path} not found")
    encoding = get_encoding(enc)
    trees = list(read_ewt(path))
    exact = sum(encoding.decode(encoding.encode(h, r, p), p) == (h, r) for h, r, p in trees)
    assert len(trees) > 1000
    assert exact / len(trees) == 1.0  # both encodings are lossless with gold PoS


@pytest.mark.parametrize("enc", ENCODINGS)
def test_parse_labels_empty_batches_and_sentences(enc):
    space = LabelSpace(["ROOT_root", "+1_det", "-1@ROOT_root", "+1@NOUN_det"], ["root", "det"], enc, pos_tags=["NOUN"])
    pos = torch.zeros(2, 1, dtype=torch.long) if enc == "relpos" else None
    heads, rels = space.decode(torch.zeros(2, 0, 4), torch.tensor([0, 0]), pos)
    assert heads.tolist() == [[-1], [-1]] and rels == [[], []]
    log_q, lost = space.teacher_log_probs(torch.zeros(2, 0, 1), torch.zeros(2, 0, 1, 2), torch.tensor([0, 0]), pos)
    assert log_q.shape == (2, 0, 4) and lost.shape == (2, 0)
    pos = torch.zeros(0, 4, dtype=torch.long) if enc == "relpos" else None
    heads, rels = space.decode(torch.zeros(0, 3, 4), torch.zeros(0, dtype=torch.long), pos)
    assert heads.shape == (0, 4) and rels == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("enc", ENCODINGS)
def test_parse_labels_gpu_matches_cpu(enc):
    _, g, lengths, sentences, pos_ids = random_batch(7, 4, 9)
    space = LabelSpace(vocabulary(enc, sentences), RELS, enc, pos_tags=TAGS)
    arc = torch.log_softmax(torch.randn(4, 9, 10, generator=g), -1)
    rel = torch.log_softmax(torch.randn(4, 9, 10, len(RELS), generator=g), -1)
    lp = torch.log_softmax(torch.randn(4, 9, len(space), generator=g), -1)
    pos = pos_ids if enc == "relpos" else None
    cpu = space.teacher_log_probs(arc, rel, lengths, pos) + space.decode(lp, lengths, pos)
    gpu_pos = None if pos is None else pos.cuda()
    gpu = space.teacher_log_probs(arc.cuda(), rel.cuda(), lengths.cuda(), gpu_pos)
    gpu = gpu + space.decode(lp.cuda(), lengths.cuda(), gpu_pos)
    assert gpu[2].device.type == "cuda"
    for a, b in zip(cpu[:3], gpu[:3]):
        assert torch.allclose(a, b.cpu(), atol=1e-5)
    assert cpu[3] == gpu[3]


def test_parse_labels_structs_import_no_spacy_or_thinc():
    code = ("import sys, spacy_skd.structs.tree, spacy_skd.structs.parse_labels; "
            "bad = [m for m in ('spacy', 'thinc') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
