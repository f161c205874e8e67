"""Turns the config's ``rules:`` list into rule specs, loading custom rule modules.

A custom rule is ``{module: path/to/rule.py, options: {...}}`` or ``{module: dotted.name}``.
The module must define ``setup(rule)``; it may define ``Options`` (a pydantic model that
``options:`` is validated against), ``SEVERITY`` and ``TITLE`` (its defaults). Every problem is
reported with the key path of the config entry, so ``doorwatch check`` catches a broken module
before the daemon meets it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel, ValidationError

from doorwatch.config.loader import format_loc
from doorwatch.config.models import Config
from doorwatch.errors import DoorwatchError
from doorwatch.rules import builtin
from doorwatch.rules.config import (
    CustomRuleOptions,
    RuleOptions,
    Severity,
    is_module_path,
    rule_ids,
)
from doorwatch.rules.registry import RULE_TYPES, SetupFunction

# Importing the package registers every built-in rule type.
assert builtin.__name__

Loc = tuple[str | int, ...]

# Any fixed moment will do for `check`: it sets rules up, it does not run them.
_CHECK_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

# A custom rule that sets no TITLE is titled with its instance id and its door, if any.
DEFAULT_CUSTOM_TITLE = "{rule} {door_name}"


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """One thing wrong with a rule entry, with its key path and a fix."""

    loc: Loc
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{format_loc(self.loc)}: {self.message}; fix: {self.hint}"


class RuleLoadError(DoorwatchError):
    """The rules cannot be built; each problem names its key path."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule instance ready to be set up: who it is, its options and its setup function."""

    index: int
    rule_id: str
    rule_type: str
    settings: RuleOptions
    options: Any
    setup: SetupFunction
    severity: Severity
    title: str
    catches_unmapped: bool = False

    @property
    def loc(self) -> Loc:
        """Key path of the setting that names the rule's code."""
        return ("rules", self.index, "module" if self.rule_type == "custom" else "type")


def rule_specs(config: Config) -> list[RuleSpec]:
    """The enabled rule instances of the config; raise RuleLoadError listing every problem."""
    specs: list[RuleSpec] = []
    problems: list[RuleProblem] = []
    for index, (settings, rule_id) in enumerate(
        zip(config.rules, rule_ids(list(config.rules)), strict=True)
    ):
        if not settings.enabled:
            continue
        if isinstance(settings, CustomRuleOptions):
            try:
                specs.append(custom_spec(settings, index=index, rule_id=rule_id))
            except RuleLoadError as exc:
                problems.extend(exc.problems)
            continue
        kind = RULE_TYPES[settings.type]
        specs.append(
            RuleSpec(
                index=index,
                rule_id=rule_id,
                rule_type=kind.name,
                settings=settings,
                options=settings,
                setup=kind.setup,
                severity=kind.severity,
                title=kind.title,
                catches_unmapped=kind.catches_unmapped,
            )
        )
    if problems:
        raise RuleLoadError(problems)
    return specs


def custom_spec(settings: CustomRuleOptions, *, index: int, rule_id: str) -> RuleSpec:
    """Load a custom rule's module and check what it defines."""
    loc: Loc = ("rules", index, "module")
    module = load_module(settings.module, loc=loc)
    where = getattr(module, "__file__", None) or settings.module
    setup = getattr(module, "setup", None)
    if not callable(setup):
        raise RuleLoadError(
            [
                RuleProblem(
                    loc,
                    f"{where} defines no setup(rule) function",
                    "add `def setup(rule: RuleContext) -> None:` that subscribes the rule's "
                    "handlers (see docs/rules.md)",
                )
            ]
        )
    options: Any = dict(settings.options)
    model = getattr(module, "Options", None)
    if model is not None:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise RuleLoadError(
                [
                    RuleProblem(
                        loc, f"{where}: Options is not a pydantic model", "subclass BaseModel"
                    )
                ]
            )
        try:
            options = model.model_validate(settings.options)
        except ValidationError as exc:
            raise RuleLoadError(
                [
                    RuleProblem(
                        ("rules", index, "options", *(p for p in err["loc"] if p != "__root__")),
                        err["msg"],
                        f"see the Options model in {where}",
                    )
                    for err in exc.errors()
                ]
            ) from None
    severity = getattr(module, "SEVERITY", Severity.MEDIUM)
    title = getattr(module, "TITLE", DEFAULT_CUSTOM_TITLE)
    try:
        severity = Severity(severity)
    except ValueError:
        raise RuleLoadError(
            [
                RuleProblem(
                    loc,
                    f"{where}: SEVERITY {severity!r} is not a severity",
                    "use info, low, medium, high or critical",
                )
            ]
        ) from None
    try:
        RuleOptions.model_validate({"title": title})
    except ValidationError as exc:
        raise RuleLoadError(
            [RuleProblem(loc, f"{where}: TITLE: {exc.errors()[0]['msg']}", "fix the template")]
        ) from None
    return RuleSpec(
        index=index,
        rule_id=rule_id,
        rule_type="custom",
        settings=settings,
        options=options,
        setup=setup,
        severity=severity,
        title=str(title),
    )


def load_module(spec: str, *, loc: Loc = ()) -> ModuleType:
    """Import a custom rule module from a file path or a dotted name."""
    if is_module_path(spec):
        return _load_file(Path(spec), loc)
    try:
        return importlib.import_module(spec)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (spec == exc.name or spec.startswith(exc.name + ".")):
            raise RuleLoadError(
                [
                    RuleProblem(
                        loc,
                        f"no module named {spec!r}",
                        "install it into doorwatch's environment, or give the path of a .py file",
                    )
                ]
            ) from None
        raise RuleLoadError([_import_failure(exc, spec, loc)]) from None
    except SyntaxError as exc:
        raise RuleLoadError([_syntax_problem(exc, loc)]) from None
    except Exception as exc:  # noqa: BLE001 - any error at import is reported, not raised.
        raise RuleLoadError([_import_failure(exc, spec, loc)]) from None


def _load_file(path: Path, loc: Loc) -> ModuleType:
    path = path.resolve()
    if not path.is_file():
        raise RuleLoadError(
            [
                RuleProblem(
                    loc,
                    f"no such file {path}",
                    "check the path (a relative path is relative to the config file)",
                )
            ]
        )
    # One module per file, named after the file and its path, so two rule files with the same
    # name do not replace each other, and pydantic/dataclasses find the module in sys.modules.
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:10]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"doorwatch_rule_{stem}_{digest}"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuleLoadError([RuleProblem(loc, f"{path} is not a Python file", "name it *.py")])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        del sys.modules[name]
        raise RuleLoadError([_syntax_problem(exc, loc)]) from None
    except Exception as exc:  # noqa: BLE001 - any error at import is reported, not raised.
        del sys.modules[name]
        raise RuleLoadError([_import_failure(exc, str(path), loc)]) from None
    return module


def _syntax_problem(exc: SyntaxError, loc: Loc) -> RuleProblem:
    return RuleProblem(
        loc,
        f"{exc.filename}:{exc.lineno}: {exc.msg} (SyntaxError)",
        "correct the Python syntax on that line",
    )


def _import_failure(exc: BaseException, spec: str, loc: Loc) -> RuleProblem:
    return RuleProblem(
        loc,
        f"importing {spec} raised {type(exc).__name__}: {exc}{_where(exc)}",
        "fix the module so that it imports cleanly",
    )


def _where(exc: BaseException) -> str:
    """`` at file:line`` of the innermost frame of a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def setup_failure(spec: RuleSpec, exc: BaseException) -> RuleProblem:
    """The problem to report when a rule's ``setup(rule)`` raises."""
    return RuleProblem(
        spec.loc,
        f"setup(rule) of {spec.rule_id!r} raised {type(exc).__name__}: {exc}{_where(exc)}",
        "fix the rule's setup function",
    )


def load_custom_rules(config: Config) -> list[str]:
    """Load and set up every rule exactly as the daemon would; return the problems found.

    ``doorwatch check`` calls this, so a custom module with a syntax error, a missing
    ``setup`` or options that do not fit its ``Options`` model fails there, with its key path.
    """
    from doorwatch.rules.clock import VirtualClock
    from doorwatch.rules.engine import RulesEngine
    from doorwatch.state import StateStore

    try:
        RulesEngine(
            config,
            StateStore(d.id for d in config.doors),
            VirtualClock(_CHECK_EPOCH),
        )
    except RuleLoadError as exc:
        return [str(p) for p in exc.problems]
    return []
