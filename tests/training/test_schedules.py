"""Tests for the teacher-annealing schedule (spacy_skd.training.schedules)."""
from itertools import islice

import pytest
from thinc.api import Config, registry

from spacy_skd.training.schedules import teacher_annealing


def take(schedule, n):
    return list(islice(schedule, n))


def test_teacher_annealing_linear_ramp():
    values = take(teacher_annealing(10), 15)
    assert values[:3] == pytest.approx([1.0, 0.9, 0.8])
    assert values[5] == pytest.approx(0.5)  # midpoint
    assert values[10:] == [0.0] * 5  # end held for ever
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_teacher_annealing_start_end_and_warmup():
    values = take(teacher_annealing(4, start=0.8, end=0.4, warmup_steps=3), 10)
    assert values[:4] == pytest.approx([0.8] * 4)  # 3 warmup steps, then the ramp's first
    assert values[4:7] == pytest.approx([0.7, 0.6, 0.5])
    assert values[7:] == pytest.approx([0.4] * 3)
    # Increasing ramps work too.
    assert take(teacher_annealing(2, start=0.0, end=1.0), 4) == pytest.approx([0, 0.5, 1, 1])


def test_teacher_annealing_fraction_of_max_steps():
    values = take(teacher_annealing(max_steps=300, fraction=0.66), 200)
    assert values[99] == pytest.approx(1 - 99 / 198)
    assert values[197] > 0.0 and values[198:] == [0.0, 0.0]
    assert take(teacher_annealing(max_steps=4), 6) == pytest.approx([1, 0.75, 0.5, 0.25, 0, 0])
    # total_steps wins over max_steps; a tiny share still ramps over one step.
    assert take(teacher_annealing(2, max_steps=100), 3) == pytest.approx([1, 0.5, 0])
    assert take(teacher_annealing(max_steps=1, fraction=0.1), 3) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs,code", [
    ({"total_steps": 10, "start": 1.5}, "E219"),
    ({"total_steps": 10, "end": -0.1}, "E219"),
    ({"total_steps": 10, "end": float("nan")}, "E219"),
    ({"total_steps": -1}, "E220"),
    ({"max_steps": 10, "warmup_steps": -5}, "E220"),
    ({"total_steps": 2.5}, "E220"),
    ({}, "E221"),
    ({"total_steps": 0, "max_steps": 0, "fraction": 0.5}, "E221"),
    ({"max_steps": 10, "fraction": 0.0}, "E222"),
    ({"max_steps": 10, "fraction": 1.5}, "E222"),
])
def test_teacher_annealing_errors(kwargs, code):
    # Raised when the schedule is built (config resolution), not at the first value.
    with pytest.raises(ValueError, match=rf"\[skd-{code}\]"):
        teacher_annealing(**kwargs)


def test_teacher_annealing_error_repeats_value():
    with pytest.raises(ValueError, match=r"`fraction`.*1\.5"):
        teacher_annealing(max_steps=10, fraction=1.5)
    with pytest.raises(ValueError, match=r"training\.max_steps"):
        teacher_annealing()


def test_teacher_annealing_registered_and_resolved():
    assert registry.schedules.get("spacy-skd.teacher_annealing.v1") is teacher_annealing
    cfg = """
    [training]
    max_steps = 20

    [kd]

    [kd.lambda]
    @schedules = "spacy-skd.teacher_annealing.v1"
    max_steps = ${training.max_steps}
    fraction = 0.5
    warmup_steps = 2
    """
    schedule = registry.resolve(Config().from_str(cfg))["kd"]["lambda"]
    assert take(schedule, 14) == pytest.approx([1.0] * 3 + [1 - i / 10 for i in range(1, 10)]
                                               + [0.0, 0.0])
