"""Job config YAML -> frozen :class:`socialgraph.config.JobConfig`.

The only place that reads config files. Unknown keys and wrong types are errors that name the
key (``ties.one_way_factr: unknown key; known keys: ...``), because a silently ignored typo in a
monthly batch job is a wrong number in a marketer's list.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
import typing
from pathlib import Path

import yaml

from socialgraph.config import JobConfig


class ConfigError(ValueError):
    """A job config that cannot be used; the message names the key."""


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in known:
            raise ConfigError(f"{path}: unknown key; known keys: {', '.join(known)}")
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, path)
        else:
            kwargs[key] = _coerce(hint, value, path)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        msg = str(e)
        raise ConfigError(msg if msg.startswith(where) or not where else f"{where}: {msg}") from None


def _coerce(hint, value, path):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path) if len(inner) == 1 else value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], v, path) for v in value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is str and path.endswith("country_code") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # YAML reads country_code: 45 as an int
    if hint in (int, float, str, bool) and not (isinstance(value, hint) and not (hint is int and isinstance(value, bool))):
        raise ConfigError(f"{path}: expected {hint.__name__}, got {value!r}")
    return value


def config_from_mapping(data: dict | None) -> JobConfig:
    """Build a JobConfig from a parsed YAML mapping.

    >>> config_from_mapping({"ties": {"one_way_factor": 0.5}}).ties.one_way_factor
    0.5
    >>> config_from_mapping({"ties": {"one_way_factr": 0.5}})
    Traceback (most recent call last):
    ...
    pipelines.config_file.ConfigError: ties.one_way_factr: unknown key; known keys: evening_start_hour, morning_end_hour, work_start_hour, work_end_hour, weekend_days, w_calls, w_sms, w_duration, w_days, one_way_factor, hub_min_contacts, hub_max_reply_share
    """
    return _build(JobConfig, data or {}, "")


def load_config(path: str | Path | None) -> JobConfig:
    """Read a job config YAML file (``None`` = all defaults)."""
    if path is None:
        return JobConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    return config_from_mapping(data)


def config_to_mapping(cfg: JobConfig) -> dict:
    """The config as plain data (for the manifest)."""
    return dataclasses.asdict(cfg)


def _first_sentence(doc: str | None) -> str:
    """A config section's docstring as one plain line: its first sentence, without reST."""
    text = " ".join((doc or "").split())
    text = re.sub(r":\w+:`([^`]*)`", r"\1", text).replace("``", "")
    m = re.search(r"(?<=\.)\s", text)
    return (text[:m.start()] if m else text).rstrip(".")


class _Dumper(yaml.SafeDumper):
    """Block mappings, tuples and lists on one line (``weekend_days: [5, 6]``)."""


for _seq in (list, tuple):
    _Dumper.add_representer(_seq, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def config_yaml(cfg: JobConfig) -> str:
    """Every key of the config with its value, as YAML that :func:`load_config` reads back to
    the same config; each section is headed by a comment saying what it tunes.

    >>> text = config_yaml(JobConfig())
    >>> print(text.split("\\n\\n")[3])
    # Tie strength and service-hub exclusion
    ties:
      evening_start_hour: 18
      morning_end_hour: 8
      work_start_hour: 9
      work_end_hour: 17
      weekend_days: [5, 6]
      w_calls: 1.0
      w_sms: 0.5
      w_duration: 0.5
      w_days: 1.5
      one_way_factor: 0.25
      hub_min_contacts: 200
      hub_max_reply_share: 0.02
    >>> config_from_mapping(yaml.safe_load(text)) == JobConfig()
    True
    """
    blocks = []
    for name, value in config_to_mapping(cfg).items():
        text = yaml.dump({name: value}, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
        if isinstance(value, dict):  # a section: headed by what it tunes
            doc = _first_sentence(type(getattr(cfg, name)).__doc__)
            text = textwrap.fill(doc, 98, initial_indent="# ", subsequent_indent="# ") + "\n" + text
        blocks.append(text)
    return "\n".join(blocks)
