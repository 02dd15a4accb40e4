"""Reference §3.1 (keys and the Futex Trick) and §3.2 (BIND_DMA), one test per rule."""
import errno

import pytest

import lguest
from lguest import abi
from lguest.host.keys import get_futex_key

from host_helpers import (assert_unchanged, bind, events, lan_guests, lan_page, lg, new_dma, pattern,
                          ring, send, set_used_len, slot_key, snapshot, unbind, used_len)


def _sender_buffer(a, data):
    buf = a.alloc(len(data), align=64)
    a.memory.write(buf, data)
    return new_dma(a, [(buf, len(data))])


# --- §3.1 keys and the Futex Trick --------------------------------------------------------------
def test_3_1_shared_page_gives_equal_keys_at_different_addresses():
    host = lguest.Host()
    a = host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    b = host.launch(mem_mb=2, sharenet=["other", "lan0"], drivers=())
    pa, pb = lan_page(a), lan_page(b)
    assert pa != pb                                     # the same page, mapped at different addresses
    assert get_futex_key(a.memory, a.id, pa + 8) == get_futex_key(b.memory, b.id, pb + 8)
    # ... and so a send to A's address reaches B's binding at B's address.
    arr, (rbuf,) = ring(b, [64])
    assert bind(b, pb + 8, arr, 1, 5) == 1
    data = pattern(40)
    dma = _sender_buffer(a, data)
    send(a, pa + 8, dma)
    assert b.memory.read(rbuf, 40) == data
    assert used_len(b, arr) == 40 and used_len(a, dma) == 40


def test_3_1_different_offsets_in_the_shared_page_are_different_keys():
    host, (a, b) = lan_guests(2)
    assert get_futex_key(a.memory, a.id, slot_key(a, 2)) != get_futex_key(b.memory, b.id, slot_key(b, 3))
    arr, (rbuf,) = ring(b, [64])
    assert bind(b, slot_key(b, 2), arr, 1, 5) == 1
    before = snapshot([b])
    dma = _sender_buffer(a, pattern(16))
    send(a, slot_key(a, 3), dma)
    assert used_len(a, dma) == 0
    assert_unchanged(before, [b])


def test_3_1_private_keys_at_the_same_address_differ_between_guests():
    host = lguest.Host()
    a, b = host.launch(mem_mb=1, drivers=()), host.launch(mem_mb=1, drivers=())
    assert get_futex_key(a.memory, a.id, 0x80000) != get_futex_key(b.memory, b.id, 0x80000)
    assert get_futex_key(a.memory, a.id, 0x80000) == get_futex_key(a.memory, a.id, 0x80000)


def test_3_1_private_key_never_reaches_another_guest():
    host = lguest.Host()
    a, b = host.launch(mem_mb=1, drivers=()), host.launch(mem_mb=1, drivers=())
    arr, (rbuf,) = ring(b, [64])
    key = arr                                            # a private RAM address, same number in A
    assert bind(b, key, arr, 1, 5) == 1
    before = snapshot([b])
    mark = host.trace.mark()
    dma = _sender_buffer(a, pattern(16))
    send(a, key, dma)
    assert_unchanged(before, [b])
    assert not events(host, "copy", since=mark)
    # it went to A's own Launcher, which has no device watching that key
    assert any("Pending dma" in line for line in a.launcher.log)
    assert a.dead is None and b.dead is None and lg(b).irqs_pending == 0


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_3_1_misaligned_bind_key_kills_with_bad_dma_key(offset):
    host, (a, b) = lan_guests(2)
    key = slot_key(a, 1) + offset
    arr, _ = ring(a, [64])
    before = snapshot([a, b])
    assert bind(a, key, arr, 1, 5) == 0
    assert a.dead == f"bad dma key {key:#x}"
    assert b.dead is None
    assert_unchanged(before, [a, b])


@pytest.mark.parametrize("offset", [1, 2, 3])
def test_3_1_misaligned_send_key_kills_with_bad_sending_dma_key(offset):
    host, (a, b) = lan_guests(2)
    arr, (rbuf,) = ring(b, [64])
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma = _sender_buffer(a, pattern(16))
    key = slot_key(a, 1) + offset
    before = snapshot([a, b])
    a.hypercall(abi.LHCALL_SEND_DMA, key, dma)
    assert a.dead == "bad sending DMA key"              # 2007's message names no key
    assert b.dead is None and lg(b).irqs_pending == 0
    assert_unchanged(before, [a, b])


def test_3_1_unmapped_key_kills_bind_and_send():
    host, (a, b) = lan_guests(2)
    top = a.memory.top
    arr, _ = ring(a, [64])
    assert bind(a, top, arr, 1, 5) == 0
    assert a.dead == f"bad dma key {top:#x}"            # BIND's message does name it
    dma = _sender_buffer(b, pattern(8))
    b.hypercall(abi.LHCALL_SEND_DMA, 0xFFFFFFFC, dma)
    assert b.dead == "bad sending DMA key"


def test_3_1_misaligned_getdma_key_kills_the_guest_bad_registered_dma_buffer():
    """The Launcher supplies the key, but the Guest dies (§3.1)."""
    host, (a, b) = lan_guests(2)
    before = snapshot([a, b])
    assert a.launcher.get_dma_buffer(6) is None
    assert a.dead == "bad registered DMA buffer"        # 2007's message names no key
    assert b.dead is None
    assert_unchanged(before, [a, b])


def test_3_1_keys_in_device_pages_are_legal():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    desc = g.memory.ram_size                             # the descriptor page, above RAM
    arr, _ = ring(g, [16])
    assert bind(g, desc + 16, arr, 1, 3) == 1
    assert g.dead is None


# --- §3.2 BIND_DMA -------------------------------------------------------------------------------------
def test_3_2_bind_returns_1_and_splits_count_and_irq_from_arg3():
    host, (a,) = lan_guests(1)
    arr, _ = ring(a, [64, 64, 64])
    assert a.hypercall(abi.LHCALL_BIND_DMA, slot_key(a, 0), arr, (3 << 8) | 5) == 1
    (b,) = host.bindings()
    assert (b.dmas, b.num_dmas, b.interrupt) == (arr, 3, 5)


def test_3_2_count_is_truncated_to_u16():
    host, (a,) = lan_guests(1)
    arr, _ = ring(a, [64, 64])
    assert a.hypercall(abi.LHCALL_BIND_DMA, slot_key(a, 0), arr, (0x10002 << 8) | 7) == 1
    (b,) = host.bindings()
    assert (b.num_dmas, b.interrupt) == (2, 7)


@pytest.mark.parametrize("irq", [32, 33, 100, 255])
def test_3_2_irq_32_or_more_fails_softly(irq):
    host, (a,) = lan_guests(1)
    arr, _ = ring(a, [64])
    assert bind(a, slot_key(a, 0), arr, 1, irq) == 0
    assert a.dead is None and host.bindings() == []
    assert a.kernel.lguest_bind_dma(slot_key(a, 0), arr, 1, irq) == -errno.ENOMEM


def test_3_2_irq_check_comes_before_the_key_check():
    """Step 1 (irq >= 32: return 0) runs before step 2 (the key, killing on failure)."""
    host, (a,) = lan_guests(1)
    arr, _ = ring(a, [64])
    assert bind(a, slot_key(a, 0) + 1, arr, 1, 32) == 0
    assert a.dead is None


def test_3_2_irq_0_unbinds_the_entry_with_matching_key_and_array():
    host, (a, b) = lan_guests(2)
    arr, (rbuf,) = ring(b, [64])
    assert bind(b, slot_key(b, 1), arr, 1, 5) == 1
    assert unbind(b, slot_key(b, 1), arr) == 1
    assert host.bindings() == []
    dma = _sender_buffer(a, pattern(8))
    before = snapshot([b])
    send(a, slot_key(a, 1), dma)
    assert used_len(a, dma) == 0
    assert_unchanged(before, [b])


def test_3_2_unbind_needs_both_key_and_array_to_match():
    host, (a,) = lan_guests(1)
    arr1, _ = ring(a, [64])
    arr2, _ = ring(a, [64])
    assert bind(a, slot_key(a, 1), arr1, 1, 5) == 1
    assert unbind(a, slot_key(a, 1), arr2) == 0          # right key, wrong array
    assert unbind(a, slot_key(a, 2), arr1) == 0          # right array, wrong key
    assert len(host.bindings()) == 1 and a.dead is None
    assert unbind(a, slot_key(a, 1), arr1) == 1


def test_3_2_unbind_with_nothing_bound_returns_0_softly():
    host, (a,) = lan_guests(1)
    assert unbind(a, slot_key(a, 1), 0x80000) == 0
    assert a.dead is None


def test_3_2_unbind_with_a_bad_key_kills():
    host, (a,) = lan_guests(1)
    assert unbind(a, slot_key(a, 1) + 2, 0x80000) == 0
    assert "bad dma key" in a.dead


def test_3_2_unbind_removes_one_entry_only():
    host, (a, b) = lan_guests(2)
    arr, (rbuf,) = ring(b, [64])
    assert bind(b, slot_key(b, 1), arr, 1, 5) == 1
    assert bind(b, slot_key(b, 1), arr, 1, 5) == 1       # the same key and array, twice
    assert unbind(b, slot_key(b, 1), arr) == 1
    assert len(host.bindings()) == 1
    dma = _sender_buffer(a, pattern(8))
    send(a, slot_key(a, 1), dma)
    assert used_len(a, dma) == 8                         # still bound once


def test_3_2_table_has_32_entries_and_the_33rd_bind_fails_softly():
    host, (a,) = lan_guests(1)
    arr, _ = ring(a, [64])
    for n in range(abi.LGUEST_MAX_DMA):
        assert bind(a, slot_key(a, n), arr, 1, 5) == 1, n
    assert bind(a, slot_key(a, 40), arr, 1, 5) == 0
    assert a.dead is None and len(lg(a).bindings()) == 32
    assert a.kernel.lguest_bind_dma(slot_key(a, 41), arr, 1, 5) == -errno.ENOMEM
    # an unbind frees an entry for the next bind
    assert unbind(a, slot_key(a, 7), arr) == 1
    assert bind(a, slot_key(a, 40), arr, 1, 5) == 1


def test_3_2_the_32_entries_are_per_guest():
    host, (a, b) = lan_guests(2)
    arr_a, _ = ring(a, [64])
    arr_b, _ = ring(b, [64])
    for n in range(32):
        assert bind(a, slot_key(a, n), arr_a, 1, 5) == 1
    assert bind(b, slot_key(b, 0), arr_b, 1, 5) == 1


def test_3_2_nothing_about_the_array_is_checked_at_bind_time():
    host, (a,) = lan_guests(1)
    before = snapshot([a])
    assert bind(a, slot_key(a, 1), 0xFFFFFF00, 1000, 5) == 1     # address off the end, huge count
    assert bind(a, slot_key(a, 2), 3, 0, 6) == 1                 # misaligned array, count 0
    assert a.dead is None
    assert_unchanged(before, [a])


def test_3_2_same_key_twice_and_one_array_under_two_keys():
    host, (a,) = lan_guests(1)
    arr, _ = ring(a, [64])
    assert bind(a, slot_key(a, 1), arr, 1, 5) == 1
    assert bind(a, slot_key(a, 1), arr, 1, 6) == 1
    assert bind(a, slot_key(a, 2), arr, 1, 7) == 1
    assert sorted(b.interrupt for b in host.bindings()) == [5, 6, 7]


def test_3_2_bind_then_unbind_then_rebind_restarts_next_dma_at_0():
    host, (a, b) = lan_guests(2)
    arr, bufs = ring(b, [32, 32])
    key = slot_key(b, 1)
    bind(b, key, arr, 2, 5)
    dma = _sender_buffer(a, pattern(8))
    send(a, slot_key(a, 1), dma)
    assert used_len(b, arr) == 8                         # entry 0 used; next_dma is now 1
    set_used_len(b, arr, 0)                              # the Guest consumes it
    unbind(b, key, arr)
    bind(b, key, arr, 2, 5)
    send(a, slot_key(a, 1), _sender_buffer(a, pattern(4, seed=9)))
    assert used_len(b, arr) == 4 and used_len(b, arr + 100) == 0
    assert b.memory.read(bufs[0], 4) == pattern(4, seed=9)


def test_3_2_bindings_are_released_when_the_guest_dies():
    host, (a, b) = lan_guests(2)
    arr, _ = ring(b, [64])
    bind(b, slot_key(b, 1), arr, 1, 5)
    b.hypercall(abi.LHCALL_BIND_DMA, 3, arr, (1 << 8) | 5)          # misaligned: killed
    assert b.dead is not None
    assert lg(b).bindings() == []
    before = snapshot([b])
    dma = _sender_buffer(a, pattern(8))
    send(a, slot_key(a, 1), dma)
    assert used_len(a, dma) == 0
    assert_unchanged(before, [b])
