"""Declared circles against the subscriber table they come from."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from socialgraph.circles import declared_circles
from socialgraph.subscribers import subscribers_from_arrow
from socialgraph.synth import SynthConfig, make_operator


def _subs(family, vnet):
    n = len(family)
    return subscribers_from_arrow(pa.table({
        "msisdn": [f"1380000{i:04d}" for i in range(n)],
        "activation_date": pa.array([dt.date(2025, 1, 1)] * n),
        "family_id": pa.array(family, pa.string()),
        "vnet_id": pa.array(vnet, pa.string()),
    }))


def test_member_of_both_family_and_vnet():
    c = declared_circles(_subs(["F", "F", None], [None, "V", "V"]))
    by_circle = c.groupby("circle_id")["key"].apply(set).to_dict()
    keys = _subs(["F", "F", None], [None, "V", "V"]).key
    assert by_circle == {"family:F": {keys[0], keys[1]}, "vnet:V": {keys[1], keys[2]}}
    assert set(c["source"]) == {"declared"}


def test_no_declared_circles_gives_an_empty_typed_table():
    c = declared_circles(_subs([None, None], [None, None]))
    assert len(c) == 0 and list(c.columns) == ["circle_id", "kind", "source", "key"]


def test_synthetic_operator_circles_match_the_subscriber_table():
    op = make_operator(SynthConfig(n_subscribers=2000, weeks=4, seed=5))
    subs = subscribers_from_arrow(op.subscribers)
    c = declared_circles(subs)
    fam = op.subscribers.column("family_id").to_pandas()
    vnet = op.subscribers.column("vnet_id").to_pandas()
    assert (c["kind"] == "family").sum() == fam.notna().sum()
    assert (c["kind"] == "vnet").sum() == vnet.notna().sum()
    assert c["circle_id"].nunique() == fam.dropna().nunique() + vnet.dropna().nunique()
    # deterministic and ordered
    again = declared_circles(subscribers_from_arrow(op.subscribers))
    assert again.equals(c)
    assert c.sort_values(["circle_id", "key"]).reset_index(drop=True).equals(c)
    assert np.all(c.groupby("circle_id")["key"].apply(lambda k: k.is_unique))
