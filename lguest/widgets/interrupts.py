"""InterruptPanel: each Guest's 32 lines (pending, blocked, handlers, counts) and a timeline."""
from __future__ import annotations

from ..trace import bookmark
from . import state
from .svg import BLACK, BLUE, GREY, LIGHT, ORANGE, VERMILION, Svg
from .view import View, need_host


PAST = {"raise": "raised", "deliver": "delivered"}


class InterruptPanel(View):
    title = "InterruptPanel"

    def __init__(self, host, since: int = 0):
        need_host(host, "InterruptPanel")
        bookmark(since)
        self.host = host
        self.since = since                      # a trace mark: the timeline starts there

    def states(self) -> list[state.IrqState]:
        return state.irq_states(self.host)

    def timeline(self) -> list[state.IrqEvent]:
        return state.irq_timeline(self.host.trace, self.since)

    def text(self) -> str:
        out = []
        for s in self.states():
            status = f"dead ({s.dead})" if s.dead else ("halted" if s.halted else "running")
            out.append(f"g{s.guest}: {status}, interrupts {'enabled' if s.irq_enabled else 'disabled'}")
            for ln in s.lines:
                if ln.pending or ln.blocked or ln.handlers or ln.delivered:
                    flags = " ".join(f for f, on in (("PENDING", ln.pending), ("BLOCKED", ln.blocked)) if on)
                    out.append(f"  irq {ln.irq:>2}: delivered {ln.delivered:>3}  unhandled {ln.unhandled:>3}  "
                               f"handlers {', '.join(ln.handlers) or '-'}  {flags}".rstrip())
        events = self.timeline()
        out.append(f"timeline: {sum(e.kind == 'raise' for e in events)} raised, "
                   f"{sum(e.kind == 'deliver' for e in events)} delivered")
        return "\n".join(out)

    def svg(self) -> str:
        states = self.states()
        pic = Svg(800, f"InterruptPanel: {len(states)} Guests, 32 lines each")
        cell = 20
        for irq in range(0, 32, 4):                     # line numbers along the top
            pic.text(100 + irq * cell + 9, 10, str(irq), size=9, anchor="middle")
        for n, s in enumerate(states):
            y = 16 + n * 54
            status = "dead" if s.dead else ("halted" if s.halted else "running")
            pic.text(4, y + 12, f"g{s.guest} {status}", bold=True)
            pic.text(4, y + 28, f"irqs {'on' if s.irq_enabled else 'OFF'}", size=10)
            for ln in s.lines:
                x = 100 + ln.irq * cell
                fill = "url(#hatch)" if ln.blocked else (ORANGE if ln.pending else (LIGHT if ln.handlers else "#FFFFFF"))
                label = (f"g{s.guest} irq {ln.irq}: {'pending ' if ln.pending else ''}{'blocked ' if ln.blocked else ''}"
                         f"handlers {', '.join(ln.handlers) or 'none'}, delivered {ln.delivered}")
                pic.rect(x, y, cell - 2, cell - 2, fill, stroke=BLACK if ln.handlers else GREY, label=label)
                if ln.pending:
                    pic.text(x + 9, y + 13, "P", size=10, anchor="middle", bold=True)
                if ln.delivered:
                    pic.text(x + 9, y + 32, str(ln.delivered), size=9, anchor="middle")
        y = 16 + len(states) * 54
        for x, fill, name in ((4, ORANGE, "P pending"), (110, "url(#hatch)", "blocked"), (200, LIGHT, "has a handler"),
                              (330, "#FFFFFF", "no handler")):
            pic.rect(x, y, 14, 14, fill, stroke=BLACK if fill != "#FFFFFF" else GREY)
            pic.text(x + 18, y + 11, name, size=10)
        pic.text(450, y + 11, "digits under a line: times delivered", size=10)
        self._draw_timeline(pic, y + 26, [s.guest for s in states])
        return pic.render()

    def _draw_timeline(self, pic: Svg, top: float, guests: list[int]) -> None:
        events = self.timeline()
        pic.text(4, top + 10, "timeline (ticks): triangle = raised, circle = delivered; number = irq", size=10)
        if not events:
            pic.text(4, top + 28, "no interrupts yet", size=10)
            return
        t0, t1 = events[0].tick, max(events[-1].tick, events[0].tick + 1)
        lane = {g: top + 34 + i * 30 for i, g in enumerate(guests)}
        for g, y in lane.items():
            pic.text(4, y + 4, f"g{g}", size=10)
            pic.line(40, y, 750, y, stroke=GREY)
        seen_at: dict = {}
        for e in events:
            x = 48 + (e.tick - t0) * 690 / (t1 - t0)
            y = lane.get(e.guest, top + 28)
            stacked = seen_at.get((e.tick, e.guest, e.kind), 0)   # several in one tick: step them along
            seen_at[(e.tick, e.guest, e.kind)] = stacked + 1
            x += 9 * stacked
            label = f"tick {e.tick}: irq {e.irq} {PAST[e.kind]} in g{e.guest}"
            if e.kind == "raise":
                pic.triangle(x, y - 4, 4, VERMILION, label=label)
            else:
                pic.circle(x, y + 4, 4, BLUE, label=label)
            pic.text(x + 6, y - 4 if e.kind == "raise" else y + 10, str(e.irq), size=8)
        pic.text(40, max(lane.values()) + 22, f"tick {t0}", size=9)
        pic.text(750, max(lane.values()) + 22, f"tick {t1}", size=9, anchor="end")

