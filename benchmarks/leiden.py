"""Community detection on the 1M-subscriber synthetic graph: our Leiden wrapper vs igraph direct.

    python benchmarks/leiden.py               # the 1M world (runs the graph job first if needed)
    python benchmarks/leiden.py --repeats 3

The circles stage runs igraph's Leiden through :func:`socialgraph.communities.leiden_communities` on
three layers of the call graph (family, work and social ties; see ``CirclesConfig``). This
prints, for each layer and for the whole graph, the wrapper's time (conversion of the CSR to an
igraph graph, seeding, the run, the modularity) against ``igraph.Graph.community_leiden`` called
directly on an igraph graph built beforehand (so the peer pays nothing but the algorithm), with
the same objective, resolution, iterations and seed, and checks both give the same membership.
The target is a ratio of at most 1.5.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from kernels import DATA, load_graph  # noqa: E402


def main() -> None:
    import numpy as np

    from socialgraph.communities import leiden_communities
    from socialgraph.layers import _communities, layer_graph, social_layers
    from socialgraph.config import CirclesConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--repeats", type=int, default=1)
    a = ap.parse_args()
    cfg = CirclesConfig()
    t0 = time.perf_counter()
    graph = load_graph(a.data, ("active_days", "evening_weekend_share"))
    print(f"graph: {graph.n_nodes:,} nodes, {graph.n_edges:,} ties (loaded in {time.perf_counter() - t0:.1f} s)")
    # the layers the circles stage runs on (family, work, social), then the whole graph
    cases = [(f"{layer} layer", layer_graph(graph, keep), *cfg.leiden_params(layer)[:2], keep)
             for layer, _, _, keep in social_layers(graph, cfg)]
    cases.append(("whole graph", graph, "modularity", 1.0, None))
    rows = []
    for name, g, objective, resolution, keep in cases:
        ours, direct, stage = [], [], []
        for _ in range(a.repeats):
            t = time.perf_counter()
            m_ours, q = leiden_communities(g, resolution=resolution, seed=cfg.seed,
                                           n_iterations=cfg.leiden_iterations, objective=objective)
            ours.append(time.perf_counter() - t)
            ig_graph = g.to_igraph()  # built outside the peer's timing
            state = random.getstate()
            random.seed(cfg.seed)
            t = time.perf_counter()
            part = ig_graph.community_leiden(objective_function=objective, weights="weight",
                                             resolution=resolution, n_iterations=cfg.leiden_iterations)
            direct.append(time.perf_counter() - t)
            random.setstate(state)
            same = np.array_equal(m_ours, np.asarray(part.membership))
            if keep is not None:  # what the circles stage runs: only the nodes with ties in the layer
                t = time.perf_counter()
                _communities(graph, keep, objective, resolution, 1, 10**9, cfg)
                stage.append(time.perf_counter() - t)
        o, d = statistics.median(ours), statistics.median(direct)
        st = statistics.median(stage) if stage else float("nan")
        rows.append((name, g.n_edges, objective, resolution, int(m_ours.max()) + 1, q, o, d, o / d, same, st, st / d))
    print(f"\n{'graph':<13} {'ties':>11} {'objective':>10} {'res':>5} {'communities':>12} {'modularity':>10} "
          f"{'ours s':>7} {'igraph s':>8} {'ratio':>6} {'same':>5} {'stage s':>8} {'ratio':>6}")
    for r in rows:
        print(f"{r[0]:<13} {r[1]:>11,} {r[2]:>10} {r[3]:>5} {r[4]:>12,} {r[5]:>10.4f} {r[6]:>7.2f} {r[7]:>8.2f} "
              f"{r[8]:>6.2f} {str(r[9]):>5} {r[10]:>8.2f} {r[11]:>6.2f}")
    print("\nratio = ours / igraph direct (target <= 1.5); ours = leiden_communities on the same graph,"
          " including the CSR -> igraph conversion and the modularity; stage = the circles stage's"
          " path (only the layer's nodes with ties, plus the edge extraction).")


if __name__ == "__main__":
    main()
