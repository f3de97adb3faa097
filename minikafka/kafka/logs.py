"""librdkafka's log, through Python ``logging``.

Left alone, librdkafka prints every connection failure to stderr (about
20 lines a second while a cluster is unreachable). Every confluent-kafka
client minikafka makes is given a :class:`ClientLog` as its ``logger``
instead: the lines go to the ``minikafka.kafka`` logger, which has a
``NullHandler`` so they stay off stderr unless the application configures
logging, and the client's last error line is kept so that a
``TimeoutError`` can say why ("Connection refused"). confluent-kafka hands
the lines over when the client is polled, so a client that is not polled
otherwise (the admin client) is polled before its log is read.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import TypeVar

from ..errors import MiniKafkaError

LOGGER = logging.getLogger("minikafka.kafka")
LOGGER.addHandler(logging.NullHandler())  # no "last resort" printing to stderr
#: Attribute set on the log records of librdkafka's lines (the CLI leaves
#: them out: its one-line error already carries the last one).
LIBRDKAFKA = "librdkafka"

E = TypeVar("E", bound=MiniKafkaError)

_THREAD = re.compile(r"^\[thrd:[^\]]*\]:\s*")


class ClientLog:
    """The ``logger`` of one confluent-kafka client: forwards to
    ``minikafka.kafka`` and remembers the last line at ERROR or above."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[float, str] | None = None

    def log(self, level: int, msg: str, *args: object) -> None:
        """What confluent-kafka calls: ``log(level, "%s [%s] %s", facility, client, text)``."""
        LOGGER.log(level, msg, *args, extra={LIBRDKAFKA: True})
        if level >= logging.ERROR:
            text = str(args[-1]) if args else msg
            with self._lock:
                self._last = (time.monotonic(), _THREAD.sub("", text))

    def last_error(self, since: float = 0.0) -> str | None:
        """The last error line logged at or after ``since`` (``time.monotonic()``)."""
        with self._lock:
            last = self._last
        return last[1] if last is not None and last[0] >= since else None

    def explain(self, error: E, since: float = 0.0) -> E:
        """``error`` with the last error line since ``since`` added to its
        message (the cause of a timeout); ``error`` itself if there is none."""
        cause = self.last_error(since)
        if cause is None or cause in str(error):
            return error
        return type(error)(f"{error}; last error from the cluster: {cause}")
