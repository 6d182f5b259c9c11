"""Kernels over circles: members of circle ``c`` are ``member_node[circle_ptr[c]:circle_ptr[c+1]]``,
sorted ascending within the circle (graph node ids; -1 = a member absent from the graph)."""

from __future__ import annotations

import numpy as np

from ._jit import njit, pjit, prange


@pjit
def _in_circle_ties(circle_ptr, member_node, indptr, indices, weights, strength, strongest, influence):
    """Per member row: tie strength to the rest of its circle, its strongest such tie, and its
    in-circle dependence (sum over circle neighbours ``v`` of ``w_uv / strength_v``)."""
    n_circles = circle_ptr.shape[0] - 1
    for c in prange(n_circles):
        lo = circle_ptr[c]
        hi = circle_ptr[c + 1]
        nodes = member_node[lo:hi]
        for r in range(lo, hi):
            u = member_node[r]
            s = 0.0
            best = 0.0
            if u >= 0:
                for e in range(indptr[u], indptr[u + 1]):
                    v = indices[e]
                    pos = np.searchsorted(nodes, v)
                    if pos < nodes.shape[0] and nodes[pos] == v:
                        s += weights[e]
                        if weights[e] > best:
                            best = weights[e]
            strength[r] = s
            strongest[r] = best
        for r in range(lo, hi):
            u = member_node[r]
            acc = 0.0
            if u >= 0:
                for e in range(indptr[u], indptr[u + 1]):
                    v = indices[e]
                    pos = np.searchsorted(nodes, v)
                    if pos < nodes.shape[0] and nodes[pos] == v and strength[lo + pos] > 0:
                        acc += weights[e] / strength[lo + pos]
            influence[r] = acc


@njit
def _circle_anchors(rows, circle, influence, strength, key, out):
    """Per run of ``rows`` of one circle (``circle[rows]`` ascending): the row of highest
    ``influence``, then highest ``strength``, then lowest ``key`` (as a sort on those would
    pick), written to ``out``; returns the number of circles found."""
    n = 0
    i = 0
    while i < rows.shape[0]:
        c = circle[rows[i]]
        best = rows[i]
        j = i + 1
        while j < rows.shape[0] and circle[rows[j]] == c:
            r = rows[j]
            if (influence[r] > influence[best]
                    or (influence[r] == influence[best]
                        and (strength[r] > strength[best] or (strength[r] == strength[best] and key[r] < key[best])))):
                best = r
            j += 1
        out[n] = best
        n += 1
        i = j
    return n


@pjit
def _shared_contacts(indptr, indices, rows, entries, max_contacts, out):
    """Per CSR entry ``entries[k]`` (the tie ``rows[k]`` -> ``indices[entries[k]]``): how many
    nodes are tied to both ends, counting only nodes with at most ``max_contacts`` ties (a
    call centre in touch with everyone is nobody's shared contact). A sorted merge of the two
    rows, which must be ascending (as :func:`socialgraph.graph.build_call_graph` builds them)."""
    for k in prange(entries.shape[0]):
        u = rows[k]
        v = indices[entries[k]]
        i, ie = indptr[u], indptr[u + 1]
        j, je = indptr[v], indptr[v + 1]
        c = 0
        while i < ie and j < je:
            a = indices[i]
            b = indices[j]
            if a == b:
                if indptr[a + 1] - indptr[a] <= max_contacts:
                    c += 1
                i += 1
                j += 1
            elif a < b:
                i += 1
            else:
                j += 1
        out[k] = c


@njit
def _rows_ascending(indptr, indices):
    """Is every CSR row's ``indices`` strictly ascending?"""
    for u in range(indptr.shape[0] - 1):
        for e in range(indptr[u] + 1, indptr[u + 1]):
            if indices[e] <= indices[e - 1]:
                return False
    return True
