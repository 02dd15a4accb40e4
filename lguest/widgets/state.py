"""Read the model into plain rows for the views: what each view draws, computed, not stored.

These functions are the views' only contact with the model, and the unit tests check
them directly: a known binding table gives known rows, a known crossing section is flagged.
They only read, and they read Guest memory through its checked accessors, so a lying
Guest shows up as an unreadable entry rather than an exception.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import abi
from ..host.dma import TO_LAUNCHER, first_other_binding, route as route_of
from ..host.interrupts import BLOCKED_OFFSET, IRQ_ENABLED_OFFSET

MAX_ENTRIES_SHOWN = 16


@dataclass
class Section:
    addr: int
    len: int

    @property
    def crosses_page(self) -> bool:
        return (self.addr % abi.PAGE_SIZE) + self.len > abi.PAGE_SIZE


@dataclass
class Entry:
    """One lguest_dma: where it is, what it says, and how full it is."""
    addr: int
    used_len: int | None = None             # None: the struct is not in readable memory
    sections: list[Section] = field(default_factory=list)

    @property
    def capacity(self) -> int:
        return sum(s.len for s in self.sections)

    @property
    def readable(self) -> bool:
        return self.used_len is not None


def read_entry(memory, addr: int) -> Entry:
    """The lguest_dma at ``addr``, sections up to the first zero length."""
    if not memory.in_range(addr, abi.DMA_SIZE):
        return Entry(addr)
    fields = memory.unpack(abi.LGUEST_DMA_STRUCT, addr)
    sections = []
    for a, n in zip(fields[1:17], fields[17:33]):
        if not n:
            break
        sections.append(Section(a, n))
    return Entry(addr, fields[0], sections)


# --- KeyTable ------------------------------------------------------------------------------
@dataclass
class KeyRow:
    guest: int
    slot: int
    ukey: int
    identity: str
    irq: int
    dmas: int
    num: int
    next_dma: int
    entries: list[Entry]
    fed_by: list[str]


def key_rows(host) -> list[KeyRow]:
    """Every binding on the Host, Guest by Guest in table order."""
    rows = []
    for lg in host.lgs:
        for slot, b in enumerate(lg.dma):
            if b is None or not b.interrupt:          # never used, or freed
                continue
            shown = min(b.num_dmas, MAX_ENTRIES_SHOWN)
            entries = [read_entry(lg.memory, b.entry_addr(i)) for i in range(shown)]
            rows.append(KeyRow(lg.id, slot, b.ukey, repr(b.key), b.interrupt, b.dmas, b.num_dmas,
                               b.next_dma, entries, senders_reaching(host, b)))
    return rows


def senders_reaching(host, binding) -> list[str]:
    """Who a SEND_DMA (or the Launcher's input) to this binding's key would land here from."""
    if not binding.key.shared:
        return [f"g{binding.guestid}'s Launcher"]
    return [f"g{lg.id}" for lg in host.lgs
            if lg.dead is None and lg.id != binding.guestid and _maps(lg, binding.key.space)
            and first_other_binding(host, binding.key, lg.id) is binding]


def _maps(lg, shared_name: str) -> bool:
    return any(r.shared is not None and r.shared.name == shared_name for r in lg.memory.regions)


def route(host, sender: int, ukey: int) -> str:
    """In words: where a SEND_DMA from Guest ``sender`` to ``ukey`` would go right now."""
    lg = host.lgs[sender]
    if lg.dead is not None:
        return f"g{sender} is dead: it sends nothing"
    key, dst = route_of(host, lg, ukey)
    if key is None:
        return f"g{sender} would be killed: bad sending DMA key {ukey:#x} (misaligned or unmapped)"
    if dst is TO_LAUNCHER:
        return f"g{sender} -> key {ukey:#x} {key!r} -> g{sender}'s Launcher (private key)"
    if dst is None:
        return f"g{sender} -> key {ukey:#x} {key!r} -> nobody bound: used_len stays 0"
    return f"g{sender} -> key {ukey:#x} {key!r} -> g{dst.guestid} (table slot {host.lgs[dst.guestid].dma.index(dst)})"


# --- InterruptPanel ------------------------------------------------------------------------
@dataclass
class Line:
    irq: int
    pending: bool
    blocked: bool
    handlers: list[str]
    delivered: int
    unhandled: int


@dataclass
class IrqState:
    guest: int
    dead: str | None
    irq_enabled: bool
    halted: bool
    lines: list[Line]


def irq_states(host) -> list[IrqState]:
    states = []
    for lg, guest in zip(host.lgs, host.guests):
        kernel, data = guest.kernel, lg.lguest_data
        blocked = lg.memory.u32(data + BLOCKED_OFFSET) if data is not None else 0
        enabled = bool(lg.memory.u32(data + IRQ_ENABLED_OFFSET)) if data is not None else False
        lines = [Line(i, bool(lg.irqs_pending >> i & 1), bool(blocked >> i & 1),
                      [a.name for a in kernel.irq_actions.get(i, ())],
                      kernel.irq_counts[i], kernel.irqs_unhandled[i]) for i in range(abi.LGUEST_IRQS)]
        states.append(IrqState(lg.id, lg.dead, enabled, lg.halted, lines))
    return states


@dataclass
class IrqEvent:
    tick: int
    guest: int
    irq: int
    kind: str                   # "raise" or "deliver"


def irq_timeline(trace, since: int = 0, limit: int = 200) -> list[IrqEvent]:
    """The last ``limit`` irq raises and deliveries recorded since the mark ``since``."""
    events = [IrqEvent(e.tick, e.guest, e.irq, e.kind.removeprefix("irq_"))
              for e in trace.filter(("irq_raise", "irq_deliver"), since=since)]
    return events[-limit:]


# --- BufferMap -----------------------------------------------------------------------------
@dataclass
class Bar:
    """A section of a DMA list as it lies in memory, and how much of it holds data."""
    label: str
    addr: int
    len: int
    filled: int
    bound: bool

    @property
    def crosses_page(self) -> bool:
        return Section(self.addr, self.len).crosses_page


@dataclass
class PageRow:
    addr: int
    region: str
    bars: list[Bar]


def buffer_bars(host, guest_id: int, sent_limit: int = 4) -> list[Bar]:
    """The sections of every bound entry of a Guest, and of the DMAs it sent most recently."""
    lg = host.lgs[guest_id]
    bars = []
    for slot, b in enumerate(lg.dma):
        if b is None or not b.interrupt:              # never used, or freed
            continue
        for i in range(min(b.num_dmas, MAX_ENTRIES_SHOWN)):
            entry = read_entry(lg.memory, b.entry_addr(i))
            left = entry.used_len or 0
            for j, s in enumerate(entry.sections):
                filled = min(left, s.len)
                left -= filled
                bars.append(Bar(f"slot {slot} key {b.ukey:#x} [{i}].{j}", s.addr, s.len, filled, True))
    sent = []
    for e in reversed(trace_sends(host, guest_id)):
        if e not in sent:
            sent.append(e)
        if len(sent) == sent_limit:
            break
    for dma in reversed(sent):
        entry = read_entry(lg.memory, dma)
        for j, s in enumerate(entry.sections):
            bars.append(Bar(f"sent {dma:#x} .{j}", s.addr, s.len, s.len if entry.used_len else 0, False))
    return bars


def trace_sends(host, guest_id: int) -> list[int]:
    return [e.dma for e in host.trace.filter("send_dma", guest=guest_id)]


def page_rows(host, guest_id: int) -> list[PageRow]:
    """Each page that holds a section, plus the descriptor and device pages, in address order."""
    memory = host.lgs[guest_id].memory
    bars = buffer_bars(host, guest_id)
    pages = {r.start + k * abi.PAGE_SIZE for r in memory.regions[1:] for k in range(r.size // abi.PAGE_SIZE)}
    for bar in bars:
        first = bar.addr - bar.addr % abi.PAGE_SIZE
        pages.update(range(first, bar.addr + bar.len, abi.PAGE_SIZE))
    rows = []
    for page in sorted(p for p in pages if 0 <= p < memory.top):
        on_page = [b for b in bars if b.addr < page + abi.PAGE_SIZE and b.addr + b.len > page]
        rows.append(PageRow(page, memory.region_at(page).name, on_page))
    return rows


# --- LanPage -------------------------------------------------------------------------------
NET_SLOTS = abi.PAGE_SIZE // abi.lguest_net.itemsize     # 682
PROMISC_BIT = 0x01


@dataclass
class LanSlot:
    """One published MAC on a LAN's page, and the receive ring bound to its key (if any)."""
    slot: int
    mac: bytes
    holder: str                    # "g1", or "Host (tap0)" for a tunnet's slot 0, or "?" (no ring)
    ukey: int | None               # the key the holder bound, as it passed it
    entries: list[Entry]           # its receive ring, NUM_SKBS = 8 in the driver
    next_dma: int = 0

    @property
    def promisc(self) -> bool:
        return bool(self.mac[0] & PROMISC_BIT)


def lan_page(host, lan: str) -> tuple[bytes, list[LanSlot]]:
    """The LAN's page bytes and its used slots (mac[0] != 0), lowest first."""
    if lan in host.shared_pages:
        page = bytes(host.shared_pages[lan].buf[:NET_SLOTS * 6])
        ring_of = _shared_rings(host, lan)
    elif lan in host.tunnets:
        tun = host.tunnets[lan]
        page = tun.launcher.memory.read(tun.device.mem, NET_SLOTS * 6)
        ring_of = _tunnet_rings(host, tun)
    else:
        raise KeyError(f"no LAN named {lan!r}; this Host has {sorted(host.shared_pages) + sorted(host.tunnets)}")
    slots = []
    for n in range(NET_SLOTS):
        mac = page[6 * n:6 * n + 6]
        if mac[0]:
            slots.append(ring_of(n, mac))
    return page, slots


def _shared_rings(host, lan: str):
    """Slot n's ring on a --sharenet LAN: the binding at shared key (lan, 4n)."""
    by_offset = {}
    for lg in host.lgs:
        for b in lg.dma:
            if b is not None and b.interrupt and b.key.shared and b.key.space == lan:
                by_offset[b.key.offset] = (lg, b)

    def ring(n: int, mac: bytes) -> LanSlot:
        found = by_offset.get(4 * n)
        if found is None:
            return LanSlot(n, mac, "?", None, [])
        lg, b = found
        return LanSlot(n, mac, f"g{lg.id}", b.ukey, [read_entry(lg.memory, b.entry_addr(i)) for i in range(b.num_dmas)],
                       b.next_dma)
    return ring


def _tunnet_rings(host, tun):
    """A tunnet's page is the Launcher's own: slot 0 is the Host behind the tap, slot 1 the Guest."""
    lg = tun.launcher.lguest.lg

    def ring(n: int, mac: bytes) -> LanSlot:
        if n == 0:
            return LanSlot(0, mac, f"Host ({tun.lan})", tun.host_key, [])
        for b in lg.dma:
            if b is not None and b.interrupt and not b.key.shared and b.ukey == tun.device.mem + 4 * n:
                return LanSlot(n, mac, f"g{lg.id}", b.ukey,
                               [read_entry(lg.memory, b.entry_addr(i)) for i in range(b.num_dmas)], b.next_dma)
        return LanSlot(n, mac, "?", None, [])
    return ring
