"""docs/reference.md is generated from the docstrings and kept in sync;
every public name, method, property and option field is documented.

To refresh the file after changing a docstring: ``python -m tools.gen_reference``.
"""

from __future__ import annotations

import inspect
import pydoc
import sys
from pathlib import Path

import pytest

import minikafka
from minikafka import testing
from minikafka.testing import strategies

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # tools/ is not installed: it lives in the repository
    sys.path.insert(0, str(ROOT))

from tools import gen_reference  # noqa: E402

REFERENCE = ROOT / "docs" / "reference.md"


def test_the_committed_reference_is_what_the_docstrings_generate() -> None:
    assert REFERENCE.read_text() == gen_reference.generate(), (
        "docs/reference.md is out of date: run `python -m tools.gen_reference` and commit it")
    assert gen_reference.main(["--check"]) == 0


def test_every_public_name_member_and_field_has_a_docstring() -> None:
    assert gen_reference.undocumented() == []


def test_a_missing_docstring_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minikafka.Consumer.paused, "__doc__", None)
    monkeypatch.setattr(minikafka.RecordFuture, "__doc__", None)
    assert {"minikafka.Consumer.paused", "minikafka.RecordFuture"} <= set(gen_reference.undocumented())


def test_the_reference_lists_every_public_name_and_member() -> None:
    """Checked against ``dir()``, independently of the generator's walk."""
    text = REFERENCE.read_text()
    for name in minikafka.__all__:
        if name == "__version__":
            continue
        obj = getattr(minikafka, name)
        assert f"`{name}" in text and f"### `{name}" in text, name
        if not isinstance(obj, type) or issubclass(obj, BaseException):
            continue
        for attr in dir(obj):
            if attr.startswith("_"):
                continue
            owner = next(k for k in obj.__mro__ if attr in vars(k))
            if not owner.__module__.startswith("minikafka") or attr in gen_reference.field_names(obj):
                continue
            assert f"#### `{name}.{attr}`" in text, f"{name}.{attr} missing from docs/reference.md"
    for module in (testing, strategies):
        for name in module.__all__:
            assert f"#### `{name}`" in text, f"{module.__name__}.{name}"
    assert "#### `minikafka_broker`" in text


def test_help_shows_the_docstrings_the_issue_named(broker: minikafka.Broker) -> None:
    named = [minikafka.Consumer.beginning_offsets, minikafka.Consumer.end_offsets,
             minikafka.Consumer.paused, minikafka.Consumer.resume, minikafka.Consumer.subscription,
             minikafka.RecordFuture.done, minikafka.RecordFuture.exception,
             minikafka.SendManyResult.done, minikafka.SendManyResult.metadata,
             minikafka.SendManyResult.result]
    for fn in named:
        doc = inspect.getdoc(fn)
        assert doc, fn.__qualname__
        assert doc.splitlines()[0] in pydoc.render_doc(fn), fn.__qualname__
    # SendManyResult's attributes are slots documented through a __slots__ dict.
    rendered = pydoc.render_doc(minikafka.SendManyResult)
    for attr in ("batches", "count", "timestamp", "topic"):
        doc = inspect.getdoc(getattr(minikafka.SendManyResult, attr))
        assert doc and doc in rendered, attr


def test_producer_send_send_many_and_flush_are_documented_on_the_class_and_the_instance(
        broker: minikafka.Broker) -> None:
    """An instance binds its backend's methods at construction (no extra call
    per send); the class has documented methods of the same names."""
    broker.create_topic("t")
    with minikafka.Producer(broker) as producer:
        for name in ("send", "send_many", "flush"):
            on_class = getattr(minikafka.Producer, name)
            on_instance = getattr(producer, name)
            assert inspect.getdoc(on_class) and inspect.getdoc(on_instance), name
            assert inspect.getdoc(on_class).splitlines()[0] in pydoc.render_doc(on_class)
            assert inspect.getdoc(on_instance).splitlines()[0] in pydoc.render_doc(on_instance)
            # Same parameters either way.
            params = list(inspect.signature(on_class).parameters)[1:]
            assert params == list(inspect.signature(on_instance).parameters), name
            assert name in vars(producer)  # the fast path: bound on the instance
        # Through the class the documented methods still work.
        meta = minikafka.Producer.send(producer, "t", b"a").result()
        result = minikafka.Producer.send_many(producer, "t", [b"b", b"c"])
        minikafka.Producer.flush(producer)
        assert meta.offset == 0 and [m.offset for m in result.metadata()] == [1, 2]


def test_readme_and_the_api_guide_link_the_reference() -> None:
    assert "docs/reference.md" in (ROOT / "README.md").read_text()
    assert "(reference.md)" in (ROOT / "docs" / "api.md").read_text()
