"""``kafka://`` URLs: bootstrap servers plus client configuration.

``kafka://host:port[,host:port...][?name=value&...]``: the query parameters
are librdkafka configuration (``security.protocol``, ``sasl.mechanism``,
``client.id`` ...), passed through unchanged; ``kafka+ssl://`` is
shorthand for ``security.protocol=SSL``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import InvalidArgumentError

SCHEMES = ("kafka", "kafka+ssl")
DEFAULT_PORT = 9092


def parse_url(url: str) -> dict[str, str]:
    """The client configuration (``bootstrap.servers`` and the query) a URL names."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidArgumentError(f"{url!r}: a Kafka URL starts with kafka:// or kafka+ssl://")
    if parts.path not in ("", "/") or parts.fragment:
        raise InvalidArgumentError(f"{url!r}: a Kafka URL names servers only "
                                   f"(kafka://host:port[,host:port...][?config])")
    if "@" in parts.netloc:  # urlsplit would keep "user:pw@" in the host
        raise InvalidArgumentError(f"{url!r}: credentials go in the query "
                                   f"(?sasl.username=...&sasl.password=...), not before the host")
    servers = []
    for server in parts.netloc.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep:
            host, port = port, str(DEFAULT_PORT)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidArgumentError(f"{url!r}: bad server {server!r} (expected host:port)")
        servers.append(f"{unquote(host)}:{port}")
    config = {"bootstrap.servers": ",".join(servers)}
    if parts.scheme == "kafka+ssl":
        config["security.protocol"] = "SSL"
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if not name:
            raise InvalidArgumentError(f"{url!r}: empty configuration name in the query")
        config[name] = value
    return config
