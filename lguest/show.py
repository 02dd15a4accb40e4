"""Plain-text views for the book: hexdumps and small tables of the model's live state.

Every function here only *reads* the model. The views return a string (the chapters
print it); ``dma_sections`` and ``lockstep`` return the plain data behind two of them.
What a reader sees is drawn from the same bytes the Host and the Guests use.
The output is deterministic: addresses are Guest-physical, never Python object ids.
"""
from __future__ import annotations

import numbers
import operator
from typing import NamedTuple, Sequence

from . import abi
from .host.dma import copy_steps
from .host.host import Host
from .host.keys import get_futex_key
from .memory import GuestMemory


# --- what the views take ----------------------------------------------------------------------
def _whole(value, what: str) -> int:
    """``value`` as an int when it is a whole number (numpy integers too), else a TypeError."""
    if isinstance(value, bool):
        raise TypeError(f"{what} is a whole number, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what} is a whole number, got {value!r}") from None


def _memory(memory, view: str) -> None:
    if not isinstance(memory, GuestMemory):
        raise TypeError(f"{view} takes a Guest's memory, guest.memory; got {memory!r}")


# --- the two building blocks ----------------------------------------------------------------
def table(rows: Sequence[Sequence], headers: Sequence[str]) -> str:
    """A monospace table: a header, a rule, then one line per row.

    Cells are shown with ``str()``. A column whose cells are all whole numbers is
    right-aligned, every other column left-aligned.
    """
    cells = [[str(c) for c in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"every row needs {len(headers)} cells (one per header), got {len(row)}: {row}")
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [bool(cells) and all(r[i].lstrip("-").isdigit() for r in cells) for i in range(len(headers))]

    def line(row):
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])


def hexdump(data: bytes, start: int = 0, width: int = 16, groups: Sequence[int] | None = None,
            squeeze: bool = True) -> str:
    """Bytes as lines of ``address: hex bytes |ascii|``, like ``hexdump -C``.

    ``start`` is the address of the first byte (shown on the left). ``width`` bytes go on
    each line; ``groups`` splits a line into fields of those sizes (for a struct, e.g.
    ``(2, 2, 2, 2, 4)`` for an ``lguest_device_desc``), which must add up to ``width``.
    With ``squeeze``, a run of all-zero lines after the first is shown as one ``*``; if
    the dump ends in such a run, a last line gives the address where the data ends.
    """
    if isinstance(data, (str, numbers.Integral)):
        raise TypeError(f"hexdump takes bytes (or a bytes-like object, e.g. guest.memory.read(addr, n)), "
                        f"got {data!r}")
    data = bytes(data)
    if _whole(width, "width (bytes per line)") <= 0:
        raise ValueError(f"width must be a positive number of bytes, got {width}")
    if _whole(start, "start (the address of the first byte)") < 0:
        raise ValueError(f"start is the address of the first byte, 0 or more; got {start}")
    groups = list(groups) if groups else [width]
    if any(_whole(g, "each of groups") <= 0 for g in groups):
        raise ValueError(f"groups are positive field sizes (in bytes) that add up to the width, got {groups}")
    if sum(groups) != width:
        raise ValueError(f"groups {groups} must add up to the line width {width}")
    lines, zero_run = [], False
    for off in range(0, len(data), width):
        chunk = data[off:off + width]
        if squeeze and off and not any(chunk) and len(chunk) == width and not any(data[off - width:off]):
            if not zero_run:
                lines.append("*")
            zero_run = True
            continue
        zero_run = False
        fields, i = [], 0
        for g in groups:
            fields.append(" ".join(f"{b:02x}" for b in chunk[i:i + g]).ljust(3 * g - 1))
            i += g
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{start + off:08x}: {'  '.join(fields)} |{text}|")     # 16 bytes: 76 columns
    if lines and lines[-1] == "*":
        lines.append(f"{start + len(data):08x}")          # where the squeezed zeros end
    return "\n".join(lines)


# --- D:010: the descriptor page -------------------------------------------------------------
def type_name(type_: int) -> str:
    """``console``, ``net``, ``block``, ``empty``, or the number of an unknown type."""
    type_ = _whole(type_, "a device type (a descriptor's type field)")
    return abi.DEVICE_TYPE_NAMES.get(type_, f"unknown({type_})")


def feature_names(type_: int, features: int) -> str:
    """The feature bits in words. For a net device the low 12 bits are its slot on the LAN."""
    type_ = _whole(type_, "a device type (a descriptor's type field)")
    features = _whole(features, "features (a descriptor's features field)")
    names = []
    if features & abi.LGUEST_DEVICE_F_RANDOMNESS:
        names.append("RANDOMNESS")
    rest = features & ~abi.LGUEST_DEVICE_F_RANDOMNESS
    if type_ == abi.LGUEST_DEVICE_T_NET:
        if rest & abi.LGUEST_NET_F_NOCSUM:
            names.append("NOCSUM")
        rest &= ~abi.LGUEST_NET_F_NOCSUM
        slot, rest = rest & (abi.PAGE_SIZE - 1), rest & ~(abi.PAGE_SIZE - 1)
        names.append(f"slot {slot}")
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) if names else "-"


def status_names(status: int) -> str:
    """The status bits in words, lowest bit first; ``-`` when none is set."""
    status = _whole(status, "status (a descriptor's status field)")
    names = [name for bit, name in sorted(abi.DEVICE_STATUS_NAMES.items()) if status & bit]
    rest = status & ~sum(abi.DEVICE_STATUS_NAMES)
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) if names else "-"


def descriptor_table(descriptors, empty: bool = False) -> str:
    """The ``lguest_device_desc`` array (``guest.devices``) as two tables, a line per device.

    The first has the fields: index, type, features and status (in hex), num_pages, pfn, the
    physical address of the device's pages, and irq = index + 1. The second, under it, says
    what the features and status bits mean, in words; two tables, so that each fits the
    book's column. Empty slots (type 0) are left out unless ``empty`` is true.
    """
    names = getattr(getattr(descriptors, "dtype", None), "names", None) or ()
    if not {"type", "features", "status", "num_pages", "pfn"} <= set(names):
        raise TypeError(f"descriptor_table takes the array of lguest_device_desc, guest.devices; got {descriptors!r}")
    fields, words = [], []
    for i, d in enumerate(descriptors):
        if not d["type"] and not empty:
            continue
        pfn, pages = int(d["pfn"]), int(d["num_pages"])
        fields.append([i, type_name(d["type"]), f"{int(d['features']):#06x}", f"{int(d['status']):#04x}",
                       pages, f"{pfn:#x}", f"{pfn << abi.PAGE_SHIFT:#x}" if pages else "-", i + 1])
        words.append([i, feature_names(d["type"], d["features"]), status_names(d["status"])])
    return (table(fields, ["index", "type", "features", "status", "num_pages", "pfn", "pages at", "irq"])
            + "\n\n" + table(words, ["index", "features in words", "status in words"]))


def memory_map(memory) -> str:
    """A Guest's physical address space, region by region, ending with the pfn limit."""
    _memory(memory, "memory_map")
    rows = [[f"{r.start:#010x}", f"{r.end:#010x}", r.size // abi.PAGE_SIZE, r.name,
             r.shared.name if r.shared else "-"] for r in memory.regions]
    return (table(rows, ["start", "end", "pages", "what", "shared"])
            + f"\ntop = {memory.top:#x}, pfn limit = top / {abi.PAGE_SIZE} = {memory.pfn_limit:#x}")


# --- D:200: keys, bindings, DMA lists -------------------------------------------------------
def key_table(pairs) -> str:
    """For each ``(guest, key)``: where the key points and what the Host makes of it.

    The last column is ``lguest.host.keys.get_futex_key()``: ``private(gN, addr)`` for
    memory only that Guest has, ``shared(file+offset)`` for a page of a LAN, or the
    failure that would kill the Guest.
    """
    rows = []
    for pair in pairs:
        try:
            guest, key = pair
            memory, key = guest.memory, _whole(key, "a key")
            _memory(memory, "key_table")
        except (TypeError, ValueError, AttributeError):
            raise TypeError(f"key_table takes (guest, key) pairs, a Guest and a whole-number key, "
                            f"e.g. [(a, 0x100000)]; got {pair!r}") from None
        where = "-"
        if 0 <= key < memory.top:
            region = memory.region_at(key)
            where = f"{region.name} +{key - region.start:#x}"
        futex = get_futex_key(memory, guest.id, key)
        rows.append([f"g{guest.id}", f"{key:#x}", where, "fails: kills the Guest" if futex is None else repr(futex)])
    return table(rows, ["guest", "key", "points into", "futex key"])


def bindings_table(host) -> str:
    """Every live BIND_DMA binding on the Host, Guest by Guest, in table order."""
    if not isinstance(host, Host):
        raise TypeError(f"bindings_table takes the Host (a Guest's is guest.host); got {host!r}")
    rows = [[f"g{b.guestid}", f"{b.ukey:#x}", repr(b.key), f"{b.dmas:#x}", b.num_dmas, b.interrupt, b.next_dma]
            for b in host.bindings()]
    return table(rows, ["guest", "key", "futex key", "array at", "num", "irq", "next_dma"])


def dma_sections(memory, addr: int) -> list[tuple[int, int]]:
    """The (addr, len) sections of the ``lguest_dma`` at ``addr``, up to the first 0 length."""
    _memory(memory, "dma_sections")
    dma = memory.struct_at(addr, abi.lguest_dma)
    out = []
    for a, n in zip(dma["addr"], dma["len"]):
        if not n:
            break
        out.append((int(a), int(n)))
    return out


def dma_table(memory, addr: int) -> str:
    """One ``lguest_dma``: its used_len, then each section with its page and offset."""
    _memory(memory, "dma_table")
    used = memory.u32(addr)
    rows = [[i, f"{a:#x}", n, f"{a >> abi.PAGE_SHIFT:#x}", f"{a % abi.PAGE_SIZE:#x}",
             "yes" if a % abi.PAGE_SIZE + n <= abi.PAGE_SIZE else "NO: crosses a page"]
            for i, (a, n) in enumerate(dma_sections(memory, addr))]
    total = sum(n for _, n in dma_sections(memory, addr))
    return (f"lguest_dma @ {addr:#x}: used_len = {used}, {len(rows)} sections, {total} bytes\n"
            + table(rows, ["section", "addr", "len", "page", "offset", "within its page"]))


class Step(NamedTuple):
    """One step of the lockstep copy: ``bytes`` into destination section ``dst`` at
    ``dst_off``, from source section ``src``, where the walk has reached ``src_off``.
    2007's copy_data() read from the section's start all the same (``reads_at``)."""
    src: int
    src_off: int
    dst: int
    dst_off: int
    bytes: int

    def reads_at(self, fixed: bool = False) -> int:
        """Where in its source section the step reads: 0 in 2007, the offset once fixed."""
        return self.src_off if fixed else 0


def lockstep(src_lens: Sequence[int], dst_lens: Sequence[int]) -> list[Step]:
    """The steps a transfer takes, given the two lists' section lengths (reference §3.5).

    The walk is the Host's own (``lguest.host.dma.copy_steps``): each step copies what is
    left of the current source section or the room left in the current destination
    section, whichever is less; source bytes beyond the end of the destination are dropped.
    """
    _section_lengths(src_lens)
    _section_lengths(dst_lens)
    return [Step(*step) for step in copy_steps(_until_zero(src_lens), _until_zero(dst_lens))]


def lockstep_table(src_lens: Sequence[int], dst_lens: Sequence[int], fixed: bool = False) -> str:
    """``lockstep()`` as a table: where the walk is, where the copy reads (2007's bug: every
    step from its section's start, marked "!" where that is wrong), where it writes."""
    steps = lockstep(src_lens, dst_lens)
    sent = sum(_until_zero(src_lens))
    copied = sum(s.bytes for s in steps)
    reread = sum(s.bytes for s in steps if s.reads_at(fixed) != s.src_off)
    rows = [[i + 1, f"src[{s.src}] +{s.src_off}",
             f"src[{s.src}] +{s.reads_at(fixed)}" + (" !" if s.reads_at(fixed) != s.src_off else ""),
             f"dst[{s.dst}] +{s.dst_off}", s.bytes] for i, s in enumerate(steps)]
    summary = f"copied {copied} of {sent} bytes; dropped {sent - copied}"
    if reread:
        summary += f"\n{reread} of them read from the wrong place: the 2007 bug"
    return table(rows, ["step", "walk at", "reads", "writes", "bytes"]) + "\n" + summary


def _section_lengths(lens) -> None:
    """Section lengths are u16s, as in an lguest_dma; anything else is refused, saying so."""
    allowed = "section lengths are whole numbers 0..65535 (an lguest_dma's u16 len), in a list such as [1000, 1500]"
    if isinstance(lens, (str, bytes)) or not hasattr(lens, "__iter__"):
        raise TypeError(f"{allowed}; got {lens!r}")
    for n in lens:
        if isinstance(n, bool) or not hasattr(n, "__index__"):
            raise TypeError(f"{allowed}; got {n!r} in {lens!r}")
        if not 0 <= n <= 0xFFFF:
            raise ValueError(f"{allowed}; got {n!r} in {lens!r}")


def _until_zero(lens) -> list[int]:
    """The section lengths up to the first 0 (the terminator), at most 16 of them."""
    out = []
    for n in list(lens)[:abi.LGUEST_MAX_DMA_SECTIONS]:
        if not n:
            break
        out.append(n)
    return out
