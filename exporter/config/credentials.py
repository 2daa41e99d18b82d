"""The ``auth`` block of a project and the credentials it resolves to; the environment variables that stand in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..base.secrets import Secret, SecretError
from .validation import BaseURL, Model, Text, doc, problem
from .values import SecretFile, SecretValue

SECRETS = ("access_key", "secret_key", "security_token", "token", "password")

ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
# A variable name, not a secret.
ENV_SECURITY_TOKEN = "HUAWEICLOUD_SDK_SECURITY_TOKEN"  # noqa: S105  # nosec B105
ENV_PROJECT_ID = "HUAWEICLOUD_SDK_PROJECT_ID"
ENV_IAM_ENDPOINT = "HUAWEICLOUD_SDK_IAM_ENDPOINT"


@dataclass(frozen=True)
class AkSkCredentials:
    """Access key, secret key and optional temporary security token."""

    access_key: Secret
    secret_key: Secret
    security_token: Secret | None = None


@dataclass(frozen=True)
class TokenCredentials:
    """A static IAM token (literal or file)."""

    token: Secret


@dataclass(frozen=True)
class PasswordCredentials:
    """IAM user login."""

    domain_name: str
    username: str
    password: Secret
    iam_endpoint: str


Credentials = AkSkCredentials | TokenCredentials | PasswordCredentials


class AuthConfig(Model, frozen=True):
    """Exactly one form of credentials: AK/SK signing, a static IAM token, or IAM password login."""

    access_key: Annotated[SecretValue | None, doc("AK for AK/SK request signing")] = None
    access_key_file: Annotated[SecretFile | None, doc("file holding the AK")] = None
    secret_key: Annotated[SecretValue | None, doc("SK for AK/SK request signing")] = None
    secret_key_file: Annotated[SecretFile | None, doc("file holding the SK")] = None
    security_token: Annotated[SecretValue | None, doc("security token of temporary AK/SK credentials")] = None
    security_token_file: Annotated[SecretFile | None, doc("file holding the security token")] = None
    token: Annotated[SecretValue | None, doc("a static IAM token")] = None
    token_file: Annotated[SecretFile | None, doc("file holding an IAM token")] = None
    username: Annotated[Text | None, doc("IAM user for password login")] = None
    password: Annotated[SecretValue | None, doc("password of the IAM user")] = None
    password_file: Annotated[SecretFile | None, doc("file holding the password of the IAM user")] = None
    domain_name: Annotated[Text | None, doc("account (domain) of the IAM user")] = None
    iam_endpoint: Annotated[
        BaseURL | None,
        doc(
            "IAM base URL (credentials in it are refused); default `$HUAWEICLOUD_SDK_IAM_ENDPOINT`, else from `region`"
        ),
    ] = None

    def secret(self, name: str) -> Secret | None:
        """The secret ``name``, from its literal value or its file."""
        value: Secret | None = getattr(self, name) or getattr(self, name + "_file")
        return value

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in SECRETS:
            literal, file = getattr(self, name), getattr(self, name + "_file")
            if literal is not None and file is not None:
                raise problem(f"give either {name} or {name}_file, not both", name)
            for secret, key in ((literal, name), (file, name + "_file")):
                if secret is not None:
                    secret.name = name
                    try:
                        secret.get()
                    except SecretError as exc:
                        raise problem(str(exc), key) from None
        has = {name: self.secret(name) is not None for name in SECRETS}
        forms = [
            form
            for form, present in (
                ("access_key", has["access_key"] or has["secret_key"]),
                ("token", has["token"]),
                ("username", self.username is not None or has["password"]),
            )
            if present
        ]
        if len(forms) > 1:
            raise problem(f"give exactly one form of credentials, found {' and '.join(forms)}")
        if has["security_token"] and forms != ["access_key"]:
            raise problem("only goes with access_key and secret_key", "security_token")
        if forms == ["username"]:
            for key, present in (
                ("username", self.username),
                ("password", has["password"]),
                ("domain_name", self.domain_name),
            ):
                if not present:
                    raise problem("is required for IAM password login", key)
        for key in ("domain_name", "iam_endpoint"):
            if forms != ["username"] and getattr(self, key) is not None:
                raise problem("only goes with username and password", key)
        if forms == ["access_key"]:
            for given, needed in (("secret_key", "access_key"), ("access_key", "secret_key")):
                if not has[needed]:
                    raise problem(f"is required with {given}", needed)
