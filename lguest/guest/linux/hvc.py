"""A stand-in for hvc_console (drivers/char/hvc_console.c), the generic virtual console.

A console driver gives hvc two callbacks, put_chars() and get_chars(); hvc does the rest.
Early in boot hvc_instantiate() lets printk() reach the console before any device is
probed; later hvc_alloc() makes the interactive console, with an output buffer and a
poll that reads input at most ``N_INBUF`` (16) bytes at a time. Its interrupt is only
requested when the console is first opened (hvc_open()), and not shared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .interrupt import IRQ_HANDLED, IRQF_DISABLED

N_OUTBUF = 16           # hvc_console_print() writes early output in chunks this size
N_INBUF = 16            # hvc_poll() asks get_chars() for at most this much at a time
# 2007-DIFF(tty-room): 2.6.23's tty took up to 64 KiB of flip buffers before hvc_poll() gave up
# and left the rest to its polling thread; here a poll stops at 4 KiB and the rest waits.
TTY_FLIP_ROOM = 4096    # how much a poll may push to the tty before it must wait


@dataclass
class HvOps:
    """``struct hv_ops``: the driver's two callbacks."""
    get_chars: Callable[[int, int], bytes]         # (vtermno, count) -> at most count bytes
    put_chars: Callable[[int, int, int], int]      # (vtermno, buf address, count) -> written


@dataclass(eq=False)
class HvcStruct:
    """One interactive console made by hvc_alloc()."""
    vtermno: int
    irq: int
    ops: HvOps
    outbuf: int                 # Guest address of the output buffer
    outbuf_size: int
    tty: object = None
    polls: int = 0
    get_chars_calls: int = 0
    count: int = 0              # how many times the tty is open

    def __repr__(self):
        return f"HvcStruct(hvc{self.vtermno}, irq={self.irq}, outbuf={self.outbuf_size} bytes)"


class Hvc:
    """The hvc layer of one Guest kernel."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.early: dict[int, HvOps] = {}           # consoles from hvc_instantiate()
        self.early_buf: int | None = None
        self.consoles: list[HvcStruct] = []

    def hvc_instantiate(self, vtermno: int, index: int, ops: HvOps) -> int:
        """Register an output-only console for printk(), before any probe."""
        self.early[vtermno] = ops
        if self.early_buf is None:
            self.early_buf = self.kernel.kmalloc.alloc(N_OUTBUF, align=N_OUTBUF)
        return 0

    def hvc_console_print(self, text: str) -> None:
        """printk()'s path: chunks of 16 bytes, newlines made into CR LF, to console 0."""
        ops = self.early.get(0)
        if ops is None:
            return
        data = text.encode("utf-8", "replace").replace(b"\n", b"\r\n")
        for start in range(0, len(data), N_OUTBUF):
            chunk = data[start:start + N_OUTBUF]
            self.kernel.memory.write(self.early_buf, chunk)
            ops.put_chars(0, self.early_buf, len(chunk))

    def hvc_alloc(self, vtermno: int, irq: int, ops: HvOps, outbuf_size: int) -> HvcStruct:
        """The interactive console: an output buffer, and the irq to ask for when it is opened."""
        outbuf = self.kernel.kmalloc.alloc(outbuf_size, align=outbuf_size)
        hp = HvcStruct(vtermno, irq, ops, outbuf, outbuf_size)
        self.consoles.append(hp)
        self.kernel.register_dev(f"hvc{vtermno}")
        return hp

    def hvc_open(self, hp: HvcStruct) -> int:
        """A tty open of hvcN: the first one requests the console's irq, IRQF_DISABLED, not shared."""
        hp.count += 1
        if hp.count > 1:
            return 0
        return self.kernel.request_irq(hp.irq, self.hvc_handle_interrupt, IRQF_DISABLED, "hvc_console", hp)

    def hvc_handle_interrupt(self, irq: int, hp: HvcStruct) -> int:
        self.hvc_poll(hp)
        return IRQ_HANDLED

    def hvc_poll(self, hp: HvcStruct) -> int:
        """Read input 16 bytes at a time until get_chars() has none, or the tty is full."""
        hp.polls += 1
        got = bytearray()
        while len(got) < TTY_FLIP_ROOM:
            hp.get_chars_calls += 1
            chunk = hp.ops.get_chars(hp.vtermno, min(N_INBUF, TTY_FLIP_ROOM - len(got)))
            if not chunk:
                break
            got += chunk
        if got and hp.tty is not None:
            hp.tty.receive(bytes(got))
        return len(got)

    def hvc_write(self, hp: HvcStruct, data: bytes) -> int:
        """A tty write: through the output buffer, at most outbuf_size bytes per put_chars()."""
        for start in range(0, len(data), hp.outbuf_size):
            chunk = data[start:start + hp.outbuf_size]
            self.kernel.memory.write(hp.outbuf, chunk)
            hp.ops.put_chars(hp.vtermno, hp.outbuf, len(chunk))
        return len(data)
