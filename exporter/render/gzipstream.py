"""One gzip member assembled from pieces compressed apart, at different times.

Each piece is a raw deflate block ended with a full flush, so pieces compressed independently
can follow each other in one deflate stream. The stream gets one gzip header, a final block,
and a trailer whose CRC-32 is combined from the pieces' own CRCs (zlib's ``crc32_combine``,
which Python's zlib does not expose), so joining never reads the uncompressed bytes again.
Every gzip reader decodes the result whole, including those that stop after the first member.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import NamedTuple

LEVEL = 6
# ID1 ID2, deflate, no flags, no modification time, no extra flags, OS unknown: what gzip.compress(mtime=0) writes.
HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_POLY = 0xEDB88320  # CRC-32, bit-reflected
_ONE = 1 << 31  # the polynomial 1 in the reflected representation


def _multmodp(a: int, b: int) -> int:
    """a × b modulo the CRC-32 polynomial (as in zlib's crc32.c)."""
    m = _ONE
    p = 0
    while True:
        if a & m:
            p ^= b
            if not a & (m - 1):
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _powers() -> list[int]:
    # x^(2^k) modulo the polynomial, k = 0..31; x is 1 << 30 reflected.
    table = [1 << 30]
    for _ in range(31):
        table.append(_multmodp(table[-1], table[-1]))
    return table


_X2N = _powers()


def shift(length: int) -> int:
    """x^(8 × length) modulo the polynomial: multiplying a CRC by it appends ``length`` zero bytes' worth."""
    p = _ONE
    k = 3  # 8 × length = length × 2^3
    while length:
        if length & 1:
            p = _multmodp(_X2N[k & 31], p)
        length >>= 1
        k += 1
    return p


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """The CRC-32 of A + B from crc32(A), crc32(B) and len(B)."""
    return _multmodp(shift(length2), crc1) ^ crc2


class Block(NamedTuple):
    """Raw deflate data of some bytes, ended with a full flush, with their CRC-32 and length."""

    data: bytes
    crc: int
    size: int
    shift: int  # shift(size), kept so that joining costs one multiplication a block


EMPTY = Block(b"", 0, 0, _ONE)


def deflate(plain: bytes) -> Block:
    """``plain`` as a block that any other block may follow."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = compressor.compress(plain) + compressor.flush(zlib.Z_FULL_FLUSH)
    return Block(data, zlib.crc32(plain), len(plain), shift(len(plain)))


def join(blocks: Iterable[Block]) -> Block:
    """The blocks one after the other, as one block."""
    blocks = list(blocks)
    combined = combine(blocks)
    return combined._replace(data=b"".join(block.data for block in blocks))


def combine(blocks: Iterable[Block]) -> Block:
    """The CRC-32, length and shift of the blocks one after the other, without their data (which
    the caller sends block by block: no copy of the compressed bytes)."""
    crc, size = 0, 0
    for block in blocks:
        crc = _multmodp(block.shift, crc) ^ block.crc
        size += block.size
    return Block(b"", crc, size, shift(size))


def finish(head: Block, tail: bytes) -> bytes:
    """What follows ``HEADER`` and ``head.data`` to end the member: ``tail`` compressed, and the trailer."""
    compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    data = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    crc = zlib.crc32(tail, head.crc)
    return data + struct.pack("<II", crc, (head.size + len(tail)) & 0xFFFFFFFF)
