"""What the configuration models share: value types in our words, error paths, and reading YAML files."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

import yaml

# pydantic looks for third-party plugins among every installed distribution when the first model is
# built (tens of milliseconds of start-up); the configuration models use none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema


class ConfigError(Exception):
    """A configuration problem: ``key: what is wrong``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key


class Model(BaseModel):
    """Frozen, strict, and refusing keys it does not know."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, arbitrary_types_allowed=True)


def problem(message: str, key: str | None = None) -> PydanticCustomError:
    """A validation error in our words; ``key`` names the sub-key (for rules over a whole mapping)."""
    return PydanticCustomError("config", "{message}", {"message": message, "key": key})


class Check:
    """Field metadata: validate with ``func(value, info)``; ``schema`` is the field's JSON Schema."""

    def __init__(self, func: Callable[[Any, ValidationInfo], Any], schema: dict[str, Any]) -> None:
        self.func, self.schema = func, schema

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self.func)

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        return dict(self.schema)


def text(value: Any, info: ValidationInfo | None = None) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise problem("must be a non-empty string")
    return value.strip()


def between(lo: float, hi: float, *, whole: bool = False) -> Check:
    """A number (``whole``: an integer) from ``lo`` to ``hi``; booleans are not numbers."""
    kind = "a whole number" if whole else "a number"

    def check(value: Any, info: ValidationInfo) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not isinstance(value, int)):
            raise problem(f"must be {kind}, got {value!r}")
        if not math.isfinite(value) or not lo <= value <= hi:
            raise problem(f"must be between {lo:g} and {hi:g}, got {value!r}")
        return value if whole else float(value)

    return Check(check, {"type": "integer" if whole else "number", "minimum": lo, "maximum": hi})


def matching(pattern: re.Pattern[str], what: str) -> Check:
    """A string matching ``pattern``, described as ``what`` in errors."""

    def check(value: Any, info: ValidationInfo) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise problem(f"must be {what}, got {value!r}")
        return value

    return Check(check, {"type": "string", "pattern": pattern.pattern})


def one_of(choices: tuple[str, ...]) -> Check:
    """One of ``choices``."""

    def check(value: Any, info: ValidationInfo) -> str:
        if value not in choices:
            raise problem(f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    return Check(check, {"enum": list(choices)})


def _regex(value: Any, info: ValidationInfo) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise problem("must be a regular expression")
    try:
        return re.compile(value)
    except re.error as exc:
        raise problem(f"is not a valid regular expression: {exc}") from None


def base_url(value: Any, info: ValidationInfo | None = None) -> str:
    """``scheme://host[:port]`` of an http(s) URL without path, query or fragment."""
    url = text(value)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise problem(f"must be a base URL like https://host[:port], got {url!r}")
    if parts.path not in ("", "/"):
        raise problem(f"must be a base URL without a path, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def resolve(path: str, info: ValidationInfo) -> Path:
    """A path from a file, relative to that file's folder (``base`` in the validation context)."""
    base = Path((info.context or {}).get("base", "."))
    return Path(path) if Path(path).is_absolute() else base / path


def _existing_file(value: Any, info: ValidationInfo) -> str:
    path = resolve(text(value), info)
    if not path.is_file():
        raise problem(f"file {path} does not exist")
    return str(path)


Text = Annotated[str, Check(text, {"type": "string", "minLength": 1})]
Regex = Annotated[re.Pattern[str], Check(_regex, {"type": "string", "format": "regex"})]
BaseURL = Annotated[str, Check(base_url, {"type": "string", "pattern": "^https?://[^/?#]+/?$"})]
ExistingFile = Annotated[str, Check(_existing_file, {"type": "string", "minLength": 1})]

MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "is required",
    "bool_type": "must be true or false",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "string_type": "must be a non-empty string",
    "tuple_type": "must be a list",
}


def key_path(loc: list[Any]) -> str:
    """``["projects", 1, "auth", "sk"]`` as ``projects[1].auth.sk``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def explain(exc: ValidationError, strip: tuple[Any, ...] = ()) -> ConfigError:
    """The first problem as ``key.path: problem``, counting the others; paths lose a leading ``strip``."""
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    ctx = first.get("ctx") or {}
    extra = str(ctx["key"]).split(".") if ctx.get("key") else []
    loc = list(first["loc"]) + [int(part) if part.isdigit() else part for part in extra]
    if strip and tuple(loc[: len(strip)]) == strip:
        loc = loc[len(strip) :]
    message = str(ctx["message"]) if first["type"] == "config" else MESSAGES.get(first["type"], first["msg"])
    more = len(errors) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return ConfigError(key_path(loc), message + suffix)


M = TypeVar("M", bound=Model)


def validate(model: type[M], raw: Any, base: Path, *, single: bool = False, strip: tuple[Any, ...] = ()) -> M:
    """``raw`` as ``model``, or a :class:`ConfigError` naming the first problem."""
    try:
        return model.model_validate(raw, context={"base": base, "single": single})
    except ValidationError as exc:
        raise explain(exc, strip) from None


def load_yaml(path: str | Path, what: str) -> Any:
    """The parsed YAML of a file, or a ConfigError saying why not (never quoting the content)."""
    file = Path(path)
    try:
        content = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read {what} file {file}: {exc.__class__.__name__}") from None
    try:
        return yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError("", f"{what} file {file} is not valid YAML{where}") from None
