"""Reference §3.3 (the list checks), §3.4 (SEND_DMA) and §3.5 (the copy); D:200."""
from hypothesis import given, settings
from hypothesis import strategies as st

import lguest
from lguest import abi

from host_helpers import (PAGE, assert_unchanged, bind, events, fill, lan_guests, lg, new_dma,
                          pattern, put_dma, ring, send, set_used_len, slot_key, snapshot, used_len)


def _lan(n=2, sizes=(64,), irq=5, slot=1):
    """n Guests on lan0; the last one has bound a receive ring at slot ``slot``."""
    host, guests = lan_guests(n)
    r = guests[-1]
    arr, bufs = ring(r, list(sizes))
    assert bind(r, slot_key(r, slot), arr, len(sizes), irq) == 1
    return host, guests, arr, bufs


def _src(g, chunks, seed=1):
    """A send list over fresh buffers, one section per chunk length; returns (dma, data)."""
    sections, data = [], b""
    for i, n in enumerate(chunks):
        buf = g.alloc(n, align=PAGE if n > 2048 else 64)
        piece = pattern(n, seed=seed + i)
        g.memory.write(buf, piece)
        sections.append((buf, n))
        data += piece
    return new_dma(g, sections), data


def _page_in(g, pages=1):
    return g.alloc(pages * PAGE, align=PAGE)


# --- §3.3 the checks, on the Guest-to-Guest path ------------------------------------------------
def test_3_3_section_crossing_a_page_kills_the_owner():
    host, (a, b), arr, bufs = _lan()
    page = _page_in(a, 2)
    addr = page + PAGE - 10
    dma = new_dma(a, [(addr, 20)])
    before = snapshot([a, b])
    mark = host.trace.mark()
    send(a, slot_key(a, 1), dma)
    assert a.dead == f"bad DMA entry: 20@{addr:#x}"
    assert b.dead is None and lg(b).irqs_pending == 0
    assert not events(host, "irq_raise", since=mark)
    assert_unchanged(before, [a, b])


def test_3_3_receiver_section_crossing_a_page_kills_the_receiver():
    host, (a, b) = lan_guests(2)
    page = _page_in(b, 2)
    bad = page + PAGE - 4
    arr = new_dma(b, [(bad, 8)])
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma, _ = _src(a, [8])
    before = snapshot([a, b])
    send(a, slot_key(a, 1), dma)
    assert b.dead == f"bad DMA entry: 8@{bad:#x}"
    assert a.dead is None and used_len(a, dma) == 0
    assert lg(b).irqs_pending == 0
    assert_unchanged(before, [a, b])


def test_3_3_receivers_list_is_checked_before_the_senders():
    host, (a, b) = lan_guests(2)
    bpage, apage = _page_in(b, 2), _page_in(a, 2)
    arr = new_dma(b, [(bpage + PAGE - 4, 8)])
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma = new_dma(a, [(apage + PAGE - 4, 8)])
    send(a, slot_key(a, 1), dma)
    assert b.dead is not None and a.dead is None


def test_3_3_section_longer_than_a_page_kills():
    host, (a, b), arr, bufs = _lan()
    page = _page_in(a, 3)
    dma = new_dma(a, [(page, PAGE + 1)])
    send(a, slot_key(a, 1), dma)
    assert a.dead == f"bad DMA entry: {PAGE + 1}@{page:#x}"


def test_3_3_a_whole_page_section_is_allowed():
    host, (a, b), arr, bufs = _lan(sizes=(PAGE,))
    page = _page_in(a)
    data = pattern(PAGE)
    a.memory.write(page, data)
    dma = new_dma(a, [(page, PAGE)])
    send(a, slot_key(a, 1), dma)
    assert a.dead is None and used_len(a, dma) == PAGE
    assert b.memory.read(bufs[0], PAGE) == data


def test_3_3_section_out_of_range_kills():
    host, (a, b), arr, bufs = _lan()
    addr = a.memory.top + 2 * PAGE
    dma = new_dma(a, [(addr, 16)])
    send(a, slot_key(a, 1), dma)
    assert a.dead == f"bad DMA entry: 16@{addr:#x}"


def test_3_3_section_wrapping_32_bits_kills():
    host, (a, b), arr, bufs = _lan()
    dma = new_dma(a, [(0xFFFFFFF0, 0x20)])
    send(a, slot_key(a, 1), dma)
    assert a.dead == "bad DMA entry: 32@0xfffffff0"


def test_3_3_buffer_ending_exactly_at_top_fails():
    """A 2007 quirk: the range test uses the end address, (addr+len)/4096 < pfn_limit."""
    host, (a, b), arr, bufs = _lan()
    top = a.memory.top                                   # the top of A's LAN page
    dma = new_dma(a, [(top - 16, 16)])
    send(a, slot_key(a, 1), dma)
    assert a.dead == f"bad DMA entry: 16@{top - 16:#x}"


def test_3_3_buffer_ending_one_byte_below_top_passes():
    host, (a, b), arr, bufs = _lan()
    top = a.memory.top
    data = a.memory.read(top - 17, 16)
    dma = new_dma(a, [(top - 17, 16)])
    send(a, slot_key(a, 1), dma)
    assert a.dead is None and used_len(a, dma) == 16     # device pages are legal memory
    assert b.memory.read(bufs[0], 16) == data


def test_3_3_bad_sections_after_the_first_zero_length_are_not_checked():
    host, (a, b), arr, bufs = _lan()
    buf = a.alloc(8)
    a.memory.write(buf, b"12345678")
    dma = new_dma(a, [(buf, 8), (0, 0), (a.memory.top + PAGE, 4000)])
    send(a, slot_key(a, 1), dma)
    assert a.dead is None and used_len(a, dma) == 8


def test_3_3_first_kill_message_wins():
    host, (a, b), arr, bufs = _lan()
    page = _page_in(a, 2)
    dma = new_dma(a, [(page + PAGE - 1, 2)])
    send(a, slot_key(a, 1), dma)
    msg = a.dead
    host.kill_guest(lg(a), "a later reason")
    assert a.dead == msg and "2@" in msg


def test_3_3_checks_do_not_apply_on_the_launcher_path():
    """Console output goes to the Launcher: the Host checks nothing, the Launcher only top."""
    g = lguest.Host().launch(mem_mb=1, drivers=())
    page = _page_in(g, 2)
    text = b"across a page boundary"
    addr = page + PAGE - 5
    g.memory.write(addr, text)
    dma = new_dma(g, [(addr, len(text))])
    send(g, 0, dma)
    assert g.dead is None
    assert g.console.output == text.decode() and used_len(g, dma) == len(text)


# --- §3.4 SEND_DMA -----------------------------------------------------------------------------------
def test_3_4_private_key_goes_to_the_own_launcher_synchronously():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    buf = g.alloc(5)
    g.memory.write(buf, b"hello")
    dma = new_dma(g, [(buf, 5)])
    send(g, abi.LGUEST_CONSOLE_DMA_KEY, dma)
    # before host.run(): the Launcher has already served it
    assert g.console.output == "hello" and used_len(g, dma) == 5


def test_3_4_shared_key_goes_to_another_guest():
    host, (a, b), arr, bufs = _lan(sizes=(64,))
    dma, data = _src(a, [50])
    send(a, slot_key(a, 1), dma)
    assert b.memory.read(bufs[0], 50) == data
    assert used_len(a, dma) == 50 and used_len(b, arr) == 50
    assert lg(b).irqs_pending == 1 << 5


def test_3_4_the_sender_never_delivers_to_itself():
    host, (a, b) = lan_guests(2)
    arr_a, bufs_a = ring(a, [64])
    bind(a, slot_key(a, 1), arr_a, 1, 5)
    dma, _ = _src(a, [10])
    before = snapshot([a, b])
    send(a, slot_key(a, 1), dma)
    assert used_len(a, dma) == 0 and lg(a).irqs_pending == 0
    assert_unchanged(before, [a, b])


def test_3_4_the_sender_skips_its_own_binding_to_reach_another():
    host, (a, b) = lan_guests(2)
    arr_b, bufs_b = ring(b, [64])
    bind(b, slot_key(b, 1), arr_b, 1, 5)
    arr_a, bufs_a = ring(a, [64])
    bind(a, slot_key(a, 1), arr_a, 1, 5)                 # bound after B
    dma, data = _src(a, [10])
    send(a, slot_key(a, 1), dma)
    assert b.memory.read(bufs_b[0], 10) == data and used_len(a, arr_a) == 0


def test_3_4_only_the_first_other_binding_is_used():
    host, (a, b, c) = lan_guests(3)
    arr_b, bufs_b = ring(b, [64])
    arr_c, bufs_c = ring(c, [64])
    bind(b, slot_key(b, 1), arr_b, 1, 5)
    bind(c, slot_key(c, 1), arr_c, 1, 5)
    mark = host.trace.mark()
    dma, data = _src(a, [10])
    send(a, slot_key(a, 1), dma)
    copies = events(host, "copy", since=mark)
    assert len(copies) == 1
    got = [used_len(b, arr_b), used_len(c, arr_c)]
    assert sorted(got) == [0, 10]


def test_3_4_nobody_bound_leaves_used_len_0_no_irq_no_error():
    host, (a, b) = lan_guests(2)
    dma, _ = _src(a, [10])
    set_used_len(a, dma, 1234)
    before = snapshot([a, b])
    mark = host.trace.mark()
    a.kernel.lguest_send_dma(slot_key(a, 1), dma)        # the wrapper zeroes used_len first
    assert used_len(a, dma) == 0 and a.dead is None and b.dead is None
    assert not events(host, "irq_raise", since=mark)
    assert_unchanged(before, [a, b], allow=[(a, dma, 4)])


def test_d200_send_to_full_ring_retries_once():
    host, (a, b), arr, bufs = _lan(sizes=(64, 64))
    set_used_len(b, arr, 7)
    set_used_len(b, arr + 100, 9)                        # both entries still unread
    dma, _ = _src(a, [10])
    before = snapshot([a, b])
    mark = host.trace.mark()
    send(a, slot_key(a, 1), dma)
    tries = [e for e in events(host, "send_dma", since=mark) if e.to == b.id]
    assert len(tries) == 2                               # the lookup, and one retry
    assert len(events(host, "irq_raise", since=mark, guest=b)) == 2
    assert used_len(a, dma) == 0 and a.dead is None and b.dead is None
    assert_unchanged(before, [a, b])


def test_d200_full_ring_still_raises_the_receivers_irq():
    host, (a, b), arr, bufs = _lan(sizes=(64,), irq=9)
    set_used_len(b, arr, 3)
    calls = []
    b.kernel.request_irq(9, lambda irq, dev: calls.append(irq) or 1, 0x80, "net", None)
    send(a, slot_key(a, 1), _src(a, [10])[0])
    assert lg(b).irqs_pending == 1 << 9
    host.run()
    assert calls == [9]


# --- §3.5 the copy -----------------------------------------------------------------------------------
def test_3_5_search_starts_at_next_dma_and_wraps_round():
    host, (a, b), arr, bufs = _lan(sizes=(16, 16, 16))
    key = slot_key(a, 1)
    entries = [arr + 100 * i for i in range(3)]
    send(a, key, _src(a, [4], seed=1)[0])                # entry 0; next_dma 1
    set_used_len(b, entries[0], 0)                       # consumed at once
    send(a, key, _src(a, [5], seed=2)[0])                # starts at 1, not 0
    assert [used_len(b, e) for e in entries] == [0, 5, 0]
    send(a, key, _src(a, [6], seed=3)[0])                # entry 2; next_dma 3
    assert [used_len(b, e) for e in entries] == [0, 5, 6]
    send(a, key, _src(a, [7], seed=4)[0])                # 3 mod 3 = 0
    assert [used_len(b, e) for e in entries] == [7, 5, 6]


def test_3_5_search_wraps_past_the_end_of_the_array():
    host, (a, b), arr, bufs = _lan(sizes=(16, 16, 16))
    key = slot_key(a, 1)
    entries = [arr + 100 * i for i in range(3)]
    for n in (1, 2):                                     # entries 0 and 1; next_dma 2
        send(a, key, _src(a, [n], seed=n)[0])
    set_used_len(b, entries[0], 0)
    set_used_len(b, entries[2], 99)                      # the Guest has marked entry 2 in use
    send(a, key, _src(a, [3], seed=3)[0])                # 2 is busy: wraps to 0
    assert [used_len(b, e) for e in entries] == [3, 2, 99]


def test_3_5_next_dma_advances_by_one_not_past_the_chosen_entry():
    host, (a, b), arr, bufs = _lan(sizes=(16, 16, 16))
    key = slot_key(a, 1)
    entries = [arr + 100 * i for i in range(3)]
    set_used_len(b, entries[0], 50)
    set_used_len(b, entries[1], 60)
    send(a, key, _src(a, [4])[0])                        # lands in entry 2; next_dma becomes 1, not 0
    assert used_len(b, entries[2]) == 4
    set_used_len(b, entries[0], 0)
    set_used_len(b, entries[1], 0)
    send(a, key, _src(a, [5], seed=5)[0])
    assert [used_len(b, e) for e in entries] == [0, 5, 4]


def _lockstep_send(host, a, b, src_chunks, dst_lens):
    """Guest 1 binds one buffer of ``dst_lens`` sections; Guest 0 sends ``src_chunks``."""
    dst_bufs = [b.alloc(n, align=64) for n in dst_lens]
    arr = new_dma(b, list(zip(dst_bufs, dst_lens)))
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma, data = _src(a, src_chunks)
    send(a, slot_key(a, 1), dma)
    got = b"".join(b.memory.read(x, n) for x, n in zip(dst_bufs, dst_lens))
    return dma, arr, data, got


def test_3_5_copy_rereads_a_source_section_from_its_start_when_a_destination_fills_mid_section():
    """The 2007 bug: copy_data() advanced srcoff but copied from src->addr[si] itself."""
    host, (a, b) = lan_guests(2)
    dma, arr, data, got = _lockstep_send(host, a, b, [7, 20, 5], [10, 10, 12])
    s0, s1, s2 = data[:7], data[7:27], data[27:]
    # steps: 7 of s0; 3 of s1 (fills dst[0]); 10 and 7 more of s1, each from s1's start; 5 of s2
    assert got == s0 + s1[:3] + s1[:10] + s1[:7] + s2
    assert got != data
    assert used_len(a, dma) == 32 and used_len(b, arr) == 32      # the count is right
    (copy,) = events(host, "copy")
    assert copy.bytes == 32 and copy.reread == 17                 # 10 + 7 bytes from the wrong place


def test_3_5_copy_data_fixed_reads_from_the_offset_reached():
    """The one-word fix (src->addr[si] + srcoff), behind an explicit switch that is off by default."""
    assert lguest.Host().copy_data_fixed is False
    host = lguest.Host(copy_data_fixed=True)
    host, (a, b) = lan_guests(2, host=host)
    dma, arr, data, got = _lockstep_send(host, a, b, [7, 20, 5], [10, 10, 12])
    assert got == data and used_len(a, dma) == 32
    (copy,) = events(host, "copy")
    assert "reread" not in copy.fields


def test_3_5_copy_is_right_whenever_no_destination_fills_inside_a_source_section():
    """Why real traffic rarely hit the bug: a one-section receive buffer never splits a frame."""
    host, (a, b) = lan_guests(2)
    dma, arr, data, got = _lockstep_send(host, a, b, [7, 20, 5], [40])
    assert got[:32] == data and used_len(a, dma) == 32
    assert "reread" not in events(host, "copy")[0].fields


def test_3_5_extra_source_bytes_are_dropped_silently():
    host, (a, b) = lan_guests(2)
    rbuf = b.alloc(64, align=64)                         # a 40-byte section, then 24 canary bytes
    fill(b, rbuf, b"\xEE" * 64)
    arr = new_dma(b, [(rbuf, 40)])
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma, data = _src(a, [100])
    send(a, slot_key(a, 1), dma)
    assert b.memory.read(rbuf, 40) == data[:40]
    assert b.memory.read(rbuf + 40, 24) == b"\xEE" * 24
    assert used_len(a, dma) == 40 and used_len(b, arr) == 40
    assert a.dead is None and b.dead is None


def test_3_5_room_left_over_in_the_receiver_is_untouched():
    host, (a, b), arr, bufs = _lan(sizes=(64,))
    fill(b, bufs[0], b"\xEE" * 64)
    dma, data = _src(a, [10])
    send(a, slot_key(a, 1), dma)
    assert b.memory.read(bufs[0], 64) == data + b"\xEE" * 54


def test_3_5_sixteen_sections_need_no_terminator():
    host, (a, b) = lan_guests(2)
    dst = [b.alloc(3, align=16) for _ in range(16)]
    arr = new_dma(b, [(x, 3) for x in dst])
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma, data = _src(a, [3] * 16)
    send(a, slot_key(a, 1), dma)
    assert used_len(a, dma) == 48
    assert b"".join(b.memory.read(x, 3) for x in dst) == data


def test_3_5_writes_the_senders_used_len_then_the_receivers_last():
    host, (a, b), arr, bufs = _lan()
    dma, _ = _src(a, [10])
    mark = host.trace.mark()
    send(a, slot_key(a, 1), dma)
    seq = [(e.kind, e.guest) for e in host.trace.since(mark) if e.kind in ("copy", "used_len", "irq_raise")]
    assert seq == [("copy", a.id), ("used_len", a.id), ("used_len", b.id), ("irq_raise", b.id)]


def test_3_5_ping_moves_nothing_keeps_the_entry_free_and_raises_the_irq():
    host, (a, b), arr, bufs = _lan(sizes=(16, 16))
    before = snapshot([b])
    ping = new_dma(a, [])
    send(a, slot_key(a, 1), ping)
    assert used_len(a, ping) == 0 and used_len(b, arr) == 0
    assert lg(b).irqs_pending == 1 << 5 and a.dead is None
    assert_unchanged(before, [b])
    # the cursor still moved on by one: the next frame lands in entry 1
    send(a, slot_key(a, 1), _src(a, [4])[0])
    assert (used_len(b, arr), used_len(b, arr + 100)) == (0, 4)


def test_3_5_nothing_copied_from_a_nonempty_list_fails_without_irq():
    host, (a, b) = lan_guests(2)
    arr = new_dma(b, [])                                 # a free entry with no room at all
    bind(b, slot_key(b, 1), arr, 1, 5)
    dma, _ = _src(a, [10])
    before = snapshot([b])
    mark = host.trace.mark()
    send(a, slot_key(a, 1), dma)
    assert used_len(a, dma) == 0 and lg(b).irqs_pending == 0
    assert not events(host, "irq_raise", since=mark)
    assert_unchanged(before, [b])
    assert a.dead is None and b.dead is None


def test_3_5_bad_receiver_array_kills_the_receiver_without_irq():
    host, (a, b) = lan_guests(2)
    bad = b.memory.top + 5 * PAGE
    bind(b, slot_key(b, 1), bad, 1, 5)
    dma, _ = _src(a, [10])
    before = snapshot([a, b])
    send(a, slot_key(a, 1), dma)
    assert b.dead == "bad address in registered DMA struct"       # lgread_other(): no address
    assert a.dead is None and used_len(a, dma) == 0 and lg(b).irqs_pending == 0
    assert_unchanged(before, [a, b])


def test_3_5_oversized_count_kills_the_receiver_when_the_search_walks_off_memory():
    host, (a, b) = lan_guests(2)
    top = b.memory.top
    first = top - 150                                    # entry 0 fits; entry 1 runs past the top
    set_used_len(b, first, 1)                            # in use, so the search goes on
    bind(b, slot_key(b, 1), first, 1000, 5)
    dma, _ = _src(a, [10])
    send(a, slot_key(a, 1), dma)
    assert b.dead == "bad address in registered DMA struct"
    assert a.dead is None and lg(b).irqs_pending == 0


def test_3_5_unreadable_sender_dma_reads_as_zeros_and_the_empty_list_is_still_delivered():
    """lgread() zero-fills and kills; dma_transfer() carries on with an empty list (§3.5)."""
    host, (a, b), arr, bufs = _lan()
    bad = a.memory.top + 64
    before = snapshot([b])
    mark = host.trace.mark()
    a.hypercall(abi.LHCALL_SEND_DMA, slot_key(a, 1), bad)
    assert a.dead == f"bad read address {bad:#x} len 100"
    assert b.dead is None
    assert lg(b).irqs_pending == 1 << 5                  # the receiver is knocked, as for a ping
    (binding,) = lg(b).bindings()
    assert binding.next_dma == 1 and used_len(b, arr) == 0
    assert [e.bytes for e in events(host, "copy", since=mark)] == [0]
    assert_unchanged(before, [b])                        # not one byte of the receiver changed


def test_3_5_empty_ping_whose_receiver_fails_its_check_still_raises_the_irq():
    """do_dma() returns 0, but an empty list may move nothing: io.c writes the dead receiver's
    used_len (0), moves next_dma on and raises its irq all the same."""
    host, (a, b) = lan_guests(2)
    page = _page_in(b, 2)
    arr = new_dma(b, [(page + PAGE - 4, 8)])            # crosses a page
    bind(b, slot_key(b, 1), arr, 1, 5)
    ping = new_dma(a, [])
    set_used_len(a, ping, 0xDEAD)
    a.hypercall(abi.LHCALL_SEND_DMA, slot_key(a, 1), ping)
    assert b.dead == f"bad DMA entry: 8@{page + PAGE - 4:#x}"
    assert a.dead is None and used_len(a, ping) == 0     # the sender's used_len is written: 0
    assert lg(b).irqs_pending == 1 << 5


def test_3_5_a_failed_non_empty_send_still_writes_0_into_the_senders_used_len():
    """lgwrite_u32(srclg, used_len, 0) comes before the "nothing moved" test: a stale value goes."""
    host, (a, b) = lan_guests(2)
    page = _page_in(b, 2)
    bind(b, slot_key(b, 1), new_dma(b, [(page + PAGE - 4, 8)]), 1, 5)
    dma, _ = _src(a, [8])
    set_used_len(a, dma, 0xDEAD)
    a.hypercall(abi.LHCALL_SEND_DMA, slot_key(a, 1), dma)   # the bare hypercall: no wrapper zeroing
    assert b.dead is not None and used_len(a, dma) == 0 and lg(b).irqs_pending == 0


def test_3_5_sender_dma_spanning_ram_top_is_read_like_any_other():
    """Guest memory is contiguous to the Host: RAM's last page and the descriptor page above
    it are neighbours, so a struct lguest_dma across that line passes lguest_address_ok()."""
    host, (a, b), arr, bufs = _lan()
    buf = a.alloc(12)
    a.memory.write(buf, b"across a gap")
    udma = a.memory.ram_size - 40
    put_dma(a, udma, [(buf, 12)])
    a.hypercall(abi.LHCALL_SEND_DMA, slot_key(a, 1), udma)
    assert a.dead is None and b.dead is None
    assert b.memory.read(bufs[0], 12) == b"across a gap" and used_len(a, udma) == 12


def test_3_5_receiver_entry_spanning_ram_top_is_read_like_any_other():
    host, (a, b) = lan_guests(2)
    rbuf = b.alloc(32)
    entry = b.memory.ram_size - 40
    put_dma(b, entry, [(rbuf, 32)])
    bind(b, slot_key(b, 1), entry, 1, 5)
    dma, data = _src(a, [20])
    send(a, slot_key(a, 1), dma)
    assert a.dead is None and b.dead is None
    assert b.memory.read(rbuf, 20) == data and used_len(b, entry) == 20


SECTION_LISTS = st.lists(st.integers(1, 300), min_size=1, max_size=16)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(src=SECTION_LISTS, dst=SECTION_LISTS, side_by_side=st.booleans())
def test_3_5_copy_data_as_2007_and_as_fixed_against_an_oracle(src, dst, side_by_side):
    """copy_data() over random section lists: 2007's bytes (each step from its section's start)
    without the switch, the source stream in order with it; the count is the same either way."""
    from lguest.host.dma import Pinned, copy_data
    data = bytes(pattern(sum(src)))
    if side_by_side:                                 # sections end to end: check_dma_list merges them
        source = Pinned([[memoryview(bytearray(data)), 0, len(data)]], tuple(src))
    else:
        source, at = [], 0
        for n in src:
            source.append([memoryview(bytearray(data[at:at + n])), 0, n])     # each its own memory
            at += n
        source = Pinned(source, tuple(src))
    expect_2007, si, di, so, do = [bytearray(n) for n in dst], 0, 0, 0, 0
    starts = [sum(src[:i]) for i in range(len(src))]
    while si < len(src) and di < len(dst):           # the oracle: io.c's loop, srcoff never read
        n = min(src[si] - so, dst[di] - do)
        expect_2007[di][do:do + n] = data[starts[si]:starts[si] + n]
        so, do = so + n, do + n
        if so == src[si]:
            si, so = si + 1, 0
        if do == dst[di]:
            di, do = di + 1, 0
    total = min(sum(src), sum(dst))
    for fixed in (False, True):
        bufs = [bytearray(n) for n in dst]
        copied, _ = copy_data(source, Pinned([[memoryview(b), 0, len(b)] for b in bufs], tuple(dst)), fixed)
        assert copied == total
        got = b"".join(bufs)
        assert got == (data[:total] + bytes(sum(dst) - total) if fixed else b"".join(expect_2007))
