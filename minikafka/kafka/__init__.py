"""The Kafka backend: the Broker surface, producing and consuming on a
Kafka-protocol cluster (Apache Kafka, Redpanda, Tansu) through confluent-kafka.

Importing this package does not import confluent-kafka (an optional extra,
``pip install 'minikafka[kafka]'``); :func:`connect` does, and says how to
install it when it is missing.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

from ..errors import MiniKafkaError

if TYPE_CHECKING:
    from .admin import KafkaBroker

INSTALL_HINT = "pip install 'minikafka[kafka]'"


class KafkaUnavailableError(MiniKafkaError, ImportError):
    """``connect("kafka://...")`` without confluent-kafka installed."""


def require_client() -> None:
    """Raise :class:`KafkaUnavailableError` unless confluent-kafka can be imported."""
    if importlib.util.find_spec("confluent_kafka") is None:
        raise KafkaUnavailableError(
            f"the Kafka backend needs confluent-kafka, which is not installed: {INSTALL_HINT}"
        )


def connect(url: str, **options: Any) -> KafkaBroker:
    """Open ``kafka://host:port[,host:port...][?name=value&...]`` as a broker
    with the Broker surface (see :class:`minikafka.kafka.admin.KafkaBroker`)."""
    require_client()
    from .admin import KafkaBroker

    return KafkaBroker(url, **options)


__all__ = ["INSTALL_HINT", "KafkaUnavailableError", "connect", "require_client"]
