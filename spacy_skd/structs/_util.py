"""Small helpers shared by the structures: the finite log-zero and input checks."""
from typing import Sequence

import torch

from ..errors import Errors


def check_float(x: torch.Tensor) -> None:
    """Structures run in float32/float64: fp16 overflows log_zero and loses lse precision."""
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(Errors.E001.format(dtype=x.dtype))


def log_zero(dtype: torch.dtype) -> float:
    """Finite stand-in for log(0): 1024 of them still add up without reaching -inf, so a fully
    masked row has a finite log-sum-exp and finite (zero) gradients instead of NaN."""
    return torch.finfo(dtype).min / 1024


def check_shape(name: str, x: torch.Tensor, expected: Sequence[int]) -> None:
    if tuple(x.shape) != tuple(expected):
        raise ValueError(Errors.E002.format(name=name, expected=tuple(expected), shape=tuple(x.shape)))
