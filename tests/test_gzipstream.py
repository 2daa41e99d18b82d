"""One gzip member from blocks compressed apart: CRC-32 combining and whole decoding."""

from __future__ import annotations

import gzip
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.render import gzipstream


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_crc32_combine_equals_zlib(a: bytes, b: bytes) -> None:
    assert gzipstream.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_crc32_combine_of_long_lengths() -> None:
    for length in (1, 255, 65_537, 16_777_215):  # lengths with many bits set
        zeros = bytes(length)
        assert gzipstream.crc32_combine(zlib.crc32(b"head"), zlib.crc32(zeros), length) == zlib.crc32(b"head" + zeros)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=5000), max_size=12), st.binary(max_size=2000))
def test_joined_blocks_are_one_whole_member(pieces: list[bytes], tail: bytes) -> None:
    joined = gzipstream.join(gzipstream.deflate(p) for p in pieces)
    body = gzipstream.HEADER + joined.data + gzipstream.finish(joined, tail)
    expected = b"".join(pieces) + tail
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert reader.decompress(body) + reader.flush() == expected
    assert reader.eof and reader.unused_data == b""
    assert gzip.decompress(body) == expected
    assert joined.crc == zlib.crc32(b"".join(pieces)) and joined.size == sum(map(len, pieces))
