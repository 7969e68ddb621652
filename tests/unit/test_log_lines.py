"""The gateway's log formatter writes the line structlog's processors wrote of any record, byte for byte but the moment
in ``time``: straight for a record without an exception or a stack, through the processors for the others."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import structlog
from hypothesis import given, settings
from hypothesis import strategies as st

from sessiongate import observability
from sessiongate.observability import JsonLineFormatter, configure_logging, json_formatter

STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STANDARD = frozenset(vars(logging.LogRecord("n", 0, "p", 0, "m", (), None)))
"""A record's own attributes: an extra named so is refused by logging (``message`` and ``asctime`` too)."""


# The line's definition, which writes every record the formatter does not write straight: what a record written
# straight must equal.
REFERENCE = observability._processor_formatter()


class Refusing:
    """Stands in for the formatter's structlog processors where a record must be written without them."""

    def format(self, record: logging.LogRecord) -> str:
        raise AssertionError(f"{record.__dict__} went through structlog's processors")


def straight_only() -> JsonLineFormatter:
    formatter = JsonLineFormatter()
    formatter._structlog = Refusing()  # type: ignore[assignment]
    return formatter


def assert_same_line(line: str, expected: str) -> None:
    """``line`` is ``expected`` byte for byte, but for the moment in ``time``: within a second, in the same form."""
    ours, theirs = json.loads(line), json.loads(expected)
    assert list(ours) == list(theirs), "the keys or their order differ"
    if "time" not in theirs:  # a record structlog made: its own processors stamped it, or not
        assert line == expected
        return
    for stamp in (ours["time"], theirs["time"]):
        assert STAMP.fullmatch(stamp), f"time {stamp!r} is not TimeStamper's iso utc form"
    assert abs(datetime.fromisoformat(ours["time"]) - datetime.fromisoformat(theirs["time"])) < timedelta(seconds=1)
    assert ours | {"time": None} == theirs | {"time": None}, "a value differs"
    assert line.replace(ours["time"], "", 1) == expected.replace(theirs["time"], "", 1), "the bytes differ"


class Shown:
    """A value msgspec cannot encode: the line has its ``str``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Shown({self.text!r})"


offsets = st.integers(min_value=-1439, max_value=1439).map(lambda minutes: timezone(timedelta(minutes=minutes)))
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(),
    st.datetimes(timezones=st.one_of(st.none(), st.just(UTC), offsets)),
    st.dates(),
    st.uuids(),
    st.decimals(),
    st.binary(max_size=8),
    st.ip_addresses(),
    st.builds(Shown, st.text(max_size=8)),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=6), inner, max_size=3),
    ),
    max_leaves=8,
)
# Names the line itself uses or structlog's processors handle, uvicorn's, and odd ones.
NAMED = ["audit", "level", "logger", "event", "time", "pid", "_record", "_from_structlog", "color_message"]
NAMED += ["positional_args", "exception", "traceback", "exc", "é", "日本語", "", " ", "a.b", "\x00", "Message"]
keys = st.one_of(st.sampled_from(NAMED), st.text(max_size=12)).filter(
    # _logger and _name together mark a record structlog made, and either alone sends it to structlog's processors.
    lambda key: key not in STANDARD | {"message", "asctime", "_logger", "_name"}
)
arguments = st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=10), st.builds(Shown, st.text()))
templates = st.text().filter(lambda text: "%" not in text)
messages = st.one_of(
    st.tuples(st.text(), st.just(())),  # no arguments: a "%" stays as it is
    st.tuples(templates, st.lists(st.tuples(st.sampled_from(["%s", "%r", "%5s"]), arguments), max_size=3)).map(
        lambda drawn: (drawn[0] + " ".join(spec for spec, _ in drawn[1]), tuple(value for _, value in drawn[1]))
    ),
    st.tuples(arguments, arguments).map(lambda pair: ("%(a)s and %(b)r", ({"a": pair[0], "b": pair[1]},))),
    st.tuples(st.one_of(st.dictionaries(st.text(max_size=4), arguments, max_size=2), arguments), st.just(())),
)
LEVEL_NAMES = ["WARN", "EXCEPTION", "Warn", "NOTICE", "TRACE", "Level 25", "ÄRGER", "İ"]
levels = st.one_of(st.sampled_from([0, 5, 10, 20, 30, 40, 50]), st.integers(min_value=-5, max_value=100))


def make_record(
    name: str, level: int, message: tuple[Any, tuple[Any, ...]], extras: dict[str, Any]
) -> logging.LogRecord:
    logger = logging.Logger(name)  # not the manager's: no logger is left behind
    msg, args = message
    return logger.makeRecord(name, level, "/srv/app/module.py", 42, msg, args, None, extra=extras)


def audit_record() -> logging.LogRecord:
    audit = {
        "id": str(uuid.uuid4()),
        "kind": "create",
        "actor": "user",
        "tenant": "default",
        "dialect": "zelf",
        "principal_id": "user-4711",
        "session_id": str(uuid.uuid4()),
        "client_address": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "detail": {},
        "created_at": "2026-05-09T07:35:25.123456Z",
    }
    return make_record("sessiongate.audit", logging.INFO, ("audit %s", ("create",)), {"audit": audit})


@settings(max_examples=200, deadline=None)
@given(
    name=st.one_of(st.sampled_from(["sessiongate.audit", "uvicorn.error", "root", ""]), st.text(max_size=12)),
    level=levels,
    levelname=st.one_of(st.none(), st.sampled_from(LEVEL_NAMES), st.text(max_size=8)),
    message=messages,
    extras=st.dictionaries(keys, values, max_size=6),
    formatted_before=st.booleans(),
)
def test_a_record_is_written_straight_as_structlogs_processors_wrote_it_key_for_key_in_order(
    name: str,
    level: int,
    levelname: str | None,
    message: tuple[Any, tuple[Any, ...]],
    extras: dict[str, Any],
    formatted_before: bool,
) -> None:
    record = make_record(name, level, message, extras)
    if levelname is not None:  # a level of logging.addLevelName's, or a name set on the record
        record.levelname = levelname
    if formatted_before:  # by another handler's formatter, which leaves message and asctime on the record
        logging.Formatter("%(asctime)s %(message)s").format(record)
    expected = REFERENCE.format(record)
    assert_same_line(straight_only().format(record), expected)


def test_a_plain_record_is_written_without_structlogs_processors(monkeypatch: pytest.MonkeyPatch) -> None:
    record = audit_record()
    expected = REFERENCE.format(record)
    monkeypatch.setattr(structlog.stdlib.ProcessorFormatter, "format", Refusing.format)
    line = json_formatter().format(record)
    assert_same_line(line, expected)
    assert list(json.loads(line)) == ["time", "level", "logger", "message", "pid", "audit"]


def test_the_attributes_not_taken_for_extras_are_those_structlogs_extra_adder_skips() -> None:
    assert set(structlog.stdlib._LOG_RECORD_KEYS) == observability._RECORD_KEYS


@given(
    st.integers(min_value=0, max_value=(datetime(9999, 12, 31, tzinfo=UTC) - EPOCH) // timedelta(seconds=1)),
    st.lists(st.one_of(st.just(0), st.integers(min_value=0, max_value=3 * 10**9)), min_size=1, max_size=6),
)
def test_the_time_is_timestampers_iso_utc_form_of_the_clock_rounded_down_to_the_microsecond(
    second: int, later: list[int]
) -> None:
    formatter = JsonLineFormatter()  # one, as its date and time of day are kept for the second
    for nanoseconds in (second * 10**9 + sum(later[:n]) for n in range(len(later) + 1)):
        expected = (EPOCH + timedelta(microseconds=nanoseconds // 1000)).isoformat().replace("+00:00", "Z")
        assert formatter._stamp(nanoseconds) == expected


def test_a_record_with_an_exception_gives_its_type_and_frames_never_its_message() -> None:
    def fail() -> None:
        raise RuntimeError("secret-4f1a in the message")

    try:
        fail()
    except RuntimeError:
        record = logging.Logger("sessiongate").makeRecord(
            "sessiongate", logging.ERROR, __file__, 1, "failed", (), sys.exc_info(), extra={"kind": "x"}
        )
    line = json_formatter().format(record)
    assert_same_line(line, REFERENCE.format(record))
    assert "secret-4f1a" not in line
    entry = json.loads(line)
    assert list(entry) == ["time", "level", "logger", "message", "pid", "kind", "exception", "traceback"]
    assert entry["exception"] == "RuntimeError"
    [stack] = entry["traceback"]
    assert stack["type"] == "RuntimeError"
    assert [frame["function"] for frame in stack["frames"]][-2:] == [
        "test_a_record_with_an_exception_gives_its_type_and_frames_never_its_message",
        "fail",
    ]
    assert record.exc_info is not None  # the record is left as it was, for any other handler


class OwnMessage(logging.LogRecord):
    def getMessage(self) -> str:
        return "not what structlog's copy of the record says"


@contextlib.contextmanager
def record_factory(factory: Any) -> Iterator[None]:
    before = logging.getLogRecordFactory()
    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(before)


def with_request(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = logging.LogRecord(*args, **kwargs)
    record.request = "r-1"
    return record


def stacked() -> logging.LogRecord:
    record = audit_record()
    record.stack_info = "Stack (most recent call last):\n  File ..."
    return record


def without_levelname() -> logging.LogRecord:
    record = audit_record()
    del record.levelname
    return record


def made_by_structlog() -> logging.LogRecord:
    args, kwargs = structlog.stdlib.ProcessorFormatter.wrap_for_formatter(
        logging.getLogger("sessiongate"), "info", {"event": "from structlog", "kind": "x"}
    )
    return logging.Logger("sessiongate").makeRecord(
        "sessiongate", logging.INFO, "f.py", 1, args[0], (), None, extra=kwargs["extra"]
    )


def own_message() -> logging.LogRecord:
    record = audit_record()
    return OwnMessage(record.name, record.levelno, record.pathname, record.lineno, record.msg, record.args, None)


def from_a_factory() -> logging.LogRecord:
    with record_factory(with_request):
        return audit_record()


@pytest.mark.parametrize("make", [stacked, without_levelname, made_by_structlog, own_message, from_a_factory])
def test_a_record_straight_writing_cannot_vouch_for_is_written_by_structlogs_processors(make: Any) -> None:
    record = make()
    factory = with_request if make is from_a_factory else logging.LogRecord
    with record_factory(factory):  # structlog's copy of the record is the factory's
        assert_same_line(json_formatter().format(record), REFERENCE.format(record))


@contextlib.contextmanager
def logging_kept() -> Iterator[None]:
    """The loggers configure_logging changes, as they were."""
    names = ["", "sessiongate", "uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "alembic"]
    loggers = [logging.getLogger(name) for name in names]
    kept = [(logger, logger.handlers[:], logger.level, logger.propagate) for logger in loggers]
    try:
        yield
    finally:
        for logger, handlers, level, propagate in kept:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_configure_logging_leaves_a_records_thread_and_process_unlooked_up_and_the_line_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for flag in ("logThreads", "logProcesses", "logMultiprocessing"):
        monkeypatch.setattr(logging, flag, True)
    before = audit_record()
    with logging_kept():
        configure_logging("INFO")
    record = audit_record()
    assert (record.thread, record.threadName, record.process, record.processName) == (None, None, None, None)
    record.audit = before.audit  # type: ignore[attr-defined]
    formatter = json_formatter()
    assert_same_line(formatter.format(record), REFERENCE.format(before))
    assert json.loads(formatter.format(record))["pid"] == before.process
