"""pytest plugin of minikafka (entry point ``pytest11``: ``minikafka``).

Fixtures:

- ``minikafka_broker``: a fresh :class:`~minikafka.Broker` in the test's
  ``tmp_path`` (``tmp_path / "minikafka"``), with test-sized segments,
  closed after the test.
- ``minikafka_broker_options``: the keyword options that broker is opened
  with (``{"segment_bytes": TEST_SEGMENT_BYTES}``); override this fixture in
  a conftest.py or a test module to change them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..broker import Broker
from . import TEST_SEGMENT_BYTES


@pytest.fixture
def minikafka_broker_options() -> dict[str, Any]:
    """Options for ``minikafka_broker``; override to change them."""
    return {"segment_bytes": TEST_SEGMENT_BYTES}


@pytest.fixture
def minikafka_broker(tmp_path: Path, minikafka_broker_options: dict[str, Any]) -> Iterator[Broker]:
    """A fresh Broker under the test's tmp_path, small segments, closed after the test."""
    broker = Broker(tmp_path / "minikafka", **minikafka_broker_options)
    try:
        yield broker
    finally:
        broker.close()
