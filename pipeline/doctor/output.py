"""What `pipe doctor` prints for people: one aligned row per backend, what to do about each
problem, where every setting came from, and the verdict."""

from __future__ import annotations

import json
import os

from pipeline import config
from pipeline.doctor.checks import DEFAULT_ORIGIN, Check, Report
from pipeline.paths import default_db_path
from pipeline.settings import Setting


def lines(
    report: Report,
    settings: dict[str, Setting],
    file: config.FileConfig,
    recipe_name: str | None,
) -> list[str]:
    out = ["Backends"]
    out += [f"  {line}" for line in format_table(rows(report))]
    for check in shown(report):
        if check.error and check.reachable:
            out.append(f"  {check.url}: {check.error}")
        out += [f"  {check.url}: {advice}" for advice in check.advice]
    quiet = quiet_defaults(report)
    if quiet:
        where = ", ".join(c.url.removeprefix("http://") for c in quiet)
        out.append(f"  (nothing on the default ports {where})")
    out += ["", "Settings"]
    out.append(f"  config file  {file.path}" + ("" if file.exists else " (none)"))
    table = []
    for setting in settings.values():
        value = setting.value
        if setting.name == "backends":
            value = ", ".join(value) if value else ""
        if setting.name == "db" and not value:
            value = str(default_db_path())
        table.append([setting.name, "-" if value in (None, "") else str(value), setting.source])
    if recipe_name:
        label = os.path.basename(recipe_name).removesuffix(".toml")
        for key, value in file.recipe_defaults(recipe_name).items():
            table.append([f"{label}: {key}", json.dumps(value), f"config {file.path}"])
    out += [f"  {line}" for line in format_table(table)]
    out.append("")
    out += [f"pipe: {advice}" for advice in report.advice]
    out.append(f"{'OK' if report.ok else 'NOT OK'}: {report.verdict}")
    return out


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("yes" if value else "no")


def rows(report: Report) -> list[list[str]]:
    """One row per backend that answered or matters; see `quiet_defaults`."""
    out: list[list[str]] = []
    for c in shown(report):
        status = "ok" if c.works and c.can_run is not False else ("--" if c.works else "FAIL")
        if not c.reachable or (c.error and not c.kind):
            what = c.error if not c.reachable else "answers, but cannot serve as it is"
            out.append([status, c.url, what, "", "", "", "", "", ""])
            continue
        model = c.model if len(c.model) <= 40 else "…" + c.model[-39:]
        latency = f"{c.latency_ms:.0f} ms" if c.latency_ms is not None else "-"
        if c.error:
            latency = "failed"
        text_only = "-" if not c.text else None
        out.append(
            [
                status,
                c.url,
                c.kind + (" (images)" if c.role == "image" else ""),
                model or "-",
                f"slots {c.slots}" if c.slots else "slots -",
                f"vision {text_only or _yes_no(c.vision)}",
                f"images {_yes_no(c.txt2img)}",
                f"grammar {text_only or _yes_no(c.grammar)}",
                latency,
            ]
        )
    return out


def shown(report: Report) -> list[Check]:
    """Every check, except unanswered default ports when some other backend works."""
    quiet = quiet_defaults(report)
    return [c for c in report.checks if c not in quiet]


def quiet_defaults(report: Report) -> list[Check]:
    if not any(c.works for c in report.checks):
        return []
    return [c for c in report.checks if c.origin == DEFAULT_ORIGIN and not c.reachable]


def format_table(table: list[list[str]], cap: int = 48) -> list[str]:
    """Aligned columns; a cell longer than `cap` overflows instead of widening its column."""
    widths = (
        [min(cap, max(len(row[i]) for row in table)) for i in range(len(table[0]))] if table else []
    )
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return lines
