"""The value types of the configuration: ids, object and job types, secrets; each says what is wrong in words."""

from __future__ import annotations

import re
from typing import Annotated, Any

import msgspec

from ..base.objecttypes import OBJECT_TYPES
from ..base.secrets import Secret
from .validation import Text, between, checked, problem, resolve, shown

JOB_TYPES = ("migration", "sync", "cloudDataGuard")

# Sharding (exporter/base/sharding.py): the flags --shard/--pod and --total-shards override both.
ShardIndex = Annotated[
    int,
    between(
        0,
        9999,
        "this process's shard: it reads and exports only the jobs with `crc32(job_id) mod total_shards` equal to "
        "it (configured and discovered alike); `--shard` or `--pod` overrides it",
    ),
]
ShardCount = Annotated[
    int,
    between(
        1,
        10000,
        "how many exporter processes share the jobs (`1`: this one exports every job); `--total-shards` overrides "
        "it; every shard still lists whole projects (docs/deployment.md, sharding)",
    ),
]


class JobId(Text):
    """A DRS job id."""

    pattern = re.compile(r"^[A-Za-z0-9-]{1,64}$")
    what = "letters, digits and '-' only"


class ProjectId(Text):
    """A project id."""

    pattern = re.compile(r"^[A-Za-z0-9-]{1,64}$")
    what = "letters and digits"


class Region(Text):
    """A region name."""

    pattern = re.compile(r"^[a-z0-9-]{2,40}$")
    what = "like ap-southeast-1"
    strip_spaces = True


def _object_types(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise problem("must be a non-empty list")
    for item in value:
        if item not in OBJECT_TYPES:
            raise problem(f"unknown object type {shown(item)}; known: {', '.join(OBJECT_TYPES)}")
    if len(set(value)) != len(value):
        raise problem("lists an object type twice")
    return value


def object_types(description: str) -> msgspec.Meta:
    """A non-empty list of distinct object types of the progress-data API."""
    return checked(description, _object_types, {"minItems": 1, "uniqueItems": True})


# Item types whose JSON Schema lists what they take (the checks above say it in words).
ObjectType = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(OBJECT_TYPES)})]
JobType = Annotated[str, msgspec.Meta(extra_json_schema={"enum": list(JOB_TYPES)})]
STATUS = re.compile(r"[A-Z][A-Z0-9_]*")
Status = Annotated[str, msgspec.Meta(extra_json_schema={"pattern": f"^{STATUS.pattern}$"})]


def _job_types(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value or any(t not in JOB_TYPES for t in value):
        raise problem(f"is required: a list of {', '.join(JOB_TYPES)}")
    return tuple(dict.fromkeys(value))


def _statuses(value: tuple[str, ...]) -> tuple[str, ...]:
    if not all(STATUS.fullmatch(x) for x in value):
        raise problem("must be a list of DRS job statuses like INCRE_TRANSFER_STARTED")
    return value


def job_types(description: str) -> msgspec.Meta:
    """A non-empty list of job types of the list API."""
    return checked(description, _job_types, {"minItems": 1})


def statuses(description: str) -> msgspec.Meta:
    """A list of DRS job statuses."""
    return checked(description, _statuses, {})


class SecretValue(Secret):
    """A secret given in the file; its name is set by the struct that holds it."""

    @classmethod
    def check(cls, value: Any) -> SecretValue:
        """The secret, never shown."""
        return cls("secret", value=Text.check(value))

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A string that is written, never read back."""
        return {"type": "string", "pattern": r"\S", "writeOnly": True}


class SecretFile(Secret):
    """A secret read from a file (re-read when it changes); relative to the configuration file."""

    @classmethod
    def check(cls, value: Any) -> SecretFile:
        """The secret's file; it is read by the struct that holds it, which knows its name."""
        return cls("secret", file=str(resolve(Text.check(value))))

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """A file path."""
        return {"type": "string", "pattern": r"\S"}
