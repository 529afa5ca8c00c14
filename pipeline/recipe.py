"""Recipes: TOML files that say which files to take, what to ask a model, what to do after.

A recipe has one `[ask]` table, or several `[[steps]]` (each with a `name`) where a later
step's prompt can use an earlier step's answer as `{NAME}` (or the previous one as
`{answer}`). `[then]` says what happens to the final answer: its keys are the actions'
own (`pipeline/actions/then.py` reads the table from what each action declares).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline import paths, tomlfile
from pipeline.actions.then import Then, read_then
from pipeline.actions.then import action_problem as action_problem
from pipeline.backends.chat_formats import FORMATS
from pipeline.errors import RecipeError
from pipeline.renaming import names
from pipeline.steps.drawing import DRAW_KEYS, DRAW_KINDS, DrawStep, parse_draw_step
from pipeline.templates import Template, TemplateError, compile_template

assert names.slug  # importing it registers the |slug filters used in templates
ASK_KINDS = ("text", "vision", *DRAW_KINDS)
# Fields every prompt may use; steps add their own names.
ITEM_FIELDS = {"text", "name", "path", "stem", "ext", "answer", "exif"}

_TOP_KEYS = {"description", "inputs", "ask", "steps", "then"}
_STEP_KEYS = {
    "name",
    "kind",
    "image_size",
    "system",
    "prompt",
    "max_tokens",
    "temperature",
    "repeat_penalty",
    "stop",
    "grammar",
    "format",
}
# Sampling values every kind of server takes (OpenAI-compatible ones refuse temperature > 2);
# max_tokens past any model's context is a typo, and some servers allocate for it.
TEMPERATURE = (0.0, 2.0)
MAX_TOKENS = (1, 1_000_000)
REPEAT_PENALTY = (0.5, 2.0)
# A value like each field's at run time, to check format specs (`{answer:,}`) at load.
_SAMPLES: dict[str, Any] = {
    "counter": 1,
    "exif": {},
    "exif.date": datetime(2000, 1, 1),
    "exif.lat": 0.0,
    "exif.lon": 0.0,
}


@dataclass(frozen=True)
class Step:
    name: str
    kind: str
    prompt: Template
    system: str = ""
    max_tokens: int = 256
    temperature: float = 0.0
    repeat_penalty: float = 1.0  # 1.0 is off; small models loop without ~1.1
    stop: tuple[str, ...] = ()
    grammar: str = ""
    format: str = "auto"
    image_size: int = 1024  # long side of the image sent to a vision model

    @property
    def draws(self) -> bool:
        return False

    def key(self) -> dict[str, Any]:
        """Everything in this step that shapes the model request (for cache fingerprints)."""
        return {
            "kind": self.kind,
            "system": self.system,
            "prompt": self.prompt.source,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            # Only when set, so answers cached before this option existed stay valid.
            **({"repeat_penalty": self.repeat_penalty} if self.repeat_penalty != 1.0 else {}),
            "stop": list(self.stop),
            "grammar": self.grammar,
            "format": self.format,
            **({"image_size": self.image_size} if self.kind == "vision" else {}),
        }


@dataclass(frozen=True)
class Recipe:
    name: str
    origin: str  # "built-in", "user" or the path it was loaded from
    path: Path
    description: str
    inputs: tuple[str, ...]
    steps: tuple[Step | DrawStep, ...]
    then: Then = field(default_factory=Then)  # the action and every action's settings

    @property
    def action(self) -> str:
        return self.then.action

    @property
    def date(self) -> str:
        """Which date {exif.date} is: the photo's own ("original"), or the file's mtime."""
        return self.then.date

    @property
    def needs_image(self) -> bool:
        return any(s.kind in ("vision", "img2img") for s in self.steps)

    @property
    def draws(self) -> bool:
        """Some step draws a picture: the run needs an image server."""
        return any(s.draws for s in self.steps)

    @property
    def asks(self) -> bool:
        """Some step asks a language model: the run needs a text server."""
        return any(not s.draws for s in self.steps)

    @property
    def needs_text(self) -> bool:
        return any(f.name == "text" for s in self.steps for f in s.prompt.fields)

    def ask_key(self, model: str, image_model: str = "") -> str:
        """A digest of every step and the models: a change means every file is done again."""
        models: Any = [model, image_model] if image_model else model
        blob = json.dumps([models, [s.key() for s in self.steps]], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:32]


def builtin_recipes_dir() -> Path:
    """Inside the installed package; the repo's `recipes/` when running from a checkout."""
    try:
        packaged = Path(str(resources.files("pipeline.recipes")))
        if packaged.is_dir() and any(packaged.glob("*.toml")):
            return packaged
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "recipes"


def available() -> list[tuple[str, str, Path, str]]:
    """(name, origin, path, description) for every recipe; user recipes shadow built-ins."""
    found: dict[str, tuple[str, str, Path, str]] = {}
    for origin, folder in (("built-in", builtin_recipes_dir()), ("user", paths.user_recipes_dir())):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                description = str(_read_toml(path).get("description", ""))
            except RecipeError as e:
                description = f"(invalid: {e})"
            found[path.stem] = (path.stem, origin, path, description)
    return sorted(found.values())


def find(name_or_path: str) -> tuple[Path, str]:
    """Resolve `summarize-text` or `./my.toml` to a file and where it came from."""
    candidate = Path(name_or_path).expanduser()
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        if not candidate.is_file():
            raise RecipeError(f"recipe file {name_or_path} not found")
        return candidate, str(candidate)
    for origin, folder in (("user", paths.user_recipes_dir()), ("built-in", builtin_recipes_dir())):
        path = folder / f"{name_or_path}.toml"
        if path.is_file():
            return path, origin
    names = ", ".join(n for n, *_ in available())
    raise RecipeError(f"no recipe named '{name_or_path}'; try one of: {names} (or a .toml path)")


def load(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    path, origin = find(name_or_path)
    data = _read_toml(path)
    fields = [(item, apply_override(data, item, path)) for item in overrides]
    try:
        return parse(data, path, origin)
    except RecipeError as e:
        raise _blame_override(e, str(path), fields) from None


def _blame_override(error: RecipeError, where: str, fields: list[tuple[str, str]]) -> RecipeError:
    """An error in a field that `--set` gave names the `--set`, not the recipe file."""
    message = str(error)
    if not message.startswith(where + ": "):
        return error
    rest = message[len(where) + 2 :]
    for assignment, label in reversed(fields):
        if rest.startswith((label + ":", label + ".", label + "[")):
            return RecipeError(f"--set {_shown(assignment)}: {rest}")
    return error


def _shown(assignment: str, limit: int = 80) -> str:
    """A `--set` as errors quote it: a long value is cut, so the error stays one short line."""
    return assignment if len(assignment) <= limit else assignment[: limit - 1] + "…"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomlfile.read(path)
    except tomlfile.Unreadable as e:
        raise RecipeError(f"{path}: {e}") from None
    except OSError as e:
        raise RecipeError(f"{path}: cannot read: {e.strerror}") from None


def apply_override(data: dict[str, Any], assignment: str, path: Path) -> str:
    """`--set ask.max_tokens=200`: the value is read as TOML when it parses, else a string.
    Returns the field as `parse` names it in errors (`steps[1].prompt`)."""
    dotted, sep, raw = assignment.partition("=")
    if not sep or not dotted.strip():
        raise RecipeError(
            f"--set {_shown(assignment)!r}: expected FIELD=VALUE, e.g. ask.max_tokens=200"
        )
    try:
        value = tomlfile.loads(f"v = {raw}")["v"]
    except tomlfile.TooDeep as e:
        raise RecipeError(f"--set {_shown(assignment)}: {e}") from None
    except tomlfile.Unreadable:
        value = raw
    keys = dotted.strip().split(".")
    steps = data.get("steps") if keys[0] not in _TOP_KEYS else None
    if isinstance(steps, list) and any(
        isinstance(t, dict) and t.get("name") == keys[0] for t in steps
    ):
        keys = ["steps", *keys]  # `draw.prompt` is short for `steps.draw.prompt`
    target: Any = data
    label = ""
    for i, key in enumerate(keys[:-1]):
        if isinstance(target, list):
            step = _step_by_name(target, key, assignment, ".".join(keys[: i + 1]))
            label += f"[{next(n for n, s in enumerate(target) if s is step)}]"
            target = step
        else:
            target = target.setdefault(key, {})
            label += f".{key}" if label else key
        if not isinstance(target, dict | list):
            raise RecipeError(
                f"--set {_shown(assignment)}: {'.'.join(keys[: i + 1])} is not a table in {path}"
            )
    if isinstance(target, list):
        raise RecipeError(f"--set {_shown(assignment)}: name a step, e.g. steps.NAME.max_tokens")
    target[keys[-1]] = value
    return f"{label}.{keys[-1]}" if label else keys[-1]


def _step_by_name(steps: list[Any], key: str, assignment: str, where: str) -> Any:
    for step in steps:
        if isinstance(step, dict) and step.get("name") == key:
            return step
    if key.isascii() and key.isdigit() and len(key) < 10 and int(key) < len(steps):
        return steps[int(key)]
    raise RecipeError(f"--set {_shown(assignment)}: {_shown(where, 40)}: no such step")


def parse(data: dict[str, Any], path: Path, origin: str = "") -> Recipe:
    where = str(path)
    _no_unknown_keys(data, _TOP_KEYS, where, "")
    description = _typed(data, "description", str, where, "", "")
    inputs = _typed(data, "inputs", list, where, "", ["*"])
    if not all(isinstance(i, str) for i in inputs):
        raise RecipeError(f'{where}: inputs: expected a list of glob strings like "*.txt"')

    if ("ask" in data) == ("steps" in data):
        raise RecipeError(f"{where}: expected either an [ask] table or [[steps]], not both/neither")
    if "ask" in data:
        if not isinstance(data["ask"], dict):
            raise RecipeError(f"{where}: ask: expected a table")
        raw_steps = [(data["ask"], "ask")]
    else:
        if not isinstance(data["steps"], list) or not data["steps"]:
            raise RecipeError(f"{where}: steps: expected one or more [[steps]] tables")
        raw_steps = [(s, f"steps[{i}]") for i, s in enumerate(data["steps"])]

    steps: list[Step] = []
    for raw, label in raw_steps:
        known = {s.name for s in steps}
        steps.append(_parse_step(raw, where, label, known))

    then = read_then(
        data.get("then", {}),
        steps,
        where,
        lambda source, allowed, label: _template(source, allowed, where, label),
    )
    return Recipe(
        name=path.stem,
        origin=origin or str(path),
        path=path,
        description=description,
        inputs=tuple(inputs),
        steps=tuple(steps),
        then=then,
    )


def _parse_step(raw: Any, where: str, label: str, earlier: set[str]) -> Step | DrawStep:
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: {label}: expected a table")
    p = f"{label}."
    draws = raw.get("kind") in DRAW_KINDS
    _no_unknown_keys(raw, DRAW_KEYS if draws else _STEP_KEYS, where, p)
    name = _typed(raw, "name", str, where, p, "answer")
    if not name.isidentifier() or name in ITEM_FIELDS - {"answer"} or name in earlier:
        raise RecipeError(f"{where}: {p}name: {name!r} must be a new identifier, not a field name")
    kind = _typed(raw, "kind", str, where, p, "text")
    if kind not in ASK_KINDS:
        raise RecipeError(f"{where}: {p}kind: expected one of {', '.join(ASK_KINDS)}, got {kind!r}")
    if "prompt" not in raw:
        raise RecipeError(f"{where}: {p}prompt: missing (the text sent to the model)")
    prompt = _template(
        _typed(raw, "prompt", str, where, p, ""), ITEM_FIELDS | earlier, where, p + "prompt"
    )
    if draws:
        return parse_draw_step(
            raw,
            name,
            kind,
            prompt,
            f"{where}: {p}",
            lambda t, k, ty, d: _typed(t, k, ty, where, p, d),
        )
    max_tokens = _ranged(raw, "max_tokens", int, where, p, 256, MAX_TOKENS)
    temperature = _ranged(raw, "temperature", (int, float), where, p, 0.0, TEMPERATURE)
    repeat_penalty = _ranged(
        raw, "repeat_penalty", (int, float), where, p, 1.0, REPEAT_PENALTY, " (1.0 is off)"
    )
    stop = _typed(raw, "stop", list, where, p, [])
    if not all(isinstance(s, str) for s in stop):
        raise RecipeError(f"{where}: {p}stop: expected a list of strings")
    image_size = _typed(raw, "image_size", int, where, p, 1024)
    if not 64 <= image_size <= 4096:
        raise RecipeError(f"{where}: {p}image_size: expected 64 to 4096 pixels, got {image_size}")
    fmt = _typed(raw, "format", str, where, p, "auto")
    if fmt != "auto" and fmt not in FORMATS:
        raise RecipeError(
            f"{where}: {p}format: expected auto or one of {', '.join(FORMATS)}, got {fmt!r}"
        )
    return Step(
        name=name,
        kind=kind,
        prompt=prompt,
        system=_typed(raw, "system", str, where, p, ""),
        max_tokens=max_tokens,
        temperature=float(temperature),
        repeat_penalty=float(repeat_penalty),
        stop=tuple(stop),
        grammar=_typed(raw, "grammar", str, where, p, ""),
        format=fmt,
        image_size=image_size,
    )


def _template(source: str, allowed: set[str], where: str, label: str) -> Template:
    try:
        template = compile_template(source, allowed)
        template.check_specs(lambda name: _SAMPLES.get(name, ""))
        return template
    except TemplateError as e:
        raise RecipeError(f"{where}: {label}: {e}") from None


def _no_unknown_keys(table: dict[str, Any], known: set[str], where: str, prefix: str) -> None:
    for key in table:
        if key not in known:
            raise RecipeError(
                f"{where}: {prefix}{key}: unknown field; expected one of {', '.join(sorted(known))}"
            )


def _ranged(
    table: dict[str, Any],
    key: str,
    kind: Any,
    where: str,
    prefix: str,
    default: Any,
    bounds: tuple[float, float],
    note: str = "",
) -> Any:
    """A number field within `bounds` (nan and inf are outside every range)."""
    value = _typed(table, key, kind, where, prefix, default)
    low, high = bounds
    if not low <= value <= high:
        raise RecipeError(f"{where}: {prefix}{key}: expected {low} to {high}{note}, got {value!r}")
    return value


def _typed(
    table: dict[str, Any], key: str, kind: Any, where: str, prefix: str, default: Any
) -> Any:
    if key not in table:
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        expected = {str: "a string", int: "a whole number", list: "a list"}.get(kind, "a number")
        raise RecipeError(f"{where}: {prefix}{key}: expected {expected}, got {value!r}")
    return value
