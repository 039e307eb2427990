"""CPU speed of linear-chain CRF inference: log-partition + unary marginals.

Compares, on the same random float32 inputs (emissions [B, N, L], transitions [L, L], random
start/end scores, variable lengths in [N//2, N] with at least one equal to N):

* ours         spacy_skd.structs.chain.LinearChainCRF: `.log_partition` [B] then `.marginals`
               [B, N, L] (autograd), a fresh object per call;
* torch-struct torch_struct.LinearChainCRF on edge potentials [B, N-1, C(to), C(from)] built from
               the same scores (start + first emission folded into the first edge, end added to
               each sentence's last edge; building them is part of the timed call): `.partition`,
               then `.marginals` (edge marginals) reduced to unary marginals [B, N, L];
* pytorch-crf  torchcrf.CRF with its start/end/transitions set to ours: log Z from
               `_compute_normalizer` (seq-first layout) and marginals as d logZ / d emissions
               (one forward, one backward).

Before timing, each library's log Z and unary marginals are checked against ours (rtol 1e-4).
One "call" = log Z + marginals for the whole batch. The implementations run interleaved in every
repeat, so the ratios are measured side by side on the same machine state; the reported time is
the median over repeats of the mean ms per call within a repeat (calls per repeat calibrated to
~--min-ms). Ratios > 1 mean ours is faster.
A second, forward-only row ("logZ") times the log-partition alone.

    python benchmarks/crf_speed.py                        # B=32, N=40, L in {9, 17}, 1 thread
    python benchmarks/crf_speed.py --threads 2 --labels 9 17 33 --repeats 30

Prints a table and writes benchmarks/results/crf_speed.json.
"""
import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import torch
import torch_struct
from torchcrf import CRF

from spacy_skd.structs.chain import LinearChainCRF

# torch-struct's distributions predate torch.distributions' arg_constraints check.
warnings.filterwarnings("ignore", message=".*does not define `arg_constraints`")

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "crf_speed.json"


def make_inputs(B, N, L, seed=0):
    g = torch.Generator().manual_seed(seed)
    emissions = torch.randn(B, N, L, generator=g)
    transitions = torch.randn(L, L, generator=g)
    start = torch.randn(L, generator=g)
    end = torch.randn(L, generator=g)
    lengths = torch.randint(N // 2, N + 1, (B,), generator=g)
    lengths[0] = N  # torch-struct requires max(lengths) == N
    lengths = lengths.clamp(min=2)  # torch-struct has no edge for a length-1 sentence
    return emissions, transitions, start, end, lengths


# -- ours ----------------------------------------------------------------------------------------
def ours_logz(emissions, transitions, start, end, lengths):
    return LinearChainCRF(emissions, transitions, lengths, start=start, end=end).log_partition


def ours_both(emissions, transitions, start, end, lengths):
    crf = LinearChainCRF(emissions, transitions, lengths, start=start, end=end)
    return crf.log_partition, crf.marginals


# -- torch-struct --------------------------------------------------------------------------------
def struct_edges(emissions, transitions, start, end, lengths):
    """edge[b, n, to, from]: score of tag `from` at n followed by tag `to` at n+1."""
    B, N, L = emissions.shape
    edges = transitions.t().unsqueeze(0).unsqueeze(0) + emissions[:, 1:].unsqueeze(3)  # [B, N-1, L, L]
    first = (start + emissions[:, 0]).unsqueeze(1)  # [B, 1(to), L(from)]
    last = torch.nn.functional.one_hot(lengths - 2, N - 1).to(emissions.dtype)  # [B, N-1]
    edges = edges + last[:, :, None, None] * end[None, None, :, None]
    edges[:, 0] += first
    return edges


def struct_unary(edge_marg, N):
    """Edge marginals [B, N-1, to, from] -> unary marginals [B, N, L]."""
    return torch.cat([edge_marg[:, :1].sum(2), edge_marg.sum(3)], dim=1)[:, :N]


def struct_logz(emissions, transitions, start, end, lengths):
    edges = struct_edges(emissions, transitions, start, end, lengths)
    return torch_struct.LinearChainCRF(edges, lengths=lengths).partition


def struct_both(emissions, transitions, start, end, lengths):
    edges = struct_edges(emissions, transitions, start, end, lengths)
    dist = torch_struct.LinearChainCRF(edges, lengths=lengths)
    return dist.partition, struct_unary(dist.marginals, emissions.shape[1])


# -- pytorch-crf ---------------------------------------------------------------------------------
def make_torchcrf(transitions, start, end):
    crf = CRF(transitions.shape[0], batch_first=False)
    with torch.no_grad():
        crf.transitions.copy_(transitions)  # [from, to], as ours
        crf.start_transitions.copy_(start)
        crf.end_transitions.copy_(end)
    crf.requires_grad_(False)  # inference only, like the other two
    return crf


def torchcrf_logz(crf, emissions, mask_sf):
    with torch.no_grad():
        return crf._compute_normalizer(emissions.transpose(0, 1), mask_sf)


def torchcrf_both(crf, emissions, mask_sf):
    with torch.enable_grad():
        em = emissions.detach().requires_grad_()
        log_z = crf._compute_normalizer(em.transpose(0, 1), mask_sf)  # seq-first: [N, B, L]
        (marg,) = torch.autograd.grad(log_z.sum(), em)
    return log_z.detach(), marg  # already zero past each length (torch.where in the recursion)


# -- timing --------------------------------------------------------------------------------------
def time_interleaved(fns, repeats, min_ms, warmup=2):
    """fns: name -> zero-arg callable. Each implementation runs `number` calls per repeat, with
    `number` calibrated so that one repeat lasts about min_ms (at least one call). Returns
    name -> median over repeats of ms per call."""
    numbers = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        numbers[name] = max(1, round(min_ms / ((time.perf_counter() - t0) * 1e3)))
    samples = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(numbers[name]):
                fn()
            samples[name].append((time.perf_counter() - t0) * 1e3 / numbers[name])
    return {name: statistics.median(s) for name, s in samples.items()}


def check(B, N, L, seed):
    em, tr, st, en, ln = make_inputs(B, N, L, seed)
    z_ours, m_ours = ours_both(em, tr, st, en, ln)
    z_ts, m_ts = struct_both(em, tr, st, en, ln)
    crf = make_torchcrf(tr, st, en)
    mask_sf = (torch.arange(N) < ln.unsqueeze(1)).t().contiguous()
    z_tc, m_tc = torchcrf_both(crf, em, mask_sf)
    for name, z, m in (("torch-struct", z_ts, m_ts), ("pytorch-crf", z_tc, m_tc)):
        torch.testing.assert_close(z.detach(), z_ours, rtol=1e-4, atol=1e-4, msg=lambda s: f"{name} log Z: {s}")
        torch.testing.assert_close(m.detach(), m_ours, rtol=1e-4, atol=1e-5, msg=lambda s: f"{name} marginals: {s}")
    torch.testing.assert_close(m_ours.sum(-1), (torch.arange(N) < ln.unsqueeze(1)).float(), rtol=0, atol=1e-4)


def bench(B, N, L, repeats, min_ms, seed=0):
    check(B, N, L, seed)
    em, tr, st, en, ln = make_inputs(B, N, L, seed)
    crf = make_torchcrf(tr, st, en)
    mask_sf = (torch.arange(N) < ln.unsqueeze(1)).t().contiguous()
    args = (em, tr, st, en, ln)
    rows = {}
    with torch.no_grad():
        rows["logZ"] = time_interleaved(
            {
                "ours": lambda: ours_logz(*args),
                "torch-struct": lambda: struct_logz(*args),
                "pytorch-crf": lambda: torchcrf_logz(crf, em, mask_sf),
            },
            repeats, min_ms,
        )
    rows["logZ+marginals"] = time_interleaved(
        {
            "ours": lambda: ours_both(*args),
            "torch-struct": lambda: struct_both(*args),
            "pytorch-crf": lambda: torchcrf_both(crf, em, mask_sf),
        },
        repeats, min_ms,
    )
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=15, help="timed repeats per implementation (median reported)")
    p.add_argument("--min-ms", type=float, default=20.0, help="calls per repeat are calibrated to last about this long")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=40)
    p.add_argument("--labels", type=int, nargs="+", default=[9, 17])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=OUT)
    a = p.parse_args()
    if a.length < 4:
        p.error("--length must be >= 4")
    torch.set_num_threads(a.threads)

    print(f"CRF log Z + marginals, CPU float32, B={a.batch}, N={a.length}, torch {torch.__version__}, "
          f"threads={torch.get_num_threads()} (default 1, --threads N), median of {a.repeats} interleaved repeats (~{a.min_ms:g} ms each)")
    header = f"{'L':>4} {'task':<15} {'ours ms':>9} {'t-struct ms':>12} {'pt-crf ms':>10} {'t-struct/ours':>14} {'pt-crf/ours':>12}"
    print(header)
    print("-" * len(header))
    results = []
    for L in a.labels:
        rows = bench(a.batch, a.length, L, a.repeats, a.min_ms, a.seed)
        for task, t in rows.items():
            r_ts, r_tc = t["torch-struct"] / t["ours"], t["pytorch-crf"] / t["ours"]
            print(f"{L:>4} {task:<15} {t['ours']:>9.3f} {t['torch-struct']:>12.3f} {t['pytorch-crf']:>10.3f} "
                  f"{r_ts:>14.2f} {r_tc:>12.2f}")
            results.append({"labels": L, "task": task, "ms": t,
                            "ratio_torch_struct_over_ours": r_ts, "ratio_pytorch_crf_over_ours": r_tc})
    print("ratios > 1: ours is faster. log Z and marginals checked against ours before timing (rtol 1e-4).")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({
        "batch": a.batch, "length": a.length, "labels": a.labels, "threads": torch.get_num_threads(),
        "repeats": a.repeats, "min_ms": a.min_ms, "dtype": "float32", "device": "cpu",
        "torch": torch.__version__, "python": platform.python_version(), "results": results,
    }, indent=2) + "\n")
    print(f"wrote {a.out.relative_to(ROOT) if a.out.is_relative_to(ROOT) else a.out}")


if __name__ == "__main__":
    main()
