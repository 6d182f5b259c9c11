"""Graph kernels on the 1M-subscriber synthetic operator: socialgraph vs scipy.sparse vs igraph.

    python benchmarks/kernels.py                 # the 1M world (runs the graph job first if needed)
    python benchmarks/kernels.py --repeats 5
    python benchmarks/kernels.py --cold          # empty numba cache: report the true compile time

Everything runs in one process on the same CallGraph, with 2 numba threads (scipy.sparse and
igraph are single-threaded). Personalised PageRank seeded by ~1% random nodes:

* ours    - ``socialgraph.influence.personalized_pagerank`` (checks, the transition
            probabilities ``w_ij / s_j``, split into column windows of 4 MiB of scores where
            the scores do not fit half the last-level cache, then one parallel sweep per
            iteration), timed after a warm-up call so JIT compilation is out: its default
            Chebyshev-accelerated iteration with 2 and 1 threads (1 shows what the kernel gains
            on its own and is what a busy machine leaves of the 2), and ``method="power"``,
            networkx's own iteration, with 2 threads;
* scipy   - the power iteration with ``scipy.sparse`` CSR matrix-vector products: the same
            update, the same start, the same L1 stopping rule and tolerance (so the same
            iterations as our power method), the transition matrix built inside the timing as ours,
            vector updates in place (no temporaries beyond the product scipy allocates);
* igraph  - ``Graph.personalized_pagerank`` (PRPACK, a Gauss-Seidel solver run to its own
            precision, not to ours); the conversion to igraph is reported separately.

Every result is also compared with the exact fixed point (``exact_pagerank``: conjugate
gradients on the symmetrised linear system, to a relative residual of 1e-13), so the table
shows the accuracy each method reaches, not only its time.

networkx's stopping rule is an L1 change below ``n * tol``; with ``n`` ~ 1.3M the default
``tol = 1e-6`` stops after one iteration here, so the comparison uses ``--tol 1e-12``
(an L1 change below ~1.3e-6: 37 power iterations). Chebyshev stops on the same rule (the L1
change one power step would make) in fewer sweeps; the columns ``L1(x-exact)`` show that it
ends at least as close to the exact scores. ``dependence`` is compared with its vectorised scipy/numpy form.

The machine may be shared: every method runs once per round, round after round (each round
starting one method later), and the speed-ups are given best vs best, median vs median, and
as the median of the per-round ratios (each ratio taken under the same load).
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data" / "synth-1000000-12w"


# --------------------------------------------------------------------------- data


def ensure_edges(data: Path) -> Path:
    """The graph job's tie table, running ``socialgraph synth`` / ``socialgraph run`` if missing."""
    edges = data / "edges-run" / "edges.parquet"
    if edges.exists():
        return edges
    cli = [sys.executable, "-m", "pipelines.cli"]
    if not (data / "job.yaml").exists():
        print(f"generating the synthetic operator in {data} ...", file=sys.stderr)
        subprocess.run([*cli, "synth", "--out", str(data), "--subscribers", "1000000", "--weeks", "12"],
                       check=True, cwd=ROOT)
    print(f"running the graph job into {data / 'edges-run'} ...", file=sys.stderr)
    subprocess.run([*cli, "run", "--cdr", str(data / "cdr"), "--subscribers", str(data / "subscribers.parquet"),
                    "--operators", str(data / "operators.yaml"), "--config", str(data / "job.yaml"),
                    "--out", str(data / "edges-run")], check=True, cwd=ROOT)
    return edges


def load_graph(data: Path, tie_columns: tuple[str, ...] = ()):
    """The job's call graph of the world in ``data``; ``tie_columns`` become per-tie arrays."""
    import pyarrow.parquet as pq

    from socialgraph.config import NumberConfig
    from socialgraph.graph import build_call_graph
    from socialgraph.numbers import number_keys

    numbers = NumberConfig(country_code="86", national_length=11)
    t = pq.read_table(ensure_edges(data),
                      columns=["a", "b", "weight", "calls_ab", "calls_ba", "sms_ab", "sms_ba", *tie_columns])
    subs = number_keys(pq.read_table(data / "subscribers.parquet", columns=["msisdn"]).column(0), numbers)
    col = lambda name: t.column(name).to_numpy()  # noqa: E731
    return build_call_graph(
        number_keys(t.column("a"), numbers), number_keys(t.column("b"), numbers), col("weight"),
        on_net_keys=subs, extra_keys=subs,
        events_ab=col("calls_ab") + col("sms_ab"), events_ba=col("calls_ba") + col("sms_ba"),
        tie_arrays={name: col(name) for name in tie_columns},
    )


# --------------------------------------------------------------------------- peers


def _scipy_adjacency(graph):
    """The CSR as a scipy array, with int32 index arrays when they fit (scipy's fastest case)."""
    import numpy as np
    import scipy.sparse as sp

    n = graph.n_nodes
    idx = np.int32 if graph.indices.size < 2**31 else np.int64
    return sp.csr_array((graph.weights, graph.indices.astype(idx, copy=False), graph.indptr.astype(idx)),
                        shape=(n, n))


def scipy_pagerank(graph, p, *, alpha, tol, max_iter):
    """networkx's power iteration on scipy.sparse, from the CallGraph's CSR arrays."""
    import numpy as np
    import scipy.sparse as sp

    n = graph.n_nodes
    a = _scipy_adjacency(graph)
    s = a.sum(axis=1)
    inv = np.divide(1.0, s, out=np.zeros(n), where=s > 0)
    # column-scaled transition matrix: T[i, j] = w_ij / s_j
    t = sp.csr_array((graph.weights * inv[graph.indices], a.indices, a.indptr), shape=(n, n))
    dangling = np.flatnonzero(s == 0)
    p = p / p.sum()
    x = np.full(n, 1.0 / n)
    diff = np.empty(n)  # in place with numpy: BLAS daxpy (threaded OpenBLAS) was slower on a busy machine
    for it in range(1, max_iter + 1):
        x_new = t @ x
        x_new *= alpha
        np.multiply(p, alpha * x[dangling].sum() + 1.0 - alpha, out=diff)
        x_new += diff
        np.subtract(x_new, x, out=diff)
        err = np.abs(diff, out=diff).sum()
        x = x_new
        if err < n * tol:
            return x, it
    raise RuntimeError(f"scipy power iteration did not converge in {max_iter} iterations")


def exact_pagerank(graph, p, *, alpha):
    """The fixed point of the PageRank iteration, independent of socialgraph's kernels.

    With dangling mass following ``p`` the fixed point is ``y / sum(y)`` for the solution of
    ``(I - alpha T) y = p``, ``T = W S^-1``. Nodes of strength 0 have ``y = p``; on the others
    ``z = S^-1/2 y`` solves ``(I - alpha S^-1/2 W S^-1/2) z = S^-1/2 p``, symmetric positive
    definite (eigenvalues in ``[1 - alpha, 1 + alpha]``), hence conjugate gradients.
    Returns ``(x, sum|G x - x|)``: the fixed point and the L1 residual of one PageRank step.
    """
    import numpy as np
    import scipy.sparse as sp
    from scipy.sparse.linalg import cg

    n = graph.n_nodes
    w = _scipy_adjacency(graph)
    s = np.asarray(w.sum(axis=1)).ravel()
    live = s > 0
    r = np.zeros(n)
    r[live] = 1.0 / np.sqrt(s[live])
    p = p / p.sum()
    m = sp.identity(n, format="csr") - alpha * (sp.diags_array(r) @ w @ sp.diags_array(r))
    z, info = cg(m, r * p, rtol=1e-13, atol=0.0, maxiter=10_000)
    if info != 0:
        raise RuntimeError(f"conjugate gradients did not converge (info={info})")
    y = np.where(live, z * np.sqrt(s), p)
    x = y / y.sum()
    inv = np.divide(1.0, s, out=np.zeros(n), where=live)
    step = alpha * (w @ (inv * x)) + (alpha * x[~live].sum() + 1.0 - alpha) * p
    return x, float(np.abs(step - x).sum())


def scipy_dependence(graph):
    import numpy as np

    n = graph.n_nodes
    a = _scipy_adjacency(graph)
    s = a.sum(axis=1)
    return a @ np.divide(1.0, s, out=np.zeros(n), where=s > 0)


# --------------------------------------------------------------------------- timing


def interleaved(repeats: int, fns: dict, times: dict | None = None) -> dict:
    """Run every function once per round, round after round, so that all of them see the same
    load (the 2 cores may be shared); returns ``name -> (best seconds, median, last output)``
    and, when ``times`` is given, fills it with ``name -> list of seconds`` (one per round).

    Each round starts one function later than the one before: a call pays for what the call
    before it left behind (igraph's solver frees a few hundred MB, and the next call's fresh
    arrays then fault their pages in: 70 ms more for ours, measured), so no function may
    always follow the same one."""
    import numpy as np

    times = {} if times is None else times
    times.update({name: [] for name in fns})
    out = {}
    names = list(fns)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            f = fns[name]
            t0 = time.perf_counter()
            out[name] = f()
            times[name].append(time.perf_counter() - t0)
    return {name: (min(t), float(np.median(t)), out[name]) for name, t in times.items()}


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def pagerank_section(graph, args) -> None:
    import numba
    import numpy as np

    from socialgraph.graph import build_call_graph
    from socialgraph.influence import (_run_pagerank, _sweep_windows, _whole_sweep_bytes, dependence,
                                       personalized_pagerank)
    from socialgraph.kernels import influence as _k

    n = graph.n_nodes
    rng = np.random.default_rng(args.seed)
    p = np.zeros(n)
    p[rng.choice(n, size=max(1, n // 100), replace=False)] = 1.0
    kw = {"alpha": 0.85, "tol": args.tol, "max_iter": args.max_iter}

    tiny = build_call_graph(np.array([1, 2]), np.array([2, 3]), np.ones(2), on_net_keys=np.array([1]))
    t0 = time.perf_counter()
    personalized_pagerank(tiny, np.ones(3), **kw)
    # one node per window, never swept whole: compiles the windowed path too
    shift, whole = _k._WINDOW_SHIFT, _k._WHOLE_SWEEP_BYTES
    _k._WINDOW_SHIFT, _k._WHOLE_SWEEP_BYTES = 0, 0
    try:
        personalized_pagerank(tiny, np.ones(3), **kw)
        personalized_pagerank(tiny, np.ones(3), method="power", **kw)
    finally:
        _k._WINDOW_SHIFT, _k._WHOLE_SWEEP_BYTES = shift, whole
    dependence(tiny)
    compile_s = time.perf_counter() - t0
    kernels = [_k._split_blocks, _k._invert_strength, _k._fill_transition, _k._window_transition,
               _k._iterate_pagerank, _k._sum_dependence]
    hits = sum(sum(k.stats.cache_hits.values()) for k in kernels)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    how = "loaded from the numba cache" if hits and not misses else "compiled"
    print(f"first calls (JIT, {how}: {hits} cache hits, {misses} misses): {compile_s:.2f} s\n")

    t0 = time.perf_counter()
    ig = graph.to_igraph()
    ig_convert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    exact, exact_residual = exact_pagerank(graph, p, alpha=kw["alpha"])
    exact_s = time.perf_counter() - t0

    def ours_threads(k, method="chebyshev"):
        def run():
            before = numba.get_num_threads()
            numba.set_num_threads(k)
            try:
                return personalized_pagerank(graph, p, method=method, **kw)
            finally:
                numba.set_num_threads(before)
        return run

    times = {}
    res = interleaved(args.repeats, {
        "ours": lambda: personalized_pagerank(graph, p, **kw),
        "ours1": ours_threads(1),
        "power": ours_threads(numba.get_num_threads(), "power"),
        "scipy": lambda: scipy_pagerank(graph, p, **kw),
        "igraph": lambda: np.array(ig.personalized_pagerank(weights="weight", reset=p, damping=kw["alpha"])),
    }, times)
    _, ours_iter = _run_pagerank(graph, p, kw["alpha"], kw["tol"], kw["max_iter"], "bench")
    _, power_iter = _run_pagerank(graph, p, kw["alpha"], kw["tol"], kw["max_iter"], "bench", "power")
    whole, n_windows = _whole_sweep_bytes(), _sweep_windows(n)
    sweep_layout = (("one sweep over all columns" if n_windows == 1 else f"{n_windows} column windows")
                    + f" (scores {8 * n / 2**20:.0f} MiB, half the last-level cache {whole / 2**20:.0f} MiB)")
    _, loose_iter = _run_pagerank(graph, p, kw["alpha"], 1e-6, kw["max_iter"], "bench")
    ours = res["ours"][2]
    scipy_best, scipy_med = res["scipy"][:2]
    scipy_t = np.array(times["scipy"])

    print(f"personalized PageRank, alpha=0.85, {int(p.sum()):,} seeds, tol={args.tol:g} "
          f"(stop at L1 change < n*tol = {n * args.tol:.2g}); {args.repeats} interleaved rounds")
    print(f"{'method':<26}{'best s':>8}{'median s':>9}{'speed-up':>9}{'(median)':>9}{'(paired)':>9}"
          f"{'iter':>6}{'ms/iter':>8}{'L1(x-exact)':>13}{'max|x-exact|':>13}{'max|x-ours|':>12}")
    rows = [("socialgraph (numba, 2 thr)", "ours", ours_iter), ("socialgraph (numba, 1 thr)", "ours1", ours_iter),
            ("socialgraph power, 2 thr", "power", power_iter), ("scipy.sparse power iter", "scipy", None),
            ("igraph PRPACK", "igraph", None)]
    for label, key, it in rows:
        best, med, x = res[key]
        if key == "scipy":
            x, it = x
        paired = float(np.median(scipy_t / np.array(times[key])))
        per_iter = "-" if it is None else f"{1000 * med / it:.1f}"
        print(f"{label:<26}{best:>8.3f}{med:>9.3f}{scipy_best / best:>9.2f}{scipy_med / med:>9.2f}{paired:>9.2f}"
              f"{'-' if it is None else it:>6}{per_iter:>8}{np.abs(x - exact).sum():>13.2e}"
              f"{np.abs(x - exact).max():>13.2e}{np.abs(x - ours).max():>12.2e}")
    print(f"(speed-up = scipy time / method time: best vs best, median vs median, and the median of the "
          f"per-round ratios; ms/iter from the median; exact = conjugate gradients, {exact_s:.1f} s, L1 "
          f"residual of one PageRank step {exact_residual:.1e}; igraph conversion, not timed above: "
          f"{ig_convert_s:.2f} s; with the default tol=1e-6 ours stops after {loose_iter} iteration(s); "
          f"ours is Chebyshev-accelerated (iter = sweeps of the graph), "
          f"{sweep_layout}; load average {load_average()})\n")


def dependence_section(graph, args) -> None:
    import numpy as np

    from socialgraph.influence import dependence

    res = interleaved(args.repeats, {"ours": lambda: dependence(graph), "scipy": lambda: scipy_dependence(graph)})
    ours = res["ours"][2]
    print(f"dependence; best and median of {args.repeats} interleaved runs")
    print(f"{'method':<26}{'best s':>9}{'median s':>10}{'ratio/scipy':>13}{'max|x-ours|':>14}")
    for label, key in [("socialgraph (numba, 2 thr)", "ours"), ("scipy.sparse / numpy", "scipy")]:
        best, med, x = res[key]
        print(f"{label:<26}{best:>9.4f}{med:>10.4f}{best / res['scipy'][0]:>13.2f}{np.abs(x - ours).max():>14.2e}")
    print()


def stickiness_exposure_section(graph, args) -> None:
    """Our one-pass numba tie-feature kernel (stickiness social/diversity/on-net components,
    exposure, competitor share, and the per-cut-off risk features) vs a competent vectorised
    NumPy version of the same columns (tests/reference_scoring.py), same graph, same inputs."""
    import dataclasses

    import numpy as np

    sys.path.insert(0, str(HERE.parent / "tests"))
    from reference_scoring import node_features_numpy

    from socialgraph.stickiness import tie_features

    rng = np.random.default_rng(args.seed)
    if "blocks" not in graph.entry:
        # edges.parquet does not carry the activity blocks: split each tie's active days over
        # four blocks at random (the timing does not depend on the values)
        days = rng.integers(1, 30, graph.indices.size).astype(np.int32)
        blocks = np.minimum(rng.integers(0, 8, (graph.indices.size, 4)), days[:, None] // 4).astype(np.int16)
        graph = dataclasses.replace(graph, entry={"active_days": days, "blocks": blocks})
    n = graph.n_nodes
    competitor = ~graph.nodes["on_net"].to_numpy() & (rng.random(n) < 0.5)
    churn_age = np.where(rng.random((n, 2)) < 0.02, rng.uniform(0, 120, (n, 2)), -1.0)
    kw = dict(competitor=competitor, churn_age=churn_age, half_life_days=30.0, inbound_factor=2.0, n_cut=2)
    t0 = time.perf_counter()
    ours = tie_features(graph, **kw).values
    compile_s = time.perf_counter() - t0
    times = interleaved(args.repeats, {
        "numba one-pass kernel": lambda: tie_features(graph, **kw).values,
        "numpy vectorised": lambda: node_features_numpy(graph, competitor, churn_age, 30.0, 2.0, 2),
    })
    ref = times["numpy vectorised"][2]
    err = float(np.max(np.abs(ours - ref)))
    base_best, base_median = times["numpy vectorised"][:2]
    print(f"\nstickiness + exposure features on {n:,} nodes, {graph.indices.size // 2:,} ties "
          f"({args.repeats} interleaved rounds; first call incl. compile {compile_s:.2f} s)")
    print(f"{'method':<28}{'best s':>10}{'median s':>10}{'speed-up (best)':>17}{'(median)':>10}")
    for name, (best, median, _) in times.items():
        print(f"{name:<28}{best:>10.3f}{median:>10.3f}{base_best / best:>17.2f}{base_median / median:>10.2f}")
    print(f"max |ours - numpy| = {err:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tol", type=float, default=1e-12)
    ap.add_argument("--max-iter", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cold", action="store_true", help="use an empty numba cache (measure compilation)")
    args = ap.parse_args()
    if args.cold:  # before numba is imported
        cache = tempfile.mkdtemp(prefix="numba-cold-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["NUMBA_CACHE_DIR"] = cache
    sys.path.insert(0, str(ROOT))

    import numba

    numba.set_num_threads(args.threads)
    t0 = time.perf_counter()
    graph = load_graph(args.data)
    print(f"\n{args.data.name}: {graph.n_nodes:,} nodes, {graph.n_edges:,} edges "
          f"({int((graph.indptr[1:] == graph.indptr[:-1]).sum()):,} isolated); graph loaded in "
          f"{time.perf_counter() - t0:.1f} s; numba threads: {numba.get_num_threads()}; "
          f"load average {load_average()}\n")
    pagerank_section(graph, args)
    dependence_section(graph, args)
    stickiness_exposure_section(graph, args)


if __name__ == "__main__":
    main()
