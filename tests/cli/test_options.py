"""The options `pipe run` and `pipe doctor` share are built from one list, config.KEYS: the
same names, parameter, environment variable and bounds on both, and every key of
config.toml is an option of `pipe run`."""

from __future__ import annotations

from typing import Any

import click
import pytest

from pipeline import config
from pipeline.cli import cli
from pipeline.cli.options import BoundType


def option(command: str, param: str) -> click.Option | None:
    found = [p for p in cli.commands[command].params if p.name == param]
    assert len(found) <= 1
    return found[0] if found and isinstance(found[0], click.Option) else None


def shape(opt: click.Option) -> dict[str, Any]:
    """What makes an option the same option, whatever help and default a command gives it."""
    bound = opt.type.bound if isinstance(opt.type, BoundType) else None
    return {
        "opts": opt.opts,
        "secondary": opt.secondary_opts,
        "envvar": opt.envvar,
        "multiple": opt.multiple,
        "is_flag": opt.is_flag,
        "type": type(opt.type).__name__,
        "bound": bound,
    }


@pytest.mark.parametrize("key", config.KEYS, ids=lambda key: key.name)
def test_every_config_key_is_an_option_of_run_named_as_the_key_says(key: config.Key) -> None:
    opt = option("run", key.param)
    assert opt is not None, key.name
    assert opt.opts == list(key.flags)
    assert opt.envvar == (key.envvar or None)
    assert opt.multiple == key.multiple
    assert (opt.type.bound if isinstance(opt.type, BoundType) else None) == key.bound


@pytest.mark.parametrize("key", config.KEYS, ids=lambda key: key.name)
def test_run_and_doctor_share_each_setting_identically(key: config.Key) -> None:
    on_doctor = option("doctor", key.param)
    if key.name in ("jobs", "xmp_sidecar"):  # doctor sends one tiny request, writes nothing
        assert on_doctor is None
        return
    on_run = option("run", key.param)
    assert on_doctor is not None and on_run is not None, key.name
    assert shape(on_doctor) == shape(on_run)


@pytest.mark.parametrize("command", ["run", "doctor", "runs", "show", "undo"])
def test_db_and_json_are_the_same_option_wherever_they_are(command: str) -> None:
    db = option(command, "db")
    assert db is not None and shape(db) == shape(option("runs", "db"))  # type: ignore[arg-type]
    assert isinstance(db.type, click.Path) and not db.type.dir_okay
    as_json = option(command, "as_json")
    if command != "undo":
        assert as_json is not None and as_json.opts == ["--json"] and as_json.is_flag


def test_config_file_keys_are_the_keys_list() -> None:
    assert list(config.KEY) == [key.name for key in config.KEYS]
    assert len({key.param for key in config.KEYS}) == len(config.KEYS)
