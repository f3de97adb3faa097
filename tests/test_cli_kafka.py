"""The command line given ``-d kafka://...``: the cluster, not a local
directory named ``kafka:``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from cli_helpers import cli


def test_topics_produce_consume_on_a_kafka_url(kafka_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    r = cli("-d", kafka_url, "topics", "create", name, "-p", "2")
    assert r.status == 0, r.err
    assert name in cli("-d", kafka_url, "topics", "list").lines
    r = cli("-d", kafka_url, "produce", name, "-K", ":", stdin=b"a:1\nb:2\n")
    assert r.status == 0, r.err
    r = cli("-d", kafka_url, "consume", name, "-e", "-f", "%k=%s\n")
    assert r.status == 0, r.err
    assert sorted(r.lines) == ["a=1", "b=2"]
    assert cli("-d", kafka_url, "topics", "delete", name).status == 0
    assert os.listdir(tmp_path) == []  # before: a directory "kafka:" held all of it


def test_check_on_a_kafka_url_is_one_clear_line(kafka_url: str) -> None:
    r = cli("-d", kafka_url, "check")
    assert r.status == 1
    assert r.err == ("minikafka: error: check works on a data directory only, "
                     f"not on a Kafka cluster ({kafka_url})\n")


def test_topics_describe_and_alter_on_a_kafka_url(kafka_url: str) -> None:
    """describe read the directory's topic config and segment files, which a
    Kafka topic has not (AttributeError); alter called a method the Kafka
    broker has not. Now: offsets per partition, and one line saying where
    retention is changed."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert cli("-d", kafka_url, "topics", "create", name, "-p", "2").status == 0
    try:
        assert cli("-d", kafka_url, "produce", name, "-p", "1", stdin=b"a\nb\n").status == 0
        r = cli("-d", kafka_url, "topics", "describe", name)
        assert r.status == 0, r.err
        assert r.lines[0] == f"Topic: {name}  PartitionCount: 2"
        assert [line.split() for line in r.lines[1:]] == [
            ["PARTITION", "BEGIN-OFFSET", "END-OFFSET", "RECORDS"],
            ["0", "0", "0", "0"], ["1", "0", "2", "2"]]
        r = cli("-d", kafka_url, "topics", "alter", name, "--retention-ms", "1000")
        assert r.status == 1
        assert r.err.startswith("minikafka: error: topics alter works on a data directory only")
        assert len(r.err.splitlines()) == 1
    finally:
        cli("-d", kafka_url, "topics", "delete", name)


# -- the same commands on a directory and on kafka:// ---------------------------------------------

#: Group and fetch settings that keep a CLI consumer's join quick (KAFKA.md:
#: a join takes about half a session); librdkafka takes them from the URL.
FAST = "?session.timeout.ms=1500&heartbeat.interval.ms=300&fetch.wait.max.ms=50"


@pytest.fixture(params=["dir", "kafka"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``-d`` of each backend: a data directory, and the test run's Kafka."""
    if request.param == "dir":
        return str(tmp_path / "data")
    return f"kafka://{request.getfixturevalue('kafka_bootstrap')}{FAST}"


def _topic(where: str, partitions: int = 1) -> str:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    r = cli("-d", where, "topics", "create", name, "-p", partitions)
    assert r.status == 0, r.err
    return name


def _place(where: str) -> str:
    """How an error names the broker: ``in DIR`` or ``on URL``."""
    return f"on {where}" if where.startswith("kafka://") else f"in {where}"


def test_groups_describe_on_both_backends(where: str) -> None:
    """On kafka:// the header said "generation -1", describe_group's stand-in
    for a number Kafka's DescribeGroups does not report, and an unknown
    group was an AttributeError (the Kafka broker has no path). Now the
    generation is "-" there, and an unknown group is the directory's line."""
    topic = _topic(where, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    assert cli("-d", where, "produce", topic, "-p", "0", stdin=b"a\nb\nc\n").status == 0
    r = cli("-d", where, "consume", topic, "-g", group, "-c", "2", "-f", "")
    assert r.status == 0, r.err
    r = cli("-d", where, "groups", "describe", group)
    assert r.status == 0, r.err
    head = r.lines[0].split("  ")
    assert head[0] == f"GROUP {group}" and head[2] == "0 member(s)"
    if where.startswith("kafka://"):
        assert head[1] == "generation -"
    else:
        assert head[1].startswith("generation ") and head[1].split()[1].isdigit()
    assert [line.split() for line in r.lines[1:]] == [
        ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER", "HOST", "PID"],
        [topic, "0", "2", "3", "1", "-", "-", "-"]]
    for action in ("describe", "delete"):
        r = cli("-d", where, "groups", action, "absent-group")
        assert (r.status, r.out) == (1, b"")
        assert r.err == f"minikafka: error: group 'absent-group' does not exist {_place(where)}\n"


def test_groups_describe_shows_no_pid_for_a_kafka_member(kafka_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka reports a member's id and host but no process id (describe_group
    gives 0), which was printed as PID 0. (Tansu 0.6 reports no members at
    all, so the member is added here as a Kafka broker describes one.)"""
    from minikafka.group_state import GroupDescription, MemberDescription
    from minikafka.kafka.admin import KafkaBroker
    from minikafka.records import TopicPartition

    topic = _topic(kafka_url)
    group = f"g-{uuid.uuid4().hex[:8]}"
    assert cli("-d", kafka_url, "produce", topic, stdin=b"a\n").status == 0
    real = KafkaBroker.describe_group

    def with_member(self: KafkaBroker, group_id: str) -> GroupDescription:
        desc = real(self, group_id)
        tp = TopicPartition(topic, 0)
        member = MemberDescription(member_id="rdkafka-1", host="/127.0.0.1", pid=0, topics=(topic,),
                                   assignment=(tp,), last_heartbeat_ms=None, last_poll_ms=None)
        return GroupDescription(group_id=desc.group_id, generation=desc.generation,
                                members=(member,), committed=desc.committed)

    monkeypatch.setattr(KafkaBroker, "describe_group", with_member)
    monkeypatch.setattr(KafkaBroker, "list_groups", lambda self: [group])
    r = cli("-d", kafka_url, "groups", "describe", group)
    assert r.status == 0, r.err
    assert r.lines[0] == f"GROUP {group}  generation -  1 member(s)"
    assert r.lines[2].split() == [topic, "0", "-", "1", "-", "rdkafka-1", "/127.0.0.1", "-"]


def test_groups_reset_makes_a_new_group_on_both_backends(where: str) -> None:
    """``groups reset --execute`` of a group nobody has run yet makes it with
    those offsets, as ``kafka-consumer-groups --reset-offsets`` does; on
    kafka:// it said the group does not exist. The dry run makes nothing."""
    topic = _topic(where, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    assert cli("-d", where, "produce", topic, "-p", "0", stdin=b"a\nb\nc\n").status == 0
    r = cli("-d", where, "groups", "reset", group, "--topic", topic, "--to-offset", "1")
    assert r.status == 0, r.err
    assert group not in cli("-d", where, "groups", "list").lines
    r = cli("-d", where, "groups", "reset", group, "--topic", topic, "--to-offset", "1", "--execute")
    assert r.status == 0, r.err
    assert [line.split() for line in r.lines] == [
        ["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
        [topic, "0", "-", "1"], [topic, "1", "-", "0"]]
    assert group in cli("-d", where, "groups", "list").lines
    r = cli("-d", where, "consume", topic, "-g", group, "-c", "2", "-f", "%s\n")
    assert (r.status, r.lines) == (0, ["b", "c"]), r.err


def test_consume_prints_the_same_records_alike_on_both_backends(kafka_url: str, tmp_path: Path) -> None:
    """``consume -J`` and ``-f`` print each field the same from a directory and
    from Kafka: binary and null header values, a repeated header name, a
    tombstone, an empty key, and the timestamps as given."""
    import minikafka

    name = f"cli-{uuid.uuid4().hex[:8]}"
    outputs = []
    for where in (str(tmp_path / "data"), kafka_url):
        with minikafka.connect(where) as b:
            b.create_topic(name, partitions=2)
            with minikafka.Producer(b) as p:
                p.send(name, b"v1", key=b"k", partition=0, timestamp_ms=1_700_000_000_123,
                       headers=[("h", b"\x00\xff"), ("h", b"two"), ("n", None)])
                p.send(name, "välue", key="k", partition=0, timestamp_ms=1_700_000_000_124,
                       headers=[("utf", "ü")])
                p.send(name, b"\x00\x01\xfe", partition=1, timestamp_ms=5)
                p.send(name, None, key=b"tomb", partition=1, timestamp_ms=6)
                p.send(name, b"", key=b"", partition=1, timestamp_ms=7)
        printed = []
        for fmt in (["-J"], ["-f", r"%t|%p|%o|%k|%s|%h|%T\n"]):
            r = cli("-d", where, "consume", name, "-e", *fmt)
            assert r.status == 0, r.err
            printed.append(sorted(r.out.splitlines()))  # -f prints values' bytes as they are
        outputs.append(printed)
    cli("-d", kafka_url, "topics", "delete", name)
    assert outputs[0] == outputs[1]
    assert outputs[0][0][0] == (
        f'{{"topic": "{name}", "partition": 0, "offset": 0, "timestamp": 1700000000123, "key": "k", '
        '"value": "v1", "headers": [["h", {"base64": "AP8="}], ["h", "two"], ["n", null]]}').encode()
    assert outputs[0][1][2] == f"{name}|1|0||".encode() + b"\x00\x01\xfe||5"


def test_produce_a_line_too_large_writes_the_lines_before_it_once_on_both_backends(where: str) -> None:
    """On kafka:// a line over librdkafka's message.max.bytes (1000000, below
    the 1 MiB of max_record_bytes) made ``send_many`` raise after the lines
    before it in the chunk were queued, and the command wrote them a second
    time while finding the bad line: ``l1 l2 l1 l2``. Now ``send_many``
    checks every record against the backend's limit before it sends any,
    and the error names the limit that applied."""
    topic = _topic(where)
    big = b"x" * 999_990  # under 1 MiB, over what librdkafka takes by default
    r = cli("-d", where, "produce", topic, stdin=b"l1\nl2\n" + big + b"\nl4\n")
    if where.startswith("kafka://"):
        assert r.status == 1, r.err
        assert r.err.startswith("minikafka: error: line 3 (999990 bytes) is too large for one record")
        assert "at most 999984 bytes" in r.err and len(r.err.splitlines()) == 1
        expected = ["l1", "l2"]
    else:
        assert r.status == 0, r.err
        expected = ["l1", "l2", big.decode(), "l4"]
    r = cli("-d", where, "consume", topic, "-e")
    assert r.status == 0, r.err
    assert r.lines == expected


def test_topics_create_with_a_partition_count_out_of_range_is_one_line_on_both_backends(where: str) -> None:
    """On kafka:// ``-p 99999999999999999999`` reached confluent-kafka's
    NewTopic and came back as ``OverflowError: Python int too large to
    convert to C long``, reported as a bug. Now it is refused before any
    request, naming the range (a directory's: 1 to 10000; Kafka's: an int32)."""
    name = f"cli-{uuid.uuid4().hex[:8]}"
    r = cli("-d", where, "topics", "create", name, "-p", "99999999999999999999")
    assert (r.status, r.out) == (1, b"")
    assert r.err.startswith("minikafka: error: partitions must be between 1 and "), r.err
    assert "OverflowError" not in r.err and len(r.err.splitlines()) == 1
    if where.startswith("kafka://"):
        assert name not in cli("-d", where, "topics", "list").lines


@pytest.mark.parametrize(("group", "message"), [
    ("", "group_id must not be empty"),
    ("x\udcff", "group_id 'x\\udcff' is not valid Unicode (surrogates not allowed)"),
])
def test_groups_reset_of_a_bad_group_id_is_the_same_line_on_both_backends(where: str, group: str,
                                                                          message: str) -> None:
    """``groups reset`` of an empty group id said ``'group_id' cannot be
    empty`` on kafka://, and of one that is not valid Unicode (a non-UTF-8
    argument) ``Group name is mandatory for list consumer offset
    operation``: confluent-kafka's words. Now the directory's, on both."""
    topic = _topic(where)
    r = cli("-d", where, "groups", "reset", group, "--topic", topic, "--to-earliest", "--execute")
    assert (r.status, r.out) == (1, b"")
    assert r.err == f"minikafka: error: {message}\n"
