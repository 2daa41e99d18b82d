"""JSON Schemas and the reference tables of docs/configuration.md, generated from the configuration models."""

from __future__ import annotations

import json
from typing import Any

import msgspec

from .config import Config, DiscoveryConfig, JobConfig, ObjectFilter, ProjectConfig
from .config.credentials import SECRETS, AuthConfig
from .config.validation import schema_hook
from .web.access import RateLimit
from .web.webconfig import Headers, HTTPServerConfig, TLSConfig, WebConfig

DRAFT = "http://json-schema.org/draft-07/schema#"
# Where editors find the schema (the examples' `yaml-language-server` line): the main branch of the
# project's repository, a placeholder until the project is published (like the runbook URLs).
SCHEMA_URL = "https://raw.githubusercontent.com/huaweicloud-drs-exporter/huaweicloud-drs-exporter/main/"
CONFIG_SCHEMA_FILE = "drs-exporter.schema.json"
WEB_SCHEMA_FILE = "web-config.schema.json"


def _with_files(*names: str) -> list[str]:
    return [key for name in names for key in (name, name + "_file")]


def _set(*keys: str, kind: str = "string") -> dict[str, Any]:
    """Any of ``keys`` is given, and not null."""
    return {"anyOf": [{"required": [k], "properties": {k: {"type": kind}}} for k in keys]}


def _implies(condition: dict[str, Any], *then: dict[str, Any]) -> dict[str, Any]:
    return {"if": condition, "then": {"allOf": list(then)}}


_AKSK = _set(*_with_files("access_key", "secret_key"))
_TOKEN = _set(*_with_files("token"))
_PASSWORD = _set("username", *_with_files("password"))
AUTH_RULES: list[dict[str, Any]] = [
    *({"not": {"allOf": [_set(s), _set(s + "_file")]}} for s in SECRETS),
    {"not": {"allOf": [_AKSK, _TOKEN]}},
    {"not": {"allOf": [_AKSK, _PASSWORD]}},
    {"not": {"allOf": [_TOKEN, _PASSWORD]}},
    _implies(_AKSK, _set(*_with_files("access_key")), _set(*_with_files("secret_key"))),
    _implies(_set(*_with_files("security_token")), _AKSK),
    _implies(_PASSWORD, _set("username"), _set("domain_name"), _set(*_with_files("password"))),
    _implies(_set("domain_name", "iam_endpoint"), _PASSWORD),
]

# What the models check in __post_init__, said in JSON Schema where it can be, for editors and Helm.
RULES: dict[str, dict[str, Any]] = {
    "AuthConfig": {"allOf": AUTH_RULES},
    "ProjectConfig": {
        "required": ["project_id"],
        # In projects[] the id cannot come from the environment (the single form takes only allOf below).
        "not": {"required": ["project_id"], "properties": {"project_id": {"type": "null"}}},
        "allOf": [
            _set("region", "endpoint"),
            {
                "anyOf": [
                    _set("discovery", kind="object"),
                    {"required": ["jobs"], "properties": {"jobs": {"type": "array", "minItems": 1}}},
                ]
            },
        ],
    },
    "DiscoveryConfig": {"required": ["job_types"]},
    "Config": {
        "not": {
            "required": ["ca_file", "insecure_skip_verify"],
            "properties": {"ca_file": {"type": "string"}, "insecure_skip_verify": {"const": True}},
        }
    },
    "TLSConfig": {
        "if": {
            "required": ["client_auth_type"],
            "properties": {"client_auth_type": {"const": "RequireAndVerifyClientCert"}},
        },
        "then": {"required": ["client_ca_file"], "properties": {"client_ca_file": {"type": "string"}}},
    },
}


def _model_schema(model: type[msgspec.Struct]) -> dict[str, Any]:
    """The model's schema in draft-07 form: definitions under ``definitions``, no generated titles, our rules."""
    generated = msgspec.json.schema(model, schema_hook=schema_hook)
    definitions = generated.pop("$defs", {})

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: clean(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
            if isinstance(out.get("$ref"), str):
                out["$ref"] = out["$ref"].replace("#/$defs/", "#/definitions/")
            if out.get("required") == []:
                del out["required"]
            return out
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    cleaned = {name: {**clean(d), **RULES.get(name, {})} for name, d in definitions.items()}
    root = cleaned.pop(model.__name__)
    return {**root, "definitions": cleaned} if cleaned else root


def config_schema() -> dict[str, Any]:
    """The schema of the configuration file: the multi-project form, or one project's keys at the top."""
    schema = _model_schema(Config)
    project = schema["definitions"]["ProjectConfig"]
    top = {k: v for k, v in project.items() if k not in ("required", "allOf", "description")}
    schema["properties"] = {**top["properties"], **schema["properties"]}
    schema.pop("required", None)
    schema["if"] = {"required": ["projects"]}
    schema["then"] = {"not": {"anyOf": [{"required": [key]} for key in project["properties"]]}}
    schema["else"] = {"allOf": project["allOf"]}  # project_id may come from the environment here
    return {"$schema": DRAFT, "$id": SCHEMA_URL + CONFIG_SCHEMA_FILE, "title": "huaweicloud-drs-exporter", **schema}


def web_config_schema() -> dict[str, Any]:
    """The schema of the ``--web.config.file``."""
    schema = _model_schema(WebConfig)
    # An empty or false section switches nothing on (webconfig.load drops it).
    off = [{"type": "null"}, {"const": False}, {"const": ""}, {"type": "object", "maxProperties": 0}]
    for key in ("tls_server_config", "http_server_config", "basic_auth_users", "rate_limit"):
        field = schema["properties"][key]
        given = field.get("anyOf") or [{k: v for k, v in field.items() if k not in ("description", "default")}]
        on = [kind for kind in given if kind != {"type": "null"}]
        schema["properties"][key] = {"description": field["description"], "anyOf": on + off}
    return {"$schema": DRAFT, "$id": SCHEMA_URL + WEB_SCHEMA_FILE, "title": "web configuration", **schema}


def chart_config_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Helm chart's ``config`` value and the definitions it refers to (named ``config…``).

    The chart writes ``auth`` itself (from ``credentials``) and serves one project, so neither ``auth``
    nor ``projects`` may be given, and ``project_id`` cannot come from the environment there.
    """
    text = json.dumps(config_schema()).replace('"#/definitions/', '"#/definitions/config')
    config: dict[str, Any] = json.loads(text)
    definitions = {f"config{name}": d for name, d in config.pop("definitions").items()}
    for key in ("$schema", "$id", "title", "if", "then"):
        config.pop(key, None)
    for key in ("auth", "projects"):
        del config["properties"][key]
    config["required"] = ["project_id"]
    config["allOf"] = config.pop("else")["allOf"]
    config["description"] = "the exporter's configuration file without `auth` (see `credentials`)"
    return config, definitions


# --- the reference tables of docs/configuration.md


def _type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "$ref" in schema:
        return "mapping"
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "")
    if schema.get("format") == "regex":
        return "regular expression"
    if kind == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if kind in ("integer", "number") and "minimum" in schema:
        word, form = ("whole number", "d") if kind == "integer" else ("number", "g")
        low = format(schema["minimum"], form)
        return f"{word}, {low}–{format(schema['maximum'], form)}" if "maximum" in schema else f"{word}, ≥ {low}"
    return str({"object": "mapping", "boolean": "`true` \\| `false`"}.get(kind, kind))


def _default(model: type[msgspec.Struct], key: str, schema: dict[str, Any]) -> str:
    if key in ("endpoint", "project_id", "projects"):
        return {"endpoint": "from `region`", "project_id": "`$HUAWEICLOUD_SDK_PROJECT_ID`", "projects": ""}[key]
    if key in RULES.get(model.__name__, {}).get("required", ()) or key in schema.get("required", ()):
        return "required"
    value = schema["properties"][key].get("default")
    if value is None or value == {}:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | tuple):
        return f"`[{', '.join(value)}]`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _rows(model: type[msgspec.Struct], prefix: str = "") -> list[str]:
    schema = _model_schema(model)
    return [
        f"| `{prefix}{key}` | {_type(field)} | {_default(model, key, schema)} | {field.get('description', '')} |"
        for key, field in schema["properties"].items()
    ]


def reference_tables() -> str:
    """Markdown tables of every configuration key, from the models' descriptions."""
    header = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    tables = [
        ("Configuration file (`--config.file`)", _rows(ProjectConfig) + _rows(Config)),
        ("`auth:` (one form of credentials)", _rows(AuthConfig, "auth.")),
        ("`jobs:` items (or bare job ids)", _rows(JobConfig, "jobs[].")),
        ("`discovery:`", _rows(DiscoveryConfig, "discovery.")),
        ("`object_filters:`", _rows(ObjectFilter, "object_filters.")),
        (
            "Web configuration (`--web.config.file`)",
            _rows(WebConfig)
            + _rows(TLSConfig, "tls_server_config.")
            + _rows(HTTPServerConfig, "http_server_config.")
            + _rows(Headers, "http_server_config.headers.")
            + _rows(RateLimit, "rate_limit."),
        ),
    ]
    keys = ", ".join(f"`{k}`" for k in _model_schema(ProjectConfig)["properties"])
    parts = [f"**{title}**\n\n" + "\n".join(header + rows) for title, rows in tables]
    parts.insert(5, f"**`projects:` items**\n\nEach takes the keys {keys}; `project_id` is required there.")
    return "\n\n".join(parts) + "\n"


def dump(schema: dict[str, Any]) -> str:
    """A schema as the committed files hold it."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
