"""What the configuration models share: checked value types, error paths in our words, reading YAML files.

The models are msgspec structs. msgspec checks types and refuses unknown keys; the value types here
(``Text`` and its kin) and ``__post_init__`` rules say what is wrong in our words, and :func:`validate`
turns any failure into one ``key.path: problem`` line.
"""

from __future__ import annotations

import contextvars
import math
import re
import reprlib
import typing
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import msgspec
import yaml

from ..base.secrets import scrub


class ConfigError(Exception):
    """A configuration problem: ``key: what is wrong`` (any secret known by then shown as redacted)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(scrub(f"{key}: {problem}" if key else problem))
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


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = 4
_REPR.maxlevel = 2


def shown(value: Any) -> str:
    """``repr(value)``, cut short: a value in an error message (YAML aliases can make it huge)."""
    return _REPR.repr(value)


def between(lo: float, hi: float, description: str) -> msgspec.Meta:
    """A number from ``lo`` to ``hi``, refused in our words."""

    def check(value: float) -> float:
        # Whole numbers compare exactly however large; only floats can be NaN or infinite.
        if (isinstance(value, float) and not math.isfinite(value)) or not lo <= value <= hi:
            raise problem(f"must be between {lo:g} and {hi:g}, got {shown(value)}")
        return value

    return checked(description, check, {"minimum": lo, "maximum": hi})


def one_of(choices: tuple[str, ...], description: str, refused: dict[str, str] | None = None) -> msgspec.Meta:
    """One of ``choices``; values in ``refused`` are known but not supported, and say why."""

    def check(value: str) -> str:
        if refused and value in refused:
            raise problem(f"{value} is not supported: {refused[value]}")
        if value not in choices:
            raise problem(f"must be one of {', '.join(choices)}, got {shown(value)}")
        return value

    return checked(description, check, {"enum": list(choices)})


def each_of(
    choices: tuple[str, ...],
    description: str,
    refused: dict[str, str] | None = None,
    schema: dict[str, Any] | None = None,
) -> msgspec.Meta:
    """A list whose items are each one of ``choices`` (and not in ``refused``)."""
    item = one_of(choices, description, refused).extra["check"]  # type: ignore[index]

    def check(values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            item(value)  # its message quotes the value
        return values

    return checked(description, check, schema or {})  # the item type carries the enum for the schema


def checked(description: str, check: Callable[[Any], Any], schema: dict[str, Any]) -> msgspec.Meta:
    """A field whose value (once msgspec has checked its type) ``check`` inspects and may normalise."""
    return msgspec.Meta(description=description, extra_json_schema=schema, extra={"check": check})


def doc(description: str) -> msgspec.Meta:
    """A field's description (in the JSON Schema and docs/configuration.md)."""
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
    """A non-empty string, stripped; subclasses may ask for a pattern (whole match, unstripped unless told)."""

    pattern: ClassVar[re.Pattern[str] | None] = None
    what: ClassVar[str] = ""
    strip_spaces: ClassVar[bool] = False

    @classmethod
    def check(cls, value: Any) -> Any:
        """The value as this type, or a ValueError in our words."""
        if cls.pattern is not None:
            text = value.strip() if cls.strip_spaces and isinstance(value, str) else value
            if not isinstance(text, str) or not cls.pattern.fullmatch(text):
                raise problem(f"must be {cls.what}, got {shown(value)}")
            return cls(text)
        if not isinstance(value, str) or not value.strip():
            raise problem("must be a non-empty string")
        return cls(value.strip())

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """This type in JSON Schema."""
        if cls.pattern is not None:
            space = r"\s*" if cls.strip_spaces else ""
            return {"type": "string", "pattern": f"^{space}{cls.pattern.pattern.strip('^$')}{space}$"}
        return {"type": "string", "minLength": 1, "pattern": r"\S"}


class BaseURL(Text):
    """``scheme://host[:port]`` of an http(s) URL without path, query or fragment."""

    @classmethod
    def check(cls, value: Any) -> Any:
        """The URL reduced to scheme and host."""
        url = Text.check(value)
        # Before anything quotes the URL: its user:password@ part would reach the page, metrics' labels and logs.
        if "@" in url.split("//", 1)[-1].split("/", 1)[0]:
            raise problem("must not carry credentials (user:password@host): configure them under `auth`")
        try:
            parts = urlsplit(url)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise problem(f"must be a base URL like https://host[:port], got {shown(url)}") from None
        odd = any(c in "?#" or c.isspace() for c in url)
        if parts.scheme not in ("http", "https") or not parts.netloc or odd:
            raise problem(f"must be a base URL like https://host[:port], got {shown(url)}")
        if parts.path not in ("", "/"):
            raise problem(f"must be a base URL without a path, got {shown(url)}")
        return cls(f"{parts.scheme}://{parts.netloc}")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """An http(s) URL without a path."""
        return {
            "type": "string",
            "pattern": r"^\s*[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s\[@]+/?\s*$|^\s*[Hh][Tt][Tt][Pp][Ss]?://\[[0-9A-Fa-f:.]+\](:[0-9]+)?/?\s*$",
        }


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
            raise problem(f"file {printable(str(path))} does not exist")
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
        bad = _string_keys(raw, [], set())
        if bad is not None:
            raise ConfigError(key_path(_stripped(bad, strip)), "unknown key")
        return msgspec.convert(raw, model, dec_hook=_decode)
    except msgspec.ValidationError as exc:
        raise explain(str(exc), raw, strip) from None
    finally:
        CONTEXT.reset(token)


_AT = re.compile(r" - at (`key` in )?`\$([^`]*)`$", re.DOTALL)
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
    whole = message
    # The path is msgspec's last " - at `$...`" (a key may contain that text too).
    at = _AT.match(message, max(message.rfind(" - at "), 0))
    loc: list[Any] = []
    if at:
        message = message[: at.start()]
        loc = [name or int(index) for name, index in _PART.findall(at.group(2)) if index != "..."]
    if message.startswith(_KEY):
        key, _, message = message[1:].partition(_KEY)
        loc += [int(part) if part.isdigit() else part for part in key.split(".")]
    elif m := re.match(r"Object (contains unknown|missing required) field `(.*)`$", message, re.DOTALL):
        if m.group(1) == "contains unknown" and m.group(2) not in (_lookup(raw, loc) or {}):
            # At the top msgspec adds no path, and the key itself may look like one.
            m, loc = re.match(r"Object (contains unknown) field `(.*)`$", whole, re.DOTALL), []
            assert m is not None  # noqa: S101  # nosec B101  # the same message, whole
        key, colon, _ = m.group(2).partition(":")
        # `secret_key:value` (no space after the colon) is one key to YAML: never show what follows the colon.
        loc.append(key + (":…" if colon else ""))
        message = "unknown key" if m.group(1) == "contains unknown" else "is required"
        message += " (a space missing after ':'?)" if colon else ""
    elif message == "Number out of range":
        message = f"is out of range, got {shown(_lookup(raw, loc))}"
    elif m := re.match(r"Expected `(.*?)`(, got `.*`)?$", message):
        kind = m.group(1).removesuffix(" | null")
        wrong = f"must be {_TYPES.get(kind)}, got {shown(_lookup(raw, loc))}"
        message = wrong if kind in _TYPES else _KINDS.get(kind, message)
    return ConfigError(key_path(_stripped(loc, strip)), message)


def _string_keys(raw: Any, loc: list[Any], seen: set[int]) -> list[Any] | None:
    """Where a key that is not a string (`1: x`) stands: no key of ours. Each object once (aliases share)."""
    if id(raw) in seen:
        return None
    seen.add(id(raw))
    items = raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    for key, value in items:
        if isinstance(raw, dict) and not isinstance(key, str):
            return [*loc, str(key)]
        found = _string_keys(value, [*loc, key], seen)
        if found is not None:
            return found
    return None


def _stripped(loc: list[Any], strip: tuple[Any, ...]) -> list[Any]:
    return loc[len(strip) :] if strip and tuple(loc[: len(strip)]) == strip else loc


def _lookup(raw: Any, loc: list[Any]) -> Any:
    try:
        for part in loc:
            raw = raw[part]
    except (KeyError, IndexError, TypeError):
        return "?"
    return raw


def printable(text: str) -> str:
    """``text`` with control characters escaped (it goes into a log line), cut short."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return out if len(out) <= 200 else out[:200] + "…"


def key_path(loc: list[Any]) -> str:
    """``["projects", 1, "auth", "sk"]`` as ``projects[1].auth.sk``."""
    out = ""
    for part in loc:
        if not isinstance(part, int):
            part = printable(str(part))  # keys come from the file
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def fields(model: type[msgspec.Struct]) -> Iterator[str]:
    """The keys of a model, as the file spells them."""
    for field in msgspec.structs.fields(model):
        yield field.encode_name


class StrictKeysLoader(yaml.SafeLoader):
    """Keys as Go reads them into string maps: their text as written (``007``, ``yes``), each key once."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping, with scalar keys as written and a repeated key refused."""
        mapping: dict[Any, Any] = {}
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else self.construct_object(key_node, deep)
            if key in mapping:
                raise yaml.constructor.ConstructorError(None, None, "a key is given twice", key_node.start_mark)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


def load_yaml(path: str | Path, what: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """The parsed YAML of a file, or a ConfigError saying why not (never quoting the content)."""
    file = Path(path)
    try:
        content = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("", f"cannot read {what} file {file}: {exc.__class__.__name__}") from None
    try:
        return yaml.load(content, Loader=loader)  # noqa: S506  # nosec B506  # a SafeLoader
    except (ValueError, RecursionError) as exc:  # e.g. an integer past Python's digit limit, or nesting
        raise ConfigError("", f"{what} file {file} is not valid YAML: {exc.__class__.__name__}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem_text = getattr(exc, "problem", None)
        why = f": {problem_text}" if problem_text == "a key is given twice" else ""
        raise ConfigError("", f"{what} file {file} is not valid YAML{where}{why}") from None
