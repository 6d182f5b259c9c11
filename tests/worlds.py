"""A synthetic operator run through the graph stage in process (no Dask), shared by the tests
of every stage after the call graph: scores, circles, contagion, number changes, offers.

:func:`synthetic_world` does what ``pipelines.run`` does up to the call graph: clean and
aggregate each weekly CDR chunk, combine, finalise with activity blocks, weigh, and build the
CallGraph with the same per-tie arrays the job carries. Cached per argument set.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa

from socialgraph.config import NumberConfig, TieConfig
from socialgraph.graph import CallGraph, build_call_graph
from socialgraph.numbers import number_keys
from socialgraph.subscribers import Subscribers, day_number, subscribers_from_arrow
from socialgraph.synth import COUNTRY_CODE, NATIONAL_LENGTH, SynthConfig, make_operator
from socialgraph.ties import (
    N_BLOCKS,
    Window,
    activity_block_masks,
    aggregate_events,
    clean_events,
    combine_partials,
    finalize_edges,
    weigh_edges,
)

NUMBERS = NumberConfig(country_code=COUNTRY_CODE, national_length=NATIONAL_LENGTH)


@dataclasses.dataclass(frozen=True)
class World:
    op: object  # the SyntheticOperator (truth in op.truth)
    graph: CallGraph
    subscribers: Subscribers
    as_of_day: int

    def keys(self, msisdns) -> np.ndarray:
        """Number keys of truth-table numbers (plain digit strings)."""
        return number_keys(pa.array(msisdns, pa.string()) if not isinstance(msisdns, pa.ChunkedArray | pa.Array)
                           else msisdns, NUMBERS)


def graph_from_edges(edges: pa.Table, hubs: np.ndarray, sub_keys: np.ndarray, operators: dict) -> CallGraph:
    """The job's CallGraph from a weighed tie table (as ``pipelines.run`` builds it)."""
    col = lambda name: edges.column(name).to_numpy()  # noqa: E731
    return build_call_graph(
        col("a"), col("b"), col("weight"), on_net_keys=sub_keys,
        home_prefixes=tuple(operators["home_prefixes"]), operators=operators["operators"],
        home_operator=operators["home_operator"], service_hub_keys=hubs, extra_keys=sub_keys,
        events_ab=col("calls_ab") + col("sms_ab"), events_ba=col("calls_ba") + col("sms_ba"),
        tie_arrays={
            "active_days": col("active_days"),
            "blocks": np.column_stack([col(f"days_block_{k}") for k in range(N_BLOCKS)]),
            "first_day": (col("first_seen") // 86400).astype(np.int32),
            "last_day": (col("last_seen") // 86400).astype(np.int32),
            "evening_weekend_share": col("evening_weekend_share"),
        },
    )


@cache
def synthetic_world(n_subscribers: int = 3000, weeks: int = 12, seed: int = 3, block_days: int = 14,
                    **synth) -> World:
    """A synthetic operator and its call graph over the whole simulated data (``weeks`` weeks
    before ``as_of``). Extra keyword arguments go to :class:`SynthConfig`."""
    op = make_operator(SynthConfig(n_subscribers=n_subscribers, weeks=weeks, seed=seed, **synth))
    window = Window(op.as_of, 7 * op.config.weeks)
    chunks = [t for _, t in op.cdr_chunks()]
    ids = pa.concat_tables(chunks).column("cdr_id").to_numpy()
    repeated = pd.Series(ids).duplicated().to_numpy()  # keep the first row of each cdr_id
    parts, start = [], 0
    for t in chunks:
        clean = clean_events(t, window, NUMBERS, duplicate=repeated[start:start + t.num_rows])
        parts.append(aggregate_events(clean, window, TieConfig()))
        start += t.num_rows
    edges = finalize_edges(combine_partials(parts), activity_block_masks(window, block_days))
    edges, hubs = weigh_edges(edges, TieConfig())
    sub_keys = number_keys(op.subscribers.column("msisdn"), NUMBERS)
    graph = graph_from_edges(edges, hubs, sub_keys, op.operators)
    return World(op, graph, subscribers_from_arrow(op.subscribers, NUMBERS), day_number(op.as_of))
