"""Recipes: TOML files that say which files to take, what to ask a model, what to do after.

A recipe has one `[ask]` table, or several `[[steps]]` (each with a `name`) where a later
step's prompt can use an earlier step's answer as `{NAME}` (or the previous one as
`{answer}`). `[then]` says what happens to the final answer: its keys are the actions'
own (`pipeline/actions/then.py` reads the table from what each action declares).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import paths, tomlfile
from pipeline.actions.then import Then, read_then
from pipeline.actions.then import action_problem as action_problem
from pipeline.errors import RecipeError
from pipeline.renaming import names
from pipeline.steps import IMAGE_SERVER, TEXT_SERVER, Step, kind_of
from pipeline.steps.parse import parse_step
from pipeline.steps.table import no_unknown_keys as _no_unknown_keys
from pipeline.steps.table import typed as _typed
from pipeline.steps.text import TextStep

if TYPE_CHECKING:
    from pipeline.personas.persona import Persona

assert names.slug  # importing it registers the |slug filters used in templates

_TOP_KEYS = {"description", "inputs", "persona", "ask", "steps", "then"}


@dataclass(frozen=True)
class Recipe:
    name: str
    origin: str  # "built-in", "user" or the path it was loaded from
    path: Path
    description: str
    inputs: tuple[str, ...]
    steps: tuple[Step, ...]
    then: Then = field(default_factory=Then)  # the action and every action's settings
    persona: str = ""  # a character card (a path or a name) whose voice the text steps take

    @property
    def action(self) -> str:
        return self.then.action

    @property
    def date(self) -> str:
        """Which date {exif.date} is: the photo's own ("original"), or the file's mtime."""
        return self.then.date

    @property
    def needs_image(self) -> bool:
        """The items are images (photos), not text."""
        return any(kind_of(s).reads_image for s in self.steps)

    @property
    def draws(self) -> bool:
        """Some step draws a picture: the run needs an image server."""
        return any(kind_of(s).server == IMAGE_SERVER for s in self.steps)

    @property
    def asks(self) -> bool:
        """Some step asks a language model: the run needs a text server."""
        return any(kind_of(s).server == TEXT_SERVER for s in self.steps)

    def needs(self, server: str) -> frozenset[str]:
        """What `server` (TEXT_SERVER or IMAGE_SERVER) must be able to do for this recipe
        (abilities as `backends.base.ABILITIES` names them)."""
        kinds = [kind_of(s) for s in self.steps]
        return frozenset().union(*(k.abilities for k in kinds if k.server == server))

    @property
    def needs_text(self) -> bool:
        return any(f.name == "text" for s in self.steps for f in s.prompt.fields)

    def with_persona(self, persona: Persona) -> Recipe:
        """This recipe with `persona` as the voice of every step that has a system text."""
        steps = tuple(
            replace(s, persona=persona) if isinstance(s, TextStep) else s for s in self.steps
        )
        return replace(self, steps=steps)

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
    persona = _typed(data, "persona", str, where, "", "")
    if not all(isinstance(i, str) for i in inputs):
        raise RecipeError(f'{where}: inputs: expected a list of glob strings like "*.txt"')

    steps = _parse_steps(data, where)
    then = read_then(data.get("then", {}), steps, where)
    return Recipe(
        name=path.stem,
        origin=origin or str(path),
        path=path,
        description=description,
        inputs=tuple(inputs),
        steps=tuple(steps),
        then=then,
        persona=persona.strip(),
    )


def _parse_steps(data: dict[str, Any], where: str) -> list[Step]:
    """The `[ask]` table or the `[[steps]]`, each read by its kind."""
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
        steps.append(parse_step(raw, where, label, known))
    return steps
