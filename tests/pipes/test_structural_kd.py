"""The structural_kd component: teacher loading, label checks, cache, and each case end to end."""
import warnings

import numpy
import pytest
import spacy
import torch
from spacy.training import Example
from thinc.api import Config, registry

from spacy_skd.kd.objectives import token_kl_loss
from spacy_skd.kd.targets import maxent_targets
from spacy_skd.pipes.tagger import SequenceTagger
from spacy_skd.teacher.runner import TeacherRunner
from tests.conftest import examples_from, train_tagger

TEXTS = [
    ("John Smith lives in New York City .", [(0, 2, "PER"), (4, 7, "LOC")]),
    ("Mary works at Google in London .", [(0, 1, "PER"), (3, 4, "ORG"), (5, 6, "LOC")]),
    ("The cat sat on the mat .", []),
    ("Paris is big", [(0, 1, "LOC")]),
]
UNLABELED = ["Anna visited Berlin .", "Google hired Peter ."]


def examples_for(nlp, data=TEXTS):
    return examples_from(nlp, data)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return {
        "crf": train_tagger("skd_crf_tagger", examples_for, root / "crf", steps=50),
        "maxent": train_tagger("skd_maxent_tagger", examples_for, root / "maxent", steps=50),
    }


def student_nlp(factory, teacher, *, objective="structural", cache_dir=None, student_cfg=None, **kd_cfg):
    nlp = spacy.blank("en")
    nlp.add_pipe("structural_kd", name="kd", config={"objective": objective, **kd_cfg})
    nlp.add_pipe(factory, name="ner", config=student_cfg or {})
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teacher), "cache_dir": str(cache_dir) if cache_dir else None}
    return nlp


CASES = [  # (teacher, student factory, objective, student config)
    ("crf", "skd_crf_tagger", "structural", {}),  # 1a
    ("crf", "skd_maxent_tagger", "structural", {}),  # 2a
    ("maxent", "skd_crf_tagger", "structural", {"constrained": False}),  # 3
    ("maxent", "skd_maxent_tagger", "token", {}),  # token KD
    ("crf", "skd_crf_tagger", "posterior", {}),
    ("crf", "skd_crf_tagger", "top1", {}),
    ("maxent", "skd_maxent_tagger", "none", {}),
]


@pytest.mark.parametrize("teacher,factory,objective,cfg", CASES)
def test_kd_student_learns_teacher_labels(teacher, factory, objective, cfg, teachers, tmp_path):
    """Pure KD (lambda = 1) on the training texts: the student reproduces the teacher."""
    nlp = student_nlp(factory, teachers[teacher], objective=objective, cache_dir=tmp_path, student_cfg=cfg,
                      kd_weight=0.0 if objective == "none" else 1.0, temperature=1.0)
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("ner").labels == ("LOC", "ORG", "PER")  # taken from the teacher
    for _ in range(40):
        losses = nlp.update(examples, sgd=optimizer)
    assert losses["ner"] >= 0
    teacher_nlp = spacy.load(teachers[teacher])
    for text, _ in TEXTS:
        assert [(e.text, e.label_) for e in nlp(text).ents] == [(e.text, e.label_) for e in teacher_nlp(text).ents]


def test_kd_loss_reaches_component_gradient(teachers, tmp_path):
    """The student's gradient is that of (1 - lambda) * gold + lambda * KD, KD from kd/objectives."""
    nlp = student_nlp("skd_maxent_tagger", teachers["maxent"], objective="token", cache_dir=tmp_path,
                      kd_weight=0.3, temperature=2.0)
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    kd, ner = nlp.get_pipe("kd"), nlp.get_pipe("ner")
    kd.update(examples)
    scores = ner.model.predict([eg.predicted for eg in examples])
    loss, grads = ner.get_loss(examples, scores)
    teacher_scores = spacy.load(teachers["maxent"]).get_pipe("ner").model.predict([eg.predicted for eg in examples])
    logits = scores.emissions.clone().requires_grad_()
    targets = maxent_targets(teacher_scores.emissions, teacher_scores.lengths, temperature=2.0)
    gold = ner._gold_allowed(examples, logits.shape, logits.device)
    nll = -ner._log_likelihood(type(scores)(logits, scores.lengths), gold)
    expected = (0.7 * nll + 0.3 * token_kl_loss(logits, scores.lengths, targets, temperature=2.0)).sum() / len(examples)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    assert loss == pytest.approx(float(expected.detach()), rel=1e-4)
    assert torch.allclose(grads[0], expected_grad, atol=1e-5)


def record_batch_sizes(monkeypatch, owner, method: str) -> list:
    """Wrap `owner.method(self, batch)` so that every call appends `len(batch)` to the list returned."""
    sizes = []
    original = getattr(owner, method)

    def recording(self, batch):
        sizes.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(owner, method, recording)
    return sizes


def test_kd_cache_is_reused_across_runs(teachers, tmp_path, monkeypatch):
    calls = record_batch_sizes(monkeypatch, TeacherRunner, "__call__")
    for objective in ["structural", "top1"]:  # a KD run and a baseline share one cache
        nlp = student_nlp("skd_crf_tagger", teachers["crf"], objective=objective, cache_dir=tmp_path)
        examples = examples_for(nlp)
        optimizer = nlp.initialize(lambda: examples)
        nlp.update(examples, sgd=optimizer)
        nlp.update(examples, sgd=optimizer)
    assert sum(calls) == len(TEXTS)  # every sentence ran through the teacher exactly once


def test_kd_unlabeled_examples_get_teacher_top1(teachers, tmp_path):
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], objective="none", cache_dir=tmp_path, kd_weight=0.0)
    unlabeled = []
    for text in UNLABELED:
        doc = nlp.make_doc(text)
        ref = nlp.make_doc(text)
        ref.user_data["skd_unlabeled"] = True
        unlabeled.append(Example(doc, ref))
    examples = examples_for(nlp) + unlabeled
    nlp.initialize(lambda: examples)
    kd, ner = nlp.get_pipe("kd"), nlp.get_pipe("ner")
    kd.update(unlabeled)
    scores = ner.model.predict([eg.predicted for eg in unlabeled])
    # no human labels on these texts: without KD their loss would be 0 (all tokens missing);
    # with the teacher's Top-1 as pseudo-gold it is that sequence's NLL under the student
    loss, _ = ner.get_loss(unlabeled, scores)
    top1 = ner._kd.targets.top1
    assert (top1[:, 0] >= 0).all()
    expected = ner.chain(scores).log_prob(top1).neg().sum() / len(unlabeled)
    assert loss > 0 and loss == pytest.approx(float(expected), rel=1e-4)


def test_kd_call_is_noop_and_student_loads_without_teacher(teachers, tmp_path):
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path / "cache")
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(30):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "student")
    reloaded = spacy.load(tmp_path / "student")
    assert reloaded.get_pipe("kd").teacher is None
    text = TEXTS[0][0]
    assert [(e.text, e.label_) for e in reloaded(text).ents] == [(e.text, e.label_) for e in nlp(text).ents]


@pytest.mark.parametrize("case", ["missing_path", "no_component", "labels", "scheme", "case3_constrained",
                                  "objective", "token_crf", "no_teacher"])
def test_kd_errors(case, teachers, tmp_path):
    teacher = teachers["crf"]
    kwargs, factory, data = {}, "skd_crf_tagger", TEXTS
    expected = {"missing_path": "E224", "no_component": "E225", "labels": "E175", "scheme": "E173",
                "case3_constrained": "E174", "objective": "E152", "token_crf": "E166", "no_teacher": "E169"}[case]
    if case == "missing_path":
        teacher = tmp_path / "does-not-exist"
    elif case == "no_component":
        kwargs["teacher_component"] = "tagger"
    elif case == "labels":
        data = TEXTS + [("Windows is software", [(0, 1, "PRODUCT")])]
    elif case == "scheme":
        kwargs["student_cfg"] = {"scheme": "IOB2"}
    elif case == "case3_constrained":
        teacher = teachers["maxent"]
    elif case == "objective":
        kwargs["objective"] = "distill"
    elif case == "token_crf":
        kwargs["objective"] = "token"
    nlp = student_nlp(factory, teacher, cache_dir=tmp_path, **kwargs)
    if case == "no_teacher":
        nlp.config["initialize"]["components"]["kd"]["teacher"] = None
    examples = examples_for(nlp, data)
    with pytest.raises(ValueError, match=rf"\[skd-{expected}\]"):
        nlp.initialize(lambda: examples)


@pytest.mark.parametrize("teacher,factory,cfg", [("crf", "skd_crf_tagger", {}), ("crf", "skd_maxent_tagger", {}),
                                                 ("maxent", "skd_crf_tagger", {"constrained": False})])
def test_v4_distill_api(teacher, factory, cfg, teachers):
    """spaCy v4's `distill(teacher_pipe, examples)`: pure structural KD from the teacher pipe."""
    teacher_nlp = spacy.load(teachers[teacher])
    nlp = spacy.blank("en")
    student = nlp.add_pipe(factory, name="ner", config=cfg)
    for label in teacher_nlp.get_pipe("ner").labels:
        student.add_label(label)
    examples = [Example(nlp.make_doc(t), teacher_nlp.make_doc(t)) for t, _ in TEXTS]
    optimizer = nlp.initialize(lambda: examples)
    assert student.is_distillable
    first = student.distill(teacher_nlp.get_pipe("ner"), examples, sgd=optimizer)["ner"]
    for _ in range(40):
        last = student.distill(teacher_nlp.get_pipe("ner"), examples, sgd=optimizer)["ner"]
    assert 0 <= last < first
    for text, _ in TEXTS:
        assert [(e.text, e.label_) for e in nlp(text).ents] == [(e.text, e.label_) for e in teacher_nlp(text).ents]
    with pytest.raises(ValueError, match=r"\[skd-E179\]"):
        scores = student.model.predict([eg.predicted for eg in examples])
        student.get_teacher_student_loss(scores, scores, objective="none")


def test_kd_local_temperature_crf_student_warns_and_trains(teachers, tmp_path):
    """Paper-parity local temperature on a CRF student: warned about, clamped, and finite."""
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path, temperature=3.0,
                      temperature_mode="local")
    examples = examples_for(nlp)
    with pytest.warns(UserWarning, match=r"\[skd-W151\]"):
        optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        losses = nlp.update(examples, sgd=optimizer)
    assert 0 <= losses["ner"] < float("inf")


def test_packaged_student_needs_no_teacher_and_no_transformers(teachers, tmp_path, monkeypatch):
    """`spacy package` of a distilled student gives en_skd_student: it loads with the teacher
    gone, its kd component runs no KD code, and its requirements name spacy-skd but not
    spacy-transformers (the student does not use it)."""
    import json
    import shutil

    from spacy.cli.package import package

    from spacy_skd.pipes.structural_kd import StructuralKD

    teacher = tmp_path / "teacher"
    shutil.copytree(teachers["crf"], teacher)
    nlp = student_nlp("skd_crf_tagger", teacher, cache_dir=tmp_path / "cache")
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(20):
        nlp.update(examples, sgd=optimizer)
    nlp.to_disk(tmp_path / "student")
    expected = [(e.text, e.label_) for e in nlp(TEXTS[0][0]).ents]
    (tmp_path / "packages").mkdir()
    package(tmp_path / "student", tmp_path / "packages", name="skd_student", version="0.0.1",
            create_sdist=False, force=True, silent=True)
    root = tmp_path / "packages" / "en_skd_student-0.0.1"
    meta = json.loads((root / "meta.json").read_text())
    assert meta["name"] == "skd_student" and meta["lang"] == "en"
    requirements = " ".join(meta["requirements"])
    assert "spacy-skd" in requirements and "spacy-transformers" not in requirements
    shutil.rmtree(teacher)  # production: no teacher anywhere
    monkeypatch.setattr(StructuralKD, "update", lambda *a, **k: pytest.fail("KD code ran at inference"))
    loaded = spacy.load(root / "en_skd_student" / "en_skd_student-0.0.1")
    assert [(e.text, e.label_) for e in loaded(TEXTS[0][0]).ents] == expected
    assert list(loaded.pipe([TEXTS[1][0]]))[0].ents is not None


def test_kd_initialize_reads_the_cache_one_batch_at_a_time(teachers, tmp_path, monkeypatch):
    """Initialize prepares the whole corpus, but holds one batch of potentials and targets at a
    time: a parser teacher's outputs for a corpus with unlabeled text outgrow the memory."""
    from spacy_skd.training.cache import TeacherCache

    sizes = record_batch_sizes(monkeypatch, TeacherCache, "get_many")
    data = TEXTS + [(text, []) for text in UNLABELED]
    for _ in range(2):  # a cold cache (the teacher runs), then a warm one (read back)
        sizes.clear()
        nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path, batch_size=2)
        nlp.initialize(lambda: examples_for(nlp, data))
        assert sizes and max(sizes) <= 2
        assert sum(sizes) >= len(data)  # every sentence was looked up
    # and the targets it stored are those a batch reads: training runs on them
    kd = nlp.get_pipe("kd")
    assert len(kd.targets_for([tuple(t.split()) for t, _ in data])) == len(data)


def test_kd_after_its_student_is_refused(teachers, tmp_path):
    """A KD component after its student would hand over targets the student already trained
    without: initialize refuses it and says where it must go."""
    nlp = spacy.blank("en")
    nlp.add_pipe("skd_crf_tagger", name="ner")
    nlp.add_pipe("structural_kd", name="kd")
    nlp.config["initialize"]["components"]["kd"] = {"teacher": str(teachers["crf"]), "cache_dir": str(tmp_path)}
    examples = examples_for(nlp)
    with pytest.raises(ValueError, match=r"\[skd-E300\].*'kd'.*'ner'.*pipeline = \['kd', 'ner'\]"):
        nlp.initialize(lambda: examples)


@pytest.mark.parametrize("frozen", ["kd", "ner"])
def test_kd_with_a_frozen_side_is_refused(frozen, teachers, tmp_path):
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path)
    nlp.config["training"]["frozen_components"] = [frozen]
    examples = examples_for(nlp)
    with pytest.raises(ValueError, match=rf"\[skd-E301\] Component '{frozen}'"):
        nlp.initialize(lambda: examples)


def test_student_refuses_kd_targets_of_other_examples(teachers, tmp_path):
    """A KD batch for other examples is an error, not a batch trained on gold alone."""
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path)
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    nlp.get_pipe("kd").update(examples[:2])
    with pytest.raises(ValueError, match=r"\[skd-E302\] Student 'ner'"):
        nlp.get_pipe("ner").update(examples[2:], sgd=optimizer)
    nlp.get_pipe("ner").update(examples[2:], sgd=optimizer)  # the stale batch is gone


def _student_gradients(teacher, tmp_path, **kd_cfg) -> list:
    """The student's parameter gradients after one nlp.update from the same initial weights."""
    spacy.util.fix_random_seed(0)
    nlp = student_nlp("skd_crf_tagger", teacher, cache_dir=tmp_path, **kd_cfg)
    examples = examples_for(nlp)
    nlp.initialize(lambda: examples)
    grads = []

    def record(key, param, grad):  # an optimizer that keeps the weights as they are
        grads.append(numpy.array(grad, copy=True))
        return param, grad

    nlp.update(examples, sgd=record)
    return grads


def test_kd_targets_change_the_student_gradients(teachers, tmp_path):
    """The teacher reaches the student's weights: other targets (a weaker teacher) or objective
    'none' give other gradients, while the same teacher gives the same ones."""
    weak = train_tagger("skd_crf_tagger", examples_for, tmp_path / "weak", steps=2)
    strong = _student_gradients(teachers["crf"], tmp_path / "a", kd_weight=0.5)
    assert len(strong) > 2
    again = _student_gradients(teachers["crf"], tmp_path / "b", kd_weight=0.5)
    other = _student_gradients(weak, tmp_path / "c", kd_weight=0.5)
    gold = _student_gradients(teachers["crf"], tmp_path / "d", objective="none", kd_weight=0.5)

    def same(a, b):
        return len(a) == len(b) and all(x.shape == y.shape and numpy.allclose(x, y, atol=1e-7) for x, y in zip(a, b))

    assert same(strong, again)
    assert not same(strong, other)
    assert not same(strong, gold)


# -- out-of-range settings (issue 20) -------------------------------------------------------------
@pytest.mark.parametrize("value", [1e-30, 0.049, 0.0, -1.0])
def test_kd_temperature_must_be_at_least_the_minimum(value):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"\[skd-E332\].*0\.05"):
        nlp.add_pipe("structural_kd", config={"temperature": value})
    nlp.add_pipe("structural_kd", config={"temperature": 0.05})  # the minimum itself is fine


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_kd_temperature_must_be_finite(value):
    # `temperature = inf` in a config file reaches the factory as the string, validated to a float
    assert Config().from_str(f"[kd]\ntemperature = {value}")["kd"]["temperature"] == value
    with pytest.raises(ValueError, match=r"\[skd-E332\]"):
        spacy.blank("en").add_pipe("structural_kd", config={"temperature": value})


@pytest.mark.parametrize("rate", [1.5, -0.5])
def test_kd_weight_from_a_constant_schedule_is_range_checked(rate):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=r"\[skd-E333\].*update 0"):
        nlp.add_pipe("structural_kd", config={"kd_weight": {"@schedules": "constant.v1", "rate": rate}})


@registry.schedules("test-skd.leaves_range.v1")
def leaves_range() -> list:
    return [1.0, 0.5, 1.25, 0.0]


def test_kd_weight_from_a_schedule_is_checked_when_drawn(teachers, tmp_path):
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path,
                      kd_weight={"@schedules": "test-skd.leaves_range.v1"})
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    nlp.update(examples, sgd=optimizer)
    nlp.update(examples, sgd=optimizer)
    with pytest.raises(ValueError, match=r"\[skd-E333\].*1\.25 at update 2"):
        nlp.update(examples, sgd=optimizer)


def test_kd_sentence_too_long_for_the_teacher_pass_trains_on_gold_alone_issue20(teachers, tmp_path):
    """A labelled sentence over max_batch_cost on its own: W340 at initialize, the teacher never
    runs on it, and its loss in a batch is its gold NLL alone (KD weight 1 for the others)."""
    long_text = " ".join(["Paris"] * 40)
    data = TEXTS[:2] + [(long_text, [(0, 1, "LOC")])]
    bound = TeacherRunner(teachers["crf"], "ner").cost(30)
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], cache_dir=tmp_path, kd_weight=1.0, max_batch_cost=bound)
    kd = nlp.get_pipe("kd")
    examples = examples_for(nlp, data)
    with pytest.warns(UserWarning, match=r"\[skd-W340\] Component 'kd': 1 sentence\(s\).*the longest: 40 tokens"):
        optimizer = nlp.initialize(lambda: examples)
    assert kd.too_long == {tuple(long_text.split())}
    ner = nlp.get_pipe("ner")
    scores = ner.model.predict([eg.predicted for eg in examples])

    def loss_of(batch, rows):
        kd.update(batch)
        part = type(scores)(scores.emissions[rows], scores.lengths[rows], *scores.potentials[1:])
        return ner.get_loss(batch, part)[0] * len(batch)

    both = loss_of(examples[1:], [1, 2])
    kd.update(examples[2:])
    assert ner._kd is None  # no sentence of the batch has targets: gold only
    gold_only = ner.get_loss(examples[2:], type(scores)(scores.emissions[2:], scores.lengths[2:],
                                                        *scores.potentials[1:]))[0]
    assert both == pytest.approx(loss_of(examples[1:2], [1]) + gold_only, rel=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # counted once, at initialize
        for _ in range(2):
            losses = nlp.update(examples, sgd=optimizer)
    assert numpy.isfinite(losses["ner"])


def test_kd_objective_none_never_runs_the_teacher_but_checks_it_issue20(teachers, tmp_path, monkeypatch):
    """objective = "none" on labelled data: the teacher is loaded and its labels checked, but it
    never runs over the corpus and no cache is written; training runs on gold."""
    def no_teacher(*args, **kwargs):
        raise AssertionError("the teacher ran")

    monkeypatch.setattr(TeacherRunner, "__call__", no_teacher)
    monkeypatch.setattr(SequenceTagger, "teacher_outputs", no_teacher)
    nlp = student_nlp("skd_crf_tagger", teachers["crf"], objective="none", cache_dir=tmp_path / "cache",
                      kd_weight=0.0)
    examples = examples_for(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("ner").labels == ("LOC", "ORG", "PER")  # taken from the teacher
    for _ in range(3):
        losses = nlp.update(examples, sgd=optimizer)
    assert numpy.isfinite(losses["ner"]) and losses["ner"] > 0
    assert not (tmp_path / "cache").exists()
    other = student_nlp("skd_crf_tagger", teachers["crf"], objective="none", cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match=r"\[skd-E175\]"):  # still checked against the teacher
        other.initialize(lambda: examples_for(other, TEXTS + [("Windows is software", [(0, 1, "PRODUCT")])]))
