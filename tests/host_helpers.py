"""Shared helpers for the Host-rule tests (tests/test_host_*.py).

Everything here plays a (mis)behaving Guest from the outside, through the public facade:
``host.launch``, ``guest.alloc``, ``guest.memory``, ``guest.hypercall`` and the trace. The
assertions live in the tests; these helpers only build memory and take snapshots.

Every Guest here is launched with ``drivers=()``: a kernel with the bus but no drivers, so
no console driver binds key 0 or prints at boot, and the test is the only Guest code that
runs. The Host rules do not depend on which driver makes the hypercalls.
"""
from __future__ import annotations

import struct

import numpy as np

import lguest
from lguest import abi

PAGE = abi.PAGE_SIZE
DMA_STRUCT = struct.Struct("<I16I16H")          # i386 struct lguest_dma, written independently of abi


# --- building Guests -------------------------------------------------------------------------
def lan_guests(n: int = 2, lan: str = "lan0", mem_mb: int = 1, host=None):
    """A Host and ``n`` driverless Guests on one shared LAN (``--sharenet``)."""
    host = host or lguest.Host()
    return host, [host.launch(mem_mb=mem_mb, sharenet=[lan], drivers=()) for _ in range(n)]


def lan_page(guest, lan: str = "lan0") -> int:
    """Guest-physical address at which this Guest maps the LAN's shared page."""
    for region in guest.memory.regions:
        if region.shared is not None and region.shared.name == lan:
            return region.start
    raise AssertionError(f"Guest {guest.id} does not map LAN {lan!r}")


def slot_key(guest, n: int, lan: str = "lan0") -> int:
    """peer_key(n) = the LAN page's physical address + 4*n (reference §1.6)."""
    return lan_page(guest, lan) + 4 * n


def lg(guest):
    """The Host's record of a Guest (pending irqs, bindings, pfn limit)."""
    return guest.host.lgs[guest.id]


# --- memory ----------------------------------------------------------------------------------
def pattern(n: int, seed: int = 1) -> bytes:
    """n recognisable, non-zero bytes."""
    return bytes(((i * 7 + seed * 31) % 251) + 1 for i in range(n))


def fill(guest, addr: int, data: bytes) -> None:
    guest.memory.write(addr, data)


def used_len(guest, addr: int) -> int:
    return struct.unpack("<I", guest.memory.read(addr, 4))[0]


def set_used_len(guest, addr: int, value: int) -> None:
    guest.memory.write(addr, struct.pack("<I", value))


def put_dma(guest, addr: int, sections=(), used: int = 0) -> None:
    """Write one struct lguest_dma at addr, packed by hand: sections then a 0 terminator."""
    sections = list(sections)
    addrs = [a for a, _ in sections] + [0] * (16 - len(sections))
    lens = [n for _, n in sections] + [0] * (16 - len(sections))
    guest.memory.write(addr, DMA_STRUCT.pack(used, *addrs, *lens))


def new_dma(guest, sections=(), used: int = 0) -> int:
    addr = guest.alloc(100, align=4)
    put_dma(guest, addr, sections, used)
    return addr


def ring(guest, sizes, fill_byte: int = 0):
    """A receive array: one lguest_dma per size, each one section of that many bytes.

    Returns (array address, [buffer address per entry]). Buffers never cross a page.
    """
    bufs = []
    for size in sizes:
        buf = guest.alloc(size, align=PAGE if size > 2048 else 64)
        if fill_byte:
            fill(guest, buf, bytes([fill_byte]) * size)
        bufs.append(buf)
    arr = guest.alloc(100 * len(sizes), align=4)
    for i, (buf, size) in enumerate(zip(bufs, sizes)):
        put_dma(guest, arr + 100 * i, [(buf, size)])
    return arr, bufs


def bind(guest, key: int, dmas: int, num: int, irq: int) -> int:
    """The raw BIND_DMA hypercall: arg3 = (num << 8) | irq."""
    return guest.hypercall(abi.LHCALL_BIND_DMA, key, dmas, (num << 8) | irq)


def unbind(guest, key: int, dmas: int) -> int:
    return guest.hypercall(abi.LHCALL_BIND_DMA, key, dmas, 0)


def send(guest, key: int, dma: int) -> None:
    """As the Guest wrapper lguest_send_dma does: zero used_len, then SEND_DMA."""
    set_used_len(guest, dma, 0)
    guest.hypercall(abi.LHCALL_SEND_DMA, key, dma)


# --- snapshots -------------------------------------------------------------------------------
def snapshot(guests):
    """Copies of every region of every Guest's memory (numpy arrays), by (guest id, region)."""
    return {(g.id, i): r.buf.copy() for g in guests for i, r in enumerate(g.memory.regions)}


def assert_unchanged(before, guests, allow=()):
    """Every byte of every Guest is as in ``before``, except the (guest, addr, len) in allow."""
    allowed = {}
    for g, addr, n in allow:
        for i, r in enumerate(g.memory.regions):
            lo, hi = max(addr, r.start), min(addr + n, r.end)
            if lo < hi:
                allowed.setdefault((g.id, i), []).append((lo - r.start, hi - r.start))
    for g in guests:
        for i, r in enumerate(g.memory.regions):
            old = before[(g.id, i)]
            diff = np.flatnonzero(old != r.buf)
            for lo, hi in allowed.get((g.id, i), ()):
                diff = diff[(diff < lo) | (diff >= hi)]
            assert diff.size == 0, (f"Guest {g.id} {r.name}: {diff.size} bytes changed, first at "
                                    f"{r.start + int(diff[0]):#x}")


def events(host, kind, since: int = 0, guest=None):
    return host.trace.filter(kind, guest=None if guest is None else guest.id, since=since)
