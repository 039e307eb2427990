"""Speed and memory of the case-4 span DP: BIOES marginals of a biaffine span-NER teacher.

Compares, on the same random inputs (scores [B, N, N, R+1], lengths in [N//2, N] with one
equal to N):

* vectorised  spacy_skd.structs.span.SpanNER(scores, lengths).bioes_log_marginals: the batched
              log-space DP of docs/algorithms.md §6.4 (N sequential steps each way, vectorised over
              the batch), a fresh object per call so that nothing is cached;
* reference   bioes_log_marginals_reference(phi_b, n_b): the same recursion as plain Python
              loops, run sentence by sentence (phi_b is taken from SpanNER, not timed).

Both run under torch.no_grad(), as in the offline teacher pass, alternately in each of
--repeats repeats (after one vectorised warm-up call), so that both see the same machine load;
each time is the median over repeats. The reference runs on the first --ref-sentences sentences
(default: all) and its time is scaled to the whole batch when that is a subset (printed as such). Agreement: max |difference| of the probabilities, and of the log
marginals on the tags both call possible.

Peak memory of one vectorised call, above what was allocated before it:
* cuda: torch.cuda.max_memory_allocated (the caching allocator's exact peak);
* cpu:  glibc mallinfo2() (bytes in use by malloc, which torch's CPU allocator calls), sampled
        after every aten op through a TorchDispatchMode, after a warm-up call in the same mode.
        Buffers that an op allocates and frees internally are not seen, so this is a lower bound
        on the true peak.

    OMP_NUM_THREADS=1 python benchmarks/span_dp.py                # B=32, N=50, R=4, float32, cpu
    python benchmarks/span_dp.py --device cuda --json benchmarks/results/span_dp_cuda.json
"""
import argparse
import ctypes
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from spacy_skd.structs.span import SpanNER, bioes_log_marginals_reference


def make_inputs(B, N, R, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(N // 2, N + 1, (B,), generator=g)  # drawn first: same for every dtype
    scores = torch.randn(B, N, N, R + 1, generator=g, dtype=dtype)
    lengths[0] = N
    return scores.to(device), lengths.to(device)


def vectorised(scores, lengths):
    return SpanNER(scores, lengths).bioes_log_marginals


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(scores, lengths, phi, sentences, repeats):
    """Median seconds of one vectorised call and of one reference pass over the first
    `sentences` sentences, run alternately in every repeat so that both see the same machine
    load; plus the reference outputs. One untimed vectorised warm-up call comes first."""
    device = scores.device
    phi = phi.cpu()
    todo = [(phi[b], n) for b, n in enumerate(lengths.tolist()[:sentences])]
    vectorised(scores, lengths)
    sync(device)
    t_vec, t_ref, outs = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        vectorised(scores, lengths)
        sync(device)
        t_vec.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        outs = [bioes_log_marginals_reference(p, n) for p, n in todo]
        t_ref.append(time.perf_counter() - t0)
    return statistics.median(t_vec), statistics.median(t_ref), outs


class _MallocInfo(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


def _malloc_in_use():
    """Bytes in use by glibc malloc (small blocks + mmapped blocks), or None off glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallocInfo
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


class _PeakSampler(TorchDispatchMode):
    """Reads malloc's in-use bytes after every aten op and keeps the maximum."""

    def __init__(self):
        super().__init__()
        self.peak = _malloc_in_use()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.peak = max(self.peak, _malloc_in_use())
        return out


def peak_memory(scores, lengths):
    """(bytes above the starting allocation at the peak of one call, how it was measured)."""
    device = scores.device
    if device.type == "cuda":
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = vectorised(scores, lengths)
        sync(device)
        peak = torch.cuda.max_memory_allocated(device) - base
        del out
        return peak, "torch.cuda.max_memory_allocated"
    if _malloc_in_use() is None:
        return None, "unavailable (needs glibc mallinfo2)"
    with _PeakSampler():  # warm-up: one-time allocations (op caches, the mode's own lookups)
        vectorised(scores, lengths)
    base = _malloc_in_use()
    with _PeakSampler() as sampler:
        out = vectorised(scores, lengths)
    del out
    return sampler.peak - base, "glibc mallinfo2 sampled after every aten op (lower bound)"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=50, help="padded length N")
    p.add_argument("--types", type=int, default=4, help="entity types R")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed repeats, each one vectorised call and one reference pass (median)")
    p.add_argument("--ref-sentences", type=int, default=None,
                   help="time the reference on the first K sentences and scale to the batch (default: all)")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    dtype = getattr(torch, a.dtype)
    B, N, R = a.batch, a.length, a.types
    k = B if a.ref_sentences is None else max(1, min(a.ref_sentences, B))
    scores, lengths = make_inputs(B, N, R, dtype, device, a.seed)

    with torch.no_grad():
        got = vectorised(scores, lengths).cpu()
        phi = SpanNER(scores, lengths).span_log_potentials
        t_vec, t_ref_k, refs = time_interleaved(scores, lengths, phi, k, a.repeats)
        peak, how = peak_memory(scores, lengths)
    t_ref = t_ref_k * B / k
    prob_diff, log_diff = 0.0, 0.0
    for b, ref in enumerate(refs):
        mine = got[b, : ref.shape[0]]
        prob_diff = max(prob_diff, float((ref.exp() - mine.exp()).abs().max()) if ref.numel() else 0.0)
        possible = (ref > -1e30) & (mine > -1e30)
        if possible.any():
            log_diff = max(log_diff, float((ref[possible] - mine[possible]).abs().max()))
    phi_bytes = phi.numel() * phi.element_size()

    print(f"span DP, BIOES marginals: B={B} N={N} R={R} {a.dtype} {device} threads={a.threads} "
          f"(lengths {int(lengths.min())}..{int(lengths.max())}, {int(lengths.sum())} words)")
    print(f"vectorised (SpanNER.bioes_log_marginals): {t_vec * 1e3:10.2f} ms per batch "
          f"(median of {a.repeats})")
    scaled = "" if k == B else f", timed on {k} of {B} sentences ({t_ref_k:.3f} s) and scaled by {B}/{k}"
    print(f"reference (python loops, per sentence):   {t_ref * 1e3:10.2f} ms per batch "
          f"(median of {a.repeats}{scaled})")
    print(f"speed-up: {t_ref / t_vec:.1f}x")
    print(f"agreement on {k} sentences: max |p diff| = {prob_diff:.2e}, "
          f"max |log p diff| (possible tags) = {log_diff:.2e}")
    peak_txt = "n/a" if peak is None else f"{peak / 2**20:.2f} MiB = {peak / phi_bytes:.1f} x phi"
    print(f"peak memory of one vectorised call: {peak_txt} (phi [B,N,N,R] = {phi_bytes / 2**20:.2f} MiB; "
          f"measured by {how})")
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({
            "B": B, "N": N, "R": R, "dtype": a.dtype, "device": str(device), "threads": a.threads,
            "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
            "vectorised_ms": t_vec * 1e3, "reference_ms": t_ref * 1e3, "speedup": t_ref / t_vec,
            "reference_sentences_timed": k, "reference_scaled": k != B,
            "max_abs_prob_diff": prob_diff, "max_abs_log_prob_diff": log_diff,
            "peak_bytes": peak, "peak_method": how, "phi_bytes": phi_bytes,
        }, indent=2) + "\n")
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
