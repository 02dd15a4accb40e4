"""Capturing a LAN to a pcap file: what tcpdump on the wire would have seen.

A frame is captured where it is *delivered*: each copy that lands in a receiver's buffer
(Guest to Guest inside the Host, reference §3.5), and on a ``--tunnet`` LAN each frame
the Launcher takes from its Guest or puts into it (§4.2, §4.3). So a broadcast to k
peers is k records, and a record holds exactly the bytes that were copied (a frame cut
short by a small receive buffer is recorded cut short). An empty "ping" list moves no
bytes and is not a frame, so it is not recorded.

The file is a classic libpcap file (LINKTYPE_ETHERNET), written by dpkt's pcap Writer.
Timestamps come from the Host's tick, never the wall clock, so a run repeated gives the
same file byte for byte: **tick N is N milliseconds**, and the k-th frame captured at
the same tick is k microseconds later (k stops at 999, so the order of ticks is kept).
The file is flushed after every record, so tshark can read it while the capture runs.
"""
from __future__ import annotations

import os
from decimal import Decimal

from ..errors import UnknownLanError

SNAPLEN = 262144                  # tcpdump's default; longer frames are cut to this
US_PER_TICK = 1000                # tick N -> N ms
MAX_SEQ_IN_TICK = US_PER_TICK - 1


def known_lans(host) -> list[str]:
    """The LANs a capture may name: every --sharenet LAN, then every --tunnet tap."""
    return sorted(host.shared_pages) + sorted(host.tunnets)


class Capture:
    """One running capture of one LAN into one file: ``.frames``, ``.close()``, ``with``."""

    def __init__(self, host, lan: str, path):
        self.host = host
        self.lan = lan
        self.path = os.fspath(path)
        self.frames = 0                            # records written
        self.bytes = 0                             # frame bytes written (before any snaplen cut)
        self._tick = None
        self._seq = 0
        import dpkt                                # here, so a Host that never captures never loads it
        self._file = open(self.path, "wb")
        self._writer = dpkt.pcap.Writer(self._file, snaplen=SNAPLEN, linktype=dpkt.pcap.DLT_EN10MB)
        self._file.flush()                         # a capture with no frames is still a valid file

    @property
    def closed(self) -> bool:
        return self._file is None

    def timestamp_us(self, tick: int) -> int:
        """The next record's time in microseconds: tick ms, plus its place within the tick."""
        if tick == self._tick:
            self._seq = min(self._seq + 1, MAX_SEQ_IN_TICK)
        else:
            self._tick, self._seq = tick, 0
        return tick * US_PER_TICK + self._seq

    def write(self, frame: bytes) -> None:
        """Append one delivered frame, stamped from the Host's tick."""
        if self._file is None:
            raise ValueError(f"the capture of {self.lan!r} to {self.path!r} is closed: start a new one "
                             "with host.capture(lan, path)")
        us = self.timestamp_us(self.host.tick)
        # A Decimal keeps the microseconds exact: dpkt splits ts into seconds and fraction.
        self._writer.writepkt_time(bytes(frame[:SNAPLEN]), Decimal(us) / 1_000_000)
        self._file.flush()
        self.frames += 1
        self.bytes += len(frame)

    def close(self) -> None:
        """Stop capturing and close the file (closing twice is harmless)."""
        if self._file is None:
            return
        captures = self.host.captures.get(self.lan, [])
        if self in captures:
            captures.remove(self)
        if not captures:
            self.host.captures.pop(self.lan, None)  # keep the delivery path's test falsy
        self._file.close()
        self._file = None

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self):
        state = "closed" if self.closed else "capturing"
        return f"Capture({self.lan!r} -> {os.path.basename(self.path)!r}, frames={self.frames}, {state})"


def start_capture(host, lan: str, path) -> Capture:
    """host.capture(): check the LAN exists, open the file and start recording deliveries."""
    lans = known_lans(host)
    if not isinstance(lan, str) or lan not in lans:
        named = ", ".join(repr(n) for n in lans) if lans else (
            "none yet (launch a Guest with sharenet=[NAME] or tunnet=... first)")
        raise UnknownLanError(f"no LAN named {lan!r} on this Host; the known LANs are: {named}")
    capture = Capture(host, lan, path)
    host.captures.setdefault(lan, []).append(capture)
    return capture


def capture_frame(host, lan: str, frame) -> None:
    """Record one delivered frame on every capture of ``lan`` (callers test host.captures first)."""
    if not len(frame):
        return
    for capture in tuple(host.captures.get(lan, ())):
        capture.write(frame)


def capture_extents(host, lan: str, extents, total: int) -> None:
    """The frame as it landed: the first ``total`` bytes of the receiver's [view, off, len] pieces."""
    if lan not in host.captures or not total:
        return
    pieces, left = [], total
    for mv, off, length in extents:
        n = min(length, left)
        pieces.append(mv[off:off + n])
        left -= n
        if not left:
            break
    capture_frame(host, lan, b"".join(pieces))
