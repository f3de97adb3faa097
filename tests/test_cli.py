"""The command line, in-process: every command, flag and output form.
(tests/test_cli_script.py runs the real console script in subprocesses.)"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minikafka
from minikafka.cli.output import compile_format, json_line
from minikafka.cli.progress import Progress, render
from minikafka.records import Record, TopicPartition
from minikafka.testing import read_topic
from tests.cli_helpers import cli


@pytest.fixture
def d(tmp_path):
    return tmp_path / "data"


def produce(d, topic, lines, *flags):
    r = cli("-d", d, "produce", topic, *flags, stdin=b"".join(line + b"\n" for line in lines))
    assert r.status == 0, r.err
    return r


def test_topics_round_trip(d):
    assert cli("-d", d, "topics", "create", "a", "-p", "3", "--retention-ms", "60000").status == 0
    assert cli("-d", d, "topics", "create", "b").status == 0
    assert cli("-d", d, "topics", "list").lines == ["a", "b"]
    r = cli("-d", d, "topics", "describe", "a")
    assert "PartitionCount: 3" in r.lines[0] and "retention_ms=60000" in r.lines[0]
    assert [line.split()[:4] for line in r.lines[2:]] == [[str(p), "0", "0", "0"] for p in range(3)]
    r = cli("-d", d, "topics", "alter", "a", "--retention-ms", "none", "--retention-bytes", "1000000")
    assert r.status == 0 and "retention_ms=None retention_bytes=1000000" in r.text
    with minikafka.Broker(d) as broker:
        assert broker.topic("a").config.retention_bytes == 1000000
        assert broker.topic("a").config.retention_ms is None
    r = cli("-d", d, "topics", "create", "a")
    assert r.status == 1 and r.err.count("\n") == 1 and "already exists" in r.err
    assert cli("-d", d, "topics", "delete", "a").status == 0
    assert cli("-d", d, "topics", "list").lines == ["b"]
    assert cli("-d", d, "topics", "alter", "b").status == 2  # nothing to change


def test_produce_consume_keys_headers_partitions(d):
    cli("-d", d, "topics", "create", "t", "-p", "4")
    produce(d, "t", [b"k1:v1", b"k2:v2:with:colons", b"nokey"], "-K", ":")
    produce(d, "t", [b"h1", b""], "-H", "a=1", "-H", "b=x=y", "-p", "3")
    r = cli("-d", d, "consume", "t", "-e", "-J")
    recs = [json.loads(line) for line in r.lines]
    assert r.status == 0 and len(recs) == 5
    by_value = {x["value"]: x for x in recs}
    with minikafka.Broker(d) as broker:
        t = broker.topic("t")
        assert by_value["v1"]["key"] == "k1" and by_value["v1"]["partition"] == t.partition_for(b"k1")
        assert by_value["v2:with:colons"]["key"] == "k2"
    assert by_value["nokey"]["key"] is None
    assert by_value["h1"]["partition"] == 3 and by_value["h1"]["headers"] == [["a", "1"], ["b", "x=y"]]
    assert by_value[""]["partition"] == 3  # an empty line is an empty record
    assert set(recs[0]) == {"topic", "partition", "offset", "timestamp", "key", "value", "headers"}
    r = cli("-d", d, "consume", "t", "-e", "-p", "3")
    assert r.lines == ["h1", ""]


def test_json_writes_non_utf8_bytes_as_base64(d):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"\xff\xfe:ok", "é:ü".encode()], "-K", ":")
    recs = [json.loads(line) for line in cli("-d", d, "consume", "t", "-e", "-J").lines]
    assert recs[0]["key"] == {"base64": "//4="} and recs[0]["value"] == "ok"
    assert recs[1]["key"] == "é" and recs[1]["value"] == "ü"


def test_every_offset_form_and_count(d):
    cli("-d", d, "topics", "create", "t", "-p", "2")
    produce(d, "t", [b"a%d" % i for i in range(10)], "-p", "0")
    time.sleep(0.01)
    middle = int(time.time() * 1000)
    time.sleep(0.01)
    produce(d, "t", [b"b%d" % i for i in range(10)], "-p", "0")
    produce(d, "t", [b"c%d" % i for i in range(3)], "-p", "1")

    def values(*flags):
        r = cli("-d", d, "consume", "t", "-e", "-p", "0", *flags)
        assert r.status == 0, r.err
        return r.lines

    assert len(values()) == 20 and values("-o", "beginning") == values()
    assert values("-o", "end") == []
    assert values("-o", "15") == [f"b{i}" for i in range(5, 10)]
    assert values("-o", "-3") == ["b7", "b8", "b9"]
    assert values("-o", "-100") == values()
    # Past the end: from the end, as Kafka's "offset out of range" is not a reset to 0
    # (it printed the whole partition from offset 0).
    assert values("-o", "20") == [] and values("-o", "100") == []
    assert values("-o", "99999999999999999999999") == []
    assert values("-o", f"@{middle}") == [f"b{i}" for i in range(10)]
    assert values("-o", f"@{middle + 10**9}") == []
    assert values("-c", "4") == ["a0", "a1", "a2", "a3"]
    assert values("-o", "-2", "-c", "1") == ["b8"]
    # without -p, -N is per partition
    r = cli("-d", d, "consume", "t", "-e", "-o", "-1", "-f", "%p:%s\n")
    assert sorted(r.lines) == ["0:b9", "1:c2"]
    for bad in ("middle", "@x", "1.5"):
        r = cli("-d", d, "consume", "t", "-e", "-o", bad)
        assert r.status == 2 and "-o" in r.err
    # A timestamp past int64 was a runtime error naming a TopicPartition the user never typed.
    r = cli("-d", d, "consume", "t", "-e", "-o", f"@{2**63}")
    assert r.status == 2 and r.err.splitlines()[-1] == (
        f"minikafka: error: -o @{2**63}: a timestamp is at most 2**63 - 1 (ms since the epoch)")
    assert values("-o", f"@{2**63 - 1}") == []


def test_format_tokens(d):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"key:value"], "-K", ":", "-H", "n=v")
    with minikafka.Broker(d) as broker, minikafka.Producer(broker) as producer:
        producer.send("t", None, partition=0, timestamp_ms=1234)
    r = cli("-d", d, "consume", "t", "-e", "-f", r"%t|%p|%o|%k|%s|%h|%K|%S|%%\t%T\n")
    first, second = r.lines
    assert first.startswith("t|0|0|key|value|n=v|3|5|%\t")
    assert second == "t|0|1||||-1|-1|%\t1234"
    assert cli("-d", d, "consume", "t", "-e", "-f", "%x").status == 2
    rec = Record("t", 0, 7, 1, None, b"v", (("a", None),))
    assert compile_format("%o %h %s")(rec) == b"7 a v"
    assert compile_format(r"\\%s\0")(rec) == b"\\v\0"
    # An escape is literal text, never a token; a backslash before % is itself.
    assert compile_format(r"\x25s|\%s|%%s\x41%s")(rec) == b"%s|\\v|%sAv"


def test_group_commits_describe_lag_and_delete(d):
    cli("-d", d, "topics", "create", "t", "-p", "2")
    produce(d, "t", [b"a", b"b", b"c"], "-p", "0")
    produce(d, "t", [b"x"], "-p", "1")
    r = cli("-d", d, "consume", "t", "-g", "g", "-c", "2", "-p", "0")
    assert r.status == 2  # -p with -g
    r = cli("-d", d, "consume", "t", "-g", "g", "-c", "2")
    assert r.status == 0 and len(r.lines) == 2
    assert cli("-d", d, "groups", "list").lines == ["g"]
    with minikafka.Broker(d) as broker:
        committed = broker.committed_offsets("g")
    assert sum(committed.values()) == 2  # exactly what was printed
    rows = [line.split() for line in cli("-d", d, "groups", "describe", "g").lines[2:]]
    lag = {(row[0], int(row[1])): row for row in rows}
    for tp, offset in committed.items():
        row = lag[(tp.topic, tp.partition)]
        end = 3 if tp.partition == 0 else 1
        assert row[2:5] == [str(offset), str(end), str(end - offset)] and row[5] == "-"
    # the rest, then nothing left: lag 0
    r = cli("-d", d, "consume", "t", "-g", "g", "-e")
    assert len(r.lines) == 2
    rows = [line.split() for line in cli("-d", d, "groups", "describe", "g").lines[2:]]
    assert [row[4] for row in rows] == ["0", "0"]
    assert cli("-d", d, "groups", "describe", "nope").status == 1
    assert cli("-d", d, "groups", "delete", "g").status == 0
    assert cli("-d", d, "groups", "list").lines == []
    assert cli("-d", d, "groups", "delete", "g").status == 1


def test_describe_shows_a_live_member_and_reset_refuses(d):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"a", b"b"])
    with minikafka.Broker(d) as broker, minikafka.Consumer(
        broker, "t", group_id="g", auto_offset_reset="earliest"
    ) as consumer:
        assert len(consumer.poll(timeout=5)) == 2
        consumer.commit()
        r = cli("-d", d, "groups", "describe", "g")
        row = r.lines[2].split()
        [member] = broker.describe_group("g").members
        assert row == ["t", "0", "2", "2", "0", member.member_id, member.host, str(os.getpid())]
        for flags in (["--to-earliest"], ["--to-earliest", "--execute"]):
            r = cli("-d", d, "groups", "reset", "g", "--topic", "t", *flags)
            assert r.status == 1 and "live member" in r.err and r.err.count("\n") == 1
        r = cli("-d", d, "groups", "delete", "g")
        assert r.status == 1 and "live member" in r.err


@pytest.mark.parametrize(("option", "expect"), [
    (["--to-earliest"], [0, 0]),
    (["--to-latest"], [5, 2]),
    (["--to-offset", "3"], [3, 2]),  # kept within each partition's log
    (["--shift-by", "-1"], [1, 0]),  # from the committed 2 and 1
    (["--shift-by", "10"], [5, 2]),
    (["--to-datetime", "MIDDLE"], [3, 2]),
])
def test_reset_dry_run_then_execute(d, option, expect):
    cli("-d", d, "topics", "create", "t", "-p", "2")
    produce(d, "t", [b"a", b"b", b"c"], "-p", "0")
    produce(d, "t", [b"x", b"y"], "-p", "1")
    time.sleep(0.01)
    middle = datetime.now(UTC)
    time.sleep(0.01)
    produce(d, "t", [b"d", b"e"], "-p", "0")
    with minikafka.Broker(d) as broker:
        broker.alter_group_offsets("g", {TopicPartition("t", 0): 2, TopicPartition("t", 1): 1})
    option = [middle.isoformat() if o == "MIDDLE" else o for o in option]
    r = cli("-d", d, "groups", "reset", "g", "--topic", "t", *option)
    assert r.status == 0 and "Dry run" in r.err
    assert [line.split() for line in r.lines[1:]] == [
        ["t", "0", "2", str(expect[0])], ["t", "1", "1", str(expect[1])]]
    with minikafka.Broker(d) as broker:
        assert broker.committed_offsets("g") == {TopicPartition("t", 0): 2, TopicPartition("t", 1): 1}
    r = cli("-d", d, "groups", "reset", "g", "--topic", "t", *option, "--execute")
    assert r.status == 0 and "Dry run" not in r.err
    with minikafka.Broker(d) as broker:
        assert broker.committed_offsets("g") == {TopicPartition("t", 0): expect[0],
                                                 TopicPartition("t", 1): expect[1]}


def test_reset_usage_errors(d):
    cli("-d", d, "topics", "create", "t")
    assert cli("-d", d, "groups", "reset", "g", "--topic", "t").status == 2  # no option
    assert cli("-d", d, "groups", "reset", "g", "--topic", "t", "--to-earliest", "--to-latest").status == 2
    r = cli("-d", d, "groups", "reset", "g", "--topic", "t", "--to-datetime", "yesterday")
    assert r.status == 2 and "ISO 8601" in r.err
    r = cli("-d", d, "groups", "reset", "g", "--topic", "t", "--to-datetime", "1969-12-31T23:00:00Z")
    assert r.status == 2 and r.err.splitlines()[-1] == (
        "minikafka: error: --to-datetime '1969-12-31T23:00:00Z': before 1970-01-01T00:00:00Z, "
        "where record timestamps start")
    assert cli("-d", d, "groups", "reset", "g", "--topic", "nope", "--to-earliest").status == 1


def test_dump_text_and_json(d):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"k:v1", b"k:v2"], "-K", ":")
    seg = d / "topics" / "t" / "0" / "00000000000000000000.log"
    r = cli("dump", seg)
    assert r.status == 0
    assert r.lines[0].startswith(f"segment {seg}: base offset 0") and "active" in r.lines[0]
    assert r.lines[1].startswith("batch position 64 base offset 0 count 2") and "checksum ok" in r.lines[1]
    assert r.lines[2].startswith("  offset 0 timestamp") and 'key "k" value "v1"' in r.lines[2]
    assert "end of log" in r.lines[-1]
    objs = [json.loads(line) for line in cli("dump", seg, "-J").lines]
    assert [o["type"] for o in objs] == ["segment", "batch", "end"]
    assert objs[1]["checksum_ok"] and [x["value"] for x in objs[1]["records"]] == ["v1", "v2"]
    with open(seg, "r+b") as f:
        f.seek(64 + 50)
        f.write(b"\x00\x01")
    r = cli("dump", seg)
    assert r.status == 1 and "INVALID" in r.lines[-1] and "position 64" in r.lines[-1]
    assert cli("dump", d / "nope.log").status == 1


def test_check_command(d):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"a", b"b"])
    r = cli("-d", d, "check")
    assert r.status == 0 and "no problem" in r.lines[-1]
    index = d / "topics" / "t" / "0" / "00000000000000000000.index"
    index.unlink()
    r = cli("-d", d, "check")
    assert r.status == 1 and r.lines[0] == f"{index}: missing"
    r = cli("-d", d, "check", "--repair")
    assert r.status == 0, r.text
    assert f"will repair: {index}: rebuild the index from the log" in r.lines
    assert f"repaired: {index}: rebuild the index from the log" in r.lines
    assert index.exists() and cli("-d", d, "check").status == 0


def test_errors_are_one_line_and_usage_errors_exit_2(d, monkeypatch):
    r = cli("topics", "list")
    assert r.status == 2 and "MINIKAFKA_DATA" in r.err
    monkeypatch.setenv("MINIKAFKA_DATA", str(d))
    r = cli("topics", "list")
    assert r.status == 1 and r.err.count("\n") == 1 and "does not exist" in r.err
    assert not d.exists()  # a read command never creates the directory
    assert cli("topics", "create", "t").status == 0  # from the environment
    assert cli("topics", "list").lines == ["t"]
    assert cli("topics", "list", "-d", d).lines == ["t"]  # -d after the command
    r = cli("produce", "nope", stdin=b"x\n")
    assert r.status == 1 and r.err == "minikafka: error: topic 'nope' does not exist\n"
    r = cli("consume", "t", "-p", "5", "-e")
    assert r.status == 1 and "partitions 0..0" in r.err
    assert cli("bogus").status == 2
    assert cli("produce", "t", "-H", "novalue", stdin=b"x\n").status == 2
    with pytest.raises(minikafka.TopicNotFoundError):
        cli("--debug", "produce", "nope", stdin=b"x\n")


def test_produce_file_and_interleaved_input(d, tmp_path):
    cli("-d", d, "topics", "create", "t")
    src = tmp_path / "in.txt"
    src.write_bytes(b"".join(b"line %d\n" % i for i in range(100000)) + b"last without newline")
    assert cli("-d", d, "produce", "t", "--file", src).status == 0
    r = cli("-d", d, "consume", "t", "-e", "-o", "-2")
    assert r.lines == ["line 99999", "last without newline"]


def test_help_on_every_command():
    for argv in (["--help"], ["topics", "--help"], ["produce", "--help"], ["consume", "--help"],
                 ["groups", "--help"], ["dump", "--help"], ["check", "--help"],
                 *(["topics", a, "--help"] for a in ("list", "create", "describe", "delete", "alter")),
                 *(["groups", a, "--help"] for a in ("list", "describe", "reset", "delete"))):
        r = cli(*argv)
        assert r.status == 0 and r.text.startswith("usage: minikafka"), argv


def test_progress_renderer():
    assert render("check", 50, 100, 2.0, width=10) == "check [#####.....]  50% 50 B/100 B 25 B/s"
    assert render("produce", 3_000_000, 0, 1.0) == "produce 3.0 MB 3.0 MB/s"
    assert render("x", 200, 100, 0.0, width=4).startswith("x [####] 100%")

    class Tty:
        def __init__(self):
            self.data = ""

        def isatty(self):
            return True

        def write(self, s):
            self.data += s

        def flush(self):
            pass

    now = [0.0]
    tty = Tty()
    bar = Progress("p", stream=tty, clock=lambda: now[0])  # type: ignore[arg-type]
    bar.update(1, 10)
    bar.update(2, 10)  # within the interval: not drawn
    now[0] = 1.0
    bar.update(5, 10)
    assert tty.data.count("\r") == 2 and "50%" in tty.data
    bar.close()
    assert tty.data.endswith("\r")

    class Pipe(Tty):
        def isatty(self):
            return False

    pipe = Pipe()
    quiet = Progress("p", stream=pipe)  # type: ignore[arg-type]
    quiet.update(1, 2)
    quiet.close()
    assert pipe.data == ""


def _from_json(x):
    if x is None:
        return None
    if isinstance(x, dict):
        import base64

        return base64.b64decode(x["base64"])
    return x.encode()


@settings(max_examples=200, deadline=None)
@given(key=st.none() | st.binary(max_size=20), value=st.none() | st.binary(max_size=50),
       headers=st.lists(st.tuples(st.text(max_size=5), st.none() | st.binary(max_size=10)), max_size=3))
def test_json_lines_give_back_every_byte(key, value, headers):
    rec = Record("t", 1, 2, 3, key, value, tuple(headers))
    obj = json.loads(json_line(rec))
    assert _from_json(obj["key"]) == key and _from_json(obj["value"]) == value
    assert [(n, _from_json(v)) for n, v in obj["headers"]] == headers


@pytest.mark.parametrize(("sep", "line", "key", "value"), [
    ("→", "a→b→c", b"a", b"b\xe2\x86\x92c"),
    ("é", "xéy", b"x", b"y"),
    (r"\t", "k\tv", b"k", b"v"),
    (r"\x1f", "k\x1fv", b"k", b"v"),
    ("\\", "k\\v", b"k", b"v"),          # a lone backslash is itself, as in kcat
    (r"\q", "k\\qv", b"k", b"v"),        # so is one before a character with no escape
])
def test_key_separator_is_taken_as_typed(d, sep, line, key, value):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [line.encode()], "-K", sep)
    with minikafka.Broker(d) as broker:
        [r] = read_topic(broker, "t")
    assert (r.key, r.value) == (key, value)


@pytest.mark.parametrize("sep", [r"\x", r"\x4", r"a\xzz"])
def test_bad_escape_in_key_separator_is_a_usage_error(d, sep):
    cli("-d", d, "topics", "create", "t")
    r = cli("-d", d, "produce", "t", "-K", sep, stdin=b"a\n")
    assert r.status == 2 and "-K: bad escape" in r.err and "Traceback" not in r.err
    r = cli("-d", d, "consume", "t", "-e", "-f", sep)
    assert r.status == 2 and "-f: bad escape" in r.err


def test_format_hex_escape_and_non_ascii_literal(d):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"v"])
    assert cli("-d", d, "consume", "t", "-e", "-f", r"%s\x1f→\n").out == "v\x1f→\n".encode()


def test_an_unexpected_error_is_one_line_and_debug_shows_it(d, monkeypatch):
    import minikafka.cli.commands.topics as topics

    def broken(args):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(topics, "list_topics", broken)
    cli("-d", d, "topics", "create", "t")
    r = cli("-d", d, "topics", "list")
    assert r.status == 1 and "Traceback" not in r.err
    assert r.err == "minikafka: error: TypeError: unsupported operand (--debug shows the traceback)\n"
    with pytest.raises(TypeError):
        cli("-d", d, "--debug", "topics", "list")


@pytest.mark.parametrize("flags", [[], ["-K", ":"], ["-H", "h=1"]])
def test_a_line_too_large_is_named_and_the_lines_before_it_are_written(d, flags):
    cli("-d", d, "topics", "create", "t", "--segment-bytes", "65536")  # records up to about 64 KiB
    big = b"k:" + b"x" * 100_000  # in one chunk with the lines around it
    lines = [b"k:a", b"k:b", b"k:c", big, b"k:after", b"k:more"]
    r = cli("-d", d, "produce", "t", *flags, stdin=b"\n".join(lines) + b"\n")
    assert r.status == 1 and r.err.count("\n") == 1
    assert r.err.startswith(f"minikafka: error: line 4 ({len(big)} bytes) is too large for one record")
    assert "the 3 lines before it were written" in r.err
    with minikafka.Broker(d) as broker:
        records = read_topic(broker, "t")
        limit = broker.topic("t").config.max_record_bytes  # what a 64 KiB segment holds
    # The limit that applied, and that it counts the framing too (not "1048576").
    assert f"headers with 20 bytes of record framing may take at most {limit} bytes" in r.err, r.err
    assert [r.value for r in records] == ([b"a", b"b", b"c"] if flags[:1] == ["-K"] else lines[:3])


def test_dump_of_a_directory_or_a_short_file_is_one_clear_line(d, tmp_path):
    cli("-d", d, "topics", "create", "t")
    r = cli("dump", d)
    assert r.status == 1 and r.err == (f"minikafka: error: {d}: is a directory; dump takes one segment "
                                       f"file (topics/<topic>/<partition>/<base offset>.log)\n")
    short = tmp_path / "short.log"
    short.write_bytes(b"x" * 10)
    r = cli("dump", short)
    assert r.status == 1 and r.err == f"minikafka: error: {short}: segment file is only 10 bytes\n"
    assert short.read_bytes() == b"x" * 10


def test_a_usage_error_shows_the_command_usage(d):
    cli("-d", d, "topics", "create", "t")
    r = cli("-d", d, "produce", "t", "-K", "", stdin=b"a\n")
    assert r.status == 2 and r.err.startswith("usage: minikafka produce ")
    assert r.err.splitlines()[-1] == "minikafka: error: -K: the separator must not be empty"
    r = cli("-d", d, "produce", "t", "-K", r"a\n", stdin=b"a\nb\n")  # never found within a line
    assert r.status == 2 and "-K: the separator must not contain a newline" in r.err
    # a sub-command's own usage too, not its command's ("minikafka groups [-h] ... ACTION")
    r = cli("-d", d, "groups", "reset", "g", "--topic", "t", "--to-datetime", "noon")
    assert r.status == 2 and r.err.startswith("usage: minikafka groups reset "), r.err
    r = cli("-d", d, "topics", "alter", "t")
    assert r.status == 2 and r.err.startswith("usage: minikafka topics alter "), r.err


@pytest.mark.parametrize(("argv", "message"), [
    (["consume", "t", "-c", "x"], "argument -c/--count: not an integer: 'x'"),
    (["topics", "create", "u", "-p", "two"], "argument -p/--partitions: not an integer: 'two'"),
    (["topics", "alter", "t", "--retention-ms", "abc"],
     "argument --retention-ms: not an integer: 'abc' (or none for no limit)"),
])
def test_a_bad_number_is_named_in_plain_words(d, argv, message):
    cli("-d", d, "topics", "create", "t")
    r = cli("-d", d, *argv)
    assert r.status == 2 and r.err.splitlines()[-1].endswith(f"error: {message}")


def test_count_zero_still_needs_the_topic(d):
    cli("-d", d, "topics", "create", "t")
    assert cli("-d", d, "consume", "t", "-c", "0").status == 0
    r = cli("-d", d, "consume", "nope", "-c", "0")
    assert r.status == 1 and r.err == "minikafka: error: topic 'nope' does not exist\n"


def test_the_progress_line_is_erased_when_produce_fails(d, tmp_path, monkeypatch):
    import io

    import minikafka.cli.commands.produce as produce_cmd

    bars: list[Progress] = []

    def on_terminal(label):
        bars.append(Progress(label, stream=io.StringIO(), enabled=True, interval=0))
        return bars[-1]

    monkeypatch.setattr(produce_cmd, "Progress", on_terminal)
    cli("-d", d, "topics", "create", "t")
    src = tmp_path / "in.txt"
    src.write_bytes(b"ok\n" * 1000 + b"x" * (3 << 20))
    r = cli("-d", d, "produce", "t", "--file", src)
    assert r.status == 1 and "line 1001" in r.err
    [bar] = bars
    drawn = bar.stream.getvalue()
    assert drawn.startswith("\rproduce t") and drawn.endswith("\r") and bar._drawn == 0


@pytest.mark.parametrize(("spec", "says"), [
    ("\udcff=v", "not valid UTF-8"),              # argv bytes that are no text (-H $'\xff=v')
    ("n" * 70000 + "=v", "over the limit of 65535"),  # a name the record format cannot hold
])
def test_bad_header_name_is_a_usage_error_naming_h(d, spec, says):
    cli("-d", d, "topics", "create", "t")
    r = cli("-d", d, "produce", "t", "-H", spec, stdin=b"a\nb\n")
    assert r.status == 2 and says in r.err and "-H '" in r.err, r.err
    assert len(r.err.splitlines()[-1]) < 300  # the 70000-byte name is not echoed whole
    with minikafka.Broker(d) as broker:
        assert read_topic(broker, "t") == []


def test_a_path_that_is_not_utf8_is_written_as_its_bytes(d, tmp_path):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"v"])
    seg = tmp_path / os.fsdecode(b"seg\xff.log")  # a file name of bytes that are no text
    seg.write_bytes((d / "topics" / "t" / "0" / "00000000000000000000.log").read_bytes())
    r = cli("dump", seg)
    assert r.status == 0, r.err
    assert r.out.startswith(b"segment " + os.fsencode(seg) + b": base offset 0")
    r = cli("dump", seg, "-J")
    assert r.status == 0 and json.loads(r.out.splitlines()[0].decode(errors="replace"))["type"] == "segment"


def test_empty_data_dir_and_empty_format_are_taken_as_given(d, monkeypatch):
    cli("-d", d, "topics", "create", "t")
    produce(d, "t", [b"a", b"b"])
    monkeypatch.setenv("MINIKAFKA_DATA", str(d))
    r = cli("-d", "", "topics", "list")  # -d "$UNSET" must not fall back to $MINIKAFKA_DATA
    assert r.status == 2
    assert r.err.splitlines()[-1] == "minikafka: error: -d: the data directory is an empty string"
    r = cli("consume", "t", "-e", "-f", "")  # kcat -f '': nothing per record, not the default
    assert r.status == 0 and r.out == b""
    assert cli("consume", "t", "-e", "-f", "", "-J").status == 2


def second_send_fails(error: BaseException) -> type:
    """A Producer whose second send_many raises ``error``."""

    class Failing(minikafka.Producer):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            real, calls = self.send_many, []

            def send_many(*a, **k):
                calls.append(1)
                if len(calls) == 2:
                    raise error
                return real(*a, **k)

            self.send_many = send_many

    return Failing


@pytest.mark.parametrize(("error", "status", "says"), [
    (OSError(28, "No space left on device"), 1, "minikafka: error: [Errno 28] No space left on device; "),
    (KeyboardInterrupt(), 130, "minikafka: produce interrupted: "),  # a second Ctrl-C, mid-write
])
def test_a_failed_write_says_how_far_the_input_was_written(d, monkeypatch, error, status, says):
    """A topic deleted meanwhile, a full disk, a second Ctrl-C: stderr says
    which lines are written, so the input can be resumed."""
    import minikafka.cli.commands.produce as produce_cmd

    cli("-d", d, "topics", "create", "t")
    monkeypatch.setattr(produce_cmd, "CHUNK", 4)  # "a\nb\n", then "c\nd\n"
    monkeypatch.setattr(produce_cmd, "Producer", second_send_fails(error))
    r = cli("-d", d, "produce", "t", stdin=b"a\nb\nc\nd\ne\n")
    assert r.status == status and r.err == (
        f"{says}the 2 lines before line 3 were written, of lines 3..4 some may be, "
        f"the lines after were not\n"), r.err
    with minikafka.Broker(d) as broker:
        assert [x.value for x in read_topic(broker, "t")] == [b"a", b"b"]


def test_consume_of_large_records_polls_a_bounded_amount(d, monkeypatch):
    """5000 records a poll (its record limit) of 1 MiB values would be 5 GB
    in memory at once; polls are sized to about POLL_BYTES of output."""
    import minikafka.cli.commands.consume as consume_cmd

    cli("-d", d, "topics", "create", "t")
    with minikafka.Broker(d) as broker, minikafka.Producer(broker) as producer:
        producer.send_many("t", [b"%03d" % i + b"x" * 100_000 for i in range(100)])
    monkeypatch.setattr(consume_cmd, "POLL_BYTES", 1 << 20, raising=False)
    polled: list[int] = []

    class Spy(minikafka.Consumer):
        def poll(self, *args, **kw):
            records = super().poll(*args, **kw)
            polled.append(sum(len(r.value or b"") for r in records))
            return records

    monkeypatch.setattr(consume_cmd, "Consumer", Spy)
    r = cli("-d", d, "consume", "t", "-e")
    assert r.status == 0 and len(r.lines) == 100 and r.lines[99].startswith("099x")
    assert max(polled[1:]) <= 1 << 20 and polled[0] <= 16 * 100_003, polled


def test_produce_a_failed_write_is_the_error_and_the_close_waits_no_more(d, monkeypatch):
    """Seen on kafka:// with the cluster gone mid-input: ``send_many`` failed
    after request_timeout (30 s), then leaving the Producer's ``with``
    flushed again for 30 s and its TimeoutError replaced the error that said
    how far the input was written (after a second Ctrl-C too: exit status 1,
    not 130). Here the write fails and a close that waits would fail as well."""
    cli("-d", d, "topics", "create", "t")
    waits = []

    def send_many(self, *args, **kwargs):
        raise minikafka.TimeoutError("flush: 2 records not acknowledged within 30 s")

    real_close = minikafka.Producer.close

    def close(self, timeout=None):
        waits.append(timeout)
        if timeout != 0:
            raise minikafka.TimeoutError("close: 2 records not acknowledged within 30 s")
        real_close(self, timeout)

    from minikafka.local_producer import LocalProducer

    monkeypatch.setattr(LocalProducer, "send_many", send_many)  # the Producer binds its backend's
    monkeypatch.setattr(minikafka.Producer, "close", close)
    r = cli("-d", d, "produce", "t", stdin=b"a\nb\n")
    assert (r.status, waits) == (1, [0])
    assert r.err == ("minikafka: error: flush: 2 records not acknowledged within 30 s; the 0 lines before "
                     "line 1 were written, of lines 1..2 some may be, the lines after were not\n")
