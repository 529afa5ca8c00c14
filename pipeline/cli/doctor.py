"""`pipe doctor [RECIPE]`: check the backends `pipe run` would use, and say where each
setting came from. The checks are `pipeline.doctor`'s, imported when the command runs."""

from __future__ import annotations

import json
import sys

import click

from pipeline import config, settings
from pipeline.cli.options import db_option, given, json_option, setting
from pipeline.cli.output import echo
from pipeline.server_text import redact

# What each setting's own default means, in doctor's Settings table.
DEFAULT_NOTES = {
    "backends": "default: the default ports, then the embedded model",
    "sd_backend": "default: the text server if it draws, else the default image ports",
    "jobs": "default: each server's slots",
    "db": "default",
    "api_key_env": "default: none",
    "model_name": "default: the server's model",
    "user_persona": "default: User",
    "sillytavern": "default: none",
}


@click.command()
@click.argument("recipe_name", metavar="[RECIPE]", required=False)
@setting(
    "backends",
    "Check this server (may repeat; default: the config file's, else the default ports).",
)
@setting("sd_backend", "Check this image server too.")
@setting("api_key_env", "As for pipe run.", metavar="NAME")
@setting("model_name", "As for pipe run.")
@setting("user_persona", "As for pipe run (with a RECIPE that has a persona).", metavar="NAME")
@setting("sillytavern", "As for pipe run.", metavar="DIR", type=click.Path(file_okay=False))
@setting("timeout", "Seconds to wait for the tiny test request.", default=60, show_default=True)
@setting(
    "wait", "Seconds to wait for a server that is still loading.", default=0, show_default=True
)
@json_option("One JSON object per backend.")
@db_option
def doctor(recipe_name: str | None, as_json: bool, **_settings: object) -> None:
    """Check every configured, given or default backend: does it answer, which API, model,
    slots, vision, images, grammar, and one tiny request's time; with RECIPE, whether any of
    them can run it. Exit 0 when one can (without RECIPE: when one answers), else 3.
    """
    # The settings' options are read through `given`, which also knows where each came from.
    from pipeline.doctor import checks, output

    s = settings.resolve(given(click.get_current_context()), DEFAULT_NOTES)
    recipe = s.load_recipe(recipe_name) if recipe_name else None
    urls = s.by_key["backends"]
    if urls.value:
        backends = [(u, urls.source) for u in urls.value]
    else:
        backends = [(u, checks.DEFAULT_ORIGIN) for u in config.default_backends()]
    sd = s.by_key["sd_backend"]
    report = checks.diagnose(
        backends,
        (sd.value, sd.source) if sd.value else None,
        list(config.default_image_backends()),
        recipe,
        checks.Probe(
            wait=s["wait"], timeout=s["timeout"], api_key=s.api_key(), model_name=s["model_name"]
        ),
        None if urls.value else checks.last_default(settings.database(s["db"]), s["model_name"]),
    )
    # What doctor prints holds URLs as given and servers' replies: no password or key shows.
    if as_json:
        for check in report.checks:
            click.echo(redact(json.dumps(check.to_json(), ensure_ascii=False)))
        sys.exit(0 if report.ok else 3)
    for line in output.lines(report, s.by_key, s.file, recipe_name):
        echo(redact(line))
    sys.exit(0 if report.ok else 3)
