"""The JSON Schemas, docs/configuration.md's tables and the chart schema come from the models and agree with them."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml

from exporter import config, schema
from exporter.config import credentials
from exporter.web import webconfig
from tests.procs import command
from tests.test_config_rejections import REJECTED

ROOT = Path(__file__).resolve().parent.parent
MODELINE = "# yaml-language-server: $schema="
CONFIG_SCHEMA = json.loads((ROOT / schema.CONFIG_SCHEMA_FILE).read_text())
WEB_VALIDATOR = jsonschema.Draft7Validator(json.loads((ROOT / schema.WEB_SCHEMA_FILE).read_text()))

# Rules the models apply that JSON Schema cannot say: the environment, files, regex syntax, duplicates.
SCHEMA_CANNOT = {
    "project missing": "project_id may come from $HUAWEICLOUD_SDK_PROJECT_ID",
    "no credentials": "credentials may come from $HUAWEICLOUD_SDK_AK/_SK",
    "iam no region": "the IAM endpoint may come from $HUAWEICLOUD_SDK_IAM_ENDPOINT",
    "job dup": "unique job ids across the file",
    "project dup job": "unique job ids across the file",
    "ca_file missing": "a file that must exist",
    "token file missing": "a file that must be readable",
    "project bad sk file": "a file that must be readable",
    "object_filters bad regex": "regular-expression syntax",
    "discovery regex": "regular-expression syntax",
    "cache_ttl nan": "NaN does not occur in YAML-as-JSON",
}


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_docs", ROOT / "scripts" / "config_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_files_equal_what_the_models_generate() -> None:
    """Drift: the schemas, docs/configuration.md's tables and the chart's config schema (run `make config-docs`)."""
    outputs: dict[Path, str] = load_script().outputs()
    assert len(outputs) == 4
    for path, content in outputs.items():
        assert path.read_text() == content, f"{path.relative_to(ROOT)} differs from the models: run make config-docs"


def test_reference_generation_replaces_a_stale_table() -> None:
    docs = load_script()
    stale = f"intro\n{docs.BEGIN}| `gone_key` | x | | removed |\n{docs.END}outro\n"
    fresh = docs.reference(stale)
    assert "gone_key" not in fresh and "| `cache_ttl` |" in fresh
    assert fresh.startswith("intro\n") and fresh.endswith(f"{docs.END}outro\n")


def test_make_config_docs_check_finds_drift_and_writes_nothing(tmp_path: Path) -> None:
    """`make config-docs --check` (and `CHECK=1`) fail naming the file that drifted; `make config-docs` mends it."""
    make = shutil.which("make")
    assert make is not None, "GNU make is what runs every target of the README"
    generated = [p.relative_to(ROOT) for p in load_script().outputs()]
    for rel in [Path("Makefile"), Path("scripts/config_docs.py"), *generated]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / rel, tmp_path / rel)
    page = tmp_path / "docs" / "configuration.md"
    current = page.read_text()
    drifted = current.replace("| `page_size` | whole number, 1–1000 |", "| `page_size` | whole number, 1–999 |")
    assert drifted != current
    page.write_text(drifted)
    # This venv's python; -o venv: the copy has no pyproject.toml to build one from.
    run = [make, "-s", "-C", str(tmp_path), "-o", "venv", f"BIN={Path(sys.executable).parent}", "config-docs"]
    for extra in (["--check"], ["CHECK=1"]):
        out = subprocess.run([*run, *extra], capture_output=True, text=True, timeout=120)
        assert out.returncode != 0, (extra, out.stdout, out.stderr)
        assert out.stdout.splitlines() == ["docs/configuration.md: differ from the models (run `make config-docs`)"]
        assert page.read_text() == drifted, "a check writes nothing"
    out = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and page.read_text() == current, (out.stdout, out.stderr)
    out = subprocess.run([*run, "--check"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and not out.stdout, (out.stdout, out.stderr)


def all_keys(model: type[msgspec.Struct], prefix: str = "") -> list[str]:
    """Every key of a model, and of the mappings inside it but for those with tables of their own."""
    keys = []
    hints = msgspec.inspect.type_info(model)
    assert isinstance(hints, msgspec.inspect.StructType)
    for field in hints.fields:
        keys.append(prefix + field.encode_name)
        kind = field.type.type if isinstance(field.type, msgspec.inspect.Metadata) else field.type
        kinds = kind.types if isinstance(kind, msgspec.inspect.UnionType) else (kind,)
        nested = next((k.cls for k in kinds if isinstance(k, msgspec.inspect.StructType)), None)
        if nested is not None and field.encode_name not in ("auth", "projects", "jobs", "tls_server_config"):
            keys.extend(all_keys(nested, f"{prefix}{field.encode_name}."))
    return keys


def test_reference_documents_every_key_and_no_unknown_one() -> None:
    docs = load_script()
    readme = (ROOT / "docs" / "configuration.md").read_text().partition(docs.BEGIN)[2].partition(docs.END)[0]
    documented = set(re.findall(r"^\| `([A-Za-z0-9_.\[\]-]+)` \|", readme, re.MULTILINE))
    expected = set(all_keys(config.ProjectConfig)) | set(all_keys(config.Config))
    expected |= set(all_keys(credentials.AuthConfig, "auth."))
    expected |= set(all_keys(config.JobConfig, "jobs[]."))
    expected |= set(all_keys(webconfig.TLSConfig, "tls_server_config."))
    expected |= set(all_keys(webconfig.WebConfig))
    assert expected <= documented, expected - documented
    assert documented <= expected, documented - expected


def test_schema_is_valid_draft_7_and_agrees_with_the_models() -> None:
    jsonschema.Draft7Validator.check_schema(CONFIG_SCHEMA)
    validator = jsonschema.Draft7Validator(CONFIG_SCHEMA)
    accepted = []
    for name, raw, _ in REJECTED:
        if name in SCHEMA_CANNOT:
            continue
        if not list(validator.iter_errors(raw)):
            accepted.append(name)
    assert not accepted, f"the models refuse these but the schema accepts them: {accepted}"
    assert set(SCHEMA_CANNOT) <= {name for name, _, _ in REJECTED}


FILE = __file__  # any file that exists, for the *_file keys
SECRET_FILE = "@secret-file@"  # a one-line secret file, written by the test (a secret holds no line break)
BASE: dict[str, Any] = {"region": "ap-southeast-1", "project_id": "abc", "jobs": ["j-1"]}
ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("minimal", BASE),
    ("jobs null beside discovery", {**BASE, "jobs": None, "discovery": {"job_types": ["sync"]}}),
    ("endpoint null beside region", {**BASE, "endpoint": None}),
    ("endpoint in capitals, spaces", {**BASE, "endpoint": " HTTPS://drs.example.com/ "}),
    ("region with spaces", {**BASE, "region": " ap-southeast-1 "}),
    ("token with a null file", {**BASE, "auth": {"token": "tok123456", "token_file": None}}),
    (
        "ak/sk and token file",
        {**BASE, "auth": {"access_key": "AK0001", "secret_key_file": SECRET_FILE, "security_token": "st"}},
    ),
    ("empty auth (environment)", {**BASE, "auth": {}}),
    ("password login", {**BASE, "auth": {"username": "u", "password_file": SECRET_FILE, "domain_name": "d"}}),
    (
        "password login, IAM endpoint, nulls",
        {
            **BASE,
            "auth": {
                "username": "u",
                "password": "p",
                "domain_name": "d",
                "iam_endpoint": "http://127.0.0.1:1",
                "token": None,
            },
        },
    ),
    (
        "mixed job entries",
        {**BASE, "jobs": ["a", {"id": "b", "object_types": ["table", "view"], "aggregate_only": True}]},
    ),
    (
        "discovery in full",
        {
            **BASE,
            "discovery": {
                "job_types": ["migration", "sync"],
                "status": ["FULL_TRANSFER_STARTED", "INCRE_TRANSFER_STARTED"],
                "name_regex": "^prod-",
                "exclude_regex": "test",
                "object_types": ["table"],
                "refresh_interval": 60,
                "aggregate_only": False,
            },
        },
    ),
    (
        "every setting",
        {
            **BASE,
            "cache_ttl": 0,
            "page_size": 1,
            "request_timeout": 0.1,
            "refresh_timeout": 3600,
            "max_concurrency": 64,
            "max_pages": 100000,
            "retries": 0,
            "language": "zh-cn",
            "ca_file": FILE,
            "max_response_bytes": 1024,
            "max_objects_per_key": 0,
            "object_filters": {"include_src_db": "^a", "exclude_src_tb": "tmp$"},
            "max_staleness": 0,
        },
    ),
    ("insecure without a CA file", {**BASE, "insecure_skip_verify": True, "ca_file": None}),
    (
        "several projects",
        {
            "projects": [
                {**BASE, "auth": {"token": "tok123456"}},
                {"endpoint": "http://127.0.0.1:1", "project_id": "p2", "discovery": {"job_types": ["sync"]}},
            ],
            "cache_ttl": 15,
        },
    ),
]


@pytest.mark.parametrize("raw", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted_configurations_pass_the_schema_too(
    raw: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the exporter accepts, editors and Helm must not flag."""
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "EXAMPLEAK01")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "example-secret-key")
    secret = tmp_path / "secret"
    secret.write_text("example-secret-0001\n")
    raw = json.loads(json.dumps(raw).replace(json.dumps(SECRET_FILE), json.dumps(str(secret))))
    config.parse(raw)
    errors = [e.message for e in jsonschema.Draft7Validator(CONFIG_SCHEMA).iter_errors(raw)]
    assert not errors


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)


def example_configs() -> list[tuple[str, str]]:
    """Every complete configuration example: README and docs/ blocks with a project, and the compose file."""
    found = [
        (f"{page.relative_to(ROOT)} block {i}", block)
        for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for i, block in enumerate(yaml_blocks(page.read_text()))
        if any(isinstance(d, dict) and ("projects" in d or "project_id" in d) for d in yaml.safe_load_all(block))
    ]
    compose = ROOT / "deploy" / "compose" / "exporter.yml"
    return [*found, ("deploy/compose/exporter.yml", compose.read_text())]


def test_examples_start_with_the_schema_line_and_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = example_configs()
    assert len(examples) >= 3
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "EXAMPLEAK01")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "example-secret-key")
    validator = jsonschema.Draft7Validator(CONFIG_SCHEMA)
    for name, text in examples:
        assert text.startswith(MODELINE), f"{name} lacks the yaml-language-server line"
        target = text.splitlines()[0].removeprefix(MODELINE)
        assert target.endswith(schema.CONFIG_SCHEMA_FILE), name
        if not target.startswith("http"):
            assert (ROOT / "deploy" / "compose" / target).resolve() == ROOT / schema.CONFIG_SCHEMA_FILE
        doc = yaml.safe_load(text)
        assert not list(validator.iter_errors(doc)), name
        if "projects" not in doc:  # the multi-project example names secret files that exist only in a cluster
            config.parse(doc)


def test_cli_prints_the_committed_schemas_and_checks_files(tmp_path: Path) -> None:
    for flag, file in (([], schema.CONFIG_SCHEMA_FILE), (["web"], schema.WEB_SCHEMA_FILE)):
        out = subprocess.run(
            [command("drs-exporter"), "--config.schema", *flag], capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == (ROOT / file).read_text()
    good = tmp_path / "good.yml"
    good.write_text("region: ap-southeast-1\nproject_id: abc\nauth: {token: abcdefgh}\njobs: [a]\n")
    bad = tmp_path / "bad.yml"
    bad.write_text("region: ap-southeast-1\nproject_id: abc\nauth: {token: abcdefgh}\njobs: [a]\nretries: 99\n")
    ok = subprocess.run(
        [command("drs-exporter"), "--config.check", "--config.file", str(good)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0 and "configuration is valid" in ok.stderr
    refused = subprocess.run(
        [command("drs-exporter"), "--config.check", "--config.file", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "retries: must be between 0 and 10, got 99" in refused.stderr


def test_secrets_are_write_only_and_never_defaults() -> None:
    auth = CONFIG_SCHEMA["definitions"]["AuthConfig"]["properties"]
    for name in credentials.SECRETS:
        literal = auth[name]["anyOf"][0]
        assert literal.get("writeOnly") is True, name
        assert auth[name].get("default") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"basic_auth_users": {"u": "plaintext"}}, "basic_auth_users.u: must be a bcrypt hash"),
        ({"basic_auth_users": ["u"]}, "basic_auth_users: must be a mapping"),
        ({"tls_server_cnofig": {}}, "tls_server_cnofig: unknown key"),
        (
            {"tls_server_config": {"cert_file": "/nonexistent.crt"}},
            "tls_server_config.cert_file: file /nonexistent.crt",
        ),
        ({"tls_server_config": {"key_file": __file__}}, "tls_server_config.cert_file: is required"),
        ({"tls_server_config": "on"}, "tls_server_config: must be a mapping"),
        ({"http_server_config": {"http3": True}}, "http_server_config.http3: unknown key"),
        ({"http_server_config": {"http2": "yes"}}, "http_server_config.http2: must be true or false"),
    ],
)
def test_bad_web_configurations_name_the_key(tmp_path: Path, raw: dict[str, Any], expected: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError) as caught:
        webconfig.load(path)
    assert str(caught.value).startswith(expected)


def test_web_configurations_accepted_as_before(tmp_path: Path) -> None:
    """Empty or false sections switch nothing on; YAML's numeric user names are names."""
    hashed = "$2b$04$" + "a" * 53
    for text in (
        "",
        "tls_server_config: {}\n",
        "tls_server_config: false\nhttp_server_config:\n",
        "basic_auth_users:\n",
    ):
        path = tmp_path / "web.yml"
        path.write_text(text)
        web = webconfig.load(path)
        assert web.tls is None and not web.basic_auth_users
        assert not list(WEB_VALIDATOR.iter_errors(yaml.safe_load(text) or {})), text
    (tmp_path / "web.yml").write_text(f"basic_auth_users:\n  123: '{hashed}'\n")
    assert set(webconfig.load(tmp_path / "web.yml").basic_auth_users) == {"123"}


def test_tls_choices_are_refused_in_words(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    pem.write_text("not a certificate")
    cases = {
        "client_auth_type": ("Sometimes", "tls_server_config.client_auth_type: must be one of NoClientCert"),
        "min_version": ("TLS111", "tls_server_config.min_version: must be one of TLS12, TLS13"),
        "min_version ": ("TLS11", "tls_server_config.min_version: TLS11 is not supported: TLS 1.0 and 1.1"),
        "client_auth_type ": ("RequireAndVerifyClientCert", "tls_server_config.client_ca_file: is required with"),
    }
    for key, (value, expected) in cases.items():
        raw = {"tls_server_config": {"cert_file": str(pem), "key_file": str(pem), key.strip(): value}}
        path = tmp_path / "web.yml"
        path.write_text(yaml.safe_dump(raw))
        with pytest.raises(config.ConfigError, match=re.escape(expected)):
            webconfig.load(path)
    raw = {"tls_server_config": {"cert_file": str(pem), "key_file": str(pem)}}
    (tmp_path / "web.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(config.ConfigError, match="tls_server_config: cannot load the certificate, key or CAs"):
        webconfig.load(tmp_path / "web.yml")
