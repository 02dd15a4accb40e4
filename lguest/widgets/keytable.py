"""KeyTable: every DMA binding on the Host, and where a send to each key would land."""
from __future__ import annotations

from . import state
from .svg import BLUE, GREY, LIGHT, ORANGE, SKY, Svg
from .view import View, need_host

COLUMNS = ("slot", "guest", "key", "identity", "irq", "dmas", "num", "next", "entries used/cap", "reached from")


class KeyTable(View):
    title = "KeyTable"

    def __init__(self, host):
        need_host(host, "KeyTable")
        self.host = host

    def rows(self) -> list[state.KeyRow]:
        return state.key_rows(self.host)

    def route(self, sender, key: int) -> str:
        """Where a SEND_DMA from ``sender`` (a Guest or its id) to ``key`` would go now."""
        guest_id = getattr(sender, "id", sender)
        allowed = f"sender is a Guest or a Guest id of this Host (0..{len(self.host.lgs) - 1}); got {sender!r}"
        if isinstance(guest_id, bool) or not hasattr(guest_id, "__index__"):
            raise TypeError(allowed)
        if not 0 <= guest_id < len(self.host.lgs):
            raise ValueError(allowed)
        if isinstance(key, bool) or not hasattr(key, "__index__"):
            raise TypeError(f"key is a whole number (a Guest-physical address), got {key!r}")
        return state.route(self.host, guest_id, key)

    def text(self) -> str:
        rows = self.rows()
        if not rows:
            return "KeyTable: no DMA bindings"
        table = [COLUMNS] + [(str(r.slot), f"g{r.guest}", f"{r.ukey:#x}", r.identity, str(r.irq), f"{r.dmas:#x}",
                              str(r.num), str(r.next_dma), " ".join(_entry_text(e) for e in r.entries),
                              ", ".join(r.fed_by) or "-") for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
        return f"KeyTable: {len(rows)} binding(s)\n" + "\n".join(lines)

    def svg(self) -> str:
        rows = self.rows()
        pic = Svg(800, f"KeyTable: {len(rows)} DMA bindings")
        xs = (4, 40, 84, 170, 330, 360, 432, 462, 500, 690)  # column lefts
        for x, name in zip(xs, COLUMNS):
            pic.text(x, 14, name.split(" ")[0] if name.startswith("entries") else name, bold=True)
        if not rows:
            pic.text(4, 34, "no DMA bindings yet")
        for n, r in enumerate(rows):
            y = 24 + n * 26
            pic.rect(0, y, 800, 24, LIGHT if n % 2 else "#FFFFFF", stroke="none")
            cells = (str(r.slot), f"g{r.guest}", f"{r.ukey:#x}", r.identity, str(r.irq), f"{r.dmas:#x}",
                     str(r.num), str(r.next_dma))
            for x, cell in zip(xs, cells):
                pic.text(x, y + 16, cell)
            for i, e in enumerate(r.entries[:8]):
                _entry_bar(pic, 500 + i * 23, y + 4, e, i == r.next_dma % max(r.num, 1))
            pic.text(690, y + 16, ", ".join(r.fed_by) or "-", size=10)
        y = 30 + len(rows) * 26
        pic.rect(4, y, 18, 10, "url(#dots)")
        pic.text(26, y + 9, "free (used_len 0)", size=10)
        pic.rect(140, y, 18, 10, BLUE)
        pic.text(162, y + 9, "holds data (used_len > 0)", size=10)
        pic.rect(330, y, 18, 10, "#FFFFFF", stroke=ORANGE, dash=True)
        pic.text(352, y + 9, "next_dma starts here", size=10)
        pic.rect(500, y, 18, 10, GREY)
        pic.text(522, y + 9, "unreadable entry", size=10)
        return pic.render()


def _entry_text(e: state.Entry) -> str:
    return f"{e.used_len}/{e.capacity}" if e.readable else "?/?"


def _entry_bar(pic: Svg, x: float, y: float, e: state.Entry, is_next: bool) -> None:
    """A little gauge: the entry's capacity, filled up to used_len."""
    label = f"entry @ {e.addr:#x}: " + (f"used_len {e.used_len} of {e.capacity}" if e.readable else "unreadable")
    if not e.readable:
        pic.rect(x, y, 20, 16, GREY, label=label)
        return
    pic.rect(x, y, 20, 16, "url(#dots)", stroke=ORANGE if is_next else "#000000", dash=is_next, label=label)
    if e.used_len:
        frac = min(1.0, e.used_len / e.capacity) if e.capacity else 1.0
        pic.rect(x, y + 16 * (1 - frac), 20, 16 * frac, BLUE if e.used_len <= e.capacity else SKY, label=label)
