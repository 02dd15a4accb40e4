"""make bench: one JSON line per figure, {"name", "ratio", "goal", ...}.

Figures are ratios measured in the same run, so a slow or busy machine moves both
sides together. They are goals to work toward, reported even when they fall short.

``python bench/run.py --profile block`` (or ``net``) prints where the time goes instead:
cProfile's top functions for the 64 MiB disk read, or for 2,000 Guest-to-Guest frames.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np

import lguest
import lguest.trace
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


def block_reads(size: int = 64 << 20, chunk: int = 64 << 10) -> dict:
    """Seconds to read a 64 MiB image in 64 KiB requests through the driver, and with raw preadv;
    then with 4 requests in flight (the D:440 exercise), and with the image opened O_DIRECT."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory(dir=".") as tmp:      # not /tmp: it may be a tmpfs without O_DIRECT
        path = os.path.join(tmp, "disk.img")
        with open(path, "wb") as f:
            f.write(np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8).tobytes())

        def through_the_driver(in_flight=1, o_direct=False):
            guest = lguest.Host(trace=False).launch(mem_mb=16, block=[path], o_direct=o_direct)
            guest.kernel.block.max_in_flight = in_flight
            disk = guest.open("/dev/lgba", "rb", buffering=0)
            buf = bytearray(chunk * in_flight)
            bd = guest.kernel.block.disks[0]

            def read_all():
                disk.seek(0)
                while disk.readinto(buf):
                    pass
            seconds = best_of(read_all, repeat=3, number=1)
            return seconds, guest.kernel.irq_counts[bd.irq] // 3     # best_of ran it 3 times

        def raw_preadv(o_direct=False):
            fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if o_direct else 0))
            out = lguest.memory.zeroed_pages(chunk)                 # page-aligned, as O_DIRECT needs

            def read_all():
                for off in range(0, size, chunk):
                    os.preadv(fd, [out], off)
            try:
                return best_of(read_all, repeat=3, number=1)
            finally:
                os.close(fd)

        times = {"driver": through_the_driver(), "raw": raw_preadv(), "driver_4": through_the_driver(4)}
        try:
            times["driver_direct"] = through_the_driver(o_direct=True)
            times["raw_direct"] = raw_preadv(o_direct=True)
        except (OSError, ValueError):
            pass                                                    # no O_DIRECT on this file system
        return times


def net_frames(frames: int = 2000, size: int = 1514):
    """Seconds per 1514-byte frame, Guest to Guest on a --sharenet LAN through both drivers
    (start_xmit's slot walk, the Host's copy, the irq, lguestnet_rcv and its refill), and
    seconds per raw copy of the same 1514 bytes."""
    from lguest.guest.linux.netdev import dev_queue_xmit, skb_from_bytes
    host = lguest.Host(trace=False)
    a, b = (host.launch(mem_mb=16, sharenet=["lan0"]) for _ in range(2))
    dev_a, dev_b = a.kernel.net.dev("eth0"), b.kernel.net.dev("eth0")
    # Unicast to b, with an EtherType the Guest stack ignores: this measures the driver path.
    frame = dev_b.dev_addr + dev_a.dev_addr + b"\x88\xb5" + bytes(size - 14)

    def one_frame():
        skb = skb_from_bytes(a.kernel, frame)
        skb.dev = dev_a
        dev_queue_xmit(skb)
        host.run()                                 # b takes the irq and refills its slot
    received = dev_b.stats.rx_packets
    seconds = best_of(one_frame, repeat=5, number=frames)
    assert dev_b.stats.rx_packets - received == 5 * frames and dev_a.stats.tx_carrier_errors == 0

    src, dst = bytes(size), bytearray(size)

    def raw_copy():
        dst[:] = src
    return seconds, best_of(raw_copy, repeat=5, number=frames * 10)


def gib_read(limit: int, size: int = 1 << 30, chunk: int = 1 << 20) -> dict:
    """Read a sparse 1 GiB image through Guest.open in 1 MiB reads, the trace on with ``limit``.

    Run in a child process (--gib-read), so its peak RSS is its own."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        path = os.path.join(tmp, "disk.img")
        with open(path, "wb") as f:
            f.truncate(size)                                   # sparse: reads as zeros
        host = lguest.Host()
        host.trace.limit = limit
        guest = host.launch(mem_mb=16, block=[path])
        t0 = time.perf_counter()
        total = 0
        with guest.open("/dev/lgba", "rb") as disk:
            while chunk_read := disk.read(chunk):
                total += len(chunk_read)
        seconds = time.perf_counter() - t0
        assert total == size
    return {"seconds": round(seconds, 1), "peak_rss_mb": peak_rss_mb(),
            "events_kept": len(host.trace), "events_dropped": host.trace.dropped}


def peak_rss_mb() -> int:
    """This process's peak resident set (VmHWM). Not getrusage's ru_maxrss: Linux carries that
    over from the parent through fork and exec."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM:"))


def gib_read_in_child(limit: int) -> dict:
    import subprocess
    out = subprocess.run([sys.executable, __file__, "--gib-read", str(limit)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


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
    blk = block_reads()
    (driver, irqs), raw_read = blk["driver"], blk["raw"]
    figures.append({"name": "block_seq_read_64MiB_in_64KiB_vs_raw_preadv", "ratio": round(raw_read / driver, 3),
                    "goal": ">= 0.5", "driver_ms": round(driver * 1e3, 1), "preadv_ms": round(raw_read * 1e3, 1)})
    driver_4, irqs_4 = blk["driver_4"]
    figures.append({"name": "block_4_in_flight_vs_1_speedup", "ratio": round(driver / driver_4, 3),
                    "goal": "measure (D:440 exercise)", "one_ms": round(driver * 1e3, 1),
                    "four_ms": round(driver_4 * 1e3, 1), "irqs_one": irqs, "irqs_four": irqs_4})
    if "driver_direct" in blk:
        direct, raw_direct = blk["driver_direct"][0], blk["raw_direct"]
        figures.append({"name": "block_o_direct_read_vs_raw_o_direct_preadv", "ratio": round(raw_direct / direct, 3),
                        "goal": "measure", "driver_ms": round(direct * 1e3, 1), "preadv_ms": round(raw_direct * 1e3, 1)})
    frame, copy = net_frames()
    figures.append({"name": "net_guest_to_guest_1514B_frames_vs_raw_copies", "ratio": round(copy / frame, 4),
                    "goal": ">= 0.05", "frames_per_s": round(1 / frame), "raw_copies_per_s": round(1 / copy),
                    "frame_us": round(frame * 1e6, 2), "copy_us": round(copy * 1e6, 3)})
    full, small = gib_read_in_child(lguest.trace.DEFAULT_LIMIT), gib_read_in_child(1000)
    per_event = (full["peak_rss_mb"] - small["peak_rss_mb"]) * (1 << 20) / max(1, full["events_kept"] - 1000)
    figures.append({"name": "gib_read_trace_on_peak_rss_vs_256MB_ceiling",
                    "ratio": round(full["peak_rss_mb"] / 256, 3), "goal": "<= 1.0",
                    **{f"default_limit_{k}": v for k, v in full.items()},
                    **{f"limit_1000_{k}": v for k, v in small.items()},
                    "bytes_per_event": round(per_event),
                    "full_trace_mb": round(per_event * lguest.trace.DEFAULT_LIMIT / (1 << 20))})
    for figure in figures:
        print(json.dumps(figure))
    return 0


def profile(what: str) -> int:
    """cProfile of one benchmark's driver side, the 15 functions with the most cumulative time."""
    import cProfile
    import pstats
    work = {"block": lambda: block_reads(), "net": lambda: net_frames(frames=2000)}
    if what not in work:
        print(f"--profile takes one of {sorted(work)}, got {what!r}", file=sys.stderr)
        return 2
    profiler = cProfile.Profile()
    profiler.runcall(work[what])
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--gib-read"]:
        print(json.dumps(gib_read(int(sys.argv[2]))))
        sys.exit(0)
    if sys.argv[1:2] == ["--profile"]:
        sys.exit(profile(sys.argv[2] if len(sys.argv) > 2 else ""))
    sys.exit(main())
