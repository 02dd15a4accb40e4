"""The event log: every hypercall, check, copy, used_len write, irq and kill, in order.

Time is the Host's tick counter, never the wall clock, so a chapter that runs twice
records the same events with the same ticks. Widgets and figures are drawn from this log
and from the live model; they keep no state of their own.
"""
from __future__ import annotations

import json
import operator
import os
from collections import Counter
from typing import Iterator, NamedTuple

from .abi import MAX_LGUEST_GUESTS


ADDRESS_FIELDS = frozenset({"key", "addr", "dma", "dmas", "entry", "args"})
WIDTH = 76              # the book's column: a longer event goes on over more lines
NARROW_INDENT = 4       # where a field too long to sit under the others starts its line


def _show(value, address: bool = False) -> str:
    """Addresses (and anything large) read best in hex; everything else as its repr."""
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return "(" + ", ".join(_show(v, address) for v in value) + ")"
    if isinstance(value, int) and not isinstance(value, bool):
        return hex(value) if address or value >= 4096 else str(int(value))
    return repr(value)


class Event(NamedTuple):
    """One thing that happened: at ``tick``, to Guest ``guest`` (None for the Host itself)."""
    seq: int
    tick: int
    guest: int | None
    kind: str
    fields: dict

    def __getattr__(self, name):
        try:
            return self.fields[name]
        except KeyError:
            raise AttributeError(f"event {self.kind!r} has no field {name!r}; it has {sorted(self.fields)}") from None

    def _head_and_fields(self) -> tuple[str, list[str]]:
        who = "host" if self.guest is None else f"g{self.guest}"
        fields = [f"{k}={_show(v, k in ADDRESS_FIELDS)}" for k, v in self.fields.items()]
        return f"[{self.tick:>4}] {who:<4} {self.kind:<16} ", fields

    def line(self) -> str:
        """The event on one line, however long (a caption, a log file)."""
        head, fields = self._head_and_fields()
        return (head + " ".join(fields)).rstrip()

    def __repr__(self):
        """The event within the book's column: fields that do not fit go on under the first."""
        return _fit(*self._head_and_fields())


def _fit(head: str, fields: list[str], width: int = WIDTH) -> str:
    """``head`` and the fields, filled into lines of at most ``width``. Continuation lines
    start under the first field, or ``NARROW_INDENT`` in when some field is too long for that;
    a field longer than a whole line still gets a line of its own."""
    indent = len(head) if all(len(f) <= width - len(head) for f in fields) else NARROW_INDENT
    lines, line = [], head.rstrip()
    for field in fields:
        longer = head + field if line == head.rstrip() else f"{line} {field}"
        if len(longer) <= width:
            line = longer
        else:
            lines.append(line)
            line = " " * indent + field
    lines.append(line)
    return "\n".join(lines)


def bookmark(mark) -> int:
    """A bookmark from mark() (or a sum on one: ``mark() - 1`` is the newest event): a whole number."""
    if isinstance(mark, bool) or not hasattr(mark, "__index__"):
        raise TypeError(f"a trace bookmark is a whole number from trace.mark(), got {mark!r}")
    return operator.index(mark)


DEFAULT_LIMIT = 200_000     # events kept: about 60 MB at most, whatever the experiment's length


class Trace:
    """The newest ``limit`` events, and the watchers called after each one.

    A long experiment (a 1 GiB read, a million pings) must not grow without bound, so the
    log keeps the newest ``limit`` events (``DEFAULT_LIMIT``, settable: ``host.trace.limit
    = N``) and counts the older ones it let go in ``dropped``. Every event keeps its
    sequence number, so a bookmark from ``mark()`` still means the same place. ``show()``
    and the Chrome export say how many were dropped. ``enabled=False`` records nothing
    and calls no watcher (for benchmarks).
    """

    def __init__(self, enabled: bool = True, limit: int = DEFAULT_LIMIT):
        self.enabled = enabled
        self._events: list[tuple] = []       # a ring: event seq lives at _slot(seq)
        self._emitted = 0                    # events ever recorded (the next event's seq)
        self._base = 0                       # the seq stored at index 0 when the ring last began
        self._first = 0                      # the seq of the oldest event kept (= events dropped)
        self._limit = 0
        self.limit = limit
        self._watchers: list = []

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"a trace keeps a whole number of events, at least 1; got {n!r}")
        kept = [self._events[self._slot(seq)] for seq in range(self._first, self._emitted)][-n:]
        self._limit, self._events = n, kept
        self._base = self._first = self._emitted - len(kept)

    def _slot(self, seq: int) -> int:
        return (seq - self._base) % self._limit

    @property
    def dropped(self) -> int:
        """Events recorded and then let go, oldest first, to stay within ``limit``."""
        return self._first

    def emit(self, tick: int, guest: int | None, kind: str, **fields) -> None:
        """Record one event, then call every watcher with it."""
        self.record(tick, guest, kind, fields)

    def record(self, tick: int, guest: int | None, kind: str, fields: dict) -> None:
        """emit() with the fields as one dict (the Host's hot path: no second packing)."""
        if not self.enabled:
            return
        item = (tick, guest, kind, fields)
        seq = self._emitted
        if len(self._events) < self._limit:
            self._events.append(item)
        else:
            self._events[self._slot(seq)] = item          # over the oldest
            self._first += 1
        self._emitted = seq + 1
        if self._watchers:
            event = Event(seq, tick, guest, kind, fields)
            for watcher in list(self._watchers):
                watcher(event)

    def watch(self, fn):
        """Call ``fn(event)`` after every recorded event; returns a function that stops it."""
        if not callable(fn):
            raise TypeError(f"watch() takes a function of one event, got {fn!r}")
        self._watchers.append(fn)
        return lambda: self._watchers.remove(fn) if fn in self._watchers else None

    # --- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        """The events kept (``dropped`` more came before them)."""
        return self._emitted - self._first

    def __getitem__(self, i):
        """The i-th event kept (negative counts from the newest); a slice gives a list."""
        if isinstance(i, slice):
            return [self._event(self._first + j) for j in range(*i.indices(len(self)))]
        return self._event(self._first + range(len(self))[i])

    def __iter__(self) -> Iterator[Event]:
        return (self._event(seq) for seq in range(self._first, self._emitted))

    def _event(self, seq: int) -> Event:
        tick, guest, kind, fields = self._events[self._slot(seq)]
        return Event(seq, tick, guest, kind, fields)

    def mark(self) -> int:
        """A bookmark: pass it to since() to see only what happened after this point."""
        return self._emitted

    def since(self, mark: int = 0) -> list[Event]:
        """The events from bookmark ``mark`` on (those of them still kept)."""
        mark = bookmark(mark)
        return [self._event(seq) for seq in range(max(mark, self._first), self._emitted)]

    def filter(self, kind: str | tuple[str, ...] | None = None, guest: int | None = None,
               since: int = 0) -> list[Event]:
        kinds = (kind,) if isinstance(kind, str) else kind
        if kinds is not None:
            kinds = tuple(kinds) if hasattr(kinds, "__iter__") and not isinstance(kinds, bytes) else (kinds,)
            if not all(isinstance(k, str) for k in kinds):
                raise TypeError(f"kind is an event kind such as 'send_dma', a tuple of them, or None for every "
                                f"kind; got {kind!r}")
        if guest is not None:
            allowed = f"guest is a Guest id, 0..{MAX_LGUEST_GUESTS - 1}, or None for every Guest; got {guest!r}"
            if isinstance(guest, bool) or not hasattr(guest, "__index__"):
                raise TypeError(allowed)
            if not 0 <= guest < MAX_LGUEST_GUESTS:
                raise ValueError(allowed)
        return [e for e in self.since(since)
                if (kinds is None or e.kind in kinds) and (guest is None or e.guest == guest)]

    def counts(self, since: int = 0) -> dict[str, int]:
        """How many events of each kind, in first-seen order."""
        return dict(Counter(e.kind for e in self.since(since)))

    def show(self, since: int = 0, kind=None, guest=None) -> str:
        """The events as text lines (stable, so notebooks can compare them).

        If events the bookmark asks for were dropped, the first line says how many."""
        lines = [repr(e) for e in self.filter(kind, guest, since)]
        lost = self._first - max(since, 0)          # a bookmark before the start asks from the start
        if lost > 0:
            lines.insert(0, f"({lost} earlier events dropped: the trace keeps the newest {self._limit})")
        return "\n".join(lines)

    def clear(self) -> None:
        """Forget every event; sequence numbers and the dropped count start again."""
        self._events.clear()
        self._emitted = self._base = self._first = 0

    def to_chrome_json(self, path) -> None:
        """Write the log as Chrome trace-event JSON (chrome://tracing, Perfetto).

        One tick is shown as one microsecond; each Guest is a thread of process 1.
        """
        path = os.fspath(path)                   # a file name: open() would take an int as a descriptor
        events = [{"name": e.kind, "ph": "i", "s": "t", "ts": e.tick, "pid": 1,
                   "tid": -1 if e.guest is None else e.guest,
                   "args": {k: _show(v, k in ADDRESS_FIELDS) for k, v in e.fields.items()}} for e in self]
        metadata = {"events_kept": len(self), "events_dropped": self.dropped, "limit": self._limit}
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns", "metadata": metadata}, f)

    def __repr__(self):
        dropped = f", {self.dropped} dropped" if self.dropped else ""
        return f"Trace({len(self)} events{dropped})"
