"""Job config YAML -> JobConfig: unknown keys and wrong types name the dotted key."""

from __future__ import annotations

import dataclasses

import pytest

from pipelines.config_file import ConfigError, config_from_mapping, config_to_mapping, load_config
from socialgraph.config import ColumnMap, JobConfig, NumberConfig, TieConfig, WindowConfig


def test_defaults():
    assert load_config(None) == JobConfig()
    assert config_from_mapping(None) == JobConfig()
    assert config_from_mapping({}) == JobConfig()
    cfg = JobConfig()
    assert cfg.window.lookback_days == 180 and cfg.window.timezone == "UTC"
    assert cfg.numbers == NumberConfig() and cfg.columns == ColumnMap()
    assert cfg.columns.caller == "caller" and cfg.ingest.quarantine is True


def test_empty_file_and_empty_sections_are_defaults(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("")
    assert load_config(f) == JobConfig()
    f.write_text("ties:\nwindow:\n")
    assert load_config(f) == JobConfig()


@pytest.mark.parametrize("data,key", [
    ({"lookback": 30}, "lookback"),
    ({"ties": {"one_way_factr": 0.5}}, "ties.one_way_factr"),
    ({"window": {"lookback_day": 30}}, "window.lookback_day"),
    ({"columns": {"calling": "x"}}, "columns.calling"),
    ({"numbers": {"countrycode": "45"}}, "numbers.countrycode"),
    ({"ingest": {"quarantine": True, "blocksize_mb": 64}}, "ingest.blocksize_mb"),
    ({"cluster": {"workers": 2}}, "cluster.workers"),
])
def test_unknown_key_names_dotted_key(data, key):
    with pytest.raises(ConfigError) as e:
        config_from_mapping(data)
    msg = str(e.value)
    assert msg.startswith(key + ":") or f"{key}:" in msg or repr(key) in msg
    assert "unknown" in msg
    assert "\n" not in msg


def test_unknown_key_in_file(tmp_path):
    f = tmp_path / "job.yaml"
    f.write_text("window:\n  lookback_days: 30\nties:\n  w_calls: 1.0\n  hub_min_contact: 5\n")
    with pytest.raises(ConfigError, match=r"ties\.hub_min_contact"):
        load_config(f)


@pytest.mark.parametrize("data,key", [
    ({"window": {"lookback_days": "30"}}, "window.lookback_days"),
    ({"window": {"lookback_days": 1.5}}, "window.lookback_days"),
    ({"window": {"lookback_days": True}}, "window.lookback_days"),
    ({"window": {"lookback_days": 0}}, "window.lookback_days"),
    ({"window": {"timezone": "Mars/Olympus"}}, "window.timezone"),
    ({"ties": {"w_calls": "heavy"}}, "ties.w_calls"),
    ({"ties": {"one_way_factor": 2.0}}, "ties.one_way_factor"),
    ({"ties": {"weekend_days": 5}}, "ties.weekend_days"),
    ({"ties": {"weekend_days": ["sat", "sun"]}}, "ties.weekend_days"),
    ({"ties": {"evening_start_hour": 25}}, "ties.evening_start_hour"),
    ({"ingest": {"quarantine": "yes"}}, "ingest.quarantine"),
    ({"numbers": {"country_code": "+45"}}, "numbers.country_code"),
    ({"numbers": {"national_length": "8"}}, "numbers.national_length"),
    ({"columns": {"caller": ""}}, "columns.caller"),
    ({"cluster": {"n_workers": -1}}, "cluster.n_workers"),
    ({"seed": "x"}, "seed"),
    ({"ties": 5}, "ties"),
    ({"ties": ["w_calls"]}, "ties"),
])
def test_wrong_type_names_key(data, key):
    with pytest.raises(ConfigError) as e:
        config_from_mapping(data)
    msg = str(e.value)
    assert key in msg, msg
    assert "\n" not in msg


def test_top_level_must_be_a_mapping(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError):
        load_config(f)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    f = tmp_path / "bad.yaml"
    f.write_text("ties: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(f) in str(e.value) and "\n" not in str(e.value)


def test_yaml_int_country_code_accepted(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("numbers:\n  country_code: 45\n  national_length: 8\n")
    cfg = load_config(f)
    assert cfg.numbers == NumberConfig(country_code="45", national_length=8)
    assert config_from_mapping({"numbers": {"country_code": "86"}}).numbers.country_code == "86"


def test_values_are_read(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "columns:\n  caller: calling_number\n  callee: called_number\n"
        "window:\n  lookback_days: 30\n  timezone: Europe/Copenhagen\n"
        "ties:\n  w_calls: 2\n  weekend_days: [4, 5]\n  one_way_factor: 0.5\n"
        "ingest:\n  quarantine: false\n"
        "seed: 7\n")
    cfg = load_config(f)
    assert cfg.columns.caller == "calling_number" and cfg.columns.callee == "called_number"
    assert cfg.columns.start_time == "start_time"
    assert cfg.window == WindowConfig(lookback_days=30, timezone="Europe/Copenhagen")
    assert cfg.ties.w_calls == 2.0 and isinstance(cfg.ties.w_calls, float)
    assert cfg.ties.weekend_days == (4, 5)
    assert cfg.ties.one_way_factor == 0.5 and cfg.ties.w_sms == TieConfig().w_sms
    assert cfg.ingest.quarantine is False
    assert cfg.seed == 7


def test_round_trip_through_mapping():
    cfg = config_from_mapping({"ties": {"w_days": 2.0, "weekend_days": [6]}, "numbers": {"country_code": "45"}})
    again = config_from_mapping(config_to_mapping(cfg))
    assert again == cfg


def test_config_is_frozen():
    cfg = JobConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 1  # type: ignore[misc]


def test_two_columns_mapped_to_one_input_column():
    with pytest.raises(ConfigError, match="columns"):
        config_from_mapping({"columns": {"caller": "number", "callee": "number"}})


def test_cluster_memory_limit_must_be_a_size():
    from socialgraph.config import ClusterConfig

    assert ClusterConfig(memory_limit="1.5GiB").memory_limit == "1.5GiB"
    with pytest.raises(ValueError, match="cluster.memory_limit"):
        ClusterConfig(memory_limit="lots")


def test_config_command_prints_every_key_as_yaml_that_reads_back(tmp_path):
    """``socialgraph config`` is the full key reference: its output loads back to the same
    config (defaults, or the file's values on top of them), holds every key of every section
    under its own name, and a bad file is refused as ``run`` refuses it."""
    import yaml
    from click.testing import CliRunner

    from pipelines.cli import main

    res = CliRunner().invoke(main, ["config"])
    assert res.exit_code == 0, res.output
    (tmp_path / "all.yaml").write_text(res.stdout)
    assert load_config(tmp_path / "all.yaml") == JobConfig()
    data = yaml.safe_load(res.stdout)
    for f in dataclasses.fields(JobConfig):
        section = getattr(JobConfig(), f.name)
        if dataclasses.is_dataclass(section):
            assert list(data[f.name]) == [g.name for g in dataclasses.fields(section)]
            assert res.stdout.count(f"\n{f.name}:\n") == 1
    own = tmp_path / "own.yaml"
    own.write_text("contagion:\n  fdr: 0.2\nties:\n  weekend_days: [4, 5]\nnumbers:\n  country_code: 45\n")
    res = CliRunner().invoke(main, ["config", "--config", str(own)])
    assert res.exit_code == 0, res.output
    (tmp_path / "own-full.yaml").write_text(res.stdout)
    assert load_config(tmp_path / "own-full.yaml") == load_config(own) != JobConfig()
    own.write_text("contagion:\n  fdrr: 0.2\n")
    res = CliRunner().invoke(main, ["config", "--config", str(own)])
    assert res.exit_code == 2 and "contagion.fdrr" in res.stderr and res.stdout == ""
