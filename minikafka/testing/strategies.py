"""hypothesis strategies for property tests of code that produces or consumes.

``keys()``, ``values()``, ``headers()`` draw what ``Producer.send`` accepts;
``records()`` draws whole dicts of ``send`` keyword arguments, as in
``@given(st.lists(strategies.records(), max_size=20))`` and then
``producer.send("t", **kwargs)`` for each (docs/testing.md has the whole test).

Needs hypothesis (``pip install hypothesis``); the rest of minikafka does not.
"""

from __future__ import annotations

from typing import Any

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "minikafka.testing.strategies needs hypothesis: pip install hypothesis"
    ) from e

from ..errors import InvalidArgumentError

__all__ = ["headers", "keys", "records", "timestamps", "values"]

#: Timestamps from 1 ms after the epoch to about year 2100 (ms). Not 0:
#: confluent-kafka sends 0 as "now", so a record with timestamp 0 would come
#: back with another timestamp on a Kafka cluster (docs/scaling.md).
MIN_TIMESTAMP = 1
MAX_TIMESTAMP = 4_102_444_800_000


def _check_size(name: str, value: object, least: int = 0) -> None:
    """At the call, not when hypothesis first draws (where the error names
    hypothesis' own arguments)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < least:
        raise InvalidArgumentError(f"{name} must be >= {least}, got {value}")


def _binary(min_size: int, max_size: int) -> st.SearchStrategy[bytes]:
    _check_size("min_size", min_size)
    _check_size("max_size", max_size)
    if min_size > max_size:
        raise InvalidArgumentError(f"min_size ({min_size}) must be <= max_size ({max_size})")
    return st.binary(min_size=min_size, max_size=max_size)


def keys(max_size: int = 64, nullable: bool = True, *, min_size: int = 0
         ) -> st.SearchStrategy[bytes | None]:
    """Record keys: bytes of ``min_size`` to ``max_size``, or None (no key) if ``nullable``."""
    strategy = _binary(min_size, max_size)
    return st.one_of(st.none(), strategy) if nullable else strategy


def values(max_size: int = 1024, nullable: bool = True, *, min_size: int = 0
           ) -> st.SearchStrategy[bytes | None]:
    """Record values: bytes of ``min_size`` to ``max_size``, or None (a
    tombstone) if ``nullable``.

    hypothesis draws mostly short values, whatever ``max_size``: to test
    what happens near the producer's ``max_record_bytes``, narrow the range,
    e.g. ``values(min_size=limit - 100, max_size=limit + 100, nullable=False)``.
    """
    strategy = _binary(min_size, max_size)
    return st.one_of(st.none(), strategy) if nullable else strategy


def headers(max_headers: int = 4, max_value_size: int = 64
            ) -> st.SearchStrategy[list[tuple[str, bytes | None]]]:
    """Header lists: (name, value) pairs, names may repeat, values may be None.
    Names hold no NUL character, which a Kafka header name cannot hold."""
    _check_size("max_headers", max_headers)
    _check_size("max_value_size", max_value_size)
    name = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=16)
    pair = st.tuples(name,
                     st.one_of(st.none(), st.binary(max_size=max_value_size)))
    return st.lists(pair, max_size=max_headers)


def timestamps() -> st.SearchStrategy[int]:
    """Record timestamps (ms since the epoch), from ``MIN_TIMESTAMP`` (1,
    not 0, which Kafka clients read as "now") to ``MAX_TIMESTAMP``."""
    return st.integers(min_value=MIN_TIMESTAMP, max_value=MAX_TIMESTAMP)


@st.composite
def _records(draw: Any, partitions: int | None, key_size: int, value_size: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"value": draw(values(value_size)), "key": draw(keys(key_size))}
    if draw(st.booleans()):
        kwargs["headers"] = draw(headers())
    if draw(st.booleans()):
        kwargs["timestamp_ms"] = draw(timestamps())
    if partitions is not None and draw(st.booleans()):
        kwargs["partition"] = draw(st.integers(0, partitions - 1))
    return kwargs


def records(partitions: int | None = None, key_size: int = 64, value_size: int = 1024
            ) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments for ``Producer.send(topic, **kwargs)``: ``value``
    and ``key`` always, ``headers`` and ``timestamp_ms`` sometimes, and
    ``partition`` sometimes when the topic's ``partitions`` is given."""
    if partitions is not None:
        _check_size("partitions", partitions, least=1)
    _check_size("key_size", key_size)
    _check_size("value_size", value_size)
    return _records(partitions, key_size, value_size)
