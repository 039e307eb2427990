"""Almost Stochastic Order (Dror et al., 2019) of a KD student over a baseline, by deepsig."""
from typing import Optional, Sequence

CONFIDENCE = 0.95


def aso_score(target: Sequence[float], baseline: Sequence[float], seed: int = 0) -> Optional[float]:
    """deepsig's ε_min of `target` over `baseline`: < 0.5 means the target is stochastically better
    (the smaller, the stronger). None with fewer than 2 runs on either side."""
    if len(target) < 2 or len(baseline) < 2:
        return None
    # deepsig is in the `eval` extra and pulls in pandas and scipy: imported only when needed
    from deepsig import aso

    return float(aso(list(target), list(baseline), confidence_level=CONFIDENCE, seed=seed,
                     show_progress=False, num_jobs=1))
