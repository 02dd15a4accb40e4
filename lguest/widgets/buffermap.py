"""BufferMap: a Guest's physical pages with its DMA sections drawn on them as bars."""
from __future__ import annotations

from .. import abi
from ..machine import Guest
from . import state
from .svg import BLUE, GREY, SKY, VERMILION, Svg
from .view import View

PAGE_PX = 520
MIN_BAR_PX = 3


class BufferMap(View):
    title = "BufferMap"

    def __init__(self, guest):
        if not isinstance(guest, Guest):
            raise TypeError(f"BufferMap takes one Guest (what host.launch() returned); got {guest!r}")
        self.guest = guest

    def rows(self) -> list[state.PageRow]:
        return state.page_rows(self.guest.host, self.guest.id)

    def crossing(self) -> list[state.Bar]:
        """Sections that cross a page boundary (the Host kills the owner if it checks them)."""
        return [b for b in state.buffer_bars(self.guest.host, self.guest.id) if b.crosses_page]

    def text(self) -> str:
        rows = self.rows()
        memory = self.guest.memory
        out = [f"BufferMap g{self.guest.id}: RAM {memory.ram_size:#x} bytes, top {memory.top:#x}, "
               f"{len(rows)} page(s) shown"]
        for r in rows:
            out.append(f"  page {r.addr:#x} ({r.region})")
            for b in r.bars:
                flag = "  CROSSES PAGE" if b.crosses_page else ""
                out.append(f"    {b.label}: {b.len} bytes @ {b.addr:#x}, {b.filled} filled{flag}")
        return "\n".join(out)

    def svg(self) -> str:
        rows = self.rows()
        memory = self.guest.memory
        pic = Svg(800, f"BufferMap of Guest {self.guest.id}")
        pic.text(4, 14, f"g{self.guest.id}: RAM 0..{memory.ram_size:#x}, descriptor page and device pages "
                        f"up to top {memory.top:#x}", bold=True)
        y = 26
        previous = None
        for r in rows:
            if previous is not None and r.addr - previous > abi.PAGE_SIZE:
                skipped = (r.addr - previous) // abi.PAGE_SIZE - 1
                pic.text(190, y + 10, f"... {skipped} page(s) not shown ...", size=10, fill=GREY)
                y += 16
            previous = r.addr
            y = self._draw_page(pic, r, y)
        pic.rect(4, y + 4, 14, 10, BLUE)
        pic.text(22, y + 13, "filled (used_len)", size=10)
        pic.rect(130, y + 4, 14, 10, "url(#dots)")
        pic.text(148, y + 13, "bound, empty", size=10)
        pic.rect(240, y + 4, 14, 10, SKY)
        pic.text(258, y + 13, "a section this Guest sent", size=10)
        pic.rect(420, y + 4, 14, 10, "url(#hatch)", stroke=VERMILION)
        pic.text(438, y + 13, "crosses a page boundary!", size=10)
        return pic.render()

    def _draw_page(self, pic: Svg, row: state.PageRow, y: float) -> float:
        x0, scale = 180, PAGE_PX / abi.PAGE_SIZE
        height = 8 + 14 * max(1, len(row.bars))
        pic.text(4, y + 12, f"{row.addr:#010x}", size=10)
        pic.text(4, y + 24, row.region[:24], size=9, fill=GREY)
        pic.rect(x0, y, PAGE_PX, height, "#FFFFFF", stroke=GREY, label=f"page {row.addr:#x} ({row.region})")
        for i, b in enumerate(row.bars):
            start = max(b.addr, row.addr)
            end = min(b.addr + b.len, row.addr + abi.PAGE_SIZE)
            bx, by = x0 + (start - row.addr) * scale, y + 4 + i * 14
            width = max((end - start) * scale, MIN_BAR_PX)     # a 10-byte section is still visible
            label = f"{b.label}: {b.len} bytes @ {b.addr:#x}, {b.filled} filled" + (
                " - CROSSES A PAGE BOUNDARY" if b.crosses_page else "")
            if b.crosses_page:
                pic.rect(bx, by, width, 10, "url(#hatch)", stroke=VERMILION, label=label)
                pic.text(x0 + PAGE_PX + 6, by + 9, "crosses!", size=9, fill=VERMILION, bold=True)
                continue
            pic.rect(bx, by, width, 10, "url(#dots)" if b.bound else SKY, label=label)
            if b.bound and b.filled:
                pic.rect(bx, by, max(min(b.filled, end - start) * scale, MIN_BAR_PX), 10, BLUE, label=label)
        return y + height + 4
