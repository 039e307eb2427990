"""Schedules for the weight of the distillation loss, registered as thinc schedules.

thinc 8.3 schedules are plain iterables of floats: the consumer takes `next()` once per update.
"""
import math
from typing import Iterable, Iterator

from thinc.api import registry

from ..errors import Errors


@registry.schedules("spacy-skd.teacher_annealing.v1")
def teacher_annealing(
    total_steps: int = 0,
    *,
    max_steps: int = 0,
    fraction: float = 1.0,
    start: float = 1.0,
    end: float = 0.0,
    warmup_steps: int = 0,
) -> Iterable[float]:
    """Teacher annealing: the KD weight λ in `λ·KD + (1 - λ)·CE` moves from 1 to 0 in training.

    The reference lowers λ linearly per epoch and reaches 0 after 200 of its 300 epochs; here
    λ moves per update step: `start` for `warmup_steps` steps, then linearly from `start` to
    `end` over `total_steps` steps, then `end` for ever. With `total_steps = 0` the ramp lasts
    `fraction * max_steps` steps (rounded, at least 1), so a config can write
    `max_steps = ${training.max_steps}` and `fraction = 0.66` to match the reference's 200/300.

    total_steps (int): length of the ramp in steps; 0 derives it from `max_steps`.
    max_steps (int): training length in steps, used when `total_steps` is 0.
    fraction (float): the share of `max_steps` the ramp lasts, in (0, 1].
    start (float): λ at the start, in [0, 1].
    end (float): λ after the ramp, in [0, 1].
    warmup_steps (int): steps λ stays at `start` before the ramp begins.
    RETURNS (Iterable[float]): an endless series of λ values, one per update.

    >>> from itertools import islice
    >>> [round(v, 2) for v in islice(teacher_annealing(4, warmup_steps=1), 7)]
    [1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    for name, value in (("start", start), ("end", end)):
        if not _is_real(value) or not 0.0 <= value <= 1.0:
            raise ValueError(Errors.E219.format(name=name, value=value))
    for name, value in (
        ("total_steps", total_steps), ("max_steps", max_steps), ("warmup_steps", warmup_steps)
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(Errors.E220.format(name=name, value=value))
    if total_steps == 0 and max_steps == 0:
        raise ValueError(Errors.E221.format())
    if not _is_real(fraction) or not 0.0 < fraction <= 1.0:
        raise ValueError(Errors.E222.format(value=fraction))
    # Rounded to whole steps, so 0.66 * 20000 ends the ramp on step 13200, not one float later.
    n_ramp = total_steps if total_steps else max(1, round(fraction * max_steps))
    # Validation above runs when the config is resolved; the series is a separate generator.
    return _annealing(float(start), float(end), n_ramp, warmup_steps)


def _annealing(start: float, end: float, n_ramp: int, warmup_steps: int) -> Iterator[float]:
    for _ in range(warmup_steps):
        yield start
    for step in range(n_ramp):
        progress = step / n_ramp
        yield (1.0 - progress) * start + progress * end
    while True:
        yield end


def _is_real(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))
