"""Reference §3.7: kill_guest (the first message wins, a dead Guest never runs or receives, the
message can be read, nothing else changes) and the soft failures that stay soft."""
import errno

import pytest

import lguest
from lguest import abi
from lguest.errors import GuestDead

from host_helpers import (PAGE, assert_unchanged, bind, events, lan_guests, lg, new_dma, pattern, put_dma, ring,
                          send, set_used_len, slot_key, snapshot, used_len)


def _three():
    """Three Guests on lan0, each with a receive ring bound at its own slot key."""
    host, guests = lan_guests(3)
    rings = []
    for i, g in enumerate(guests):
        arr, bufs = ring(g, [64, 64])
        assert bind(g, slot_key(g, i), arr, 2, 5) == 1
        rings.append((arr, bufs))
    return host, guests, rings


def _payload(g, n=16, seed=1):
    buf = g.alloc(n, align=64)
    g.memory.write(buf, pattern(n, seed))
    return new_dma(g, [(buf, n)])


# Each way a Guest can die in the I/O path, done by Guest 1 while Guests 0 and 2 look on.
# Each returns (2007's exact message, the fatal call), after its own set-up.
def _misaligned_bind(host, g):
    key = slot_key(g, 5) + 2
    return f"bad dma key {key:#x}", lambda: g.hypercall(abi.LHCALL_BIND_DMA, key, 0x80000, (1 << 8) | 5)


def _misaligned_send(host, g):
    key, dma = slot_key(g, 0) + 1, _payload(g)
    return "bad sending DMA key", lambda: g.hypercall(abi.LHCALL_SEND_DMA, key, dma)


def _bad_section(host, g):
    page = g.alloc(2 * PAGE, align=PAGE)
    addr = page + PAGE - 8
    dma = new_dma(g, [(addr, 16)])
    return f"bad DMA entry: 16@{addr:#x}", lambda: g.hypercall(abi.LHCALL_SEND_DMA, slot_key(g, 0), dma)


def _unmapped_key(host, g):
    key, dma = g.memory.top + PAGE, _payload(g)
    return "bad sending DMA key", lambda: g.hypercall(abi.LHCALL_SEND_DMA, key, dma)


def _crash(host, g):
    msg = g.alloc(32)
    g.memory.write(msg, b"Power down\0junk")
    return "CRASH: Power down", lambda: g.hypercall(abi.LHCALL_CRASH, msg)


def _unknown_hypercall(host, g):
    return "Bad hypercall 99\n", lambda: g.hypercall(99)


def _launcher_invalid_address(host, g):
    dma = new_dma(g, [(g.memory.top, 4)])
    return f"Launcher exited: Invalid address {g.memory.top}", lambda: g.hypercall(abi.LHCALL_SEND_DMA, 0, dma)


def _getdma_bad_key(host, g):
    key = slot_key(g, 0) + 3
    return "bad registered DMA buffer", lambda: g.launcher.get_dma_buffer(key)


def _die(host, g, how):
    expect, fatal = how(host, g)
    fatal()
    return expect


KILLS = [_misaligned_bind, _misaligned_send, _bad_section, _unmapped_key, _crash,
         _unknown_hypercall, _launcher_invalid_address, _getdma_bad_key]


@pytest.mark.parametrize("how", KILLS, ids=lambda f: f.__name__.lstrip("_"))
def test_3_7_a_kill_names_the_bad_entry_and_touches_nothing_else(how):
    host, (a, g, c), rings = _three()
    expect, fatal = how(host, g)
    before = snapshot([a, g, c])
    pending = [lg(x).irqs_pending for x in (a, c)]
    bindings = [len(lg(x).bindings()) for x in (a, c)]
    mark = host.trace.mark()
    fatal()
    assert g.dead == expect
    assert a.dead is None and c.dead is None
    assert [lg(x).irqs_pending for x in (a, c)] == pending
    assert [len(lg(x).bindings()) for x in (a, c)] == bindings
    assert_unchanged(before, [a, g, c])                   # not one byte, the dying Guest's included
    kills = events(host, "kill", since=mark)
    assert [(e.guest, e.msg) for e in kills] == [(g.id, g.dead)]


def test_3_7_the_first_message_wins():
    host, (a, g, c), rings = _three()
    _die(host, g, _misaligned_bind)
    first = g.dead
    host.kill_guest(lg(g), "a second reason")
    host.kill_guest(lg(g), "a third reason")
    assert g.dead == first
    assert len(events(host, "kill", guest=g)) == 1


def test_3_7_the_message_can_be_read_and_the_launcher_prints_it():
    host, (a, g, c), rings = _three()
    _die(host, g, _crash)
    assert g.dead == "CRASH: Power down"
    assert any(g.dead in line for line in g.launcher.log)


def test_3_7_a_dead_guest_never_runs_again():
    host, (a, g, c), rings = _three()
    seen = []
    g.kernel.request_irq(5, lambda irq, dev: seen.append(irq) or 1, 0x80, "x", None)
    g.launcher.trigger_irq(5)
    _die(host, g, _unknown_hypercall)
    with pytest.raises(GuestDead) as refused:
        g.hypercall(abi.LHCALL_HALT)
    host.run()
    assert seen == []
    # the refusal says why, and gives the kill message on a line of its own
    assert str(refused.value).splitlines() == [
        f"Guest {g.id} is dead: it cannot make hypercalls. It was killed with:",
        f"    {g.dead}".rstrip("\n")]     # 2007's message ends in a newline


def test_3_7_after_death_every_launcher_request_fails_with_enoent():
    host, (a, g, c), rings = _three()
    _die(host, g, _crash)
    for request in (lambda: lg(g).fd.irq(3), lambda: lg(g).fd.getdma(slot_key(g, 1))):
        with pytest.raises(OSError) as exc:
            request()
        assert exc.value.errno == errno.ENOENT


def test_3_7_a_dead_guest_never_receives():
    host, (a, g, c), rings = _three()
    _die(host, g, _crash)
    before = snapshot([g])
    mark = host.trace.mark()
    dma = _payload(a)
    send(a, slot_key(a, 1), dma)                           # g's slot: g had bound it
    assert used_len(a, dma) == 0
    assert not [e for e in host.trace.since(mark) if e.kind in ("copy", "used_len") and
                (e.guest == g.id or e.fields.get("to") == g.id)]
    assert_unchanged(before, [g])


def test_3_7_a_killed_receiver_leaves_the_sender_carrying_on():
    host, (a, g, c), rings = _three()
    page = g.alloc(2 * PAGE, align=PAGE)
    arr_g, _ = rings[1]
    put_dma(g, arr_g, [(page + PAGE - 2, 8)])              # g's next free entry crosses a page
    dma = _payload(a)
    send(a, slot_key(a, 1), dma)
    assert g.dead is not None and a.dead is None
    dma2 = _payload(a, 10, seed=4)
    send(a, slot_key(a, 2), dma2)                          # a goes on to send to c
    arr_c, bufs_c = rings[2]
    assert used_len(a, dma2) == 10 and c.memory.read(bufs_c[0], 10) == pattern(10, 4)


def test_3_7_a_guest_killed_as_receiver_finds_out_and_never_runs():
    host, (a, g, c), rings = _three()
    arr_g, _ = rings[1]
    put_dma(g, arr_g, [(g.memory.top + PAGE, 8)])
    send(a, slot_key(a, 1), _payload(a))
    assert g.dead is not None
    with pytest.raises(GuestDead):
        g.hypercall(abi.LHCALL_HALT)


# --- the soft failures (reference §3.7) -------------------------------------------------------------------
def test_3_7_soft_bind_irq_32_or_more():
    host, (a, g, c), rings = _three()
    assert bind(g, slot_key(g, 9), rings[1][0], 1, 32) == 0
    assert g.dead is None


def test_3_7_soft_bind_with_the_table_full():
    host, (a, g, c), rings = _three()
    for n in range(31):                                    # one is bound already
        assert bind(g, slot_key(g, 10 + n), rings[1][0], 1, 5) == 1
    assert bind(g, slot_key(g, 50), rings[1][0], 1, 5) == 0
    assert g.dead is None


def test_3_7_soft_send_to_a_shared_key_nobody_else_bound():
    host, (a, g, c), rings = _three()
    dma = _payload(g)
    before = snapshot([a, g, c])
    send(g, slot_key(g, 1), dma)                           # only g itself is bound there
    assert used_len(g, dma) == 0 and g.dead is None
    assert_unchanged(before, [a, g, c])


def test_3_7_soft_send_to_a_receiver_with_no_room_after_one_retry():
    host, (a, g, c), rings = _three()
    arr_c, _ = rings[2]
    set_used_len(c, arr_c, 1)
    set_used_len(c, arr_c + 100, 1)
    dma = _payload(g)
    send(g, slot_key(g, 2), dma)
    assert used_len(g, dma) == 0 and g.dead is None and c.dead is None


def test_3_7_soft_launcher_output_to_an_unknown_key():
    host, (a, g, c), rings = _three()
    dma = _payload(g)
    send(g, 0x4000, dma)
    assert used_len(g, dma) == 0 and g.dead is None
    assert any("Pending dma" in line for line in g.launcher.log)


# --- H:100: nothing before LGUEST_INIT; LGUEST_INIT once ----------------------------------------------
def _uninitialized():
    """A Guest laid out by its Launcher, its kernel not yet booted: no hypercall made yet."""
    host = lguest.Host()
    return host, host.launch(mem_mb=1, drivers=(), boot=False)


@pytest.mark.parametrize("nr", [abi.LHCALL_SEND_DMA, abi.LHCALL_BIND_DMA, abi.LHCALL_HALT, abi.LHCALL_CRASH, 99])
def test_h100_any_hypercall_before_lguest_init_kills_naming_its_number(nr):
    host, g = _uninitialized()
    before = snapshot([g])
    g.hypercall(nr, 0, 0, 0)
    assert g.dead == f"hypercall {nr} before LGUEST_INIT"
    assert lg(g).bindings() == [] and not lg(g).halted
    assert_unchanged(before, [g])


def test_h100_hypercall_number_is_printed_as_a_signed_long():
    host, g = _uninitialized()
    g.hypercall(0xFFFFFFFF)
    assert g.dead == "hypercall -1 before LGUEST_INIT"


def test_h120_a_second_lguest_init_kills_already_have_lguest_data():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())                 # the boot made the first
    g.hypercall(abi.LHCALL_LGUEST_INIT, g.kernel.lguest_data)
    assert g.dead == "already have lguest_data"


@pytest.mark.parametrize("where", [PAGE, 16 * 1024 * 1024 - 8])
def test_h100_a_bad_lguest_data_address_is_printed_with_the_kernels_p(where):
    """2.6.23's initialize() stored the address before checking it, then printed it with %p:
    eight hex digits, zero-padded, no 0x. LGUEST_INIT's eax is left as it came, its number."""
    host, g = _uninitialized()
    bad = g.memory.top + where
    assert g.hypercall(abi.LHCALL_LGUEST_INIT, bad) == abi.LHCALL_LGUEST_INIT
    assert g.dead == f"bad guest page {bad:08x}" and len(g.dead) == len("bad guest page ") + 8


def test_h120_send_dma_leaves_eax_holding_its_call_number():
    """do_hcall() writes eax only for BIND_DMA (and the wall clock): a SEND_DMA returns 13."""
    g = lguest.Host().launch(mem_mb=1, drivers=())
    assert g.hypercall(abi.LHCALL_SEND_DMA, 0, g.dma([])) == abi.LHCALL_SEND_DMA == 13
    assert g.hypercall(abi.LHCALL_BIND_DMA, 0x1000, g.dma([]), (1 << 8) | 3) == 1


def test_h120_crash_with_a_bad_pointer_dies_of_the_read_not_the_crash():
    """The 128-byte lgread() fails first, and the first message wins."""
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    g.hypercall(abi.LHCALL_CRASH, g.memory.top - 100)     # 128 bytes would run past the top
    assert g.dead == f"bad read address {g.memory.top - 100:#x} len 128"


def test_h120_crash_message_stops_at_127_bytes_or_the_first_nul():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    msg = g.alloc(200)
    g.memory.write(msg, b"x" * 200)
    g.hypercall(abi.LHCALL_CRASH, msg)
    assert g.dead == "CRASH: " + "x" * 127


def test_h120_an_unknown_hypercall_kills_with_2007s_message_and_its_newline():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    g.hypercall(77)
    assert g.dead == "Bad hypercall 77\n"
