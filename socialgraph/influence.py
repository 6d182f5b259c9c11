"""Influence of a subscriber over the people around them.

Two views of the same question, "whose communication depends on whom":

* :func:`dependence` - how much of each neighbour's communication goes through a node: the sum
  over neighbours ``j`` of ``w_ij / s_j``, where ``s_j`` is ``j``'s strength (the sum of its tie
  weights). A node that is the only contact of three people scores 3.
* :func:`personalized_pagerank` / :func:`spreading_activation` - a random walk over the call
  graph that restarts at chosen subscribers (e.g. recent churners), the scores being where the
  walk spends its time.

All functions take a :class:`~socialgraph.graph.CallGraph` and return one ``float64`` per node
(dense node id = position; ``graph.ids_of(keys)`` maps number keys to ids).
"""

from __future__ import annotations

import functools
import glob
import numbers
import os

import numba
import numpy as np

from .graph import CallGraph
from .kernels import influence as _k

__all__ = [
    "PowerIterationFailedConvergence",
    "dependence",
    "personalized_pagerank",
    "personalized_pagerank_from_seeds",
    "spreading_activation",
]


class PowerIterationFailedConvergence(ValueError):
    """The power iteration did not reach the tolerance within ``max_iter`` iterations."""

    def __init__(self, max_iter: int, l1_change: float, limit: float):
        self.max_iter = max_iter
        self.l1_change = l1_change
        super().__init__(
            f"personalized_pagerank did not converge in max_iter={max_iter} iterations "
            f"(last L1 change {l1_change:.3g}, needed < n * tol = {limit:.3g}); "
            "raise max_iter or tol"
        )


# --------------------------------------------------------------------------- checks


def _check_graph(graph: CallGraph, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CSR arrays of ``graph`` with the kernels' dtypes, after checks that keep the kernels
    in bounds (the symmetry of the CSR is the builder's guarantee and is not re-checked)."""
    if not isinstance(graph, CallGraph):
        raise TypeError(f"{where}: graph must be a socialgraph.graph.CallGraph, got {type(graph).__name__}")
    n = graph.n_nodes
    indptr, indices = np.asarray(graph.indptr), np.asarray(graph.indices)
    if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
        raise ValueError(f"{where}: graph.indptr and graph.indices must be integer arrays, got "
                         f"{indptr.dtype} and {indices.dtype}; rebuild the graph with build_call_graph")
    if n >= 2**31:
        raise ValueError(f"{where}: {n} nodes is more than the int32 node ids of the CSR can address")
    if indices.ndim != 1:
        raise ValueError(f"{where}: graph.indices must be 1-D, got shape {indices.shape}")
    if indptr.ndim != 1 or indptr.size != n + 1:
        raise ValueError(f"{where}: graph.indptr has {indptr.size} entries, expected n_nodes + 1 = {n + 1}")
    m = indices.size
    if indptr[0] != 0 or indptr[-1] != m or (n and np.any(np.diff(indptr) < 0)):
        raise ValueError(f"{where}: graph.indptr must rise from 0 to len(indices) = {m}; rebuild the graph "
                         "with build_call_graph")
    # range-check before the cast to int32, which would wrap out-of-range ids into range
    if m and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"{where}: graph.indices must lie in [0, {n}); rebuild the graph with build_call_graph")
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    weights = np.ascontiguousarray(graph.weights, dtype=np.float64)
    if weights.shape != indices.shape:
        raise ValueError(f"{where}: graph.weights has {weights.size} entries but graph.indices has {m}")
    if m and not (np.isfinite(weights).all() and weights.min() >= 0):
        raise ValueError(f"{where}: graph.weights must be finite and non-negative")
    return indptr, indices, weights


def _inverse_strength(indptr: np.ndarray, weights: np.ndarray, where: str) -> np.ndarray:
    inv = _k._invert_strength(indptr, weights)
    if not np.isfinite(inv).all():
        raise ValueError(f"{where}: a node's strength (sum of its weights) is too small to invert; "
                         "rescale graph.weights")
    return inv


def _check_nonnegative_vector(values, name: str, size: int, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{where}: {name} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != 1 or arr.size != size:
        raise ValueError(f"{where}: {name} must be a 1-D array of length {size}, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{where}: {name} must be finite (found NaN or inf)")
    if size and arr.min() < 0:
        i = int(np.argmin(arr))
        raise ValueError(f"{where}: {name} must be non-negative, got {arr[i]!r} at position {i}")
    return arr


def _check_iteration(alpha, tol, max_iter, where: str) -> tuple[float, float, int]:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"{where}: alpha (the damping factor) must be a number in (0, 1), got {alpha!r}; "
                         "0.85 is the usual choice")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0.0 < float(tol) < np.inf):
        raise ValueError(f"{where}: tol must be a finite number > 0, got {tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"{where}: max_iter must be an integer >= 1, got {max_iter!r}")
    return float(alpha), float(tol), int(max_iter)


def _seed_vector(n: int, seed_ids, seed_weights, where: str) -> np.ndarray:
    ids = np.asarray(seed_ids)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"{where}: seed_ids must be a non-empty 1-D array of node ids, got shape {ids.shape}")
    if ids.dtype.kind not in "iu":
        raise ValueError(f"{where}: seed_ids must be integer node ids (use graph.ids_of(keys)), "
                         f"got dtype {ids.dtype}")
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if ids.min() < 0 or ids.max() >= n:
        bad = int(ids[(ids < 0) | (ids >= n)][0])
        raise ValueError(f"{where}: seed id {bad} is not a node id in [0, {n}); graph.ids_of returns -1 for "
                         "numbers not in the graph - drop those first")
    if seed_weights is None:
        w = np.ones(ids.size, dtype=np.float64)
    else:
        w = _check_nonnegative_vector(seed_weights, "seed_weights", ids.size, where)
    # repeated ids add up
    return np.bincount(ids, weights=w, minlength=n)


# --------------------------------------------------------------------------- scores


def dependence(graph: CallGraph) -> np.ndarray:
    """How much the neighbours of each node depend on it.

    ``dependence[i] = sum over neighbours j of w_ij / s_j`` where ``s_j`` is the strength of
    ``j`` (the sum of its tie weights): each neighbour contributes the share of its own
    communication that goes to ``i``. The scores sum to the number of nodes with a positive
    strength; isolated nodes score 0, and so do the ties of a node whose weights are all 0.

    Parameters
    ----------
    graph : CallGraph

    Returns
    -------
    numpy.ndarray
        ``float64``, one score per node.

    Examples
    --------
    A star: the hub carries all of each leaf's communication, a leaf a third of the hub's.

    >>> import numpy as np
    >>> from socialgraph.graph import build_call_graph
    >>> g = build_call_graph(np.array([1, 1, 1]), np.array([2, 3, 4]), np.array([1.0, 1.0, 1.0]),
    ...                      on_net_keys=np.array([1, 2, 3, 4]), extra_keys=np.array([5]))
    >>> dependence(g).round(4).tolist()
    [3.0, 0.3333, 0.3333, 0.3333, 0.0]
    """
    indptr, indices, weights = _check_graph(graph, "dependence")
    if graph.n_nodes == 0:
        return np.zeros(0, dtype=np.float64)
    inv = _inverse_strength(indptr, weights, "dependence")
    return _k._sum_dependence(indptr, indices, weights, inv)


_METHODS = ("chebyshev", "power")


def _check_method(method, where: str, alpha: float) -> float:
    """``method`` -> the ``rho`` of :func:`socialgraph.kernels.influence._iterate_pagerank`."""
    if method not in _METHODS:
        raise ValueError(f"{where}: method must be one of {', '.join(map(repr, _METHODS))}, got {method!r}")
    return alpha if method == "chebyshev" else 0.0


@functools.lru_cache(maxsize=4)
def _last_level_cache_bytes(root: str = "/sys/devices/system/cpu/cpu0/cache") -> int:
    """Size of the largest CPU cache that Linux reports under ``root``, 0 where none is."""
    best = 0
    for path in glob.glob(os.path.join(root, "index*", "size")):
        try:
            text = open(path, encoding="ascii").read().strip().upper()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text[:-1] if text[-1:] in "KMG" else text
        if digits.isdigit():
            best = max(best, int(digits) * unit)
    return best


def _whole_sweep_bytes() -> int:
    """Bytes of scores that the PageRank sweep takes whole (see ``_k._WHOLE_SWEEP_BYTES``)."""
    whole = _k._WHOLE_SWEEP_BYTES
    return _last_level_cache_bytes() // 2 if whole is None else whole


def _sweep_windows(n: int) -> int:
    """Column windows of the PageRank sweep over ``n`` nodes; 1 sweeps the CSR whole."""
    n_windows = ((n - 1) >> _k._WINDOW_SHIFT) + 1
    if n_windows > _k._MAX_WINDOWS or 8 * n <= _whole_sweep_bytes():
        return 1
    return n_windows


def _run_pagerank(graph: CallGraph, personalization, alpha, tol, max_iter, where: str,
                  method: str = "chebyshev"):
    """Checked inputs -> ``(scores, sweeps)``; raises when the iteration fails."""
    indptr, indices, weights = _check_graph(graph, where)
    alpha, tol, max_iter = _check_iteration(alpha, tol, max_iter, where)
    rho = _check_method(method, where, alpha)
    n = graph.n_nodes
    if personalization is None:
        p = np.full(n, 1.0 / n) if n else np.zeros(0)
    else:
        p = _check_nonnegative_vector(personalization, "personalization", n, where)
        total = p.sum()
        if not np.isfinite(total):
            raise ValueError(f"{where}: personalization sums to {total}; rescale it")
        if n and not total > 0:
            raise ValueError(f"{where}: personalization is all zero; give at least one node a positive "
                             "value (or pass None for the uniform vector)")
        p = p / total if n else p
    if n == 0:
        return np.zeros(0, dtype=np.float64), 0
    inv = _inverse_strength(indptr, weights, where)
    # dangling = strength 0: no ties, or only ties reweighted to 0 (e.g. activity after a cut-off)
    dangling = np.flatnonzero(inv == 0.0)
    bounds = _k._split_blocks(indptr, _k._BLOCK_WORK)
    n_windows = _sweep_windows(n)
    if n_windows == 1:
        win_indptr, cols = indptr.reshape(1, n + 1), indices
        transition = np.empty(weights.size, dtype=np.float64)
        _k._fill_transition(indptr, indices, weights, inv, transition)
    else:
        win_indptr = np.empty((n_windows, n + 1), dtype=np.int64)
        cols = np.empty_like(indices)
        transition = np.empty(weights.size, dtype=np.float64)
        _k._window_transition(indptr, indices, weights, inv, _k._WINDOW_SHIFT, bounds, win_indptr, cols,
                              transition)
    work = np.empty((3, n), dtype=np.float64)
    # parallel over row blocks (in lanes of blocks, one per thread, when windowed); neither
    # changes the result, only who computes it
    row, iterations, err, converged = _k._iterate_pagerank(
        win_indptr, cols, transition, dangling, p, alpha, rho, tol, max_iter, bounds, numba.get_num_threads(), work)
    if not converged:
        raise PowerIterationFailedConvergence(max_iter, float(err), n * tol)
    return work[row].copy(), int(iterations)


def personalized_pagerank(
    graph: CallGraph,
    personalization: np.ndarray | None = None,
    *,
    alpha: float = 0.85,
    tol: float = 1e-6,
    max_iter: int = 100,
    method: str = "chebyshev",
) -> np.ndarray:
    """Weighted personalised PageRank on the undirected call graph.

    The same scores as ``networkx.pagerank(G, alpha, personalization, weight="weight",
    tol=tol, max_iter=max_iter)``: every undirected tie is two directed ones of the same
    weight, the walk moves from ``j`` to ``i`` with probability ``w_ij / s_j``, and with
    probability ``1 - alpha`` (and always from a node of strength 0: no ties, or ties of
    weight 0 only) it restarts at a node drawn from ``personalization``.

    Both methods start from the uniform vector and stop on networkx's rule: once one power
    step would change the iterate by less than ``n * tol`` in L1, the result is that step, so
    it lies within ``alpha * n * tol / (1 - alpha)`` of the exact scores in L1.
    ``method="power"`` is networkx's power iteration, iterate for iterate (the same scores,
    to rounding, at any ``tol``). ``method="chebyshev"`` (the default) accelerates it: on
    an undirected graph the spectrum of the walk is real, and a Chebyshev recurrence over the
    last two iterates damps it at about 0.56 per sweep instead of 0.85 (``alpha = 0.85``). On
    the 1M-subscriber synthetic graph it needs 26 sweeps instead of 37 and ends 6 times closer
    to the exact scores. Its first sweep is the power iteration's, so where networkx stops
    after one iteration (large graphs at the default ``tol``) both give the same scores.

    Parameters
    ----------
    graph : CallGraph
    personalization : array of float, length ``n_nodes``, optional
        Non-negative restart weights (normalised here; at least one must be positive).
        ``None`` restarts uniformly (plain PageRank).
    alpha : float in (0, 1)
        Damping: the probability of following a tie rather than restarting.
    tol : float > 0
        Per-node tolerance, as in networkx: the threshold on the L1 change is ``n * tol``.
        For large graphs that is loose (``n = 10**6``, ``tol = 1e-6``: an L1 change below 1,
        usually met after one or two iterations); pass ``tol = 1e-6 / n`` or smaller for a
        result accurate to about ``1e-6`` in L1.
    max_iter : int >= 1
        Sweeps of the graph that may test convergence (Chebyshev adds one to finish).
    method : {"chebyshev", "power"}
        The iteration (above); the fixed point and the stopping rule are the same.

    Returns
    -------
    numpy.ndarray
        ``float64``, one score per node, summing to 1 (up to rounding).

    Raises
    ------
    PowerIterationFailedConvergence
        (a ``ValueError``) when ``max_iter`` iterations do not reach the tolerance.

    Examples
    --------
    >>> import numpy as np
    >>> from socialgraph.graph import build_call_graph

    A triangle with a pendant: node 2, tied to all three others, ranks first.

    >>> g = build_call_graph(np.array([1, 1, 2, 3]), np.array([2, 3, 3, 4]), np.ones(4),
    ...                      on_net_keys=np.array([1, 2, 3, 4]))
    >>> personalized_pagerank(g, tol=1e-8).round(4).tolist()
    [0.2459, 0.2459, 0.3667, 0.1414]
    >>> x = personalized_pagerank(g, np.array([1.0, 0.0, 0.0, 0.0]), tol=1e-8)
    >>> x.round(4).tolist(), round(float(x.sum()), 12)
    ([0.3436, 0.2383, 0.3258, 0.0923], 1.0)
    """
    return _run_pagerank(graph, personalization, alpha, tol, max_iter, "personalized_pagerank", method)[0]


def personalized_pagerank_from_seeds(
    graph: CallGraph,
    seed_ids: np.ndarray,
    seed_weights: np.ndarray | None = None,
    **kw,
) -> np.ndarray:
    """:func:`personalized_pagerank` restarting at ``seed_ids``.

    Parameters
    ----------
    graph : CallGraph
    seed_ids : array of int
        Dense node ids of the seeds (``graph.ids_of(keys)``; ``-1`` entries are rejected).
        A repeated id adds its weights up.
    seed_weights : array of float, optional
        Non-negative weight of each seed (default 1 each); not all zero.
    **kw
        ``alpha``, ``tol``, ``max_iter``, ``method`` as in :func:`personalized_pagerank`.

    Returns
    -------
    numpy.ndarray
        ``float64``, one score per node, summing to 1.

    Examples
    --------
    >>> import numpy as np
    >>> from socialgraph.graph import build_call_graph
    >>> g = build_call_graph(np.array([1, 1, 2, 3]), np.array([2, 3, 3, 4]), np.ones(4),
    ...                      on_net_keys=np.array([1, 2, 3, 4]))
    >>> personalized_pagerank_from_seeds(g, np.array([3]), tol=1e-8).round(4).tolist()
    [0.1846, 0.1846, 0.3746, 0.2561]
    """
    if not isinstance(graph, CallGraph):
        raise TypeError(f"personalized_pagerank_from_seeds: graph must be a CallGraph, got {type(graph).__name__}")
    p = _seed_vector(graph.n_nodes, seed_ids, seed_weights, "personalized_pagerank_from_seeds")
    if not p.sum() > 0:
        raise ValueError("personalized_pagerank_from_seeds: seed_weights are all zero; give at least one "
                         "seed a positive weight")
    return personalized_pagerank(graph, p, **kw)


def spreading_activation(
    graph: CallGraph,
    seed_ids: np.ndarray,
    seed_weights: np.ndarray | None = None,
    *,
    alpha: float = 0.85,
    tol: float = 1e-6,
    max_iter: int = 100,
    method: str = "chebyshev",
) -> np.ndarray:
    """Activation spreading from seed subscribers (e.g. recent churners) over the call graph.

    After Dasgupta et al., "Social ties and their relevance to churn in mobile telecom
    networks" (EDBT 2008): churners are the seeds, and activation spreads from them along the
    ties, each node passing a share ``alpha`` of what it holds to its contacts in proportion to
    tie weight. The stationary activation is the personalised PageRank restarting at the
    seeds (:func:`personalized_pagerank_from_seeds`), scaled by ``n_nodes`` so that scores
    are comparable across seed sets and graph sizes: 1.0 is the uniform baseline (what every
    node would get with no structure), 5.0 means five times the baseline exposure.

    Parameters
    ----------
    graph : CallGraph
    seed_ids : array of int
        Dense node ids of the seeds.
    seed_weights : array of float, optional
        Non-negative initial activation of each seed (default 1 each).
    alpha, tol, max_iter, method
        As in :func:`personalized_pagerank`.

    Returns
    -------
    numpy.ndarray
        ``float64``, one score per node, averaging 1.

    Examples
    --------
    >>> import numpy as np
    >>> from socialgraph.graph import build_call_graph

    Seeding the pendant (node 3) lifts it from 0.57 of the baseline to about the baseline:

    >>> g = build_call_graph(np.array([1, 1, 2, 3]), np.array([2, 3, 3, 4]), np.ones(4),
    ...                      on_net_keys=np.array([1, 2, 3, 4]))
    >>> a = spreading_activation(g, np.array([3]), tol=1e-8)
    >>> a.round(3).tolist(), round(float(a.mean()), 12)
    ([0.738, 0.738, 1.499, 1.025], 1.0)
    """
    x = personalized_pagerank_from_seeds(graph, seed_ids, seed_weights, alpha=alpha, tol=tol,
                                         max_iter=max_iter, method=method)
    return x * graph.n_nodes
