"""Options more than one command declares. A setting's flag names, parameter, environment
variable and bounds come from `config.KEYS`, so `run` and `doctor` cannot drift apart from
each other or from config.toml; each command gives its own help text and default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import click
from click.core import ParameterSource

from pipeline import config
from pipeline.settings import Given

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class BoundType(click.ParamType):
    """A number held to its `config.Bound`: `-j 9223372036854775807` is one usage error."""

    def __init__(self, bound: config.Bound) -> None:
        self.bound = bound
        self.name = "integer" if bound.whole else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = (int if self.bound.whole else float)(value)
        except (TypeError, ValueError, OverflowError):
            number = None
        if number is None or not self.bound.accepts(number):
            self.fail(f"expected {self.bound.describe()}, got {value!r}", param, ctx)
        return number


def setting(name: str, help: str, **extra: Any) -> Decorator:
    """The option for config key `name`, with this command's help (and default, metavar)."""
    key = config.KEY[name]
    if key.bound is not None:
        extra.setdefault("type", BoundType(key.bound))
    if key.envvar:
        extra["envvar"] = key.envvar
    return click.option(*key.flags, key.param, multiple=key.multiple, help=help, **extra)


def json_option(help: str) -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help)


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return setting(
        "db",
        "State database (default: in the user data folder; env PIPE_DB).",
        type=click.Path(dir_okay=False),
    )(func)


def given(ctx: click.Context) -> dict[str, Given]:
    """What the command's options gave for each config key, and whether by a flag or an
    environment variable (else the option's own default), for `settings.resolve`."""
    out: dict[str, Given] = {}
    for key in config.KEYS:
        if key.param not in ctx.params:
            continue
        source = ctx.get_parameter_source(key.param)
        out[key.name] = Given(ctx.params[key.param], _BY.get(source) if source else None)
    return out


_BY: dict[ParameterSource, Literal["flag", "env"]] = {
    ParameterSource.COMMANDLINE: "flag",
    ParameterSource.ENVIRONMENT: "env",
}
