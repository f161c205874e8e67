"""Loads the YAML config and turns every problem into file:line, key path, value and a fix."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from doorwatch.config.base import DURATION_HINT
from doorwatch.config.models import Config
from doorwatch.config.references import check_references
from doorwatch.errors import ConfigError

Loc = tuple[str | int, ...]

# Keys whose values are never echoed back, even in an error message.
_SECRET_WORDS = ("password", "secret", "token", "key", "url_file")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a config file."""

    loc: Loc
    message: str
    hint: str | None = None
    value: Any = None
    has_value: bool = False


def format_loc(loc: Loc) -> str:
    """Render a key path as ``doors[0].held_open_after``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


class _LineIndex:
    """Maps key paths to the YAML line they were written on."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.lines: dict[Loc, int] = {}
        self._seen: set[int] = set()
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: yaml.Node, loc: Loc) -> None:
        self.lines[loc] = node.start_mark.line + 1
        # An alias is the same node again: its lines are those of its anchor, already indexed.
        if id(node) in self._seen:
            return
        self._seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
                self._walk(value_node, (*loc, key))
                # Keys keep the line of the key, not of a nested value on the next line.
                self.lines[(*loc, key)] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*loc, index))

    def line(self, loc: Loc) -> int | None:
        for end in range(len(loc), -1, -1):
            found = self.lines.get(tuple(loc[:end]))
            if found is not None:
                return found
        return None


def _unwrap(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _pick_arm(annotation: Any, part: str | int) -> tuple[Any, bool]:
    """At a union, choose the arm; return it and whether ``part`` was its tag (consumed)."""
    arms = [_unwrap(a) for a in get_args(annotation) if a is not type(None)]
    models = [a for a in arms if isinstance(a, type) and issubclass(a, BaseModel)]
    tagged = [m for m in models if _literal_tag(m) == part]
    if tagged:
        return tagged[0], True
    return _unwrap(arms[0] if len(arms) == 1 or not models else models[0]), False


def _step(current: Any, part: str | int) -> tuple[Any, bool]:
    """Descend one key into an annotation; return (annotation, found)."""
    origin = get_origin(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        if _literal_tag(current) == part:
            return current, True  # The union tag of a single-arm union.
        field = current.model_fields.get(str(part))
        return (field.annotation, True) if field is not None else (None, False)
    if origin in (list, Sequence) and isinstance(part, int):
        return get_args(current)[0], True
    if origin is dict:
        return get_args(current)[1], True
    return None, False


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """Find the model class that owns the key at ``loc`` (for 'did you mean')."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if get_origin(current) in (Union, types.UnionType):
            current, consumed = _pick_arm(current, part)
            if consumed:
                continue
        current, found = _step(current, part)
        if not found:
            return None
    current = _unwrap(current)
    if get_origin(current) in (Union, types.UnionType):
        current, _ = _pick_arm(current, "")
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _literal_tag(model: type[BaseModel]) -> str | None:
    for name in ("codec", "type"):
        field = model.model_fields.get(name)
        if field is not None and get_origin(field.annotation) is typing.Literal:
            return str(get_args(field.annotation)[0])
    return None


def _is_secret(loc: Loc) -> bool:
    last = str(loc[-1]) if loc else ""
    return any(word in last for word in _SECRET_WORDS) and not last.endswith("_file")


_HINTS_BY_TYPE = {
    "list_type": "write a list ([a, b] or - items)",
    "dict_type": "write a mapping (key: value)",
    "model_type": "write a mapping (key: value)",
    "model_attributes_type": "write a mapping (key: value)",
}
_HINTS_BY_PREFIX = {
    "int_": "write a number",
    "float_": "write a number",
    "bool": "write true or false",
}


def _extra_key_hint(loc: Loc) -> str:
    if not loc:
        return "remove it"
    parent = _model_at(Config, loc[:-1])
    if parent is None:
        return "remove it"
    valid = list(parent.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "remove it; valid keys here: " + ", ".join(valid)


def _hint_for(error: Any, loc: Loc) -> str | None:  # noqa: PLR0911 - one early return per error family reads clearest.
    kind: str = error["type"]
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        return _extra_key_hint(loc)
    if kind == "missing":
        return f"add {loc[-1]!r}" if loc else "add it"
    if "duration" in error["msg"]:
        return DURATION_HINT
    if kind == "union_tag_invalid":
        return "use " + str(ctx.get("expected_tags", "a known value"))
    if kind == "literal_error":
        return "use " + str(ctx.get("expected", "one of the allowed values"))
    if kind in _HINTS_BY_TYPE:
        return _HINTS_BY_TYPE[kind]
    return next((h for prefix, h in _HINTS_BY_PREFIX.items() if kind.startswith(prefix)), None)


def _clean_message(error: Any) -> str:
    message: str = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    if error["type"] == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        field = error.get("ctx", {}).get("discriminator", "").strip("'")
        message = f"unknown {field or 'kind'} {tag!r}"
    return message


def _problems_from_validation(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors():
        # pydantic adds validator names to loc; drop them. Union tags stay for the hint (they
        # pick the right options model) and are dropped for display (the user never wrote them).
        raw = tuple(part for part in error["loc"] if not _is_validator_name(part))
        loc = _drop_tags(raw)
        problems.append(
            Problem(
                loc=loc,
                message=_clean_message(error),
                hint=_hint_for(error, raw),
                value=error.get("input"),
                has_value=error["type"] != "missing"
                and not _is_secret(loc)
                and isinstance(error.get("input"), str | int | float | bool),
            )
        )
    return problems


# How pydantic names its own validators in an error's loc ("function-after[_check(), str]").
_VALIDATOR_PREFIXES = (
    "function-",
    "lax-or-strict[",
    "json-or-python[",
    "tagged-union[",
    "union[",
    "nullable[",
    "chain[",
    "default[",
    "constrained-",
    "is-instance[",
)


def _is_validator_name(part: str | int) -> bool:
    return isinstance(part, str) and part.startswith(_VALIDATOR_PREFIXES)


def _drop_tags(loc: Loc) -> Loc:
    """Remove the union tags pydantic puts after list indexes (``controllers[0].generic``)."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and out and isinstance(out[-1], int) and _is_union_tag(part):
            continue
        out.append(part)
    return tuple(out)


def _is_union_tag(part: str) -> bool:
    from doorwatch.adapters.mqtt.codecs import CODECS
    from doorwatch.rules.config import BUILTIN_RULE_TYPES

    return part in CODECS or part in BUILTIN_RULE_TYPES or part == "custom"


_SHORT = 80


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def render(path: Path, problems: Iterable[Problem], lines: _LineIndex) -> str:
    """Render problems one per line, sorted by line: ``file:line: key: message; fix: hint``."""
    rendered: list[tuple[int, str]] = []
    for problem in problems:
        line = lines.line(problem.loc)
        where = f"{path}:{line}" if line else str(path)
        text = f"{where}: {format_loc(problem.loc)}: {problem.message}"
        if problem.has_value:
            text += f" (got {_short(problem.value)})"
        if problem.hint:
            text += f"; fix: {problem.hint}"
        rendered.append((line or 0, text))
    return "\n".join(text for _, text in sorted(rendered, key=lambda item: item[0]))


# A site config has hundreds of values; aliases that expand past this are a mistake or an
# attack ("billion laughs"), refused before anything walks the expansion.
MAX_EXPANDED_NODES = 100_000


def _expanded_size(root: yaml.Node) -> int:
    """How many nodes the document has once every alias is expanded (memoised, no recursion)."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if children_done:
            total = 1 + sum(sizes.get(id(child), 0) for child in children)
            sizes[id(node)] = min(total, MAX_EXPANDED_NODES + 1)
            continue
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def parse_yaml(text: str, path: Path) -> tuple[Any, _LineIndex]:
    """Parse YAML into plain data plus a line index, or raise ConfigError with the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node) > MAX_EXPANDED_NODES:
            raise ConfigError(
                f"{path}: its aliases expand to more than {MAX_EXPANDED_NODES:,} values;"
                " fix: write the values out instead of nesting aliases (*name)"
            )
        data = yaml.safe_load(text)
    except (ValueError, OverflowError) as exc:
        # PyYAML's own constructors raise these for values it cannot build, such as an
        # unquoted impossible date (holidays: [2026-02-30]).
        raise ConfigError(
            f"{path}: a value YAML cannot read ({exc}); fix: quote it ('2026-02-30') and check it"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}{line}: not valid YAML: {problem}; fix: check indentation and quoting there"
        ) from None
    return data, _LineIndex(node)


def load_config(path: Path | str) -> Config:
    """Read, validate and cross-check a config file; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; fix: pass the path of your doorwatch.yaml"
        ) from None
    except (PermissionError, IsADirectoryError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.__class__.__name__})") from None
    data, lines = parse_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the file must be a mapping of sections (site:, doors:, ...)")
    try:
        config = Config.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(render(path, _problems_from_validation(exc), lines)) from None
    problems = [
        Problem(loc=p.loc, message=p.message, hint=p.hint) for p in check_references(config)
    ]
    if problems:
        raise ConfigError(render(path, problems, lines))
    return config
