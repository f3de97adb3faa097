"""minikafka.testing: read_topic, small brokers, the pytest plugin and the
hypothesis strategies."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minikafka
from minikafka.testing import TEST_SEGMENT_BYTES, read_topic, small_broker
from minikafka.testing import strategies as mks

ROOT = Path(__file__).resolve().parent.parent

FIXTURE_ONLY_TESTS = '''
import minikafka


def test_round_trip(minikafka_broker):
    minikafka_broker.create_topic("t", partitions=2)
    with minikafka.Producer(minikafka_broker) as p:
        p.send("t", b"hello", key=b"k")
    records = minikafka.testing.read_topic(minikafka_broker, "t")
    assert [r.value for r in records] == [b"hello"]
    assert minikafka_broker.options.segment_bytes == minikafka.testing.TEST_SEGMENT_BYTES
    assert str(minikafka_broker.path).startswith(str(minikafka_broker.path.parent))


def test_fresh_broker_each_test(minikafka_broker):
    assert minikafka_broker.list_topics() == []


seen = []


def test_closed_after_the_test_part1(minikafka_broker):
    seen.append(minikafka_broker)


def test_closed_after_the_test_part2():
    assert seen and seen[0].closed
'''


def run_pytest(tmp_path: Path, args: list[str], pythonpath: str, autoload: bool = True,
               conftest: str = "") -> subprocess.CompletedProcess[str]:
    test_file = tmp_path / "test_uses_fixture.py"
    test_file.write_text(FIXTURE_ONLY_TESTS)
    (tmp_path / "conftest.py").write_text(conftest)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    if not autoload:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
         *args, str(test_file)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_plugin_fixture_in_a_subprocess(tmp_path: Path) -> None:
    # Entry points off (an editable install may also declare the plugin): -p alone loads it.
    proc = run_pytest(tmp_path, ["-p", "minikafka.testing.plugin"], str(ROOT), autoload=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def install_like_a_wheel(tmp_path: Path) -> Path:
    """A site directory holding the package (linked) and a dist-info with
    the pytest11 entry point declared in pyproject.toml."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert list(declared) == ["minikafka"]
    site = tmp_path / "site"
    info = site / "minikafka_testkit-0.0.dist-info"
    info.mkdir(parents=True)
    (site / "minikafka").symlink_to(ROOT / "minikafka")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: minikafka-testkit\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[pytest11]\n" + "".join(f"{k} = {v}\n" for k, v in declared.items()))
    return site


@pytest.mark.parametrize("how", ["-p", "pytest_plugins"])
def test_naming_the_plugin_module_as_well_as_the_entry_point_works(tmp_path: Path, how: str) -> None:
    """With minikafka installed (entry point on), a project that also loads
    the plugin by module name, as pytest's docs show for any plugin, runs
    (pytest refused to start: "Plugin already registered under a different
    name")."""
    site = install_like_a_wheel(tmp_path)
    if how == "-p":
        proc = run_pytest(tmp_path, ["-p", "minikafka.testing.plugin"], str(site))
    else:
        proc = run_pytest(tmp_path, [], str(site),
                          conftest='pytest_plugins = ["minikafka.testing.plugin"]\n')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout


def test_plugin_is_found_through_the_pytest11_entry_point(tmp_path: Path) -> None:
    """The entry point declared in pyproject.toml, installed as a dist-info
    would be, loads the plugin with no -p option."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["pytest11"]
    assert declared == {"minikafka": "minikafka.testing.pytest_entry"}
    site = install_like_a_wheel(tmp_path)  # only this directory on the path
    proc = run_pytest(tmp_path, [], str(site))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
    # The fixture came from the plugin registered under the entry point's name
    # "minikafka" (an installed minikafka declares the same one): blocking
    # that name leaves the fixture unknown.
    proc = run_pytest(tmp_path, ["-p", "no:minikafka"], str(site))
    assert proc.returncode != 0 and "fixture 'minikafka_broker' not found" in proc.stdout


def test_importing_the_kit_does_not_import_hypothesis() -> None:
    code = ("import sys, minikafka, minikafka.testing, minikafka.testing.plugin;"
            "print('hypothesis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "False"


def test_read_topic_returns_partition_then_offset_order_and_commits_nothing(tmp_path: Path) -> None:
    with small_broker(tmp_path / "d") as broker:
        broker.create_topic("t", partitions=3)
        with minikafka.Producer(broker) as p:
            for i in range(12):
                p.send("t", b"%d" % i, partition=(i * 5) % 3)
        records = read_topic(broker, "t")
        assert [(r.partition, r.offset) for r in records] == sorted((r.partition, r.offset)
                                                                    for r in records)
        assert sorted(int(r.value) for r in records) == list(range(12))
        one = read_topic(broker, "t", partition=1, value_deserializer=int)
        assert [r.value for r in one] == [i for i in range(12) if (i * 5) % 3 == 1]
        assert broker.list_groups() == []
        assert read_topic(broker, "t") == records  # repeatable: nothing consumed
        with pytest.raises(minikafka.TopicNotFoundError):
            read_topic(broker, "missing")
        with pytest.raises(minikafka.InvalidPartitionError):
            read_topic(broker, "t", partition=3)
        with pytest.raises(TypeError, match="partition"):
            read_topic(broker, "t", partition="0")  # type: ignore[arg-type]


def test_read_topic_skips_what_retention_deleted(tmp_path: Path) -> None:
    with small_broker(tmp_path / "d", segment_bytes=4096, retention_bytes=8192) as broker:
        broker.create_topic("t")
        with minikafka.Producer(broker, linger_ms=0) as p:
            for i in range(200):
                p.send("t", b"%03d" % i + b"x" * 100)
        begin = broker.topic("t").beginning_offsets()[0]
        assert begin > 0
        records = read_topic(broker, "t")
        assert [r.offset for r in records] == list(range(begin, 200))


def test_small_broker_keeps_the_segment_size_of_an_options_object(tmp_path: Path) -> None:
    """An ``options=BrokerOptions(...)`` object is used as is: the test size
    used to be merged over it, replacing the segment size it set."""
    given = minikafka.BrokerOptions(segment_bytes=1 << 20, request_timeout=7.0)
    with small_broker(tmp_path / "a", options=given) as broker:
        assert broker.options == given
    with small_broker(tmp_path / "b", options=given, segment_bytes=8192) as broker:
        assert broker.options.segment_bytes == 8192
        assert broker.options.request_timeout == 7.0
    with small_broker(tmp_path / "c") as broker:
        assert broker.options.segment_bytes == TEST_SEGMENT_BYTES


def allocated(path: Path) -> int:
    return sum(os.stat(os.path.join(d, f)).st_blocks * 512
               for d, _, files in os.walk(path) for f in files)


def test_a_small_broker_with_40_partitions_allocates_a_few_megabytes(tmp_path: Path) -> None:
    with small_broker(tmp_path / "d") as broker:
        assert broker.options.segment_bytes == TEST_SEGMENT_BYTES
        for n in range(10):
            broker.create_topic(f"topic-{n}", partitions=4)
        with minikafka.Producer(broker) as p:
            for n in range(10):
                for part in range(4):
                    p.send(f"topic-{n}", b"x" * 100, partition=part)
        used = allocated(tmp_path / "d")
    # 16 MiB segments would allocate 643 MiB here (benchmarks/footprint.py).
    assert used < 16 * 2**20, used


def record_key(topic_partitions: int, kwargs: dict, meta: minikafka.RecordMetadata) -> tuple:
    headers = tuple((k, v) for k, v in kwargs.get("headers") or ())
    return (meta.partition, meta.offset, kwargs["key"], kwargs["value"], headers,
            kwargs.get("timestamp_ms", meta.timestamp))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mks.records(partitions=3), max_size=25))
def test_strategies_round_trip_through_a_broker(sends: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as d, small_broker(d) as broker:
        broker.create_topic("t", partitions=3)
        with minikafka.Producer(broker) as p:
            futures = [p.send("t", **kwargs) for kwargs in sends]
            p.flush()
            expected = sorted(record_key(3, kw, f.result()) for kw, f in zip(sends, futures, strict=True))
        got = [(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
               for r in read_topic(broker, "t")]
        assert got == expected


@given(mks.keys(), mks.values(), mks.headers(), mks.timestamps())
def test_each_strategy_draws_what_send_accepts(key, value, headers, ts) -> None:
    assert key is None or isinstance(key, bytes)
    assert value is None or isinstance(value, bytes)
    assert all(isinstance(n, str) and (v is None or isinstance(v, bytes)) for n, v in headers)
    assert mks.MIN_TIMESTAMP <= ts <= mks.MAX_TIMESTAMP
    minikafka.format.encode_headers(headers)  # accepted as send's headers


@settings(max_examples=30, deadline=None)
@given(st.lists(mks.values(min_size=1900, max_size=2200, nullable=False), min_size=1, max_size=8))
def test_values_near_the_record_size_limit(values: list[bytes]) -> None:
    """What docs/testing.md suggests for the size limit: a narrowed
    ``values()`` range draws on both sides of ``max_record_bytes``. Each
    send is written whole or refused with RecordTooLargeError, and a refusal
    never disturbs the records around it."""
    assert all(1900 <= len(v) <= 2200 for v in values)
    with tempfile.TemporaryDirectory() as d, small_broker(d) as broker:
        broker.create_topic("t")
        accepted = []
        with minikafka.Producer(broker, max_record_bytes=2048) as p:
            for value in values:
                try:
                    p.send("t", value)
                except minikafka.RecordTooLargeError:
                    assert len(value) > 2048 - 64  # refused only near or over the limit
                else:
                    accepted.append(value)
        assert all(len(v) <= 2048 for v in accepted)
        assert [r.value for r in read_topic(broker, "t")] == accepted


def test_records_strategy_fields() -> None:
    seen: set[str] = set()

    @settings(max_examples=100)
    @given(mks.records(partitions=2))
    def check(kwargs: dict) -> None:
        assert {"key", "value"} <= set(kwargs) <= {"key", "value", "headers", "timestamp_ms", "partition"}
        assert kwargs.get("partition", 0) in (0, 1)
        seen.update(kwargs)

    check()
    assert seen == {"key", "value", "headers", "timestamp_ms", "partition"}


def test_a_multi_process_test_with_the_kit(tmp_path: Path) -> None:
    """What docs/testing.md shows: a child process produces, the test reads it back."""
    path = tmp_path / "d"
    with small_broker(path) as broker:
        broker.create_topic("events", partitions=2)
        code = textwrap.dedent(f"""
            import minikafka
            from minikafka.testing import small_broker
            with small_broker({str(path)!r}) as b, minikafka.Producer(b) as p:
                for i in range(50):
                    p.send("events", b"%d" % i, key=b"user-%d" % (i % 5))
        """)
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       check=True, timeout=60)
        records = read_topic(broker, "events")
        assert sorted(int(r.value) for r in records) == list(range(50))
        for key in {r.key for r in records}:
            mine = [int(r.value) for r in records if r.key == key]
            assert mine == sorted(mine)  # one key, one partition, in order


@pytest.mark.parametrize(("timeout", "error"), [(float("nan"), minikafka.InvalidArgumentError),
                                                (-1.0, minikafka.InvalidArgumentError),
                                                ("1", TypeError), (True, TypeError)])
def test_read_topic_refuses_a_timeout_that_is_not_a_number_of_seconds(tmp_path: Path, timeout,
                                                                       error) -> None:
    """NaN compared as never expired: read_topic could wait forever. A bad
    type is a TypeError, as everywhere in the API."""
    with small_broker(tmp_path / "d") as broker:
        broker.create_topic("t")
        with pytest.raises(error, match="timeout"):
            read_topic(broker, "t", timeout=timeout)


@pytest.mark.parametrize("call", [
    lambda: mks.records(partitions=0), lambda: mks.records(partitions="3"),
    lambda: mks.records(partitions=True), lambda: mks.records(key_size=-1),
    lambda: mks.keys(max_size=-1), lambda: mks.values(max_size=1.5),
    lambda: mks.headers(max_headers=-1), lambda: mks.headers(max_value_size="8"),
    lambda: mks.values(min_size=-1), lambda: mks.keys(min_size=9, max_size=8),
])
def test_strategies_refuse_bad_arguments_naming_them(call) -> None:
    """At the call, naming the argument (records(partitions=0) failed only
    when drawing, with hypothesis' "max_value=-1 < min_value=0")."""
    with pytest.raises((TypeError, minikafka.InvalidArgumentError),
                       match=r"partitions|key_size|min_size|max_size|max_headers|max_value_size"):
        call()


def test_read_topic_leaves_out_records_appended_to_later_partitions_while_it_reads(
        tmp_path: Path) -> None:
    """"As of the call" for every partition: each partition's end offset was
    taken only when its turn came, so a record appended to partition 1 while
    partition 0 was read came back too."""
    with small_broker(tmp_path / "d") as broker:
        broker.create_topic("t", partitions=2)
        with minikafka.Producer(broker) as p:
            p.send("t", b"a", partition=0)
            p.send("t", b"b", partition=1)
        with minikafka.Producer(broker, linger_ms=0) as late:
            def append_while_reading(value: bytes) -> bytes:
                late.send("t", b"late", partition=1).result()
                return value

            records = read_topic(broker, "t", value_deserializer=append_while_reading)
        assert [(r.partition, r.value) for r in records] == [(0, b"a"), (1, b"b")]
        assert broker.topic("t").end_offsets()[1] > 2  # late records were written during the read


def test_read_topic_with_timeout_zero_reads_what_is_there(tmp_path: Path) -> None:
    """timeout=0 is accepted, and raised TimeoutError before the first poll
    of any topic holding a record; now it reads all that is readable, also
    more than one poll's worth."""
    with small_broker(tmp_path / "d") as broker:
        broker.create_topic("t", partitions=2)
        with minikafka.Producer(broker) as p:
            p.send_many("t", [b"%d" % i for i in range(1200)], partition=0)
            p.send("t", b"x", partition=1)
        assert len(read_topic(broker, "t", timeout=0)) == 1201


def test_read_topic_timeout_is_a_minikafka_timeout_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Records that never become readable: a minikafka.TimeoutError (a
    MiniKafkaError, as every timeout of the API; it was only the builtin),
    naming the partition, within the timeout."""
    import time
    with small_broker(tmp_path / "d") as broker:
        broker.create_topic("t")
        with minikafka.Producer(broker) as p:
            p.send("t", b"x")
        monkeypatch.setattr(minikafka.Consumer, "poll", lambda self, timeout=0.0, max_records=None: [])
        started = time.monotonic()
        with pytest.raises(minikafka.TimeoutError, match="t/0"):
            read_topic(broker, "t", timeout=0.3)
        assert time.monotonic() - started < 5


@settings(max_examples=10, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sends=st.lists(mks.records(partitions=2), min_size=1, max_size=8))
def test_strategies_and_read_topic_round_trip_on_both_backends(backend, sends: list[dict]) -> None:
    """What the strategies draw comes back as sent on a Kafka cluster too,
    read back by read_topic. timestamps() drew 0, which confluent-kafka
    sends as "now" (docs/scaling.md: use timestamps >= 1): the record came
    back with the send time; headers() drew names with NUL characters,
    which librdkafka cut there."""
    import uuid
    topic = f"t-{uuid.uuid4().hex[:12]}"  # a topic per example (the fixture is shared)
    backend.create_topic(topic, partitions=2)
    with minikafka.Producer(backend) as p:
        futures = [p.send(topic, **kwargs) for kwargs in sends]
        p.flush()
        expected = sorted(record_key(2, kw, f.result()) for kw, f in zip(sends, futures, strict=True))
    got = [(r.partition, r.offset, r.key, r.value, r.headers, r.timestamp)
           for r in read_topic(backend, topic, timeout=30)]
    assert got == expected


def test_strategies_draw_nothing_a_kafka_cluster_would_change() -> None:
    """Timestamp 0 means "now" to confluent-kafka, and librdkafka cuts a
    header name at a NUL character: the strategies drew both."""
    from hypothesis import find
    from hypothesis.errors import NoSuchExample
    with pytest.raises(NoSuchExample):
        find(mks.timestamps(), lambda ts: ts < 1)
    with pytest.raises(NoSuchExample):
        find(mks.headers(), lambda hs: any("\x00" in name for name, _ in hs))


def test_read_topic_names_a_broker_that_is_not_one(tmp_path: Path) -> None:
    """A path instead of a broker gave "AttributeError: 'str' object has no
    attribute 'topic'"."""
    with pytest.raises(TypeError, match=r"read_topic needs a minikafka\.Broker .* not str"):
        read_topic(str(tmp_path), "t")
    with pytest.raises(TypeError, match="not PosixPath"):
        read_topic(tmp_path, "t")
