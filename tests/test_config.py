"""Configuration parsing beyond the exit-code cases of the integration tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from exporter import config
from exporter.config import ConfigError
from exporter.config.credentials import AkSkCredentials, PasswordCredentials, TokenCredentials

BASE: dict[str, Any] = {"region": "ap-southeast-1", "project_id": "5237e10fe9aa4ad5b16b6a5245248314", "jobs": ["j-1"]}


def parse(**changes: Any) -> config.Config:
    return config.parse({**BASE, **changes})


def test_defaults_and_endpoint_from_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "ENVAK0001")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "env-secret-key")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "env-security-token")
    cfg = parse()
    assert cfg.endpoint == "https://drs.ap-southeast-1.myhuaweicloud.com"
    assert cfg.keys == (("j-1", "table"),)
    assert (cfg.cache_ttl, cfg.page_size, cfg.request_timeout, cfg.max_concurrency) == (30, 1000, 10, 8)
    assert isinstance(cfg.credentials, AkSkCredentials)
    assert cfg.credentials.secret_key.get() == "env-secret-key"
    assert cfg.credentials.security_token is not None
    assert cfg.credentials.security_token.get() == "env-security-token"


def test_eu_sovereign_region_and_endpoint_override() -> None:
    auth = {"token": "abcdefgh"}
    assert parse(region="eu-west-101", auth=auth).endpoint == "https://drs.eu-west-101.myhuaweicloud.eu"
    assert parse(endpoint="http://127.0.0.1:8080/", auth=auth).endpoint == "http://127.0.0.1:8080"
    with pytest.raises(ConfigError, match="endpoint: must be a base URL"):
        parse(endpoint="ftp://x", auth=auth)


def test_secret_files_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "ak").write_text("FILEAK0001\n")
    (tmp_path / "sk").write_text("file-secret-key\n")
    path = tmp_path / "c.yml"
    path.write_text(
        "region: ap-southeast-1\nproject_id: abc\njobs: [j]\nauth: {access_key_file: ak, secret_key_file: sk}\n"
    )
    cfg = config.load(path)
    assert isinstance(cfg.credentials, AkSkCredentials)
    assert cfg.credentials.access_key.get() == "FILEAK0001"
    assert cfg.credentials.secret_key.get() == "file-secret-key"
    assert "file-secret-key" not in repr(cfg)


def test_password_login_iam_endpoint() -> None:
    auth = {"username": "u", "password": "pw-123456", "domain_name": "d"}
    creds = parse(auth=auth).credentials
    assert isinstance(creds, PasswordCredentials)
    assert creds.iam_endpoint == "https://iam.ap-southeast-1.myhuaweicloud.com"
    creds = parse(auth={**auth, "iam_endpoint": "http://127.0.0.1:1/"}).credentials
    assert isinstance(creds, PasswordCredentials) and creds.iam_endpoint == "http://127.0.0.1:1"
    with pytest.raises(ConfigError, match=r"auth\.domain_name: is required"):
        parse(auth={"username": "u", "password": "pw-123456"})


def test_token_and_other_checks() -> None:
    assert isinstance(parse(auth={"token": "abcdefgh"}).credentials, TokenCredentials)
    with pytest.raises(ConfigError, match=r"auth\.security_token: only goes with"):
        parse(auth={"token": "abcdefgh", "security_token": "x"})
    with pytest.raises(ConfigError, match=r"jobs\[1\].id: job j-1 is listed twice"):
        parse(auth={"token": "abcdefgh"}, jobs=["j-1", "j-1"])
    with pytest.raises(ConfigError, match="object_types: lists an object type twice"):
        parse(auth={"token": "abcdefgh"}, jobs=[{"id": "j", "object_types": ["view", "view"]}])
    with pytest.raises(ConfigError, match="page_size: must be a whole number"):
        parse(auth={"token": "abcdefgh"}, page_size=10.5)
    with pytest.raises(ConfigError, match="jobs: must be a non-empty list"):
        parse(auth={"token": "abcdefgh"}, jobs=[])
    with pytest.raises(ConfigError, match="language: must be one of"):
        parse(auth={"token": "abcdefgh"}, language="fr")
    with pytest.raises(ConfigError, match=r"auth\.secret_key: is required"):
        parse(auth={"access_key": "abcdefgh"})
