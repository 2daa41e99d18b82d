"""AK/SK signing: the three published test vectors and canonicalisation corner cases."""

from __future__ import annotations

import hashlib

import pytest

from exporter.drs import signer


def test_vector_1_get_with_unsigned_underscore_header() -> None:
    url, headers = signer.sign(
        "GET",
        "https://service.endpoint.myhuaweicloud.com/resources?size=1",
        {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "value"},
        b"",
        "AccessKey",
        "SecretKey",
    )
    assert headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=AccessKey, SignedHeaders=host;x-sdk-date, "
        "Signature=cfb4171acec81de07d50e53d57eb77edd537414d66ddb1d7d780f128e12cd842"
    )
    assert headers["Host"] == "service.endpoint.myhuaweicloud.com"
    assert url == "https://service.endpoint.myhuaweicloud.com/resources?size=1"


def test_vector_2_post_with_body() -> None:
    _, headers = signer.sign(
        "POST",
        "https://service.endpoint.myhuaweicloud.com/resources?size=1",
        {"X-Sdk-Date": "20200608T023900Z", "TEST_UNDERSCORE": "value"},
        b'{"name":"test","id":1}',
        "AccessKey",
        "SecretKey",
    )
    assert headers["Authorization"].endswith(
        "SignedHeaders=host;x-sdk-date, Signature=436b1ac0a1ae03705934bb70ef2f2e09f7bfed2117d731a38235053199323a1f"
    )


VECTOR_3_HEADERS = {
    "content-type": "application/json",
    "host": "service.region.example.com",
    "x-sdk-date": "20191115T033655Z",
}
VECTOR_3_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
VECTOR_3_QUERY = "limit=2&marker=13551d6b-755d-4757-b956-536f674975c0"


def test_vector_3_canonical_request_hash() -> None:
    signed = signer.signed_header_names(VECTOR_3_HEADERS)
    canonical = signer.canonical_request("GET", VECTOR_3_PATH, VECTOR_3_QUERY, VECTOR_3_HEADERS, signed, b"")
    assert signed == ["content-type", "host", "x-sdk-date"]
    assert (
        hashlib.sha256(canonical.encode()).hexdigest()
        == "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
    )


def test_vector_3_signature() -> None:
    _, headers = signer.sign(
        "GET",
        f"https://service.region.example.com{VECTOR_3_PATH}?{VECTOR_3_QUERY}",
        dict(VECTOR_3_HEADERS),
        b"",
        "QTWAOYTTINDUT2QVKYUC",
        "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc",
    )
    assert headers["Authorization"] == (
        "SDK-HMAC-SHA256 Access=QTWAOYTTINDUT2QVKYUC, SignedHeaders=content-type;host;x-sdk-date, "
        "Signature=7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/v5/p/jobs", "/v5/p/jobs/"),
        ("/v5/p/jobs/", "/v5/p/jobs/"),
        ("/a b/c", "/a%20b/c/"),
        ("/a%20b/c", "/a%20b/c/"),  # decoded first, so encoded input is not encoded twice
        ("/a%2Fb", "/a/b/"),
        ("/x~y-z_.", "/x~y-z_./"),
        ("/数据", "/%E6%95%B0%E6%8D%AE/"),
    ],
)
def test_canonical_uri(path: str, expected: str) -> None:
    assert signer.canonical_uri(path) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ""),
        ("b=2&a=1", "a=1&b=2"),
        ("a=2&a=1&a=10", "a=1&a=10&a=2"),  # repeated keys sorted by value
        ("name=a%20b&x=~", "name=a%20b&x=~"),
        ("name=a+b", "name=a%20b"),
        ("k=%E6%95%B0", "k=%E6%95%B0"),
        ("flag", "flag="),
        ("a=1&&b=2", "a=1&b=2"),
    ],
)
def test_canonical_query(query: str, expected: str) -> None:
    assert signer.canonical_query(signer.parse_query(query)) == expected


def test_signed_url_carries_canonical_query() -> None:
    url, _ = signer.sign("GET", "https://h.example/p?z=1&a=x%20y", {"X-Sdk-Date": "20200101T000000Z"}, b"", "A", "S")
    assert url == "https://h.example/p?a=x%20y&z=1"


def test_parse_authorization() -> None:
    parsed = signer.parse_authorization("SDK-HMAC-SHA256 Access=A, SignedHeaders=host;x-sdk-date, Signature=ab")
    assert parsed == {"Access": "A", "SignedHeaders": "host;x-sdk-date", "Signature": "ab"}
    assert signer.parse_authorization("Bearer x") is None
    assert signer.parse_authorization("SDK-HMAC-SHA256 Access=A") is None
