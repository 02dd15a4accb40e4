"""D:200 on the Host side: BIND_DMA, SEND_DMA, the list checks and the copy (io.c).

Every value here came from a Guest, so every value is checked before use. A bad one
kills the Guest that supplied it (first message wins) and touches nothing else; the soft
failures of reference §3.7 stay soft. Nothing in this module raises for Guest misbehaviour.
"""
from __future__ import annotations

from ..abi import LGUEST_DMA_STRUCT, LGUEST_IRQS, LGUEST_MAX_DMA_SECTIONS, PAGE_SIZE
from .keys import get_futex_key
from .lg import Binding, Lg
from .pcap import capture_extents

DMA_SIZE = LGUEST_DMA_STRUCT.size


# --- BIND_DMA (reference §3.2) -------------------------------------------------------------
def bind_dma(host, lg: Lg, ukey: int, dmas: int, numdmas: int, interrupt: int) -> int:
    """Bind an array of ``numdmas`` lguest_dma at ``dmas`` to a key; irq 0 unbinds.

    Returns 1 on success and 0 on failure, as the hypercall does. Nothing about the array
    is checked here: a lying Guest is caught when something is transferred into it.
    """
    if interrupt >= LGUEST_IRQS:
        host.emit(lg, "bind_fail", key=ukey, reason=f"irq {interrupt} >= {LGUEST_IRQS}")
        return 0
    key = get_futex_key(lg.memory, lg.id, ukey)
    if key is None:
        host.kill_guest(lg, f"bad dma key {ukey:#x}")
        return 0
    if interrupt == 0:
        return unbind_dma(host, lg, key, ukey, dmas)
    for i, entry in enumerate(lg.dma):
        if entry is None:
            binding = Binding(lg.id, key, ukey, dmas, numdmas, interrupt)
            lg.dma[i] = binding
            # list_add() puts a new binding at the head of its hash chain [INFERENCE]
            host.dma_hash.setdefault(key, []).insert(0, binding)
            host.emit(lg, "bind", key=ukey, futex=key, dmas=dmas, num=numdmas, irq=interrupt, slot=i)
            return 1
    host.emit(lg, "bind_fail", key=ukey, reason="all 32 table entries in use")
    return 0


def unbind_dma(host, lg: Lg, key, ukey: int, dmas: int) -> int:
    """Remove this Guest's first binding whose key *and* array address both match."""
    for i, entry in enumerate(lg.dma):
        if entry is not None and entry.key == key and entry.dmas == dmas:
            _unlink(host, lg, i)
            host.emit(lg, "unbind", key=ukey, dmas=dmas, slot=i)
            return 1
    host.emit(lg, "bind_fail", key=ukey, reason=f"no binding of this key to {dmas:#x} to remove")
    return 0


def _unlink(host, lg: Lg, i: int) -> None:
    binding = lg.dma[i]
    chain = host.dma_hash[binding.key]
    chain.remove(binding)
    if not chain:
        del host.dma_hash[binding.key]
    lg.dma[i] = None


def release_all_dma(host, lg: Lg) -> None:
    """Drop every binding of a Guest, as closing /dev/lguest did."""
    count = 0
    for i, entry in enumerate(lg.dma):
        if entry is not None:
            _unlink(host, lg, i)
            count += 1
    host.emit(lg, "release_all_dma", bindings=count)


# --- SEND_DMA (reference §3.4) -------------------------------------------------------------
def send_dma(host, lg: Lg, ukey: int, udma: int) -> None:
    """Send the lguest_dma at ``udma`` to whoever is bound to ``ukey``.

    A private key goes to this Guest's own Launcher, which serves it before the hypercall
    returns. A shared key goes to the first *other* Guest bound to it, with one retry if
    that Guest had no free buffer. The answer is only ever in the sender's used_len.
    """
    key = get_futex_key(lg.memory, lg.id, ukey)
    if key is None:
        host.kill_guest(lg, f"bad sending DMA key {ukey:#x}")
        return
    if not key.shared:
        host.emit(lg, "send_dma", key=ukey, dma=udma, to="launcher")
        lg.launcher.handle_output(ukey, udma)
        return
    for attempt in (1, 2):
        dst = first_other_binding(host, key, lg.id)
        if dst is None:
            host.emit(lg, "send_dma", key=ukey, dma=udma, to=None)
            return
        host.emit(lg, "send_dma", key=ukey, dma=udma, to=dst.guestid, attempt=attempt)
        if not dma_transfer(host, lg, udma, dst):
            return
    host.emit(lg, "send_dma_full", key=ukey, to=dst.guestid)


def first_other_binding(host, key, sender_id: int) -> Binding | None:
    """The first binding on the key's hash chain that belongs to another Guest."""
    for binding in host.dma_hash.get(key, ()):
        if binding.guestid != sender_id:
            return binding
    return None


# --- The checks (reference §3.3) -----------------------------------------------------------
def check_dma_list(host, lg: Lg, addrs, lens) -> list | None:
    """Every section up to the first zero length: in range, at most a page, not across one.

    A bad section kills the list's owner and gives None. A good list comes back "pinned",
    as the real Host pinned the pages it would copy through: as [view, offset, length]
    extents of Guest memory, with sections that sit side by side merged into one.
    The range test is lguest_address_ok() inlined (see GuestMemory.in_range), because
    this runs for every section of every Guest-to-Guest transfer.
    """
    memory = lg.memory
    limit, ram_size, ram_mv = memory.pfn_limit, memory.ram.size, memory.ram.mv
    extents: list[list] = []
    last = None
    checked = 0
    for i in range(LGUEST_MAX_DMA_SECTIONS):
        length = lens[i]
        if not length:
            break
        addr = addrs[i]
        if (addr + length) // PAGE_SIZE >= limit or length > PAGE_SIZE or (addr % PAGE_SIZE) + length > PAGE_SIZE:
            host.emit(lg, "check", ok=False, section=i, len=length, addr=addr)
            host.kill_guest(lg, f"bad DMA entry {i}: {length}@{addr:#x}")
            return None
        if addr + length <= ram_size:
            mv, off = ram_mv, addr
        else:
            region, off = memory.locate(addr, length)
            mv = region.mv
        if last is not None and last[0] is mv and last[1] + last[2] == off:
            last[2] += length
        else:
            last = [mv, off, length]
            extents.append(last)
        checked += 1
    host.emit(lg, "check", ok=True, sections=checked)
    return extents


# --- The transfer (reference §3.5) ---------------------------------------------------------
def dma_transfer(host, src: Lg, udma: int, dst: Binding) -> bool:
    """Copy the sender's list into the receiver's next free buffer.

    Returns True exactly when the receiver had no free buffer (so the sender may retry).
    The receiver's irq is raised whether or not it had room, so it can restock its ring;
    on the abort paths (a Guest killed, or nothing copied from a non-empty list) no irq.
    """
    if not src.memory.in_range(udma, DMA_SIZE):
        host.kill_guest(src, f"bad read address {udma:#x} len {DMA_SIZE}")
        return False
    fields = src.memory.unpack(LGUEST_DMA_STRUCT, udma)
    src_addr, src_len = fields[1:17], fields[17:33]

    dstlg = host.lgs[dst.guestid]
    entry = find_free_entry(host, dstlg, dst)
    if entry is False:
        return False                          # the receiver was killed reading its array
    if entry is not None:
        fields = dstlg.memory.unpack(LGUEST_DMA_STRUCT, entry)
        dst_addr, dst_len = fields[1:17], fields[17:33]
        dst_extents = check_dma_list(host, dstlg, dst_addr, dst_len)
        if dst_extents is None:
            return False
        src_extents = check_dma_list(host, src, src_addr, src_len)
        if src_extents is None:
            return False
        total = copy_data(src_extents, dst_extents)
        host.emit(src, "copy", to=dstlg.id, bytes=total, entry=entry)
        src.memory.set_u32(udma, total)
        host.emit(src, "used_len", addr=udma, value=total)
        if total == 0 and src_len[0] != 0:
            host.emit(src, "transfer_failed", reason="nothing copied from a non-empty list")
            return False
        dstlg.memory.set_u32(entry, total)    # written last: the receiver may look at any time
        host.emit(dstlg, "used_len", addr=entry, value=total)
        if host.captures:                     # the frame has landed: record it if its LAN is captured
            capture_extents(host, dst.key.space, dst_extents, total)
        dst.next_dma = (dst.next_dma + 1) & 0xFFFF
    host.raise_irq(dstlg, dst.interrupt)
    return entry is None


def find_free_entry(host, dstlg: Lg, dst: Binding):
    """The first entry with used_len 0, searching from next_dma and wrapping round once.

    Returns its address, None if every entry is in use, or False if reading the array
    touched a bad address (which kills the receiver, who owns the array).
    """
    memory, num = dstlg.memory, dst.num_dmas
    for i in range(num):
        addr = dst.entry_addr((dst.next_dma + i) % num)
        if not memory.in_range(addr, DMA_SIZE):
            host.kill_guest(dstlg, f"bad address in registered DMA struct {addr:#x}")
            return False
        if memory.u32(addr) == 0:
            return addr
    host.emit(dstlg, "ring_full", key=dst.ukey, num=num)
    return None


def copy_data(src: list, dst: list) -> int:
    """Walk both section lists in lockstep, copying what fits; extra source bytes are dropped.

    Walking in lockstep moves the source sections, read end to end, into the destination
    sections, filled end to end; so the merged extents from check_dma_list() give the same
    bytes in the same places, in fewer, longer slices.
    """
    si = di = s_off = d_off = total = 0
    while si < len(src) and di < len(dst):
        s_mv, s, s_len = src[si]
        d_mv, d, d_len = dst[di]
        n = min(s_len - s_off, d_len - d_off)
        d_mv[d + d_off:d + d_off + n] = s_mv[s + s_off:s + s_off + n]
        total += n
        s_off += n
        d_off += n
        if s_off == s_len:
            si, s_off = si + 1, 0
        if d_off == d_len:
            di, d_off = di + 1, 0
    return total


# --- The Launcher's lookup (reference §3.6) ------------------------------------------------
def get_dma_buffer(host, lg: Lg, ukey: int) -> int | None:
    """LHREQ_GETDMA: a free receive buffer this Guest bound to ``ukey``, for its Launcher.

    Scans from entry 0 (ignoring next_dma). Quirk: when every entry is in use it returns
    the *last* one anyway, so the Launcher overwrites a buffer the Guest has not read.
    The binding's irq is written into the chosen entry's used_len to hand it back.
    """
    key = get_futex_key(lg.memory, lg.id, ukey)
    if key is None:
        host.kill_guest(lg, f"bad registered DMA buffer {ukey:#x}")
        return None
    for binding in host.dma_hash.get(key, ()):
        if binding.guestid != lg.id:
            continue
        chosen = None
        for i in range(binding.num_dmas):
            chosen = binding.entry_addr(i)
            if not lg.memory.in_range(chosen, DMA_SIZE):
                host.kill_guest(lg, f"bad address in registered DMA struct {chosen:#x}")
                return None
            if lg.memory.u32(chosen) == 0:
                break
        else:
            if chosen is not None:
                host.emit(lg, "getdma_reuse_last", key=ukey, entry=chosen)
        if chosen is None:
            return None                        # bound with a count of 0: nothing to hand out
        lg.memory.set_u32(chosen, binding.interrupt)
        host.emit(lg, "getdma", key=ukey, entry=chosen, irq=binding.interrupt)
        return chosen
    host.emit(lg, "getdma", key=ukey, entry=None)
    return None
