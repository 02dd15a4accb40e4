"""make bench: one JSON line per figure, {"name", "ratio", "goal", ...}.

Figures are ratios measured in the same run, so a slow or busy machine moves both
sides together. They are goals to work toward, reported even when they fall short.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

import lguest
from lguest import abi

SECTIONS = 16
SECTION = abi.PAGE_SIZE


def best_of(fn, repeat: int = 7, number: int = 2000) -> float:
    """Seconds per call: the best of ``repeat`` runs of ``number`` calls (least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def guest_to_guest_sender(trace: bool):
    """Two Guests on one LAN; the receiver binds one 16-page buffer; returns a send() closure."""
    host = lguest.Host(trace=trace)
    a = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())
    b = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())
    peer_page = int(b.devices[0]["pfn"]) << abi.PAGE_SHIFT
    rx = b.alloc(SECTIONS * SECTION, align=SECTION)
    rx_dma = b.dma([(rx + i * SECTION, SECTION) for i in range(SECTIONS)])
    key_b = peer_page + 4 * 1                                  # b holds slot 1
    assert b.kernel.lguest_bind_dma(key_b, rx_dma, 1, 1) == 0
    tx = a.alloc(SECTIONS * SECTION, align=SECTION)
    a.memory.write(tx, np.arange(SECTIONS * SECTION, dtype=np.uint32).astype(np.uint8).tobytes())
    tx_dma = a.dma([(tx + i * SECTION, SECTION) for i in range(SECTIONS)])
    key_a_view = (int(a.devices[0]["pfn"]) << abi.PAGE_SHIFT) + 4 * 1   # same key, a's address

    def send():
        b.memory.set_u32(rx_dma, 0)                            # the receiver hands the buffer back
        a.kernel.lguest_send_dma(key_a_view, tx_dma)

    send()
    assert a.memory.u32(tx_dma) == SECTIONS * SECTION, "the bench transfer did not move 64 KiB"
    assert b.memory.read(rx, 64) == a.memory.read(tx, 64)
    return send


def raw_copy():
    src = np.arange(SECTIONS * SECTION, dtype=np.uint8)
    dst = np.zeros_like(src)
    s, d = memoryview(src), memoryview(dst)

    def copy():
        d[:] = s
    return copy


def views_with_32_bindings():
    """A Guest with 32 bindings (the most it may have), each of a 4-entry ring, half filled."""
    from lguest.widgets import BufferMap, InterruptPanel, KeyTable
    host = lguest.Host()
    g = host.launch(mem_mb=16, sharenet=["lan0"], drivers=())          # all 32 entries are ours
    for n in range(abi.LGUEST_MAX_DMA):
        ring = g.dma_array([[(g.alloc(512), 512)] for _ in range(4)])
        assert g.kernel.lguest_bind_dma(0x200000 + 4 * n, ring, 4, 1 + n % 31) == 0
        g.memory.set_u32(ring, 100)
    return [KeyTable(host), InterruptPanel(host), BufferMap(g)]


def block_read_vs_preadv(size: int = 64 << 20, chunk: int = 64 << 10):
    """Seconds to read a 64 MiB image in 64 KiB requests through the driver, and with raw preadv."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "disk.img")
        with open(path, "wb") as f:
            f.write(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())
        host = lguest.Host(trace=False)
        guest = host.launch(mem_mb=16, block=[path])
        disk = guest.open("/dev/lgba", "rb", buffering=0)
        buf = bytearray(chunk)

        def through_the_driver():
            disk.seek(0)
            while disk.readinto(buf):
                pass

        fd = os.open(path, os.O_RDONLY)
        out = np.zeros(chunk, np.uint8)

        def raw_preadv():
            for off in range(0, size, chunk):
                os.preadv(fd, [out], off)
        times = best_of(through_the_driver, repeat=3, number=1), best_of(raw_preadv, repeat=3, number=1)
        os.close(fd)
        return times


def main() -> int:
    raw = best_of(raw_copy())
    send_off = best_of(guest_to_guest_sender(trace=False))
    send_on = best_of(guest_to_guest_sender(trace=True), number=500)
    figures = [
        {"name": "guest_to_guest_send_16x4KiB_vs_raw_64KiB_copy", "ratio": round(raw / send_off, 3), "goal": ">= 0.25",
         "send_us": round(send_off * 1e6, 2), "raw_copy_us": round(raw * 1e6, 2)},
        {"name": "trace_on_vs_off", "ratio": round(send_on / send_off, 3), "goal": "<= 1.3",
         "send_trace_on_us": round(send_on * 1e6, 2), "send_trace_off_us": round(send_off * 1e6, 2)},
    ]
    redraw = {type(v).__name__: best_of(v.svg, repeat=5, number=20) for v in views_with_32_bindings()}
    worst = max(redraw.values())
    figures.append({"name": "view_redraw_32_bindings_vs_20ms", "ratio": round(worst / 0.020, 3), "goal": "<= 1.0",
                    **{f"{name}_ms": round(t * 1e3, 2) for name, t in redraw.items()}})
    driver, raw_read = block_read_vs_preadv()
    figures.append({"name": "block_seq_read_64MiB_in_64KiB_vs_raw_preadv", "ratio": round(raw_read / driver, 3),
                    "goal": ">= 0.5", "driver_ms": round(driver * 1e3, 1), "preadv_ms": round(raw_read * 1e3, 1)})
    for figure in figures:
        print(json.dumps(figure))
    return 0


if __name__ == "__main__":
    sys.exit(main())
