"""Unbinding the same key and array twice: where 2007 broke its promise (io.c, L:350/L:360).

unbind_dma() matches on key and array only, so it finds an entry it freed before; unlink_dma()
then runs list_del() on an entry already off its list and drops the key's references again.
These tests hold the model to what follows from the 2.6.23 code: the poison stores land in
the bad Guest's own memory when it is mapped there; otherwise, or with CONFIG_DEBUG_LIST, the
Host oopses holding lguest_lock and every Guest that asks for it afterwards is blocked; and a
reference count that reaches 0 frees the mm or inode while it is in use.
"""
from __future__ import annotations

import pytest

import lguest
from lguest import abi
from lguest.host.dma import LIST_POISON1, LIST_POISON2

from host_helpers import bind, lan_guests, lg, new_dma, ring, send, slot_key, unbind, used_len


def bound(guest, n: int = 1):
    arr, _ = ring(guest, [64])
    assert bind(guest, slot_key(guest, n), arr, 1, 5) == 1
    return arr


def test_l350_a_second_unbind_finds_the_freed_entry_and_unlinks_it_again():
    host, (a, b) = lan_guests(2, mem_mb=4)
    arr = bound(b)
    assert unbind(b, slot_key(b, 1), arr) == 1
    assert host.bindings() == [] and b.dead is None
    mark = host.trace.mark()
    assert unbind(b, slot_key(b, 1), arr) == 1                 # 2007 returned 1 again
    stale = host.trace.filter("unbind", since=mark)
    assert len(stale) == 1 and stale[0].stale is True


def test_l360_list_del_twice_stores_the_poison_into_the_bad_guests_own_memory():
    """4 MiB of RAM covers both stores: they land in Guest b's memory and nobody else's."""
    host, (a, b) = lan_guests(2, mem_mb=4)
    arr = bound(b)
    unbind(b, slot_key(b, 1), arr)
    before_a = a.memory.read(0, a.memory.top)
    unbind(b, slot_key(b, 1), arr)
    assert b.memory.u32(LIST_POISON1 + 4) == LIST_POISON2 and b.memory.u32(LIST_POISON2) == LIST_POISON1
    writes = [(e.addr, e.value) for e in host.trace.filter("poison_write")]
    assert writes == [(LIST_POISON1 + 4, LIST_POISON2), (LIST_POISON2, LIST_POISON1)]
    assert a.memory.read(0, a.memory.top) == before_a and host.lock_holder is None
    assert a.dead is None and b.dead is None


def test_l360_a_store_below_nothing_mapped_oopses_the_host_holding_lguest_lock():
    """With 1 MiB the second store (0x00200200) is above the top: the Host faults, the lock stays
    held, and the other Guests' next SEND_DMA and BIND_DMA wait for ever."""
    host, (a, b, c) = lan_guests(3, mem_mb=1)
    arr = bound(b)
    unbind(b, slot_key(b, 1), arr)
    unbind(b, slot_key(b, 1), arr)
    assert b.dead == "Host oops: BUG: unable to handle kernel paging request at 00200200"
    assert host.lock_holder == b.id and any("lguest_lock held for ever" in c for c in host.corruption)
    assert [e.addr for e in host.trace.filter("poison_write")] == [LIST_POISON1 + 4]   # the first landed
    msg = new_dma(a, [(a.alloc(16), 16)])
    mark = host.trace.mark()
    send(a, slot_key(a, 2), msg)
    assert [e.kind for e in host.trace.since(mark)][-1] == "blocked" and lg(a).blocked
    assert not host.trace.filter("copy", since=mark) and used_len(a, msg) == 0
    arr_c, _ = ring(c, [64])
    assert bind(c, slot_key(c, 2), arr_c, 1, 5) == 0 and lg(c).blocked
    assert a.dead is None and c.dead is None                     # blocked, not killed
    assert a.blocked == f"waiting for ever for lguest_lock, held by the oops in g{b.id}"
    assert repr(a).endswith(f"blocked: {a.blocked})")
    assert a.hypercall(abi.LHCALL_SEND_DMA, slot_key(a, 2), msg) == 0   # nothing of it runs again
    lg(a).fd.irq(3)
    host.run()
    assert not host.trace.filter("irq_deliver", since=mark)


def test_after_the_oops_no_new_guest_can_start():
    """LHREQ_INITIALIZE takes lguest_lock as well: a new Launcher would wait for ever."""
    host, (b,) = lan_guests(1, mem_mb=1)
    arr = bound(b)
    unbind(b, slot_key(b, 1), arr)
    unbind(b, slot_key(b, 1), arr)
    assert host.lock_holder == b.id
    slots = dict(host.shared_pages["lan0"].locked_slots)
    with pytest.raises(lguest.LguestError, match="LHREQ_INITIALIZE would wait for ever"):
        host.launch(mem_mb=4, sharenet=["lan0"])
    assert len(host.lgs) == 1 and host.shared_pages["lan0"].locked_slots == slots   # nothing half-made


def test_l360_a_launchers_getdma_after_the_oops_never_returns_so_it_warns_nothing():
    """LHREQ_GETDMA takes lguest_lock: after the oops the console Launcher's write() waits for
    ever. It does not see ENOENT, warn "no dma buffer!" and read into its discard buffer, and it
    serves nothing afterwards; the keystrokes stay where they are."""
    host = lguest.Host()
    a = host.launch(mem_mb=4, sharenet=["lan0"])           # with its console driver
    b = host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    arr = bound(b)
    unbind(b, slot_key(b, 1), arr)
    unbind(b, slot_key(b, 1), arr)
    assert host.lock_holder == b.id
    log, mark = list(a.launcher.log), host.trace.mark()
    a.console.type("x")
    host.run()
    assert [e.kind for e in host.trace.since(mark)] == ["blocked"]
    assert a.launcher.stuck and a.launcher.log == log
    assert lg(a).blocked and a.dead is None
    a.console.type("y")
    host.run()
    assert [e.kind for e in host.trace.since(mark)] == ["blocked"]     # nothing more asks at all


def test_l360_config_debug_list_bugs_at_once_with_the_lock_held():
    host = lguest.Host(debug_list=True)
    a, b = (host.launch(mem_mb=4, sharenet=["lan0"], drivers=()) for _ in range(2))
    arr = bound(b)
    unbind(b, slot_key(b, 1), arr)
    unbind(b, slot_key(b, 1), arr)
    assert b.dead.startswith("Host oops: list_del corruption") and host.lock_holder == b.id
    assert not host.trace.filter("poison_write")


def test_l360_the_second_drop_frees_the_lan_files_inode_while_others_map_it():
    host, (a, b, c) = lan_guests(3, mem_mb=4)
    arr = bound(b)
    assert host.key_refs[("inode", "lan0")] == 2                 # the dentry's, and the binding's
    unbind(b, slot_key(b, 1), arr)
    assert host.key_refs[("inode", "lan0")] == 1
    unbind(b, slot_key(b, 1), arr)
    freed = host.trace.filter("freed_in_use")
    assert [(e.what, e.users) for e in freed] == [("the inode of LAN file 'lan0'", (0, 1, 2))]
    assert host.corruption == ["the inode of LAN file 'lan0' freed while in use by g0, g1, g2"]


def test_l360_a_private_key_unbound_twice_frees_the_launchers_mm():
    host, (a,) = lan_guests(1, mem_mb=4)
    arr, _ = ring(a, [64])
    key = a.alloc(64)
    assert bind(a, key, arr, 1, 5) == 1 and host.key_refs[("mm", a.id)] == 2
    unbind(a, key, arr)
    unbind(a, key, arr)
    assert [e.what for e in host.trace.filter("freed_in_use")] == [f"g{a.id}'s Launcher mm"]


def test_l350_a_bind_that_reuses_the_slot_makes_the_second_unbind_miss():
    host, (a, b) = lan_guests(2, mem_mb=4)
    arr = bound(b)
    unbind(b, slot_key(b, 1), arr)
    other, _ = ring(b, [32])
    assert bind(b, slot_key(b, 1), other, 1, 6) == 1             # takes slot 0 again, the first free one
    assert unbind(b, slot_key(b, 1), arr) == 0                   # the stale entry is gone
    assert not host.trace.filter("poison_write") and not host.corruption


def test_a_single_unbind_and_a_kill_leave_every_count_balanced():
    host, (a, b) = lan_guests(2, mem_mb=4)
    arr = bound(b)
    bound(a, 0)
    unbind(b, slot_key(b, 1), arr)
    host.kill_guest(lg(a), "gone")
    assert host.key_refs[("inode", "lan0")] == 1 and not host.corruption and host.lock_holder is None
