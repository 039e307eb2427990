"""The dependency parsers (`skd_biaffine_parser`, `skd_mfvi_parser`, `skd_seqlabel_parser`):
spaCy's component contract on the EWT fixture, well-formed trees from any model, teacher outputs,
and cases 1b / 2b (graph-based teacher -> sequence-labelling student) through structural_kd."""
import copy
import warnings
from typing import Dict, List

import pytest
import spacy
import torch
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed

from spacy_skd.kd.parser_targets import SUPPORT_VALUES, parser_targets
from spacy_skd.kd.targets import KDTargets
from spacy_skd.pipes._segments import padded_batches
from spacy_skd.pipes.dependency_parser import DependencyParser
from spacy_skd.structs.dependency import HeadSelection
from spacy_skd.teacher import target_maker
from spacy_skd.training.cache import TeacherCache, fingerprint_pipeline
from spacy_skd.training.conllu import create_conllu_reader
from tests.conftest import FIXTURES

EWT = FIXTURES / "ewt_sample.conllu"
TINY_TOK2VEC = {"embed": {"width": 32, "rows": [500, 100, 250, 250]}, "encode": {"width": 32, "depth": 1}}
MODELS = {
    "skd_biaffine_parser": {"tok2vec": TINY_TOK2VEC, "arc_width": 32, "rel_width": 16},
    "skd_mfvi_parser": {"tok2vec": TINY_TOK2VEC, "arc_width": 32, "rel_width": 16, "factor_width": 16},
    "skd_seqlabel_parser": {"tok2vec": TINY_TOK2VEC},
}
FACTORIES = list(MODELS)
GRAPH = ["skd_biaffine_parser", "skd_mfvi_parser"]
STEPS = 80
TEXTS = ["From the AP comes this story :", "Today 's Article", "story comes", "Article", "",
         "the AP comes this story : Today 's Article , from the AP"]


# -- helpers ----------------------------------------------------------------------------------------
def make_nlp(factory: str, **cfg) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe(factory, name="parser", config={"model": copy.deepcopy(MODELS[factory]), **cfg})
    return nlp


def gold_docs(nlp: Language) -> List[Doc]:
    return [eg.reference for eg in create_conllu_reader(EWT)(nlp)]


def examples_for(nlp: Language, refs=None, *, pos: bool = False) -> List[Example]:
    """Training examples: untagged predicted docs (with the gold PoS when `pos`), gold trees."""
    refs = gold_docs(nlp) if refs is None else refs
    return [Example(Doc(nlp.vocab, words=[t.text for t in ref], pos=[t.pos_ for t in ref] if pos else None), ref)
            for ref in refs]


def train(nlp: Language, examples: List[Example], steps: int = STEPS) -> List[float]:
    optimizer = nlp.initialize(lambda: examples)
    return [nlp.update(examples, sgd=optimizer)["parser"] for _ in range(steps)]


def tree(doc: Doc):
    return [(t.head.i, t.dep_) for t in doc]


def assert_tree(doc: Doc) -> None:
    """One root per doc, every word reaches it, every word has a relation."""
    heads = [t.head.i for t in doc]
    assert sum(h == i for i, h in enumerate(heads)) == (1 if len(doc) else 0)
    for i in range(len(doc)):
        for _ in range(len(doc)):
            i = heads[i]
        assert heads[i] == i  # n steps from any word end at the root
    assert all(t.dep_ for t in doc)
    assert len(list(doc.sents)) == (1 if len(doc) else 0)


def is_tree(heads: List[int]) -> bool:
    """heads[d - 1] of word d (0 = ROOT): single root and acyclic."""
    if sum(h == 0 for h in heads) != 1:
        return False
    for d in range(1, len(heads) + 1):
        for _ in range(len(heads)):
            d = heads[d - 1] if d else 0
        if d != 0:
            return False
    return True


def randomise(pipe, seed: int = 0, scale: float = 0.5) -> None:
    """Random weights in the torch head (the biaffine weights start at zero: all scores tie)."""
    g = torch.Generator().manual_seed(seed)
    module = pipe.model.get_ref("head").layers[0].shims[0]._model
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=g) * scale)


def random_docs(nlp: Language, n_docs: int = 24, seed: int = 0) -> List[Doc]:
    g = torch.Generator().manual_seed(seed)
    words = [t.text for doc in gold_docs(nlp) for t in doc]
    docs = []
    for _ in range(n_docs):
        n = int(torch.randint(1, 13, (1,), generator=g))
        docs.append(Doc(nlp.vocab, words=[words[int(j)] for j in torch.randint(len(words), (n,), generator=g)]))
    return docs


def naive_heads(pipe, docs: List[Doc]) -> List[List[int]]:
    """Each word's own best head, without the tree constraint."""
    scores = pipe.model.predict(docs)
    with torch.no_grad():
        if isinstance(pipe, DependencyParser):
            head_scores = pipe.distribution(scores).arc_log_probs
        else:
            head_scores = pipe.space().head_scores(scores.emissions.log_softmax(-1), scores.lengths)
    best = head_scores.argmax(-1).tolist()
    return [row[1: len(doc) + 1] for row, doc in zip(best, docs)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Dict[str, tuple]:
    """Each parser overfitted on the fixture (STEPS updates) and saved: factory -> (nlp, path)."""
    root = tmp_path_factory.mktemp("parsers")
    fix_random_seed(0)
    out = {}
    for factory in FACTORIES:
        nlp = make_nlp(factory)
        examples = examples_for(nlp)
        losses = train(nlp, examples)
        nlp.to_disk(root / factory)
        out[factory] = (nlp, root / factory, examples, losses)
    return out


# -- the component contract -----------------------------------------------------------------------
@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_overfits_fixture(factory, trained):
    nlp, _, examples, losses = trained[factory]
    assert losses[-1] < 0.2 * losses[0]
    scores = nlp.evaluate(examples)
    assert scores["dep_uas"] == 1.0 and scores["dep_las"] == 1.0
    for eg in examples:
        assert tree(nlp(Doc(nlp.vocab, words=[t.text for t in eg.reference]))) == tree(eg.reference)


@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_pipe_equals_call(factory, trained):
    nlp = trained[factory][0]
    piped = list(nlp.pipe(TEXTS, batch_size=3))
    for text, doc in zip(TEXTS, piped):
        assert tree(doc) == tree(nlp(text))
        assert_tree(doc)


@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_to_disk_and_bytes_roundtrip(factory, trained):
    nlp, path, _, _ = trained[factory]
    loaded = spacy.load(path)
    from_bytes = make_nlp(factory).from_bytes(nlp.to_bytes())
    assert loaded.get_pipe("parser").labels == from_bytes.get_pipe("parser").labels == nlp.get_pipe("parser").labels
    for text in TEXTS:
        expected = tree(nlp(text))
        assert tree(loaded(text)) == expected
        assert tree(from_bytes(text)) == expected
    if factory != "skd_seqlabel_parser":
        docs = [nlp.make_doc(t) for t in TEXTS[:3]]
        for a, b in zip(nlp.get_pipe("parser").teacher_outputs(docs), loaded.get_pipe("parser").teacher_outputs(docs)):
            assert (a["arc"] == b["arc"]).all() and (a["rel"] == b["rel"]).all()


def test_mfvi_iterations_overridden_at_load(trained):
    """The saved cfg restores labels, not the factory's run-time choice: `iterations` given to
    spacy.load wins over the value saved with the pipeline."""
    path = trained["skd_mfvi_parser"][1]
    assert spacy.load(path).get_pipe("parser").cfg["iterations"] == 3
    one = spacy.load(path, config={"components": {"parser": {"iterations": 1}}}).get_pipe("parser")
    assert one.cfg["iterations"] == 1 and one.labels == trained["skd_mfvi_parser"][0].get_pipe("parser").labels


@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_empty_and_one_token_docs(factory, trained):
    nlp = trained[factory][0]
    pipe = nlp.get_pipe("parser")
    assert len(nlp("")) == 0
    assert [len(d) for d in nlp.pipe(["", ""])] == [0, 0]
    one = nlp("Article")
    assert one[0].head.i == 0 and one[0].dep_
    relations = pipe.relations if factory == "skd_seqlabel_parser" else pipe.labels
    assert one[0].dep_ in relations
    assert [tree(d) for d in nlp.pipe(["", "Article", "", TEXTS[0]])] == [tree(nlp(t)) for t in
                                                                          ["", "Article", "", TEXTS[0]]]
    # training on a batch with an empty and a one-token doc
    vocab = nlp.vocab
    batch = [Example(Doc(vocab, words=[]), Doc(vocab, words=[])),
             Example(Doc(vocab, words=["Article"]), Doc(vocab, words=["Article"], heads=[0], deps=["root"])),
             trained[factory][2][0]]
    losses = nlp.update(batch)
    assert 0 <= losses["parser"] < float("inf")
    assert nlp.update(batch[:1])["parser"] == 0.0


@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_predicts_trees_from_untrained_model(factory):
    nlp = make_nlp(factory)
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("parser")
    docs = random_docs(nlp)
    for seed in range(2):
        randomise(pipe, seed)
        # the words' own best heads are mostly no tree: decoding has work to do
        assert not all(is_tree(heads) for heads in naive_heads(pipe, docs) if heads)
        for doc in nlp.pipe([d.copy() for d in docs], batch_size=5):
            assert_tree(doc)


def test_seqlabel_heuristic_decoder_gives_trees(trained):
    nlp = make_nlp("skd_seqlabel_parser", decoder="heuristic")
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    randomise(nlp.get_pipe("parser"))
    for doc in nlp.pipe(random_docs(nlp)):
        assert_tree(doc)
    # trained: the pure sequence-labelling decoder reads the gold labels off and needs no repair
    nlp = make_nlp("skd_seqlabel_parser", decoder="heuristic")
    nlp.from_bytes(trained["skd_seqlabel_parser"][0].to_bytes())
    assert nlp.get_pipe("parser").decoder == "heuristic"  # the factory's choice survives loading
    scores = nlp.evaluate(examples_for(nlp))
    assert scores["dep_uas"] == 1.0 and scores["dep_las"] == 1.0


@pytest.mark.parametrize("factory,code", [("skd_biaffine_parser", "E107"), ("skd_mfvi_parser", "E107"),
                                          ("skd_seqlabel_parser", "E108")])
def test_parser_without_trees_errors(factory, code):
    nlp = make_nlp(factory)
    examples = [Example(Doc(nlp.vocab, words=ref_words), Doc(nlp.vocab, words=ref_words))
                for ref_words in (["No", "tree", "here"], ["Nor", "here"])]
    with pytest.raises(ValueError, match=rf"\[skd-{code}\]"):
        nlp.initialize(lambda: examples)


def test_seqlabel_unknown_decoder_errors():
    with pytest.raises(ValueError, match=r"\[skd-E109\]"):
        make_nlp("skd_seqlabel_parser", decoder="eisner")


@pytest.mark.parametrize("value", [0, -3])
def test_seqlabel_bad_decode_top_k_errors(value):
    with pytest.raises(ValueError, match=r"\[skd-E115\]"):
        make_nlp("skd_seqlabel_parser", decode_top_k=value)


def test_seqlabel_decode_top_k_one_still_parses(trained):
    """k = 1 keeps only each word's best label: still a tree, and the overfitted model's best
    labels are the gold ones, so the parse is unchanged."""
    nlp = make_nlp("skd_seqlabel_parser", decode_top_k=1)
    nlp.from_bytes(trained["skd_seqlabel_parser"][0].to_bytes())
    assert nlp.get_pipe("parser").decode_top_k == 1
    scores = nlp.evaluate(examples_for(nlp))
    assert scores["dep_uas"] == 1.0 and scores["dep_las"] == 1.0


def test_seqlabel_relpos_trains_with_pos():
    nlp = make_nlp("skd_seqlabel_parser", encoding="relpos")
    examples = examples_for(nlp, pos=True)
    losses = train(nlp, examples)
    pipe = nlp.get_pipe("parser")
    assert all("@" in label for label in pipe.labels) and "-1@ROOT_root" in pipe.labels
    assert losses[-1] < 0.2 * losses[0]
    scores = nlp.evaluate(examples)
    assert scores["dep_uas"] == 1.0 and scores["dep_las"] == 1.0


# -- as teachers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("factory", GRAPH)
@pytest.mark.parametrize("random_weights", [False, True])
def test_parser_teacher_outputs_are_normalised(factory, random_weights, trained):
    nlp = trained[factory][0]
    pipe = nlp.get_pipe("parser")
    if random_weights:
        nlp = make_nlp(factory).from_bytes(nlp.to_bytes())
        pipe = nlp.get_pipe("parser")
        randomise(pipe)
    assert pipe.kd_kind == {"skd_biaffine_parser": "biaffine", "skd_mfvi_parser": "mfvi"}[factory]
    docs = [nlp.make_doc(t) for t in TEXTS]
    outputs = pipe.teacher_outputs(docs)
    R = len(pipe.labels)
    for doc, out in zip(docs, outputs):
        n = len(doc)
        assert out["arc"].shape == (n, n + 1) and out["rel"].shape == (n, n + 1, R)
        arc, rel = torch.from_numpy(out["arc"]).double().exp(), torch.from_numpy(out["rel"]).double().exp()
        assert torch.allclose(arc.sum(-1), torch.ones(n, dtype=torch.float64), atol=1e-5)
        assert bool((arc[torch.arange(n), torch.arange(n) + 1] == 0).all())  # never its own head
        assert torch.allclose(rel.sum(-1), torch.ones(n, n + 1, dtype=torch.float64), atol=1e-5)
        # padding in the batch changes nothing (up to float32 summation order)
        alone = pipe.teacher_outputs([doc])[0]
        assert torch.allclose(torch.from_numpy(alone["arc"]).exp(), arc.float(), atol=1e-4)
        assert torch.allclose(torch.from_numpy(alone["rel"]).exp(), rel.float(), atol=1e-4)
    assert pipe.teacher_outputs([nlp.make_doc("")])[0]["arc"].shape == (0, 1)
    # teacher_batch pads them into one ParserPotentials
    batch = pipe.teacher_batch(outputs, torch.device("cpu"))
    N = max(len(d) for d in docs)
    assert batch.kind == pipe.kd_kind and batch.arc.shape == (len(docs), N, N + 1)
    assert batch.lengths.tolist() == [len(d) for d in docs]


def test_mfvi_without_iterations_is_biaffine():
    nlp = make_nlp("skd_mfvi_parser", iterations=0)
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("parser")
    randomise(pipe)  # non-zero second-order weights: the factors are there but unused
    assert pipe.kd_kind == "biaffine"
    docs = [nlp.make_doc(t) for t in TEXTS]
    scores = pipe.model.predict(docs)
    assert scores.sib is not None and float(scores.sib.abs().max()) > 0
    first_order = HeadSelection(scores.arc, scores.rel, scores.lengths)
    arc, rel = first_order.word_log_probs()

    def check(expect_equal: bool) -> None:
        outputs = pipe.teacher_outputs(docs)
        same = all(torch.allclose(torch.from_numpy(out["arc"]), arc[b, : len(d), : len(d) + 1], atol=1e-5)
                   and torch.allclose(torch.from_numpy(out["rel"]), rel[b, : len(d), : len(d) + 1], atol=1e-5)
                   for b, (d, out) in enumerate(zip(docs, outputs)))
        assert same == expect_equal

    check(True)
    heads, rels = first_order.argmax
    labels = pipe.labels
    for b, doc in enumerate(nlp.pipe(TEXTS)):
        n = len(doc)
        expected = [(i if h == 0 else h - 1, labels[r]) for i, (h, r) in
                    enumerate(zip(heads[b, 1: n + 1].tolist(), rels[b, 1: n + 1].tolist()))]
        assert tree(doc) == expected
    assert pipe.teacher_batch(pipe.teacher_outputs(docs), torch.device("cpu")).kind == "biaffine"
    pipe.cfg["iterations"] = 3  # the same weights with mean-field updates: a different teacher
    assert pipe.kd_kind == "mfvi"
    check(False)


# -- cases 1b and 2b through structural_kd ---------------------------------------------------------
def student_nlp(teacher_path, cache_dir, *, objective="structural", student_cfg=None, **kd_cfg) -> Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd", config={"student": "parser", "teacher_component": "parser",
                                                     "objective": objective, **kd_cfg})
    nlp.add_pipe("skd_seqlabel_parser", name="parser",
                 config={"model": copy.deepcopy(MODELS["skd_seqlabel_parser"]), **(student_cfg or {})})
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teacher_path), "cache_dir": str(cache_dir)}
    return nlp


def expected_targets(teacher_path, student, batch_words, T, mode):
    teacher = spacy.load(teacher_path)
    tpipe = teacher.get_pipe("parser")
    outputs = tpipe.teacher_outputs([Doc(teacher.vocab, words=list(w)) for w in batch_words])
    return parser_targets(tpipe.teacher_batch(outputs, torch.device("cpu")), student.kd_space(tpipe),
                          temperature=T, mode=mode)


@pytest.mark.parametrize("teacher_factory,case", [("skd_biaffine_parser", "1b"), ("skd_mfvi_parser", "2b")])
@pytest.mark.parametrize("objective", ["structural", "top1"])
def test_kd_parser_teacher_to_seqlabel_student(teacher_factory, case, objective, trained, tmp_path):
    from spacy_skd.kd.adapters import resolve_case

    teacher_path = trained[teacher_factory][1]
    T = 2.0
    nlp = student_nlp(teacher_path, tmp_path / "cache", objective=objective, temperature=T)
    examples = examples_for(nlp)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        optimizer = nlp.initialize(lambda: examples)
    kd, student = nlp.get_pipe("kd"), nlp.get_pipe("parser")
    tpipe = kd.teacher.get_pipe("parser")
    assert resolve_case(tpipe.kd_kind, student.kd_kind, "structural") == case
    assert student.labels == tuple(student.labels_in(lambda: examples))  # from the gold trees
    # lost mass: the mean over training words of the teacher mass outside the vocabulary
    words = [tuple(t.text for t in eg.predicted) for eg in examples]
    targets, lost = expected_targets(teacher_path, student, words, T, "local")
    assert isinstance(kd.lost_mass, float) and 0.0 <= kd.lost_mass <= 1.0
    assert kd.lost_mass == pytest.approx(float(lost.sum()) / sum(map(len, words)), abs=1e-6)
    warned = any("[skd-W152]" in str(w.message) for w in caught)
    assert warned == (kd.lost_mass > 0.01)
    # the targets the student is handed are parser_targets of the teacher's outputs
    kd.update(examples)
    handed = student._kd.targets
    assert handed.mode == "local" and handed.temperature == T
    assert torch.allclose(handed.unary, targets.unary, atol=1e-6)
    # stored targets carry the Top-1 trees (one MST per sentence, at initialize) and the lost mass
    assert torch.equal(handed.top1, targets.top1) and bool((targets.top1 >= 0).any())
    assert torch.allclose(handed.lost, targets.lost, atol=1e-6)
    unlabeled = examples_for(nlp)
    unlabeled[0].reference.user_data["skd_unlabeled"] = True  # its gold is the teacher's Top-1
    kd.update(unlabeled)
    assert torch.equal(student._kd.targets.top1, targets.top1)
    student.set_kd_batch(None)
    assert kd.targets_for(words[:2])[1].unary.shape == (1, len(words[1]), len(student.labels))
    # pure KD (kd_weight 1) lowers the loss and teaches the (perfect) teacher's trees; the batch's
    # targets are dropped after each update
    losses = []
    for _ in range(30):
        losses.append(nlp.update(examples, sgd=optimizer)["parser"])
        assert student._kd is None
    assert losses[-1] < 0.6 * losses[0]
    assert nlp.evaluate(examples)["dep_uas"] >= 0.9


@pytest.mark.filterwarnings("ignore:.*skd-W152")
def test_kd_parser_cache_holds_outputs_and_packed_targets_and_skips_teacher(trained, tmp_path, monkeypatch):
    teacher_path = trained["skd_biaffine_parser"][1]
    cache_dir = tmp_path / "cache"
    nlp = student_nlp(teacher_path, cache_dir, temperature=3.0)
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    kd = nlp.get_pipe("kd")
    words = [tuple(t.text for t in eg.predicted) for eg in examples]
    # the raw teacher outputs are on disk, in their own namespace
    teacher = spacy.load(teacher_path)
    raw = TeacherCache(cache_dir, fingerprint=fingerprint_pipeline(teacher, "parser"), space="potentials:biaffine",
                       temperature=1.0, mode="raw")
    assert len(raw) == len(words)
    expected = teacher.get_pipe("parser").teacher_outputs([Doc(teacher.vocab, words=list(w)) for w in words])
    for w, out in zip(words, expected):
        stored = raw.get(w)
        assert set(stored) == {"arc", "rel"}
        assert (stored["arc"] == out["arc"]).all() and (stored["rel"] == out["rel"]).all()
    raw.close()
    # and the student's targets in theirs, on the label support only: exact, and smaller than [n, V]
    student = nlp.get_pipe("parser")
    expected, _ = expected_targets(teacher_path, student, words, 3.0, "local")
    assert len(kd.targets_store) == len(words)
    assert kd.targets_store.meta["space"].endswith(f":{target_maker.PACKED_LAYOUT}")
    for b, w in enumerate(words):
        stored = kd.targets_store.get(w)
        assert set(stored) == {SUPPORT_VALUES, "top1", "lost"}
        support = student.kd_space(kd.teacher.get_pipe("parser")).support(len(w))
        assert stored[SUPPORT_VALUES].shape == (int(support.sum()),) and int(support.sum()) < support.numel()
        assert torch.equal(torch.from_numpy(stored[SUPPORT_VALUES]), expected.unary[b, : len(w)][support])
    nlp.update(examples, sgd=optimizer)
    assert len(kd.targets_store) == len(words)
    first_lost = kd.lost_mass
    kd.update(examples)
    first_targets = nlp.get_pipe("parser")._kd.targets
    assert torch.equal(first_targets.unary, expected.unary)  # unpacked: the dense targets, bit for bit

    # a second run on the same cache never runs the teacher
    def refuse(self, docs):
        raise AssertionError("the teacher ran although its outputs are cached")

    monkeypatch.setattr(DependencyParser, "teacher_outputs", refuse)
    again = student_nlp(teacher_path, cache_dir, temperature=3.0)
    optimizer = again.initialize(lambda: examples_for(again))
    kd2 = again.get_pipe("kd")
    assert kd2.lost_mass == pytest.approx(first_lost)
    kd2.update(examples_for(again))
    second = again.get_pipe("parser")._kd.targets
    assert torch.equal(second.unary, first_targets.unary) and torch.equal(second.top1, first_targets.top1)
    assert again.update(examples_for(again), sgd=optimizer)["parser"] > 0
    # (the patch is live: an empty cache would need the teacher)
    fresh = student_nlp(teacher_path, tmp_path / "other-cache", temperature=3.0)
    with pytest.raises(AssertionError, match="the teacher ran"):
        fresh.initialize(lambda: examples_for(fresh))


@pytest.mark.filterwarnings("ignore:.*skd-W152")
@pytest.mark.parametrize("group_cost", [1, 700])
def test_kd_parser_targets_in_length_groups_equal_one_padded_batch(group_cost, trained, tmp_path, monkeypatch):
    """TargetMaker.make_each pads sentences of similar length together (the step-time fix for
    parser students); the targets must be those of one batch padded to the longest sentence."""
    teacher_path = trained["skd_biaffine_parser"][1]
    nlp = student_nlp(teacher_path, tmp_path / "cache", temperature=2.0, objective="top1")
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    kd, student = nlp.get_pipe("kd"), nlp.get_pipe("parser")
    words = [tuple(t.text for t in eg.predicted) for eg in examples]
    assert len(set(map(len, words))) > 2  # lengths differ: groups really split the batch
    expected, _ = expected_targets(teacher_path, student, words, 2.0, "local")
    monkeypatch.setattr(target_maker, "TARGET_GROUP_COST", group_cost)  # 1: every sentence alone
    potentials = list(kd.potentials_store.get_many(words))
    items = kd.target_maker.make_each(potentials, [len(w) for w in words], device=torch.device("cpu"))
    assert [item.unary.shape[1] for item in items] == [len(w) for w in words]  # in the order given
    handed = KDTargets.stack(items)
    assert torch.allclose(handed.unary, expected.unary, atol=1e-6)
    assert torch.equal(handed.top1, expected.top1)


def test_kd_parser_student_relation_missing_from_teacher_errors(trained, tmp_path):
    nlp = student_nlp(trained["skd_biaffine_parser"][1], tmp_path / "cache")
    refs = gold_docs(nlp)
    renamed = [t for t in refs[0] if t.dep_ == "det"][0]
    renamed.dep_ = "det:renamed"
    with pytest.raises(ValueError, match=r"\[skd-E183\].*det:renamed"):
        nlp.initialize(lambda: examples_for(nlp, refs))


def test_kd_parser_relpos_student_errors(trained, tmp_path):
    nlp = student_nlp(trained["skd_mfvi_parser"][1], tmp_path / "cache", student_cfg={"encoding": "relpos"})
    examples = examples_for(nlp, pos=True)
    with pytest.raises(ValueError, match=r"\[skd-E182\]"):
        nlp.initialize(lambda: examples)


# -- long documents (issue 20) --------------------------------------------------------------------
def random_parser(factory: str, **cfg):
    nlp = make_nlp(factory, **cfg)
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    randomise(nlp.get_pipe("parser"))
    return nlp


def long_doc(nlp: Language, n: int, sent_starts=None) -> Doc:
    words = [t.text for doc in gold_docs(nlp) for t in doc]
    words = (words * (n // len(words) + 1))[:n]
    return Doc(nlp.vocab, words=words, sent_starts=sent_starts)


def assert_trees_over(doc: Doc, spans) -> None:
    """Each span (start, end) is one sentence: one root, every head inside it, no cycle."""
    assert [(s.start, s.end) for s in doc.sents] == list(spans)
    for start, end in spans:
        heads = [0 if t.head.i == t.i else t.head.i - start + 1 for t in doc[start:end]]
        assert all(0 <= h <= end - start for h in heads)
        assert is_tree(heads)


@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_long_doc_without_sentences_is_parsed_in_windows(factory):
    nlp = random_parser(factory, max_length=8)
    with pytest.warns(UserWarning, match=r"\[skd-W330\].*30 tokens.*max_length = 8"):
        doc = nlp(long_doc(nlp, 30))
    assert_trees_over(doc, [(0, 8), (8, 16), (16, 24), (24, 30)])


@pytest.mark.parametrize("factory", FACTORIES)
def test_parser_doc_with_sentences_is_parsed_sentence_by_sentence(factory):
    nlp = random_parser(factory, max_length=8)
    starts = [0, 5, 6, 13]
    doc = long_doc(nlp, 20, sent_starts=[i in starts for i in range(20)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every sentence fits: no window, no warning
        doc = nlp(doc)
    assert_trees_over(doc, [(0, 5), (5, 6), (6, 13), (13, 20)])
    # a sentence longer than max_length is cut into windows
    doc = long_doc(nlp, 20, sent_starts=[i in (0, 3) for i in range(20)])
    with pytest.warns(UserWarning, match=r"\[skd-W330\].*sentence of 17 tokens"):
        doc = nlp(doc)
    assert_trees_over(doc, [(0, 3), (3, 11), (11, 19), (19, 20)])


@pytest.mark.parametrize("factory,n", [("skd_biaffine_parser", 1500), ("skd_mfvi_parser", 600),
                                       ("skd_seqlabel_parser", 1500)])
def test_parser_long_doc_with_default_max_length_returns_a_tree_per_window(factory, n):
    nlp = random_parser(factory)
    max_length = nlp.get_pipe("parser").max_length
    assert max_length == (256 if factory == "skd_mfvi_parser" else 512)
    with pytest.warns(UserWarning, match=r"\[skd-W330\]"):
        doc = nlp(long_doc(nlp, n))
    assert_trees_over(doc, [(s, min(s + max_length, n)) for s in range(0, n, max_length)])
    # in nlp.pipe with short docs around it (batched with them: float32 sums may break near-ties
    # of random weights differently, so the windows are compared by shape)
    piped = list(nlp.pipe([TEXTS[0], long_doc(nlp, n), TEXTS[1]]))
    assert_trees_over(piped[1], [(s, min(s + max_length, n)) for s in range(0, n, max_length)])
    assert tree(piped[0]) == tree(nlp(TEXTS[0])) and tree(piped[2]) == tree(nlp(TEXTS[1]))


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("value", [1, 0, -3])
def test_parser_bad_max_length_errors(factory, value):
    with pytest.raises(ValueError, match=r"\[skd-E330\]"):
        make_nlp(factory, max_length=value)


def test_parser_segments_are_batched_within_the_padded_budget():
    pieces = [(b, 0, n) for b, n in enumerate([1, 3, 8, 8, 2, 5, 4, 4, 4, 4, 7, 1])]
    batches = list(padded_batches(pieces, 8))
    assert sorted(p for batch in batches for p in batch) == sorted(pieces)
    for batch in batches:
        longest = max(end - start for _, start, end in batch)
        assert len(batch) * longest ** 2 <= 64
    assert [len(b) for b in padded_batches([(0, 0, 20)], 8)] == [1]  # an over-long piece still goes
