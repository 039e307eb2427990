"""KD losses (spacy_skd.kd.objectives) against brute-force enumeration of every tag sequence."""
import math
import subprocess
import sys
import warnings

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from spacy_skd.kd.objectives import (
    OBJECTIVES,
    check_loss,
    get_objective,
    posterior_crf_loss,
    structural_crf_loss,
    token_kl_loss,
)
from spacy_skd.kd.targets import KDTargets, crf_targets, maxent_targets, target_entropy
from spacy_skd.structs.chain import TransitionMask

from . import SETTINGS, cross_entropy, dims, product_sequences, random_chain, sequences, slot_marginals


def teacher_and_student(seed, B, N, L, with_mask=False):
    """Two random chains over the same sentences; the student shares the teacher's mask."""
    teacher = random_chain(seed, B, N, L, with_mask=with_mask)
    student = random_chain(seed + 1, B, N, L, lengths=teacher.lengths)._replace(mask=teacher.mask)
    return teacher, student


def free(student):
    """The student's potentials as leaf tensors that require grad."""
    return [x.clone().requires_grad_() for x in (student.emit, student.trans, student.start, student.end)]


def crf_loss(fn, params, student, targets, **kwargs):
    emit, trans, start, end = params
    return fn(emit, trans, student.lengths, start, end, student.mask, targets, **kwargs)


# -- structural KD, CRF student ---------------------------------------------------------------
@pytest.mark.parametrize("T", [1.0, 2.0])
@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_structural_loss_is_tempered_cross_entropy(T, seed, B, N, L, with_mask):
    """Case 1a: loss = T² H(P_t^T, P_s^T) exactly (global temperature on both sides)."""
    teacher, student = teacher_and_student(seed, B, N, L, with_mask)
    targets = crf_targets(*teacher.args, temperature=T, dtype=torch.float64)
    loss = structural_crf_loss(*student.args, targets, temperature=T)
    for b in range(B):
        _, log_pt = sequences(teacher, b, T)
        _, log_ps = sequences(student, b, T)
        assert torch.allclose(loss[b], T * T * cross_entropy(log_pt, log_ps))


@SETTINGS
@given(**dims, with_mask=st.booleans(), T=st.sampled_from([2.0, 5.0]))
def test_structural_loss_is_bounded_by_teacher_entropy(seed, B, N, L, with_mask, T):
    """Global temperature: loss >= T² H(P_t^T) >= 0 (a cross-entropy is at least the entropy)."""
    teacher, student = teacher_and_student(seed, B, N, L, with_mask)
    targets = crf_targets(*teacher.args, temperature=T, dtype=torch.float64)
    floor = T * T * target_entropy(targets)
    assert (floor >= -1e-12).all()
    assert (structural_crf_loss(*student.args, targets, temperature=T) >= floor - 1e-9).all()


@pytest.mark.parametrize("T", [1.0, 2.0])
@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_structural_loss_gradient_is_marginal_difference(T, seed, B, N, L, with_mask):
    """d loss / d θ_s = T (μ_s^T - μ_t^T) for emissions, transitions, start and end."""
    teacher, student = teacher_and_student(seed, B, N, L, with_mask)
    targets = crf_targets(*teacher.args, temperature=T, dtype=torch.float64)
    params = free(student)
    crf_loss(structural_crf_loss, params, student, targets, temperature=T).sum().backward()
    d_emit, d_trans, d_start, d_end = (p.grad for p in params)
    want_trans = torch.zeros(L, L, dtype=torch.float64)
    want_start = torch.zeros(L, dtype=torch.float64)
    want_end = torch.zeros(L, dtype=torch.float64)
    for b in range(B):
        s_unary, s_pairs, s_start, s_end = slot_marginals(*sequences(student, b, T), N, L)
        t_unary, t_pairs, t_start, t_end = slot_marginals(*sequences(teacher, b, T), N, L)
        assert torch.allclose(d_emit[b], T * (s_unary - t_unary))
        want_trans += T * (s_pairs - t_pairs).sum(0)
        want_start += T * (s_start - t_start)
        want_end += T * (s_end - t_end)
    assert torch.allclose(d_trans, want_trans)
    assert torch.allclose(d_start, want_start)
    assert torch.allclose(d_end, want_end)


@pytest.mark.parametrize("T", [1.0, 2.0])
@SETTINGS
@given(**dims)
def test_structural_loss_factorised_teacher_is_cross_entropy(T, seed, B, N, L):
    """Case 3: with a MaxEnt teacher the loss is T² H(Π_i p_t(y_i), P_s^T)."""
    teacher, student = teacher_and_student(seed, B, N, L)
    targets = maxent_targets(teacher.emit, teacher.lengths, temperature=T, dtype=torch.float64)
    loss = structural_crf_loss(*student.args, targets, temperature=T)
    for b, n in enumerate(student.lengths.tolist()):
        _, log_pt = product_sequences(targets.unary[b], n)
        _, log_ps = sequences(student, b, T)
        assert torch.allclose(loss[b], T * T * cross_entropy(log_pt, log_ps))


@SETTINGS
@given(**dims, T=st.sampled_from([1.0, 3.0]))
def test_structural_loss_factorised_path_equals_explicit_pairs(seed, B, N, L, T):
    """p_{i-1}ᵀ A p_i without the [B, N-1, L, L] tensor gives the loss (and gradient) of the
    materialised outer products."""
    teacher, student = teacher_and_student(seed, B, N, L)
    factorised = maxent_targets(teacher.emit, teacher.lengths, temperature=T, dtype=torch.float64)
    p = factorised.unary
    explicit = KDTargets(factorised.lengths, p, pairs=p[:, :-1, :, None] * p[:, 1:, None, :],
                         start=factorised.start_probs(), end=factorised.end_probs(), temperature=T, mode="global")
    assert explicit.pairs.shape == (B, max(N - 1, 0), L, L)
    grads = []
    for targets in (factorised, explicit):
        params = free(student)
        loss = crf_loss(structural_crf_loss, params, student, targets, temperature=T)
        loss.sum().backward()
        grads.append((loss.detach(), [q.grad for q in params]))
    (loss_f, grads_f), (loss_e, grads_e) = grads
    assert torch.allclose(loss_f, loss_e)
    for g_f, g_e in zip(grads_f, grads_e):
        assert torch.allclose(g_f, g_e)


def test_structural_loss_lengths_zero_and_one():
    """Length-0 sentences cost 0; an all-length-1 batch has a pair tensor of width 0; a batch of
    width 0 still returns a loss on the graph."""
    teacher, student = teacher_and_student(5, 3, 1, 3)
    teacher = teacher._replace(lengths=torch.tensor([0, 1, 1]))
    student = student._replace(lengths=teacher.lengths)
    targets = crf_targets(*teacher.args, dtype=torch.float64)
    assert targets.pairs.shape == (3, 0, 3, 3)
    params = free(student)
    loss = crf_loss(structural_crf_loss, params, student, targets)
    assert loss[0] == 0
    for b in (1, 2):
        assert torch.allclose(loss[b], cross_entropy(sequences(teacher, b)[1], sequences(student, b)[1]))
    loss.sum().backward()
    assert torch.isfinite(params[0].grad).all()
    empty_t, empty_s = teacher_and_student(0, 2, 0, 3)
    params = free(empty_s)
    loss = crf_loss(structural_crf_loss, params, empty_s, crf_targets(*empty_t.args))
    assert loss.tolist() == [0.0, 0.0]
    loss.sum().backward()


def test_structural_loss_rejects_teacher_mass_on_forbidden_sequences():
    """A constrained student cannot match an unconstrained teacher: infinite cross-entropy, E158."""
    L = 3
    allowed = TransitionMask(torch.tensor([True, False, True]), ~torch.eye(L, dtype=torch.bool), torch.ones(L, dtype=torch.bool))
    teacher, student = teacher_and_student(0, 2, 4, L)
    student = student._replace(mask=allowed)
    for targets in (crf_targets(*teacher.args), maxent_targets(teacher.emit, teacher.lengths)):
        with pytest.raises(ValueError, match=r"\[skd-E158\]"):
            structural_crf_loss(*student.args, targets)
    with pytest.raises(ValueError, match=r"\[skd-E158\]"):
        posterior_crf_loss(*student.args, crf_targets(*teacher.args, pairs=False))
    # the fix the message gives: the teacher with the student's constraints
    fixed = crf_targets(*teacher._replace(mask=allowed).args)
    assert torch.isfinite(structural_crf_loss(*student.args, fixed)).all()
    assert torch.isfinite(posterior_crf_loss(*student.args, fixed)).all()


# -- local temperature with a CRF student (docs/algorithms.md §2.5) --------------------------------
@pytest.fixture(scope="module")
def local_pitfall():
    """Adam on free student potentials (L = 3, n = 4, T = 5) against a fixed teacher, once with
    locally and once with globally tempered targets. Returns per-step losses and final params.

    Finding (seed 0, lr 1): both start at T² log 81 ≈ 109.9 (uniform student). With global
    targets the loss reaches its floor T² H(P_t^T) ≈ 97.35 within ~25 steps and stays there.
    With local targets it passes 0 after ~125 steps and is ≈ -240 after 300, still falling:
    the tempered pair marginals lie outside the marginal polytope, so log Z_s - ⟨q, θ_s⟩ has
    no lower bound (docs/algorithms.md §2.5: about +4 -> -13 with plain gradient descent).
    """
    T, n, L = 5.0, 4, 3
    teacher = random_chain(0, 1, n, L, scale=2.0, lengths=torch.tensor([n]))
    student = random_chain(0, 1, n, L, lengths=teacher.lengths)
    out = {"T": T, "student": student}
    for mode in ("local", "global"):
        targets = crf_targets(*teacher.args, temperature=T, mode=mode, dtype=torch.float64)
        params = [torch.zeros_like(x, requires_grad=True) for x in (student.emit, student.trans, student.start, student.end)]
        opt = torch.optim.Adam(params, lr=1.0)
        losses = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # W150, asserted in its own test
            for _ in range(300):
                loss = crf_loss(structural_crf_loss, params, student, targets, temperature=T).sum()
                losses.append(loss.item())
                opt.zero_grad()
                loss.backward()
                opt.step()
        out[mode] = (targets, losses, params)
    return out


def test_local_temperature_makes_crf_loss_unbounded_below(local_pitfall):
    T = local_pitfall["T"]
    _, local_losses, _ = local_pitfall["local"]
    global_targets, global_losses, _ = local_pitfall["global"]
    assert local_losses[0] > 100 and local_losses[-1] < -100
    assert local_losses[-1] < local_losses[-50]  # still falling
    floor = T * T * float(target_entropy(global_targets))
    assert floor > 0 and min(global_losses) >= floor - 1e-6


def test_clamp_negative_is_paper_parity_for_local_targets_only(local_pitfall):
    T, student = local_pitfall["T"], local_pitfall["student"]
    local_targets, _, fitted = local_pitfall["local"]
    params = [p.detach().clone().requires_grad_() for p in fitted]
    with pytest.warns(UserWarning, match=r"\[skd-W150\]"):
        raw = crf_loss(structural_crf_loss, params, student, local_targets, temperature=T)
    assert raw.item() < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clamped = crf_loss(structural_crf_loss, params, student, local_targets, temperature=T, clamp_negative=True)
    assert clamped.item() == 0.0
    clamped.sum().backward()
    assert all((p.grad == 0).all() for p in params)  # as in the reference: a clamped sentence teaches nothing
    with pytest.raises(ValueError, match=r"\[skd-E159\].*structural"):
        check_loss(raw, "structural")
    # consistent (global) targets are never clamped and never warn
    global_targets = local_pitfall["global"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = crf_loss(structural_crf_loss, params, student, global_targets, temperature=T)
        flagged = crf_loss(structural_crf_loss, params, student, global_targets, temperature=T, clamp_negative=True)
    assert torch.equal(plain, flagged)


# -- token KL, MaxEnt student ------------------------------------------------------------------
@SETTINGS
@given(**dims, T=st.sampled_from([1.0, 3.0]))
def test_token_kl_is_sum_of_token_kls(seed, B, N, L, T):
    teacher, student = teacher_and_student(seed, B, N, L)
    targets = crf_targets(*teacher.args, temperature=T, mode="local", pairs=False, dtype=torch.float64)
    loss = token_kl_loss(student.emit, student.lengths, targets, temperature=T)
    for b, n in enumerate(student.lengths.tolist()):
        if n == 0:
            assert loss[b] == 0
            continue
        p = torch.distributions.Categorical(probs=targets.unary[b, :n])
        q = torch.distributions.Categorical(logits=student.emit[b, :n] / T)
        assert torch.allclose(loss[b], T * T * torch.distributions.kl_divergence(p, q).sum())


@pytest.mark.parametrize("T", [1.0, 3.0])
def test_token_kl_is_zero_when_student_is_teacher(T):
    B = 3
    chain = random_chain(4, B, 5, 4, lengths=torch.tensor([5, 2, 0]))
    targets = maxent_targets(chain.emit, chain.lengths, temperature=T, dtype=torch.float64)
    assert torch.allclose(token_kl_loss(chain.emit, chain.lengths, targets, temperature=T), torch.zeros(B, dtype=torch.float64))


@SETTINGS
@given(**dims, T=st.sampled_from([1.0, 3.0]))
def test_token_kl_gradient(seed, B, N, L, T):
    """d loss / d logits = T (softmax(logits / T) - p_t) on real tokens, 0 on padding."""
    teacher, student = teacher_and_student(seed, B, N, L)
    targets = maxent_targets(teacher.emit, teacher.lengths, temperature=T, dtype=torch.float64)
    logits = student.emit.clone().requires_grad_()
    token_kl_loss(logits, student.lengths, targets, temperature=T).sum().backward()
    valid = (torch.arange(N) < student.lengths.unsqueeze(1)).unsqueeze(-1)
    want = T * (torch.softmax(student.emit / T, -1) - targets.unary) * valid
    assert torch.allclose(logits.grad, want)


# -- posterior KD, CRF student -----------------------------------------------------------------
@pytest.mark.parametrize("T", [1.0, 2.0])
@SETTINGS
@given(**dims, with_mask=st.booleans())
def test_posterior_loss_is_kl_to_tempered_student_marginals(T, seed, B, N, L, with_mask):
    teacher, student = teacher_and_student(seed, B, N, L, with_mask)
    targets = crf_targets(*teacher.args, temperature=T, mode="local", pairs=False, dtype=torch.float64)
    loss = posterior_crf_loss(*student.args, targets, temperature=T)
    assert (loss >= -1e-12).all()
    for b, n in enumerate(student.lengths.tolist()):
        q = slot_marginals(*sequences(student, b), N, L)[0][:n]  # T = 1 student marginals
        q_t = q ** (1 / T) / (q ** (1 / T)).sum(-1, keepdim=True)
        p = targets.unary[b, :n]
        assert torch.allclose(loss[b], T * T * (torch.xlogy(p, p) - torch.xlogy(p, q_t)).sum())


def test_posterior_loss_gradcheck():
    """The loss backpropagates through the student's own marginals (second-order autograd)."""
    teacher, student = teacher_and_student(11, 2, 3, 2)
    lengths = torch.tensor([3, 2])
    targets = crf_targets(teacher.emit, teacher.trans, lengths, temperature=2.0, mode="local", pairs=False,
                          dtype=torch.float64)
    emit, trans = student.emit.clone().requires_grad_(), student.trans.clone().requires_grad_()

    def loss(e, a):
        return posterior_crf_loss(e, a, lengths, student.start, student.end, None, targets, temperature=2.0)

    assert torch.autograd.gradcheck(loss, (emit, trans))


# -- shared behaviour --------------------------------------------------------------------------
def run_objective(name, student, targets_of, extra=0, garbage=float("nan")):
    """One of the three losses on `student`, its emissions padded `extra` positions wider and
    every padded position filled with `garbage`. Returns (loss, emissions gradient)."""
    emit = student.emit
    B, N, L = emit.shape
    emit = torch.cat([emit, emit.new_zeros(B, extra, L)], 1)
    for b, n in enumerate(student.lengths.tolist()):
        emit[b, n:] = garbage
    emit.requires_grad_()
    targets = targets_of.pad_to(N + extra)
    if name == "token":
        loss = token_kl_loss(emit, student.lengths, targets, temperature=2.0)
    else:
        fn = structural_crf_loss if name == "structural" else posterior_crf_loss
        loss = fn(emit, student.trans, student.lengths, student.start, student.end, None, targets, temperature=2.0)
    loss.sum().backward()
    return loss.detach(), emit.grad[:, :N]


@pytest.mark.parametrize("name", ["structural", "posterior", "token"])
@SETTINGS
@given(**dims, extra=st.integers(0, 2))
def test_objectives_padding_changes_nothing(name, seed, B, N, L, extra):
    """NaN in padded positions, or extra padded width, changes neither loss nor gradient."""
    teacher, student = teacher_and_student(seed, B, N, L)
    targets = crf_targets(*teacher.args, temperature=2.0, pairs=name == "structural", dtype=torch.float64)
    loss, grad = run_objective(name, student, targets, extra=0, garbage=0.0)
    padded_loss, padded_grad = run_objective(name, student, targets, extra=extra)
    assert torch.allclose(padded_loss, loss) and torch.allclose(padded_grad, grad)


def test_losses_keep_student_dtype():
    teacher, student = teacher_and_student(2, 2, 4, 3)
    s32 = [x.float() for x in (student.emit, student.trans, student.lengths, student.start, student.end)]
    s32[2] = student.lengths
    pairs, unary = crf_targets(*teacher.args), crf_targets(*teacher.args, pairs=False)
    exact = structural_crf_loss(*student.args, crf_targets(*teacher.args, dtype=torch.float64))
    approx = structural_crf_loss(*s32, None, pairs)
    assert approx.dtype == torch.float32 and torch.allclose(approx.double(), exact, atol=1e-5)
    assert posterior_crf_loss(*s32, None, unary).dtype == torch.float32
    assert token_kl_loss(s32[0], s32[2], unary).dtype == torch.float32


@pytest.mark.parametrize("name", ["structural", "posterior", "token"])
def test_objectives_reject_mismatched_targets(name):
    teacher, student = teacher_and_student(0, 2, 3, 3)
    targets = crf_targets(*teacher.args, pairs=name == "structural")
    fn = {"structural": structural_crf_loss, "posterior": posterior_crf_loss, "token": token_kl_loss}[name]

    def call(emit, lengths, T=1.0):
        if name == "token":
            return fn(emit, lengths, targets, temperature=T)
        return fn(emit, student.trans, lengths, None, None, None, targets, temperature=T)

    wide = torch.cat([student.emit, student.emit[:, :1]], 1)
    with pytest.raises(ValueError, match=r"\[skd-E156\].*pad_to\(4\)"):
        call(wide, student.lengths)
    with pytest.raises(ValueError, match=r"\[skd-E157\]"):
        call(student.emit, torch.where(student.lengths == 3, 2, 3))
    with pytest.raises(ValueError, match=r"\[skd-E150\]"):
        call(student.emit, student.lengths, T=0.0)


@pytest.mark.parametrize("value", [0.0, 1.5, -5e-5])
def test_check_loss_passes_cross_entropies(value):
    loss = torch.tensor([value, 2.0])
    assert check_loss(loss, "structural") is loss


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1e-3])
def test_check_loss_raises_on_bad_values(value):
    with pytest.raises(ValueError, match=r"\[skd-E159\] KD objective 'posterior'"):
        check_loss(torch.tensor([1.0, value]), "posterior")


@pytest.mark.parametrize("name,student,expected", [
    ("structural", "crf", structural_crf_loss),
    ("structural", "maxent", token_kl_loss),
    ("posterior", "crf", posterior_crf_loss),
    ("posterior", "maxent", token_kl_loss),
    ("token", "maxent", token_kl_loss),
    ("top1", "crf", None),
    ("top1", "maxent", None),
    ("none", "crf", None),
    ("none", "maxent", None),
])
def test_get_objective_table(name, student, expected):
    assert get_objective(name, student) is expected


def test_objective_names_are_fixed():
    assert list(OBJECTIVES) == ["structural", "posterior", "token", "top1", "none"]  # docs/design.md §4 config values


@pytest.mark.parametrize("name,student,pattern", [
    ("token", "crf", r"\[skd-E154\].*'structural'.*'posterior'"),
    ("exact", "crf", r"\[skd-E152\].*'exact'.*structural, posterior, token, top1, none"),
    ("structural", "tree", r"\[skd-E153\].*'tree'.*crf, maxent"),
])
def test_get_objective_errors(name, student, pattern):
    with pytest.raises(ValueError, match=pattern):
        get_objective(name, student)


def test_kd_imports_no_spacy_or_thinc():
    code = ("import sys, spacy_skd.kd.objectives, spacy_skd.kd.targets; "
            "bad = [m for m in ('spacy', 'thinc') if m in sys.modules]; print(bad); sys.exit(bool(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("T", [1.0, 2.0])
@pytest.mark.parametrize("masked", [False, True])
def test_structural_loss_from_pair_counts_equals_full_pairs(T, masked):
    """Expected transition counts [B, L, L] give exactly the loss and gradients of the full
    [B, N-1, L, L] pair marginals (the student's transitions do not depend on the position)."""
    from spacy_skd.kd.targets import KDTargets, crf_targets
    from spacy_skd.structs.chain import TransitionMask

    g = torch.Generator().manual_seed(7)
    B, N, L = 3, 5, 4
    te, ta = torch.randn(B, N, L, generator=g, dtype=torch.float64), torch.randn(L, L, generator=g, dtype=torch.float64)
    lengths = torch.tensor([5, 1, 3])
    mask = None
    if masked:
        allowed = torch.rand(L, L, generator=g) < 0.8
        allowed[:, 0] = True
        mask = TransitionMask(torch.ones(L, dtype=torch.bool), allowed, torch.ones(L, dtype=torch.bool))
    full = crf_targets(te, ta, lengths, mask=mask, temperature=T, dtype=torch.float64)
    compact = crf_targets(te, ta, lengths, mask=mask, temperature=T, counts=True, dtype=torch.float64)
    assert compact.pairs is None and torch.allclose(compact.pair_counts, full.pairs.sum(1))
    losses, grads = [], []
    for targets in (full, compact):
        se = torch.randn(B, N, L, generator=torch.Generator().manual_seed(1), dtype=torch.float64).requires_grad_()
        sa = torch.randn(L, L, generator=torch.Generator().manual_seed(2), dtype=torch.float64).requires_grad_()
        loss = structural_crf_loss(se, sa, lengths, None, None, mask, targets, temperature=T)
        losses.append(loss)
        grads.append(torch.autograd.grad(loss.sum(), (se, sa)))
    assert torch.allclose(losses[0], losses[1])
    assert all(torch.allclose(a, b) for a, b in zip(*grads))
    # per-sentence items round-trip through split/stack (the cache stores one item per sentence)
    again = KDTargets.stack(compact.split())
    assert torch.allclose(again.pair_counts, compact.pair_counts) and torch.allclose(again.unary, compact.unary)


def test_pair_counts_not_used_for_local_temperature():
    """Locally tempered pairs are not marginals of one distribution: they are kept whole."""
    from spacy_skd.kd.targets import crf_targets

    te, ta = torch.randn(2, 4, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    local = crf_targets(te, ta, torch.tensor([4, 2]), temperature=3.0, mode="local", counts=True)
    assert local.pairs is not None and local.pair_counts is None


def test_every_kd_case_names_a_registered_objective():
    """One list of objective names: the cases table of kd/adapters uses only OBJECTIVES' keys."""
    from spacy_skd.kd.adapters import _CASES, resolve_case

    assert {objective for cases in _CASES.values() for objective in cases} <= set(OBJECTIVES)
    with pytest.raises(ValueError, match=r"\[skd-E152\].*'distill'"):
        resolve_case("crf", "crf", "distill")
