"""One way to batch per-sentence teacher outputs: pad each array into a [B, ...] tensor.

The teacher cache stores one array per sentence and output name, shaped by the sentence length
n (emissions [n, L], span scores [n, n, C], arc scores [n, n + 1], ...). Every teacher pads them
the same way, so the layout lives here once.
"""
from typing import Callable, Dict, Sequence, Tuple

import numpy
import torch

Arrays = Dict[str, numpy.ndarray]


def pad_outputs(arrays: Sequence[Arrays], name: str, shape: Callable[[int], Tuple[int, ...]], *,
                device: torch.device, fill: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Stack output `name` of each sentence into one float32 tensor [B, *shape(N)], N the longest.

    arrays (Sequence[Dict[str, ndarray]]): per sentence, the cached outputs; `arrays[b][name]`
        has the shape `shape(n_b)` cut to its own length n_b = len(arrays[b][name]).
    shape (Callable[[int], Tuple[int, ...]]): an array's shape for a sentence of n words, e.g.
        `lambda n: (n, n + 1)` for arc scores over the n words and ROOT.
    fill (float): the value of padded cells (0, or log-zero where padding must carry no mass).
    RETURNS (Tuple[Tensor, LongTensor]): the batch on `device`, and the lengths n_b [B].
    """
    lengths = [len(a[name]) for a in arrays]
    batch = torch.full((len(arrays), *shape(max(lengths, default=0))), fill, dtype=torch.float32)
    for b, (a, n) in enumerate(zip(arrays, lengths)):
        value = numpy.asarray(a[name], dtype="float32")
        batch[(b, *(slice(0, size) for size in value.shape))] = torch.from_numpy(value)
    return batch.to(device), torch.tensor(lengths, dtype=torch.long, device=device)
