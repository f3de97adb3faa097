"""Unit tests of the byte layout in ``minikafka.format``: records, header
blocks, batch checksums — and that what the producer writes on disk is
exactly what the tables in the module docstring say."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minikafka
from minikafka import Broker, InvalidArgumentError, Producer
from minikafka.batch import BatchBuilder, batch_checksum, decode_records, record_timestamps, skip_records
from minikafka.format import (
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    CHECKSUM,
    CHECKSUM_AT,
    CHECKSUMMED_FROM,
    INDEX_ENTRY_SIZE,
    INDEX_HEADER_SIZE,
    INT64_MIN,
    RECORD_PREFIX,
    RECORD_PREFIX_SIZE,
    SEGMENT_HEADER,
    SEGMENT_HEADER_SIZE,
    SEGMENT_MAGIC,
    TRAILER_SIZE,
    U32,
    decode_headers,
    encode_headers,
    index_name,
    segment_name,
)
from minikafka.records import Record


def encode_record(ts: int, key: bytes | None, value: bytes | None, headers=()) -> bytes:
    """One record, encoded by the batch builder."""
    b = BatchBuilder(ts)
    b.append(ts, key, value, encode_headers(headers))
    return bytes(b.buf[BATCH_HEADER_SIZE:])


def encode_batch(base: int, records: list[bytes], first_ts: int = 0, max_ts: int = 0) -> bytearray:
    """A batch of already encoded records, finished by the batch builder."""
    b = BatchBuilder(first_ts)
    for r in records:
        b.buf += r
    b.count, b.max_ts = len(records), max_ts
    return b.finish(base)


# -- struct sizes and names match the tables -----------------------------------


def test_struct_sizes_match_the_tables() -> None:
    assert SEGMENT_HEADER_SIZE == 64
    assert BATCH_HEADER_SIZE == 48
    assert RECORD_PREFIX_SIZE == 20
    assert INDEX_HEADER_SIZE == 32
    assert INDEX_ENTRY_SIZE == 16
    assert TRAILER_SIZE == 4
    assert CHECKSUM_AT == 4 and CHECKSUMMED_FROM == 12
    assert INT64_MIN == -(2**63)


def test_file_names_are_twenty_digit_base_offsets() -> None:
    assert segment_name(0) == "00000000000000000000.log"
    assert index_name(123) == "00000000000000000123.index"
    assert segment_name(2**63 - 1) == "09223372036854775807.log"


def test_batch_header_field_positions() -> None:
    raw = BATCH_HEADER.pack(0x11223344, 0x5566778899AABBCC, 1, 2, 0, 7, 3, 0, -5, 9)
    assert raw[0:4] == U32.pack(0x11223344)
    assert struct.unpack_from("<Q", raw, 4)[0] == 0x5566778899AABBCC
    assert raw[12] == 1 and raw[13] == 2 and raw[14:16] == b"\0\0"
    assert struct.unpack_from("<qI", raw, 16) == (7, 3)
    assert raw[28:32] == b"\0\0\0\0"
    assert struct.unpack_from("<qq", raw, 32) == (-5, 9)


# -- records: null vs empty ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [(None, None), (b"", b""), (None, b""), (b"", None), (b"k", b"v"), (b"\0", b"\0\0")],
)
def test_null_and_empty_keys_and_values_round_trip(key, value) -> None:
    raw = encode_record(42, key, value)
    _, klen, vlen, hlen = RECORD_PREFIX.unpack_from(raw, 0)
    assert klen == (-1 if key is None else len(key))
    assert vlen == (-1 if value is None else len(value))
    assert hlen == 0
    records, end = decode_records(raw, 0, 1, "t", 3, 17)
    assert end == len(raw)
    assert records == [Record("t", 3, 17, 42, key, value, ())]
    assert records[0].key is None if key is None else records[0].key == key


def test_decode_many_records_with_offsets_and_end_position() -> None:
    raws = [encode_record(100 + i, b"k%d" % i, b"v" * i, [("i", b"%d" % i)]) for i in range(10)]
    data = b"junk" + b"".join(raws) + b"tail"
    records, end = decode_records(data, 4, 10, "t", 0, 1000)
    assert end == len(data) - 4
    assert [r.offset for r in records] == list(range(1000, 1010))
    assert [r.value for r in records] == [b"v" * i for i in range(10)]
    assert [r.headers for r in records] == [(("i", b"%d" % i),) for i in range(10)]
    assert skip_records(data, 4, 3) == 4 + sum(map(len, raws[:3]))
    assert skip_records(data, 4, 0) == 4
    assert record_timestamps(data, 4, 10) == [100 + i for i in range(10)]


def test_decode_records_with_deserializers_passes_none_through() -> None:
    data = encode_record(1, None, b"5") + encode_record(2, b"7", None)
    records, _ = decode_records(data, 0, 2, "t", 0, 0, key_deserializer=int, value_deserializer=int)
    assert [(r.key, r.value) for r in records] == [(None, 5), (7, None)]


def test_negative_and_extreme_timestamps() -> None:
    for ts in (0, -1, INT64_MIN, 2**63 - 1):
        records, _ = decode_records(encode_record(ts, b"", b""), 0, 1, "t", 0, 0)
        assert records[0].timestamp == ts


# -- header blocks ----------------------------------------------------------------


def test_no_headers_is_an_empty_block() -> None:
    assert encode_headers({}) == b""
    assert encode_headers([]) == b""
    assert encode_headers(iter(())) == b""


def test_header_block_layout() -> None:
    block = encode_headers([("ab", b"xyz"), ("é", None)])
    assert block == (
        struct.pack("<H", 2)
        + struct.pack("<H", 2) + b"ab" + struct.pack("<i", 3) + b"xyz"
        + struct.pack("<H", 2) + "é".encode() + struct.pack("<i", -1)
    )
    assert decode_headers(block, 0) == (("ab", b"xyz"), ("é", None))


def test_headers_keep_order_and_duplicates() -> None:
    pairs = [("b", b"1"), ("a", b"2"), ("b", b"3"), ("b", b"3"), ("", b""), ("a", None)]
    block = encode_headers(pairs)
    assert decode_headers(block, 0) == tuple(pairs)
    assert decode_headers(b"xx" + block, 2) == tuple(pairs)


def test_headers_from_a_mapping_keep_insertion_order() -> None:
    block = encode_headers({"z": b"1", "a": b"2", "m": bytearray(b"3"), "s": "str"})
    assert decode_headers(block, 0) == (("z", b"1"), ("a", b"2"), ("m", b"3"), ("s", b"str"))


@pytest.mark.parametrize(
    "bad",
    [42, [("a",)], [(1, b"x")], [("a", 5)], [("a", b"x", b"y")], [b"ab"]],
)
def test_bad_headers_raise_type_error(bad) -> None:
    with pytest.raises(TypeError, match="header"):
        encode_headers(bad)


def test_a_bad_header_value_type_names_every_accepted_type() -> None:
    """A str value is accepted (UTF-8, as confluent-kafka does), yet the
    error for a bad value said "must be bytes or None"."""
    assert decode_headers(encode_headers([("a", "x")]), 0) == (("a", b"x"),)
    with pytest.raises(TypeError, match=r"value of header 'a' must be bytes, bytearray, "
                                        r"memoryview, str or None, not int"):
        encode_headers([("a", 5)])


@pytest.mark.parametrize("headers", [[("\ud800", b"v")], [("a", "x\udcff")]])
def test_header_text_that_is_not_utf8_names_the_header(headers) -> None:
    """A lone surrogate raised a bare UnicodeEncodeError naming nothing."""
    with pytest.raises(InvalidArgumentError, match=r"headers: .*not valid UTF-8"):
        encode_headers(headers)


def test_header_limits() -> None:
    longest = "n" * 0xFFFF
    assert decode_headers(encode_headers([(longest, b"v")]), 0) == ((longest, b"v"),)
    # Values the block cannot hold, of the right types: InvalidArgumentError
    # (they were TypeErrors, against "wrong types raise TypeError", api.md).
    with pytest.raises(InvalidArgumentError, match="65535"):
        encode_headers([("n" * 0x10000, b"v")])
    with pytest.raises(InvalidArgumentError, match="65535"):  # the limit is in UTF-8 bytes
        encode_headers([("é" * 0x8000, b"v")])
    most = [("", b"")] * 0xFFFF
    assert len(decode_headers(encode_headers(most), 0)) == 0xFFFF
    with pytest.raises(InvalidArgumentError, match="65535"):
        encode_headers([("", b"")] * 0x10000)
    big = b"x" * 100_000
    assert decode_headers(encode_headers([("big", big)]), 0) == (("big", big),)


header_names = st.text(max_size=20)
header_values = st.one_of(st.none(), st.binary(max_size=30))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(INT64_MIN, 2**63 - 1),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.one_of(st.none(), st.binary(max_size=40)),
    st.lists(st.tuples(header_names, header_values), max_size=6),
)
def test_record_round_trip_property(ts, key, value, headers) -> None:
    raw = encode_record(ts, key, value, headers)
    records, end = decode_records(raw + b"\xff" * 3, 0, 1, "t", 0, 5)
    assert end == len(raw)
    assert records == [Record("t", 0, 5, ts, key, value, tuple(headers))]
    assert skip_records(raw, 0, 1) == len(raw)


# -- batch checksum -------------------------------------------------------------


def _sample_batch() -> bytearray:
    return encode_batch(
        10, [encode_record(1, b"k", b"value", [("h", b"1")]), encode_record(2, None, b"")], 1, 2
    )


def test_checksum_covers_every_byte_from_12() -> None:
    buf = _sample_batch()
    length = len(buf)
    good = batch_checksum(buf, length)
    assert CHECKSUM.unpack_from(buf, CHECKSUM_AT)[0] == good
    for i in range(CHECKSUMMED_FROM, length):
        for flip in (0x01, 0x80):
            damaged = bytearray(buf)
            damaged[i] ^= flip
            assert batch_checksum(damaged, length) != good, i


def test_checksum_is_seeded_with_the_length() -> None:
    buf = _sample_batch()
    length = len(buf)
    padded = buf + b"\0" * 8
    # Same bytes, a different length word: the checksum differs, so a wrong
    # length can never validate by accident.
    assert batch_checksum(padded, length + 8) != batch_checksum(buf, length)
    assert batch_checksum(padded, length) == batch_checksum(buf, length)
    assert batch_checksum(bytes(buf), length) == batch_checksum(memoryview(buf), length)


def test_checksum_of_identical_content_at_other_offsets_differs() -> None:
    a = encode_batch(0, [encode_record(1, b"k", b"v")])
    b = encode_batch(1, [encode_record(1, b"k", b"v")])
    assert a[CHECKSUMMED_FROM:] != b[CHECKSUMMED_FROM:]
    assert CHECKSUM.unpack_from(a, 4) != CHECKSUM.unpack_from(b, 4)


# -- what the producer writes is the documented layout ------------------------------


def test_producer_writes_the_documented_layout(tmp_path: Path) -> None:
    with Broker(tmp_path / "data", segment_bytes=4096) as broker:
        broker.create_topic("t")
        with Producer(broker, linger_ms=60_000) as p:
            p.send("t", b"v0", key=None, timestamp_ms=500)
            p.send("t", b"", key=b"", headers=[("a", b"1"), ("a", None)], timestamp_ms=700)
            p.send("t", None, key=b"k2", timestamp_ms=600)
            p.flush()
    raw = (tmp_path / "data" / "topics" / "t" / "0" / segment_name(0)).read_bytes()
    assert len(raw) == 4096  # preallocated
    magic, version, flags, base, capacity, created, max_ts, end = SEGMENT_HEADER.unpack_from(raw, 0)
    assert (magic, version, flags, base, capacity, max_ts, end) == (SEGMENT_MAGIC, 1, 0, 0, 4096, 0, 0)
    assert created > 1_600_000_000_000
    assert raw[48:64] == bytes(16)
    length, checksum, bver, attrs, r1, bbase, count, r2, first_ts, bmax = BATCH_HEADER.unpack_from(raw, 64)
    assert (bver, attrs, r1, bbase, count, r2, first_ts, bmax) == (1, 0, 0, 0, 3, 0, 500, 700)
    batch = raw[64 : 64 + length]
    assert checksum == batch_checksum(batch, length)
    expected = (
        encode_record(500, None, b"v0")
        + encode_record(700, b"", b"", [("a", b"1"), ("a", None)])
        + encode_record(600, b"k2", None)
    )
    assert batch[BATCH_HEADER_SIZE:] == expected
    # After the batch: a zero length word (nothing more yet), then zeros.
    assert raw[64 + length :] == bytes(4096 - 64 - length)


def test_records_too_large_for_a_segment(tmp_path: Path) -> None:
    seg = 4096
    largest = seg - SEGMENT_HEADER_SIZE - TRAILER_SIZE - BATCH_HEADER_SIZE  # one encoded record
    with Broker(tmp_path / "data", segment_bytes=seg) as broker:
        broker.create_topic("t")
        with Producer(broker, linger_ms=0) as p:
            ok = b"x" * (largest - RECORD_PREFIX_SIZE)
            assert p.send("t", ok).result().offset == 0
            with pytest.raises(minikafka.RecordTooLargeError):
                p.send("t", ok + b"x")
            with pytest.raises(minikafka.RecordTooLargeError):
                p.send("t", ok[:-1], key=b"kk")
            assert p.send("t", b"small").result().offset == 1
        assert broker.topic("t").end_offsets() == {0: 2}
        with minikafka.Consumer(broker, "t", auto_offset_reset="earliest") as c:
            got = []
            for _ in range(50):
                got += c.poll(timeout=0.05)
                if len(got) >= 2:
                    break
        assert [r.value for r in got] == [ok, b"small"]
