"""LanPage: a LAN's page of 682 MAC slots, who holds each, and each peer's receive ring."""
from __future__ import annotations

import textwrap

from ..show import table
from . import state
from .keytable import _entry_bar
from .svg import BLACK, GREY, LIGHT, ORANGE, Svg
from .view import View, need_host


def mac_text(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class LanPage(View):
    title = "LanPage"

    def __init__(self, host, lan: str):
        need_host(host, "LanPage")
        self.host = host
        self.lan = lan
        state.lan_page(host, lan)               # fail now, naming the LANs there are

    def slots(self) -> list[state.LanSlot]:
        return state.lan_page(self.host, self.lan)[1]

    def text(self) -> str:
        """The slots in use as a table, indented under a title line."""
        slots = self.slots()
        title = f"LanPage {self.lan}: {len(slots)} of {state.NET_SLOTS} slots in use"
        if not slots:
            return title
        rows = [[s.slot, mac_text(s.mac), "PROMISC" if s.promisc else "promisc off", s.holder,
                 " ".join(str(e.used_len) if e.readable else "?" for e in s.entries) or "-"]
                for s in slots]
        rows = table(rows, ["slot", "MAC", "promisc", "held by", "ring used_len"])
        return title + "\n" + textwrap.indent(rows, "  ")

    def svg(self) -> str:
        slots = self.slots()
        pic = Svg(800, f"LanPage {self.lan}: {len(slots)} of {state.NET_SLOTS} slots in use")
        pic.text(4, 12, f"the page: {state.NET_SLOTS} slots of 6 bytes, one mark each (dark = a MAC is published)",
                 size=10)
        # The whole page as a strip, what the transmit loop walks: one light bar, a mark per used slot.
        for row in range(2):
            pic.rect(4, 18 + row * 10, 341 * 2.3, 8, LIGHT, stroke="none",
                     label=f"slots {341 * row}..{341 * row + 340}: unused unless marked")
        for s in slots:
            x, y = 4 + (s.slot % 341) * 2.3, 18 + (s.slot // 341) * 10
            pic.rect(x, y, 2.3, 8, ORANGE if s.promisc else BLACK, stroke="none", label=f"slot {s.slot}: {mac_text(s.mac)}")
        head = ("slot", "MAC", "promisc", "held by", "receive ring (used_len)")
        for x, name in zip((4, 50, 200, 280, 400), head):
            pic.text(x, 54, name, bold=True)
        for i, s in enumerate(slots):
            y = 62 + i * 26
            pic.rect(0, y, 800, 24, LIGHT if i % 2 else "#FFFFFF", stroke="none")
            pic.text(4, y + 16, str(s.slot))
            pic.text(50, y + 16, mac_text(s.mac))
            if s.promisc:
                pic.rect(200, y + 4, 60, 16, ORANGE, label=f"slot {s.slot} has the PROMISC bit")
                pic.text(230, y + 16, "P", anchor="middle", bold=True)
            else:
                pic.text(200, y + 16, "-")
            pic.text(280, y + 16, s.holder)
            for k, e in enumerate(s.entries[:8]):
                _entry_bar(pic, 400 + k * 23, y + 4, e, k == s.next_dma % max(len(s.entries), 1))
            if not s.entries:
                pic.text(400, y + 16, "the Launcher reads its sends" if s.holder.startswith("Host") else "no ring bound",
                         size=10, fill=GREY)
        y = 70 + len(slots) * 26
        pic.rect(4, y, 14, 10, ORANGE)
        pic.text(22, y + 9, "PROMISC bit: gets every frame", size=10)
        pic.rect(250, y, 14, 10, BLACK)
        pic.text(268, y + 9, "a published MAC", size=10)
        pic.text(420, y + 9, "ring gauges as in KeyTable (blue: a frame waits)", size=10)
        return pic.render()
