"""What the distillation component hands a student for one batch."""
from dataclasses import dataclass
from typing import List, Optional

import torch

from .targets import KDTargets


@dataclass
class KDBatch:
    """Teacher targets and settings for one training batch.

    examples (List[int]): id() of each Example, so a student can check it got its own batch.
    targets (KDTargets): teacher targets padded to the batch, including Top-1 pseudo-labels.
    objective (str): structural | posterior | token | top1 | none.
    weight (float): lambda in (1 - lambda) * gold + lambda * KD.
    temperature (float): T; the loss functions include the T^2 factor.
    unlabeled (BoolTensor): [B] examples whose gold is the teacher's Top-1 (no human labels).
    mix (str): "interpolate": (1 - lambda) * gold + lambda * KD on every example; "add": gold +
        lambda * KD on unlabeled examples only (SenTScore's Eq. 2: pseudo-label cross-entropy
        plus lambda_KL * KL; labelled examples keep their plain gold loss).
    scale_t2 (bool): keep the T^2 factor of the KD term (Hinton et al.); False divides it out.
    taught (Optional[BoolTensor]): [B] examples with teacher targets; the others (too long for
        the teacher pass) hold blank targets and get no KD term. None: all of them.
    """

    examples: List[int]
    targets: KDTargets
    objective: str
    weight: float
    temperature: float
    unlabeled: torch.Tensor
    mix: str = "interpolate"
    scale_t2: bool = True
    taught: Optional[torch.Tensor] = None

    def kd_weights(self) -> torch.Tensor:
        """[B] the KD weight of each example: `weight`, 0 where the teacher gave no targets."""
        taught = self.taught if self.taught is not None else torch.ones(len(self.examples), dtype=torch.bool)
        return self.weight * taught.double()

    def matches(self, examples) -> bool:
        return self.examples == [id(eg) for eg in examples]
