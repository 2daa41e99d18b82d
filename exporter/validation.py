"""What the configuration models share: checked value types, error paths in our words, reading YAML files.

The models are msgspec structs. msgspec checks types and refuses unknown keys; the value types here
(``Text`` and its kin) and ``__post_init__`` rules say what is wrong in our words, and :func:`validate`
turns any failure into one ``key.path: problem`` line.
"""

from __future__ import annotations

import contextvars
import math
import re
import typing
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml


class ConfigError(Exception):
    """A configuration problem: ``key: what is wrong``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key


# Where relative paths start and whether the file uses the single-project form, while a file is validated.
CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("config_context", default=None)


def context(name: str) -> Any:
    """A value of the validation context (None outside a validation)."""
    return (CONTEXT.get() or {}).get(name)


_KEY = "\x1f"  # separates a sub-key from the message inside a ValueError (msgspec adds the struct's path)


def problem(message: str, key: str | None = None) -> ValueError:
    """An error in our words; ``key`` names the sub-key of the struct being checked (dots and indexes)."""
    return ValueError(f"{_KEY}{key}{_KEY}{message}" if key else message)


def between(lo: float, hi: float, description: str) -> msgspec.Meta:
    """A number from ``lo`` to ``hi``, refused in our words."""

    def check(value: float) -> float:
        if not (math.isfinite(value) and lo <= value <= hi):
            raise problem(f"must be between {lo:g} and {hi:g}, got {value!r}")
        return value

    return checked(description, check, {"minimum": lo, "maximum": hi})


def one_of(choices: tuple[str, ...], description: str, refused: dict[str, str] | None = None) -> msgspec.Meta:
    """One of ``choices``; values in ``refused`` are known but not supported, and say why."""

    def check(value: str) -> str:
        if refused and value in refused:
            raise problem(f"{value} is not supported: {refused[value]}")
        if value not in choices:
            raise problem(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return checked(description, check, {"enum": list(choices)})


def each_of(choices: tuple[str, ...], description: str, refused: dict[str, str] | None = None) -> msgspec.Meta:
    """A list whose items are each one of ``choices`` (and not in ``refused``)."""
    item = one_of(choices, description, refused).extra["check"]  # type: ignore[index]

    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            item(value)  # its message quotes the value
        return values

    return checked(description, check, {})  # the item type carries the enum for the schema


def checked(description: str, check: Callable[[Any], Any], schema: dict[str, Any]) -> msgspec.Meta:
    """A field whose value (once msgspec has checked its type) ``check`` inspects and may normalise."""
    return msgspec.Meta(description=description, extra_json_schema=schema, extra={"check": check})


def doc(description: str) -> msgspec.Meta:
    """A field's description (in the JSON Schema and the README)."""
    return msgspec.Meta(description=description)


class Model(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, dict=True):
    """Frozen, refusing keys it does not know; fields with a ``check`` are checked in our words."""

    def __post_init__(self) -> None:
        for name, key, check in _checks(type(self)):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                result = check(value)
            except ValueError as exc:
                raise problem(str(exc), key) from None
            if result is not value:
                msgspec.structs.force_setattr(self, name, result)


@cache
def _checks(cls: type[Model]) -> tuple[tuple[str, str, Callable[[Any], Any]], ...]:
    """(attribute, key as the file spells it, check) of the checked fields."""
    keys = {field.name: field.encode_name for field in msgspec.structs.fields(cls)}
    found = []
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        for arg in [hint, *typing.get_args(hint)]:
            for meta in getattr(arg, "__metadata__", ()):
                if isinstance(meta, msgspec.Meta) and meta.extra and "check" in meta.extra:
                    found.append((name, keys.get(name, name), meta.extra["check"]))
    return tuple(found)


class Text(str):
    """A non-empty string, stripped; subclasses may ask for a pattern."""

    pattern: ClassVar[re.Pattern[str] | None] = None
    what: ClassVar[str] = ""

    @classmethod
    def check(cls, value: Any) -> Any:
        """The value as this type, or a ValueError in our words."""
        if cls.pattern is not None:
            if not isinstance(value, str) or not cls.pattern.match(value):
                raise problem(f"must be {cls.what}, got {value!r}")
            return cls(value)
        if not isinstance(value, str) or not value.strip():
            raise problem("must be a non-empty string")
        return cls(value.strip())

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """This type in JSON Schema."""
        if cls.pattern is not None:
            return {"type": "string", "pattern": cls.pattern.pattern}
        return {"type": "string", "minLength": 1, "pattern": r"\S"}


class BaseURL(Text):
    """``scheme://host[:port]`` of an http(s) URL without path, query or fragment."""

    @classmethod
    def check(cls, value: Any) -> Any:
        """The URL reduced to scheme and host."""
        url = Text.check(value)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise problem(f"must be a base URL like https://host[:port], got {url!r}")
        if parts.path not in ("", "/"):
            raise problem(f"must be a base URL without a path, got {url!r}")
        return cls(f"{parts.scheme}://{parts.netloc}")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """An http(s) URL without a path."""
        return {"type": "string", "pattern": "^https?://[^/?#]+/?$"}


def resolve(path: str) -> Path:
    """A path from a file, relative to that file's folder."""
    return Path(path) if Path(path).is_absolute() else Path(context("base") or ".") / path


class FilePath(Text):
    """A file that exists; relative paths start at the configuration file's folder."""

    @classmethod
    def check(cls, value: Any) -> Any:
        """The resolved path of an existing file."""
        path = resolve(Text.check(value))
        if not path.is_file():
            raise problem(f"file {path} does not exist")
        return cls(str(path))


class Regex:
    """A regular expression, compiled."""

    @classmethod
    def check(cls, value: Any) -> re.Pattern[str]:
        """The compiled pattern."""
        if not isinstance(value, str):
            raise problem("must be a regular expression")
        try:
            return re.compile(value)
        except re.error as exc:
            raise problem(f"is not a valid regular expression: {exc}") from None

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A string in regex syntax."""
        return {"type": "string", "format": "regex"}


def _decode(kind: Any, value: Any) -> Any:
    check = getattr(Regex if typing.get_origin(kind) is re.Pattern or kind is re.Pattern else kind, "check", None)
    if check is None:
        raise NotImplementedError(kind)
    return check(value)


def schema_hook(kind: Any) -> dict[str, Any]:
    """The JSON Schema of a checked value type."""
    target = Regex if typing.get_origin(kind) is re.Pattern or kind is re.Pattern else kind
    json_schema = getattr(target, "json_schema", None)
    if json_schema is None:
        raise NotImplementedError(kind)
    result: dict[str, Any] = json_schema()
    return result


M = TypeVar("M", bound=Model)


def validate(model: type[M], raw: Any, base: Path, *, single: bool = False, strip: tuple[Any, ...] = ()) -> M:
    """``raw`` as ``model``, or a :class:`ConfigError` naming the first problem's key path."""
    token = CONTEXT.set({"base": base, "single": single})
    try:
        return msgspec.convert(raw, model, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise explain(str(exc), raw, strip) from None
    finally:
        CONTEXT.reset(token)


_AT = re.compile(r" - at (`key` in )?`\$([^`]*)`$")
_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPES = {"int": "a whole number", "float": "a number"}
_KINDS = {
    "bool": "must be true or false",
    "str": "must be a non-empty string",
    "object": "must be a mapping",
    "array": "must be a list",
    "str | object": "must be a job id or a mapping with an id",
}


def explain(message: str, raw: Any, strip: tuple[Any, ...] = ()) -> ConfigError:
    """msgspec's ``problem - at `$.path``` as ``path: problem`` in our words."""
    at = _AT.search(message)
    loc: list[Any] = []
    if at:
        message = message[: at.start()]
        loc = [name or int(index) for name, index in _PART.findall(at.group(2)) if index != "..."]
    if message.startswith(_KEY):
        key, _, message = message[1:].partition(_KEY)
        loc += [int(part) if part.isdigit() else part for part in key.split(".")]
    elif m := re.match(r"Object (contains unknown|missing required) field `(.*)`$", message):
        loc.append(m.group(2))
        message = "unknown key" if m.group(1) == "contains unknown" else "is required"
    elif m := re.match(r"Expected `(.*?)`(, got `.*`)?$", message):
        kind = m.group(1).removesuffix(" | null")
        wrong = f"must be {_TYPES.get(kind)}, got {_lookup(raw, loc)!r}"
        message = wrong if kind in _TYPES else _KINDS.get(kind, message)
    if strip and tuple(loc[: len(strip)]) == strip:
        loc = loc[len(strip) :]
    return ConfigError(key_path(loc), message)


def _lookup(raw: Any, loc: list[Any]) -> Any:
    try:
        for part in loc:
            raw = raw[part]
    except (KeyError, IndexError, TypeError):
        return "?"
    return raw


def key_path(loc: list[Any]) -> str:
    """``["projects", 1, "auth", "sk"]`` as ``projects[1].auth.sk``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def fields(model: type[msgspec.Struct]) -> Iterator[str]:
    """The keys of a model, as the file spells them."""
    for field in msgspec.structs.fields(model):
        yield field.encode_name


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
