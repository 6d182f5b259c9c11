"""Slow, obviously-correct oracles for the graph kernels.

Written from the definitions in DOMAIN.md ("Influence") and networkx's documented PageRank, over
``graph.to_networkx()`` or a dense matrix, never from the engine's kernels.
"""

from __future__ import annotations

import networkx as nx
import numpy as np


def reference_dependence(graph) -> np.ndarray:
    """Sum over neighbours ``j`` of ``w_ij / s_j``, one node at a time, in plain Python; a
    neighbour of strength 0 (all its ties of weight 0) shares nothing."""
    g = graph.to_networkx()
    strength = {v: sum(d["weight"] for _, _, d in g.edges(v, data=True)) for v in g.nodes}
    out = np.zeros(graph.n_nodes)
    for i in g.nodes:
        out[i] = sum(d["weight"] / strength[j] for _, j, d in g.edges(i, data=True) if strength[j] > 0)
    return out


def reference_pagerank_networkx(graph, personalization=None, *, alpha=0.85, tol=1e-6,
                                max_iter=100) -> np.ndarray:
    """``networkx.pagerank`` on ``graph.to_networkx()``, as an array indexed by node id."""
    g = graph.to_networkx()
    pers = None if personalization is None else {i: float(v) for i, v in enumerate(personalization)}
    pr = nx.pagerank(g, alpha=alpha, personalization=pers, weight="weight", tol=tol, max_iter=max_iter)
    return np.array([pr[i] for i in range(graph.n_nodes)])


def google_matrix(graph, personalization=None, *, alpha=0.85) -> np.ndarray:
    """Dense column-stochastic Google matrix ``G[i, j]`` = P(step j -> i).

    From node ``j`` the walk follows a tie with probability ``alpha`` (to ``i`` in proportion to
    ``w_ij``) or restarts from ``p``; a node without ties always restarts from ``p``.
    """
    n = graph.n_nodes
    p = np.full(n, 1.0 / n) if personalization is None else np.asarray(personalization, float)
    p = p / p.sum()
    w = np.zeros((n, n))
    for i in range(n):
        for e in range(graph.indptr[i], graph.indptr[i + 1]):
            w[i, graph.indices[e]] += graph.weights[e]
    s = w.sum(axis=0)
    gm = np.empty((n, n))
    for j in range(n):
        if s[j] > 0:
            gm[:, j] = alpha * w[:, j] / s[j] + (1 - alpha) * p
        else:
            gm[:, j] = p
    return gm


def reference_pagerank_dense(graph, personalization=None, *, alpha=0.85, tol=1e-6,
                             max_iter=100) -> np.ndarray:
    """Power iteration with the dense Google matrix from the uniform vector, stopping when the
    L1 change is below ``n * tol`` (networkx's rule)."""
    n = graph.n_nodes
    gm = google_matrix(graph, personalization, alpha=alpha)
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        x_new = gm @ x
        if np.abs(x_new - x).sum() < n * tol:
            return x_new
        x = x_new
    raise RuntimeError("dense power iteration did not converge")


def reference_pagerank_exact(graph, personalization=None, *, alpha=0.85) -> np.ndarray:
    """The fixed point itself: the eigenvector of the Google matrix for eigenvalue 1, by a
    linear solve of ``(I - G) x = 0`` with ``sum(x) = 1``."""
    n = graph.n_nodes
    gm = google_matrix(graph, personalization, alpha=alpha)
    a = np.vstack([np.eye(n) - gm, np.ones((1, n))])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]
