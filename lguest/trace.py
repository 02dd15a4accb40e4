"""The event log: every hypercall, check, copy, used_len write, irq and kill, in order.

Time is the Host's tick counter, never the wall clock, so a chapter that runs twice
records the same events with the same ticks. Widgets and figures are drawn from this log
and from the live model; they keep no state of their own.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Iterator, NamedTuple


ADDRESS_FIELDS = frozenset({"key", "addr", "dma", "dmas", "entry", "args"})


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

    def __repr__(self):
        who = "host" if self.guest is None else f"g{self.guest}"
        args = " ".join(f"{k}={_show(v, k in ADDRESS_FIELDS)}" for k, v in self.fields.items())
        return f"[{self.tick:>4}] {who:<4} {self.kind:<16} {args}".rstrip()


class Trace:
    """An append-only list of events. ``enabled=False`` records nothing (for benchmarks)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._events: list[tuple] = []

    def emit(self, tick: int, guest: int | None, kind: str, **fields) -> None:
        if self.enabled:
            self._events.append((tick, guest, kind, fields))

    # --- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._event(j) for j in range(*i.indices(len(self._events)))]
        return self._event(range(len(self._events))[i])

    def __iter__(self) -> Iterator[Event]:
        return (self._event(i) for i in range(len(self._events)))

    def _event(self, i: int) -> Event:
        tick, guest, kind, fields = self._events[i]
        return Event(i, tick, guest, kind, fields)

    def mark(self) -> int:
        """A bookmark: pass it to since() to see only what happened after this point."""
        return len(self._events)

    def since(self, mark: int = 0) -> list[Event]:
        return self[mark:]

    def filter(self, kind: str | tuple[str, ...] | None = None, guest: int | None = None,
               since: int = 0) -> list[Event]:
        kinds = (kind,) if isinstance(kind, str) else kind
        return [e for e in self.since(since)
                if (kinds is None or e.kind in kinds) and (guest is None or e.guest == guest)]

    def counts(self, since: int = 0) -> dict[str, int]:
        """How many events of each kind, in first-seen order."""
        return dict(Counter(e.kind for e in self.since(since)))

    def show(self, since: int = 0, kind=None, guest=None) -> str:
        """The events as text lines (stable, so notebooks can compare them)."""
        return "\n".join(repr(e) for e in self.filter(kind, guest, since))

    def clear(self) -> None:
        self._events.clear()

    def to_chrome_json(self, path) -> None:
        """Write the log as Chrome trace-event JSON (chrome://tracing, Perfetto).

        One tick is shown as one microsecond; each Guest is a thread of process 1.
        """
        events = [{"name": e.kind, "ph": "i", "s": "t", "ts": e.tick, "pid": 1,
                   "tid": -1 if e.guest is None else e.guest,
                   "args": {k: _show(v, k in ADDRESS_FIELDS) for k, v in e.fields.items()}} for e in self]
        with open(path, "w") as f:
            json.dump({"traceEvents": events, "displayTimeUnit": "ns"}, f)

    def __repr__(self):
        return f"Trace({len(self)} events)"
