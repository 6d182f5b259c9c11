"""The fast distinct-value helpers give exactly what np.unique gives."""

import numpy as np
import pytest

from socialgraph.arrays import unique, unique_inverse


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.int8, np.uint32])
@pytest.mark.parametrize("ascending", [False, True])  # True: the neighbour-comparing path
def test_unique_and_inverse_match_numpy(seed, dtype, ascending):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    n = int(rng.integers(0, 3000))
    # a small range (the counting path) and a wide one (the hashing path), with negatives
    span = int(rng.choice([5, 2 * n + 10, min(info.max, 2**40)]))
    lo = max(info.min, -span // 2) if info.min < 0 else 0
    hi = min(info.max, lo + span)
    x = rng.integers(lo, hi, n, endpoint=True).astype(dtype)
    if ascending:
        x = np.sort(x)
    want_u, want_inv = np.unique(x, return_inverse=True)
    u, inv = unique_inverse(x)
    assert u.dtype == x.dtype and inv.dtype == np.int64
    np.testing.assert_array_equal(u, want_u)
    np.testing.assert_array_equal(inv, want_inv.reshape(-1))
    np.testing.assert_array_equal(unique(x), np.unique(x))


def test_extremes_and_empty():
    x = np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0, np.iinfo(np.int64).max])
    u, inv = unique_inverse(x)
    assert u.tolist() == sorted(set(x.tolist())) and u[inv].tolist() == x.tolist()
    u, inv = unique_inverse(np.zeros(0, np.int64))
    assert u.size == 0 and inv.size == 0
    assert unique(np.zeros(0)).size == 0
    assert unique(np.array([2.5, np.nan, 2.5])).size == 2  # floats: sorted, repeats dropped
    with pytest.raises(TypeError):
        unique_inverse(np.array([1.5]))


@pytest.mark.parametrize("seed", range(4))
def test_isin_matches_numpy(seed):
    from socialgraph.arrays import isin

    rng = np.random.default_rng(seed)
    keys = rng.integers(-50, 50, int(rng.integers(0, 500)))
    values = rng.integers(-50, 50, int(rng.integers(0, 40)))
    np.testing.assert_array_equal(isin(keys, values), np.isin(keys, values))
    np.testing.assert_array_equal(isin(keys.astype(np.int32), values), np.isin(keys, values))


@pytest.mark.parametrize("seed", range(8))
def test_dense_ids_match_np_unique_over_sorted_and_unsorted_arrays(seed):
    """The call graph's ids: sorted arrays (the tie table's ``a``) take the no-hash path,
    the others the hashing one; together they must give np.unique's ids of the whole."""
    from socialgraph.graph import dense_ids

    rng = np.random.default_rng(seed)
    arrays = []
    for _ in range(int(rng.integers(1, 5))):
        n = int(rng.choice([0, 1, int(rng.integers(2, 2000))]))
        x = rng.integers(-(2**40), 2**40, n) if rng.random() < 0.5 else rng.integers(0, 50, n)
        arrays.append(np.sort(x) if rng.random() < 0.5 else x)
    out = dense_ids(*arrays)
    whole = np.concatenate(arrays)
    keys, inv = np.unique(whole, return_inverse=True)
    np.testing.assert_array_equal(out[0], keys)
    pos = 0
    for x, ids in zip(arrays, out[1:]):
        assert ids.dtype == np.int64 and ids.shape == x.shape
        np.testing.assert_array_equal(ids, inv.reshape(-1)[pos:pos + x.size])
        pos += x.size
