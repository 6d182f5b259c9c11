"""Inputs on object storage: every request there waits tens of milliseconds, so what the client
asks of the file system before any work starts must not grow one request at a time with the
number of CDR files (thousands of hourly files are common). A local file system that counts
its requests and makes each one wait stands in for the store."""

from __future__ import annotations

import datetime as dt
import threading
import time

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from conftest import CDR_SCHEMA
from pipelines.checkpoints import file_fingerprint
from pipelines.io import InputError, check_cdr_files, input_description, list_parquet_files


ROWS = [{"caller": "13800000001", "callee": "13900000002", "start_time": dt.datetime(2026, 3, 1, 10),
         "duration_s": 60, "event_type": "voice", "cdr_id": "g1", "caller_imei": "351"},
        {"caller": "13900000002", "callee": "13800000001", "start_time": dt.datetime(2026, 3, 2, 20),
         "duration_s": 0, "event_type": "sms", "cdr_id": "g2", "caller_imei": None}]


class _StoreLike(LocalFileSystem):
    """Local files answered like object storage: one wait per request (a listing is one)."""

    protocol = ("storelike",)
    root_marker = "/"
    latency = 0.02
    lock = threading.Lock()
    active = peak = requests = 0
    _listing = threading.local()

    @classmethod
    def _strip_protocol(cls, path):
        return LocalFileSystem._strip_protocol(str(path).removeprefix("storelike://"))

    @classmethod
    def reset(cls):
        cls.active = cls.peak = cls.requests = 0

    def _request(self):
        cls = type(self)
        with cls.lock:
            cls.active += 1
            cls.requests += 1
            cls.peak = max(cls.peak, cls.active)
        time.sleep(self.latency)
        with cls.lock:
            cls.active -= 1

    def info(self, path, **kwargs):
        if not getattr(self._listing, "on", False):
            self._request()
        return super().info(path, **kwargs)

    def ls(self, path, detail=False, **kwargs):
        self._request()
        self._listing.on = True
        try:
            return super().ls(path, detail=detail, **kwargs)
        finally:
            self._listing.on = False

    def _open(self, path, *args, **kwargs):
        self._request()
        return super()._open(path, *args, **kwargs)


@pytest.fixture
def store(tmp_path):
    fsspec.register_implementation("storelike", _StoreLike, clobber=True)
    d = tmp_path / "cdr"
    for day in range(3):  # hive partitions, as hourly exports come
        (d / f"day={day}").mkdir(parents=True)
        for hour in range(20):
            pq.write_table(pa.Table.from_pylist(ROWS, schema=CDR_SCHEMA), d / f"day={day}" / f"h{hour:02d}.parquet")
    (d / "day=0" / "_SUCCESS").write_bytes(b"")
    _StoreLike.reset()
    return d


def test_file_facts_come_from_the_listing_not_one_request_per_file(store):
    url = f"storelike://{store}"
    fs, files = list_parquet_files(url)
    assert len(files) == 60
    for describe in (input_description, file_fingerprint):
        _StoreLike.reset()
        described = describe(url)
        assert _StoreLike.requests <= 5, describe.__name__  # a handful of listings, not 60 look-ups
    # the same facts a file-by-file look-up gives
    local = str(store)
    assert input_description(url)["bytes"] == input_description(local)["bytes"] > 0
    assert [[f[1]] for f in file_fingerprint(url)] == [[f[1]] for f in file_fingerprint(local)]
    assert described == file_fingerprint(url)


def test_footers_are_read_side_by_side_and_judged_in_order(store):
    url = f"storelike://{store}"
    fs, files = list_parquet_files(url)
    _StoreLike.reset()
    columns, infos = check_cdr_files(fs, files, {})
    assert _StoreLike.peak > 1  # requests in flight together
    assert _StoreLike.requests == len(files)
    assert [i.path for i in infos] == files and all(i.rows == len(ROWS) for i in infos)
    local_fs, local_files = list_parquet_files(str(store))
    assert (columns, [i.row_group_rows for i in infos]) == (
        lambda c, i: (c, [x.row_group_rows for x in i]))(*check_cdr_files(local_fs, local_files, {}))
    # two broken files: the error names the first in order, whichever was read first
    (store / "day=1" / "h05.parquet").write_bytes(b"not parquet")
    (store / "day=2" / "h00.parquet").write_bytes(b"nor this")
    with pytest.raises(InputError, match=r"day=1/h05\.parquet: not a readable Parquet file"):
        check_cdr_files(fs, files, {})
    _, skipped = check_cdr_files(fs, files, {}, skip_bad_files=True)
    assert [i.path.split("cdr/")[1] for i in skipped if i.error] == ["day=1/h05.parquet", "day=2/h00.parquet"]


def test_check_reads_its_sample_from_the_store(store, tmp_path):
    """``socialgraph check`` on object storage: every footer, then a sample of files spread
    over the listing, read through the store; the same figures as on the local copy."""
    from pipelines.check import check_inputs
    from socialgraph.config import JobConfig

    subs = tmp_path / "subs.parquet"
    pq.write_table(pa.table({"msisdn": ["13800000001", "13900000002"],
                             "activation_date": pa.array([dt.date(2020, 1, 1)] * 2)}), subs)
    remote = check_inputs(f"storelike://{store}", str(subs), None, JobConfig(), sample_rows=20)
    local = check_inputs(str(store), str(subs), None, JobConfig(), sample_rows=20)
    assert remote.figures == local.figures
    assert remote.figures["cdr"]["files"] == 60 and remote.figures["cdr"]["sampled_files"] == 10
    assert remote.figures["rows"]["used"] == 20
