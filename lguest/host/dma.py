"""D:200 on the Host side: BIND_DMA, SEND_DMA, the list checks and the copy (io.c).

Every value here came from a Guest, so every value is checked before use. A bad one
kills the Guest that supplied it (first message wins), with 2007's own message, and the
Host carries on exactly as io.c did: a bad read gives zeros, a killed receiver of an
empty list still gets its interrupt. The soft failures of reference §3.7 stay soft.
Nothing in this module raises for Guest misbehaviour.
"""
from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple

from ..abi import DMA_SIZE, LGUEST_DMA_STRUCT, LGUEST_IRQS, LGUEST_MAX_DMA_SECTIONS, PAGE_SIZE
from .keys import get_futex_key
from .lg import Binding, Lg
from .lgmem import lgread_dma, lgwrite_u32
from .pcap import capture_extents


# --- BIND_DMA (reference §3.2) -------------------------------------------------------------
def bind_dma(host, lg: Lg, ukey: int, dmas: int, numdmas: int, interrupt: int) -> int:
    """Bind an array of ``numdmas`` lguest_dma at ``dmas`` to a key; irq 0 unbinds.

    Returns 1 on success and 0 on failure, as the hypercall does. Nothing about the array
    is checked here: a lying Guest is caught when something is transferred into it. As in
    io.c, the key's references are taken first and dropped again unless a new binding keeps
    them, and an entry is free when its irq is 0: what else it held stays in the table.
    """
    if interrupt >= LGUEST_IRQS:
        host.emit(lg, "bind_fail", key=ukey, reason=f"irq {interrupt} >= {LGUEST_IRQS}")
        return 0
    if host.lock_blocks(lg):
        return 0
    key = get_futex_key(lg.memory, lg.id, ukey)
    if key is None:
        host.kill_guest(lg, f"bad dma key {ukey:#x}")
        return 0
    get_key_refs(host, lg, key)
    if interrupt == 0:
        done = unbind_dma(host, lg, key, ukey, dmas)
    else:
        for i, entry in enumerate(lg.dma):
            if entry is None or not entry.interrupt:      # never used, or unlinked: free
                binding = Binding(lg.id, key, ukey, dmas, numdmas, interrupt)
                lg.dma[i] = binding
                # list_add() puts a new binding at the head of its hash chain [INFERENCE]
                host.dma_hash.setdefault(key, []).insert(0, binding)
                host.emit(lg, "bind", key=ukey, futex=key, dmas=dmas, num=numdmas, irq=interrupt, slot=i)
                return 1                                  # the binding keeps the references
        host.emit(lg, "bind_fail", key=ukey, reason="all 32 table entries in use")
        done = 0
    drop_key_refs(host, lg, key)
    return done


def unbind_dma(host, lg: Lg, key, ukey: int, dmas: int) -> int:
    """Unlink this Guest's first entry whose key *and* array address both match.

    2007's bug, kept: the search does not look at the irq, so it also matches an entry it
    unlinked before (unless a bind has reused that slot). Unbinding twice unlinks it twice:
    a second list_del() and a second drop of the key's references (see unlink_again())."""
    for i, entry in enumerate(lg.dma):
        if entry is not None and entry.key == key and entry.dmas == dmas:
            stale = not entry.linked
            host.emit(lg, "unbind", key=ukey, dmas=dmas, slot=i, **({"stale": True} if stale else {}))
            unlink_dma(host, lg, entry)
            return 1
    host.emit(lg, "bind_fail", key=ukey, reason=f"no binding of this key to {dmas:#x} to remove")
    return 0


def unlink_dma(host, lg: Lg, entry: Binding) -> None:
    """L:360: free the entry (irq 0), take it off its hash chain, drop its key's references."""
    entry.interrupt = 0
    if entry.linked:
        chain = host.dma_hash[entry.key]
        chain.remove(entry)
        if not chain:
            del host.dma_hash[entry.key]
        entry.linked = False
    elif not unlink_again(host, lg):
        return                                     # the Host oopsed: nothing after list_del ran
    drop_key_refs(host, lg, entry.key)


# list_del() leaves these in an unlinked entry's next and prev (include/linux/poison.h).
LIST_POISON1, LIST_POISON2 = 0x00100100, 0x00200200


def unlink_again(host, lg: Lg) -> bool:
    """list_del() of an entry already off its list: ``next->prev = prev; prev->next = next``
    with next and prev the poison values, so two u32 stores at low addresses.

    The Host runs in the Launcher's address space, where the Guest's memory is mapped from
    address 0: a store that lands below the Guest's top lands in the Guest's own memory. One
    that does not faults, and the Host oopses holding lguest_lock. A kernel built with
    CONFIG_DEBUG_LIST (``Host(debug_list=True)``) checks first, and BUGs, with the lock held.
    Returns False when the Host oopsed. [INFERENCE: what follows from the 2.6.23 code]"""
    if host.debug_list:
        host.oops(lg, "list_del corruption: the entry's prev->next is not the entry")
        return False
    for addr, value in ((LIST_POISON1 + 4, LIST_POISON2), (LIST_POISON2, LIST_POISON1)):
        if addr + 4 > lg.memory.top:               # nothing of the Launcher's is mapped there
            host.oops(lg, f"BUG: unable to handle kernel paging request at {addr:08x}")
            return False
        lg.memory.set_u32(addr, value)
        host.emit(lg, "poison_write", addr=addr, value=value)
    return True


def get_key_refs(host, lg: Lg, key) -> None:
    """get_futex_key_refs(): one more reference on the LAN file's inode or the Launcher's mm."""
    refs = host.key_refs
    refs[_ref_target(lg, key)] = refs.get(_ref_target(lg, key), 1) + 1


def drop_key_refs(host, lg: Lg, key) -> None:
    """drop_futex_key_refs(): iput() or mmdrop(). At 0 the inode or mm is freed, in use or not."""
    target = _ref_target(lg, key)
    count = host.key_refs.get(target, 1) - 1
    host.key_refs[target] = count
    if count == 0:
        users = sorted(other.id for other in host.lgs if other.dead is None and _holds(other, target))
        host.emit(lg, "freed_in_use", what=_ref_name(target), users=tuple(users))
        host.corruption.append(f"{_ref_name(target)} freed while in use by g{', g'.join(map(str, users))}"
                               if users else f"{_ref_name(target)} freed")


def _ref_target(lg: Lg, key) -> tuple:
    return ("inode", key.space) if key.shared else ("mm", lg.id)


def _ref_name(target) -> str:
    kind, what = target
    return f"the inode of LAN file {what!r}" if kind == "inode" else f"g{what}'s Launcher mm"


def _holds(lg: Lg, target) -> bool:
    kind, what = target
    if kind == "mm":
        return lg.id == what
    return any(r.shared is not None and r.shared.name == what for r in lg.memory.regions)


def release_all_dma(host, lg: Lg) -> None:
    """Drop every live binding of a Guest, as closing /dev/lguest did."""
    count = 0
    for entry in lg.dma:
        if entry is not None and entry.interrupt:
            unlink_dma(host, lg, entry)
            count += 1
    host.emit(lg, "release_all_dma", bindings=count)


# --- SEND_DMA (reference §3.4) -------------------------------------------------------------
TO_LAUNCHER = "launcher"


def route(host, lg: Lg, ukey: int):
    """The routing rule: where a SEND_DMA from ``lg`` to ``ukey`` goes. Returns (key, where).

    A private key goes to the Guest's own Launcher (``TO_LAUNCHER``); a shared key to the
    first *other* Guest's binding on it (a Binding), or nowhere (None). A key that is no
    key (misaligned, unmapped) comes back as (None, None): the sender is to be killed.
    The Host sends by this rule and the views draw it, so both always agree.
    """
    key = get_futex_key(lg.memory, lg.id, ukey)
    if key is None:
        return None, None
    if not key.shared:
        return key, TO_LAUNCHER
    return key, first_other_binding(host, key, lg.id)


def send_dma(host, lg: Lg, ukey: int, udma: int) -> None:
    """Send the lguest_dma at ``udma`` to whoever is bound to ``ukey`` (see route()).

    A private key goes to this Guest's own Launcher, which serves it before the hypercall
    returns. A shared key goes to the first *other* Guest bound to it, with one retry if
    that Guest had no free buffer. The answer is only ever in the sender's used_len.
    """
    if host.lock_blocks(lg):
        return
    key, dst = route(host, lg, ukey)
    if key is None:
        host.kill_guest(lg, "bad sending DMA key")
        return
    if dst is TO_LAUNCHER:
        host.emit(lg, "send_dma", key=ukey, dma=udma, to="launcher")
        lg.fd.dma_for_launcher(ukey, udma)
        return
    # 2007-DIFF(retry): io.c dropped its locks between the two attempts, so the receiver
    # could restock on another CPU; here nothing runs in between, and the retry finds the
    # ring just as full.
    for attempt in (1, 2):
        if attempt == 2:
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
class Pinned(NamedTuple):
    """A checked list, its pages "pinned" as the real Host pinned one per section.

    ``extents`` are [view, offset, length] pieces of Guest memory, sections that sit side
    by side merged into one; ``lens`` are the sections' own lengths, in order."""
    extents: list
    lens: tuple


def check_dma_list(host, lg: Lg, addrs, lens) -> Pinned | None:
    """Every section up to the first zero length: in range, at most a page, not across one.

    A bad section kills the list's owner ("bad DMA entry: len@addr") and gives None. The
    range test is lguest_address_ok() inlined (see GuestMemory.in_range), because this
    runs for every section of every Guest-to-Guest transfer.
    """
    memory = lg.memory
    limit, ram_size, ram_mv = memory.pfn_limit, memory.ram.size, memory.ram.mv
    extents: list[list] = []
    last = None
    count = 0
    for i in range(LGUEST_MAX_DMA_SECTIONS):
        length = lens[i]
        if not length:
            break
        addr = addrs[i]
        if (addr + length) // PAGE_SIZE >= limit or length > PAGE_SIZE or (addr % PAGE_SIZE) + length > PAGE_SIZE:
            host.emit(lg, "check", ok=False, section=i, len=length, addr=addr)
            host.kill_guest(lg, f"bad DMA entry: {length}@{addr:#x}")
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
        count += 1
    host.emit(lg, "check", ok=True, sections=count)
    return Pinned(extents, tuple(lens[:count]))


# --- The transfer (reference §3.5) ---------------------------------------------------------
def dma_transfer(host, src: Lg, udma: int, dst: Binding) -> bool:
    """L:380: copy the sender's list into the receiver's next free buffer.

    Returns True exactly when the receiver had no free buffer (so the sender may retry).
    The receiver's irq is raised whether or not it had room, so it can restock its ring.
    Only two paths raise nothing: the receiver killed while its array is read, and a
    non-empty list that moved 0 bytes. A sender descriptor that cannot be read reads as
    zeros, an empty list, and that is delivered: io.c carried on after the kill.
    """
    fields = lgread_dma(host, src, udma)
    dstlg = host.lgs[dst.guestid]
    irq = dst.interrupt                       # read now: a kill below frees the entry (release-at-kill)
    entry = find_free_entry(host, dstlg, dst)
    if entry is False:
        return False                          # the receiver was killed reading its array
    if entry is not None:
        pinned = do_dma(host, src, fields, dstlg, dstlg.memory.unpack(LGUEST_DMA_STRUCT, entry))
        total = 0
        if pinned is not None:
            total, reread = copy_data(pinned[0], pinned[1], host.copy_data_fixed)
            shown = {"reread": reread} if reread else {}      # bytes 2007 took from the wrong place
            host.emit(src, "copy", to=dstlg.id, bytes=total, entry=entry, **shown)
        lgwrite_u32(host, src, udma, total)
        if total == 0 and fields[17] != 0:    # len[0]: only an empty list may move nothing
            host.emit(src, "transfer_failed", reason="nothing copied from a non-empty list")
            return False
        lgwrite_u32(host, dstlg, entry, total)    # written last: the receiver may look at any time
        if host.captures and pinned:          # the frame has landed: record it if its LAN is captured
            capture_extents(host, dst.key.space, pinned[1].extents, total)
        dst.next_dma = (dst.next_dma + 1) & 0xFFFF
    host.raise_irq(dstlg, irq)
    return entry is None


def do_dma(host, src: Lg, src_fields, dstlg: Lg, dst_fields) -> tuple[Pinned, Pinned] | None:
    """L:390: check the receiver's list, then the sender's; either failing kills its owner.

    Returns both lists pinned, (source, destination), ready for copy_data(); None after a kill.
    """
    dst_pinned = check_dma_list(host, dstlg, dst_fields[1:17], dst_fields[17:33])
    if dst_pinned is None:
        return None
    src_pinned = check_dma_list(host, src, src_fields[1:17], src_fields[17:33])
    if src_pinned is None:
        return None
    return src_pinned, dst_pinned


def find_free_entry(host, dstlg: Lg, dst: Binding):
    """The first entry with used_len 0, searching from next_dma and wrapping round once.

    Returns its address, None if every entry is in use, or False if reading the array
    touched a bad address (lgread_other() kills the receiver, who owns the array).
    """
    memory, num = dstlg.memory, dst.num_dmas
    for i in range(num):
        addr = dst.entry_addr((dst.next_dma + i) % num)
        if not memory.in_range(addr, DMA_SIZE):
            host.kill_guest(dstlg, "bad address in registered DMA struct")
            return False
        if memory.u32(addr) == 0:
            return addr
    host.emit(dstlg, "ring_full", key=dst.ukey, num=num)
    return None


def copy_steps(src_lens, dst_lens) -> list[tuple[int, int, int, int, int]]:
    """L:400: the lockstep walk of two section lists, given their lengths.

    Each step moves what is left of the current source section or the room left in the
    current destination section, whichever is less, then moves on in whichever list ran
    out, or both. It stops when either list ends: source bytes beyond that are dropped.
    Returns (source section, offset reached in it, destination section, offset in it,
    bytes) for each step.
    """
    steps = []
    si = di = srcoff = dstoff = 0
    while si < len(src_lens) and di < len(dst_lens):
        n = min(src_lens[si] - srcoff, dst_lens[di] - dstoff)
        steps.append((si, srcoff, di, dstoff, n))
        srcoff += n
        dstoff += n
        if srcoff == src_lens[si]:
            si, srcoff = si + 1, 0
        if dstoff == dst_lens[di]:
            di, dstoff = di + 1, 0
    return steps


def copy_data(src: Pinned, dst: Pinned, fixed: bool = False) -> tuple[int, int]:
    """L:400: copy in lockstep; returns (bytes copied, bytes re-read from the wrong place).

    The 2007 bug, kept: every step reads from the *start* of its source section, though
    the code kept a source offset. So when a destination section fills in the middle of a
    source section, the next step copies that section's first bytes again. The count is
    right, the bytes are not. ``fixed`` (Host(copy_data_fixed=True)) reads from the offset:
    the one-word fix. Where no destination section ends inside a source section the two
    agree, and the whole list moves as one stream, a slice per run of memory.
    """
    if fixed or src.lens == dst.lens:         # the common case: the lists line up, section for section
        return _copy_stream(src.extents, 0, dst.extents, 0, min(sum(src.lens), sum(dst.lens))), 0
    src_ends, dst_ends = list(accumulate(src.lens)), list(accumulate(dst.lens))
    total = min(src_ends[-1] if src_ends else 0, dst_ends[-1] if dst_ends else 0)
    src_bounds = set(src_ends)
    if all(end in src_bounds for end in dst_ends if end < total):
        return _copy_stream(src.extents, 0, dst.extents, 0, total), 0
    src_starts, dst_starts = [0, *src_ends], [0, *dst_ends]
    reread = 0
    for si, srcoff, di, dstoff, n in copy_steps(src.lens, dst.lens):
        reread += n if srcoff else 0          # copy_from_user(..., src->addr[si], len): no srcoff
        _copy_stream(src.extents, src_starts[si], dst.extents, dst_starts[di] + dstoff, n)
    return total, reread


def _copy_stream(src: list, at: int, dst: list, to: int, n: int) -> int:
    """Copy ``n`` bytes from offset ``at`` of one list's byte stream to offset ``to`` of another's."""
    copied = n
    si, at = _find(src, at)
    di, to = _find(dst, to)
    while n:
        s_mv, s_off, s_len = src[si]
        d_mv, d_off, d_len = dst[di]
        k = min(n, s_len - at, d_len - to)
        d_mv[d_off + to:d_off + to + k] = s_mv[s_off + at:s_off + at + k]
        n -= k
        at += k
        to += k
        if at == s_len:
            si, at = si + 1, 0
        if to == d_len:
            di, to = di + 1, 0
    return copied


def _find(extents: list, pos: int) -> tuple[int, int]:
    """The extent holding stream offset ``pos``, and the offset within it."""
    i = 0
    while i < len(extents) and pos >= extents[i][2]:
        pos -= extents[i][2]
        i += 1
    return i, pos


# --- The Launcher's lookup (reference §3.6) ------------------------------------------------
def get_dma_buffer(host, lg: Lg, ukey: int) -> tuple[int, int] | None:
    """L:320, LHREQ_GETDMA: a receive buffer this Guest bound to ``ukey``, and its irq.

    Scans from entry 0 (ignoring next_dma). Quirk: when every entry is in use it returns
    the *last* one anyway, so the Launcher overwrites a buffer the Guest has not read.
    Returns (address, irq), or None where io.c returned 0 (the Launcher gets ENOENT).
    """
    if host.lock_blocks(lg):
        return None
    key = get_futex_key(lg.memory, lg.id, ukey)
    if key is None:
        host.kill_guest(lg, "bad registered DMA buffer")
        return None
    for binding in host.dma_hash.get(key, ()):
        if binding.guestid != lg.id:
            continue
        chosen, irq = 0, binding.interrupt    # now: an unreadable entry kills, and the kill frees
        for i in range(binding.num_dmas):     # the binding (release-at-kill); 2007 kept its irq
            chosen = binding.entry_addr(i)
            if lgread_dma(host, lg, chosen)[0] == 0:   # a bad entry reads as zeros: "free"
                break
        else:
            if chosen:
                host.emit(lg, "getdma_reuse_last", key=ukey, entry=chosen)
        if not chosen:                        # bound with a count of 0: io.c returned 0, ENOENT
            break
        host.emit(lg, "getdma", key=ukey, entry=chosen, irq=irq)
        return chosen, irq
    host.emit(lg, "getdma", key=ukey, entry=None)
    return None


def all_buffers_in_use(host, lg: Lg, ukey: int) -> bool:
    """Would get_dma_buffer() hand out a buffer still in use (its last-entry quirk)?

    The model's bookkeeping, for the Launcher's overwritten-frame count: the first of this
    Guest's bindings on the key has entries, and every one is readable with used_len set."""
    key = get_futex_key(lg.memory, lg.id, ukey)
    for binding in host.dma_hash.get(key, ()) if key is not None else ():
        if binding.guestid != lg.id:
            continue
        memory = lg.memory
        return binding.num_dmas > 0 and all(
            memory.in_range(addr, DMA_SIZE) and memory.u32(addr) != 0
            for addr in map(binding.entry_addr, range(binding.num_dmas)))
    return False
