"""``send_many``'s encoder: many records into few large batches.

Records whose keys and values each share one length (the common bulk case)
take ``batch.build_uniform`` — one C-level join per batch, no Python code
per record; anything else is encoded record by record. Both cut batches at
the same places, and both validate every record before the caller writes
any batch.
"""

from __future__ import annotations

from typing import Any

from .batch import BatchBuilder, build_uniform
from .errors import RecordTooLargeError
from .format import BATCH_HEADER_SIZE, RECORD_PREFIX_SIZE
from .send_front import to_bytes

#: The batch size ``send_many`` aims at (bigger than ``batch_size``: one
#: lock, header and checksum per 256 KiB, benchmarks/: "send_many() bulk").
BULK_BATCH_BYTES = 256 * 1024


def common_length(items: list[Any]) -> int | None:
    """The length shared by all ``items`` if all are ``bytes``, else None.
    (Two C-level passes; no Python code per item.)"""
    if set(map(type, items)) != {bytes}:
        return None
    lengths = set(map(len, items))
    return lengths.pop() if len(lengths) == 1 else None


def encode_bulk(topic: str, keys: list[Any] | None, values: list[Any], ts: int, *,
                batch_bytes: int, max_batch: int, max_record: int) -> list[BatchBuilder]:
    """``send_many``'s records (to ``topic``) as batches of about
    ``BULK_BATCH_BYTES`` (at least ``batch_bytes``, at most ``max_batch``),
    every record validated (types, ``max_record`` bytes) before any is
    written: a call that raises here has written nothing."""
    chunk = max(batch_bytes, min(BULK_BATCH_BYTES, max_batch))
    vlen = common_length(values)
    klen = -1 if keys is None else common_length(keys)
    if vlen is not None and klen is not None and (klen > 0 or vlen > 0):
        size = RECORD_PREFIX_SIZE + max(klen, 0) + max(vlen, 0)
        if size > max_record:
            raise RecordTooLargeError(
                f"records of send_many to topic {topic!r} are {size} bytes, "
                f"over the limit of {max_record} (max_record_bytes, or what one segment holds)"
            )
        # As many records per batch as the loop below would put there.
        per_batch = max(1, min(-(-(chunk - BATCH_HEADER_SIZE) // size),
                               (max_batch - BATCH_HEADER_SIZE) // size))
        return build_uniform(keys, values, klen, vlen, ts, per_batch)
    out = []
    b = BatchBuilder(ts)
    for i, v in enumerate(values):
        if v is not None and type(v) is not bytes:
            v = to_bytes(v, "value")
        k = None if keys is None else keys[i]
        if k is not None and type(k) is not bytes:
            k = to_bytes(k, "key")
        size = RECORD_PREFIX_SIZE + (len(k) if k else 0) + (len(v) if v else 0)
        if size > max_record:
            raise RecordTooLargeError(
                f"record {i} of send_many to topic {topic!r} is {size} bytes, "
                f"over the limit of {max_record} (max_record_bytes, or what one segment holds)"
            )
        if b.count and len(b.buf) + size > max_batch:  # the batch must fit a segment
            out.append(b)
            b = BatchBuilder(ts)
        b.append(ts, k, v)
        if len(b.buf) >= chunk:
            out.append(b)
            b = BatchBuilder(ts)
    if b.count:
        out.append(b)
    return out
