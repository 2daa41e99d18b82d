"""Huawei Cloud AK/SK request signing (``SDK-HMAC-SHA256``), as the official SDKs do it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()


def _encode(text: str) -> str:
    # RFC 3986 unreserved characters stay as they are; everything else is percent-encoded.
    return quote(text, safe="-_.~")


def canonical_uri(path: str) -> str:
    """Decode the path, encode each segment again and make sure it ends with ``/``."""
    segments = [_encode(segment) for segment in unquote(path or "/").split("/")]
    uri = "/".join(segments)
    return uri if uri.endswith("/") else uri + "/"


def parse_query(query: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded ``(key, value)`` pairs, keeping repeats."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return pairs


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """Encode every pair the same way and sort by key, then value."""
    encoded = sorted((_encode(k), _encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Every header name without ``_``, lower-cased and sorted."""
    return sorted({name.lower() for name in headers if "_" not in name})


def canonical_request(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    signed: list[str],
    body: bytes,
) -> str:
    """Build the canonical request that the signature covers."""
    lowered = {name.lower(): value for name, value in headers.items()}
    header_lines = "".join(f"{name}:{lowered[name].strip()}\n" for name in signed)
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(parse_query(query)),
            header_lines,
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """The string the HMAC is computed over."""
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(secret_key: str, to_sign: str) -> str:
    """Hex HMAC-SHA256 of ``to_sign`` keyed with the secret key."""
    return hmac.new(secret_key.encode("utf-8"), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sdk_date(now: datetime | None = None) -> str:
    """The ``X-Sdk-Date`` value for ``now`` (UTC)."""
    return (now or datetime.now(timezone.utc)).strftime(DATE_FORMAT)


def sign(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret_key: str,
) -> tuple[str, dict[str, str]]:
    """Sign a request.

    Adds ``Host`` and ``X-Sdk-Date`` when missing and returns the URL with its query in
    canonical form (which is what must be sent) and the headers including ``Authorization``.
    """
    parts = urlsplit(url)
    out = dict(headers)
    if not any(name.lower() == "host" for name in out):
        out["Host"] = parts.netloc
    if not any(name.lower() == DATE_HEADER.lower() for name in out):
        out[DATE_HEADER] = sdk_date()
    date_value = next(v for k, v in out.items() if k.lower() == DATE_HEADER.lower())
    signed = signed_header_names(out)
    canonical = canonical_request(method, parts.path, parts.query, out, signed, body)
    sig = signature(secret_key, string_to_sign(canonical, date_value))
    out["Authorization"] = f"{ALGORITHM} Access={access_key}, SignedHeaders={';'.join(signed)}, Signature={sig}"
    query = canonical_query(parse_query(parts.query))
    signed_url = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}" + (f"?{query}" if query else "")
    return signed_url, out


def parse_authorization(value: str) -> dict[str, str] | None:
    """Split an ``SDK-HMAC-SHA256`` Authorization header into Access, SignedHeaders, Signature."""
    prefix = ALGORITHM + " "
    if not value.startswith(prefix):
        return None
    fields: dict[str, str] = {}
    for part in value[len(prefix) :].split(","):
        key, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[key] = val
    if not {"Access", "SignedHeaders", "Signature"} <= fields.keys():
        return None
    return fields
