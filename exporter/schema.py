"""JSON Schemas and the README reference tables, generated from the configuration models."""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import BaseModel

from .config import Config, ProjectConfig
from .webconfig import WebConfig

DRAFT = "http://json-schema.org/draft-07/schema#"
# Where editors find the schema of a released version (the examples' `yaml-language-server` line).
SCHEMA_URL = "https://raw.githubusercontent.com/huaweicloud-drs-exporter/huaweicloud-drs-exporter/main/"
CONFIG_SCHEMA_FILE = "drs-exporter.schema.json"
WEB_SCHEMA_FILE = "web-config.schema.json"


def _model_schema(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """The model's schema in draft-07 form: definitions under ``definitions``, no generated titles."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def clean(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: clean(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
            if isinstance(out.get("$ref"), str):
                out["$ref"] = out["$ref"].replace("#/$defs/", f"#/definitions/{prefix}")
            return out
        if isinstance(node, list):
            return [clean(v) for v in node]
        return node

    result: dict[str, Any] = clean(schema)
    if definitions:
        result["definitions"] = {prefix + name: clean(d) for name, d in definitions.items()}
    return result


def config_schema() -> dict[str, Any]:
    """The schema of the configuration file: the multi-project form, or one project's keys at the top."""
    schema = _model_schema(Config)
    project = _model_schema(ProjectConfig)
    project_keys = list(project["properties"])
    schema["properties"] = {**project["properties"], **schema["properties"]}
    schema["required"] = []
    del schema["required"]
    schema["if"] = {"required": ["projects"]}
    schema["then"] = {"not": {"anyOf": [{"required": [key]} for key in project_keys]}}
    schema["else"] = {"allOf": project["allOf"]}
    return {"$schema": DRAFT, "$id": SCHEMA_URL + CONFIG_SCHEMA_FILE, "title": "huaweicloud-drs-exporter", **schema}


def web_config_schema() -> dict[str, Any]:
    """The schema of the ``--web.config.file``."""
    schema = _model_schema(WebConfig)
    return {"$schema": DRAFT, "$id": SCHEMA_URL + WEB_SCHEMA_FILE, "title": "web configuration", **schema}


def chart_config_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """The Helm chart's ``config`` value and the definitions it refers to.

    The chart writes ``auth`` itself (from ``credentials``) and serves one project, so neither ``auth``
    nor ``projects`` may be given, and ``project_id`` cannot come from the environment there.
    """
    schema = copy.deepcopy(config_schema())
    definitions = {f"config{name}": d for name, d in schema.pop("definitions").items()}
    text = json.dumps(schema).replace('"#/definitions/', '"#/definitions/config')
    config: dict[str, Any] = json.loads(text)
    definitions = json.loads(json.dumps(definitions).replace('"#/definitions/', '"#/definitions/config'))
    for key in ("$schema", "$id", "title", "if", "then"):
        config.pop(key, None)
    for key in ("auth", "projects"):
        del config["properties"][key]
    config["required"] = ["project_id"]
    config["allOf"] = config.pop("else")["allOf"]
    config["description"] = "the exporter's configuration file without `auth` (see `credentials`)"
    return config, definitions


# --- the README reference


def _type(schema: dict[str, Any], definitions: dict[str, Any]) -> str:
    if "anyOf" in schema:
        kinds = [_type(s, definitions) for s in schema["anyOf"] if s.get("type") != "null"]
        return " or ".join(kinds)
    if "$ref" in schema:
        return "mapping"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "")
    if kind == "array":
        items = schema.get("items", {})
        return f"list of {_type(items, definitions)}"
    if kind in ("number", "integer") and "minimum" in schema:
        if kind == "integer":
            return f"whole number, {schema['minimum']:d}–{schema['maximum']:d}"
        return f"number, {schema['minimum']:g}–{schema['maximum']:g}"
    if kind == "object":
        return "mapping"
    return str({"string": "string", "boolean": "`true` \\| `false`"}.get(kind, kind))


def _default(model: type[BaseModel], name: str) -> str:
    field = model.model_fields[name]
    if field.is_required():
        return {"endpoint": "from `region`", "projects": ""}.get(name, "required")
    if field.default is None:
        return ""
    value = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
    if isinstance(value, BaseModel) or value == {}:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return f"`[{', '.join(value)}]`" if value else "`[]`"
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _rows(model: type[BaseModel], prefix: str = "") -> list[str]:
    schema = _model_schema(model)
    definitions = schema.get("definitions", {})
    rows = []
    for name, field in model.model_fields.items():
        kind = _type(schema["properties"][name], definitions)
        rows.append(f"| `{prefix}{name}` | {kind} | {_default(model, name)} | {field.description or ''} |")
    return rows


def reference_tables() -> str:
    """Markdown tables of every configuration key, from the models' descriptions."""
    from .config import AuthConfig, DiscoveryConfig, JobConfig, ObjectFilter
    from .webconfig import HTTPServerConfig, TLSConfig

    header = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    sections = [
        ("Configuration file (`--config.file`)", _rows(ProjectConfig) + _rows(Config)),
        ("`auth:` (one form of credentials)", _rows(AuthConfig, "auth.")),
        ("`jobs:` items (or bare job ids)", _rows(JobConfig, "jobs[].")),
        ("`discovery:`", _rows(DiscoveryConfig, "discovery.")),
        ("`object_filters:`", _rows(ObjectFilter, "object_filters.")),
        ("`projects:` items", ["each takes the keys " + ", ".join(f"`{k}`" for k in ProjectConfig.model_fields)]),
        (
            "Web configuration (`--web.config.file`)",
            _rows(WebConfig) + _rows(TLSConfig, "tls_server_config.") + _rows(HTTPServerConfig, "http_server_config."),
        ),
    ]
    parts = []
    for title, rows in sections:
        table = rows if rows[0].startswith("|") else []
        parts.append(f"**{title}**\n\n" + ("\n".join(header + table) if table else rows[0]))
    return "\n\n".join(parts) + "\n"


def dump(schema: dict[str, Any]) -> str:
    """A schema as the committed files hold it."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
