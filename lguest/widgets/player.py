"""TracePlayer: step through a recorded stretch of the trace, the views redrawn at each event.

While recording, the player draws every view after every event the Host emits, so each
frame shows the model exactly as it was then. The frames are fixed SVG, shown in a
``Stack``; a ``Play`` button and a slider are ``jslink``ed to the stack's selected_index,
so the static book plays them in the browser with no kernel behind it.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from html import escape

import ipywidgets as w

from ..errors import LguestError
from .view import View, need_host


@dataclass
class Frame:
    caption: str
    svgs: list[str]

    def html(self, number: int, total: int) -> str:
        return (f'<div class="lguest-frame"><p style="font-family:monospace;margin:2px 0">'
                f'{number + 1}/{total}: {escape(self.caption)}</p>{"".join(self.svgs)}</div>')


class TracePlayer:
    """Record frames with ``with player.recording(): ...``, then display the player."""

    def __init__(self, host, views, max_frames: int = 60, interval_ms: int = 800):
        need_host(host, "TracePlayer")
        allowed = f"TracePlayer takes a list of views, e.g. [KeyTable(host), BufferMap(guest)]; got {views!r}"
        if isinstance(views, View) or not hasattr(views, "__iter__"):
            raise TypeError(allowed)
        views = list(views)
        if not all(isinstance(v, View) for v in views):
            raise TypeError(allowed)
        for name, n in (("max_frames", max_frames), ("interval_ms", interval_ms)):
            if isinstance(n, bool) or not isinstance(n, int):
                raise TypeError(f"{name} is a whole number, at least 1; got {n!r}")
            if n < 1:
                raise ValueError(f"{name} is a whole number, at least 1; got {n!r}")
        if not host.trace.enabled:
            raise LguestError("TracePlayer needs the trace: make the Host with lguest.Host(trace=True)")
        self.host = host
        self.views = views
        self.max_frames = max_frames
        self.interval_ms = interval_ms
        self.frames: list[Frame] = []
        self.dropped = 0

    @contextmanager
    def recording(self):
        """Every event emitted inside the block becomes a frame (up to max_frames)."""
        self.frames.append(Frame("start", [v.svg() for v in self.views]))
        unwatch = self.host.watch(self._on_event)
        try:
            yield self
        finally:
            unwatch()

    def _on_event(self, event) -> None:
        if len(self.frames) >= self.max_frames:
            self.dropped += 1
            return
        self.frames.append(Frame(event.line(), [v.svg() for v in self.views]))

    def text(self) -> str:
        lines = [f"TracePlayer: {len(self.frames)} frames" + (f" ({self.dropped} events past max_frames not drawn)"
                                                             if self.dropped else "")]
        lines += [f"{i + 1:>3}: {f.caption}" for i, f in enumerate(self.frames)]
        return "\n".join(lines)

    def widget(self):
        if not self.frames:
            raise LguestError("nothing recorded yet: wrap the steps in `with player.recording():`")
        n = len(self.frames)
        stack = w.Stack([w.HTML(f.html(i, n)) for i, f in enumerate(self.frames)], selected_index=0)
        play = w.Play(value=0, min=0, max=n - 1, step=1, interval=self.interval_ms, description="play")
        slider = w.IntSlider(value=0, min=0, max=n - 1, description="event", readout=True)
        w.jslink((play, "value"), (slider, "value"))
        w.jslink((slider, "value"), (stack, "selected_index"))
        box = _PlayerBox([w.HBox([play, slider]), stack])
        box.player = self
        box.add_class("lguest-player")
        return box

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.widget()._repr_mimebundle_()
        bundle["text/plain"] = self.text()
        return bundle


class _PlayerBox(w.VBox):
    """The player's widget; its text form is the list of frame captions."""

    def __init__(self, children):
        super().__init__(children=children)
        self.player = None

    def __repr__(self):
        return self.player.text() if self.player else "TracePlayer"
