"""Reference §1.9: 32 lines, lowest pending first, one per step, the blocked mask, irq_enabled,
a halted Guest waking; handler chains shared as with IRQF_SHARED (IRQ_NONE / IRQ_HANDLED)."""
import errno
import struct

import lguest
from lguest import abi
from lguest.guest.kernel import IRQ_HANDLED, IRQ_NONE, IRQF_SHARED
from lguest.host.interrupts import maybe_do_interrupt

from host_helpers import bind, lan_guests, lg, new_dma, ring, send, slot_key

IRQ_ENABLED = 0x200


def _guest():
    host = lguest.Host()
    return host, host.launch(mem_mb=1, drivers=())


def _recorder(g, lines, result=IRQ_HANDLED):
    seen = []
    for line in lines:
        g.kernel.request_irq(line, lambda irq, dev: seen.append(irq) or result, IRQF_SHARED, f"dev{line}", None)
    return seen


def _irq_enabled(g):
    return struct.unpack("<I", g.memory.read(g.kernel.lguest_data, 4))[0]


def test_1_9_the_lowest_pending_line_is_delivered_first():
    host, g = _guest()
    seen = _recorder(g, [3, 5, 7, 20])
    for line in (20, 7, 3, 5):
        g.launcher.trigger_irq(line)
    host.run()
    assert seen == [3, 5, 7, 20]
    assert lg(g).irqs_pending == 0


def test_1_9_one_interrupt_per_step():
    host, g = _guest()
    seen = _recorder(g, [3, 5])
    g.launcher.trigger_irq(5)
    g.launcher.trigger_irq(3)
    assert maybe_do_interrupt(host, lg(g)) is True
    assert seen == [3] and lg(g).irqs_pending == 1 << 5
    assert host.run() == 1                                # the other one, in one more step
    assert seen == [3, 5]


def test_1_9_two_pending_lines_take_two_run_steps():
    host, g = _guest()
    _recorder(g, [2, 9])
    g.launcher.trigger_irq(9)
    g.launcher.trigger_irq(2)
    assert host.run() == 2


def test_1_9_raising_a_pending_line_again_is_still_one_interrupt():
    host, g = _guest()
    seen = _recorder(g, [4])
    for _ in range(3):
        g.launcher.trigger_irq(4)
    host.run()
    assert seen == [4]


def _blocked(g):
    return struct.unpack("<I", g.memory.read(g.kernel.lguest_data + 4, 4))[0]


def _set_blocked(g, bits):
    g.memory.write(g.kernel.lguest_data + 4, struct.pack("<I", bits))


def test_1_9_a_blocked_line_stays_pending_until_unblocked():
    """The Host rule: a line whose bit is set in lguest_data.blocked_interrupts is not delivered."""
    host, g = _guest()
    seen = _recorder(g, [3, 5])
    _set_blocked(g, _blocked(g) | 1 << 3)
    g.launcher.trigger_irq(3)
    g.launcher.trigger_irq(5)
    host.run()
    assert seen == [5] and lg(g).irqs_pending == 1 << 3
    _set_blocked(g, _blocked(g) & ~(1 << 3))
    host.run()
    assert seen == [5, 3] and lg(g).irqs_pending == 0


def test_1_9_blocked_interrupts_starts_with_only_the_timer_blocked():
    host, g = _guest()
    assert _blocked(g) == 1 << 0                          # lguest.c: blocked_interrupts = { 1 }
    g.launcher.trigger_irq(0)
    assert host.run() == 0 and lg(g).irqs_pending == 1    # no clock here unblocks it


def test_1_9_an_interrupt_nobody_claimed_is_counted_then_its_line_stays_masked():
    """handle_level_irq(): mask, count, and with no handler keep the line masked (not "unhandled")."""
    host, g = _guest()
    g.launcher.trigger_irq(7)
    assert host.run() == 1
    assert g.kernel.irq_counts[7] == 1 and g.kernel.irqs_unhandled[7] == 0
    assert _blocked(g) & 1 << 7
    g.launcher.trigger_irq(7)
    g.launcher.trigger_irq(7)
    assert host.run() == 0 and lg(g).irqs_pending == 1 << 7 and g.kernel.irq_counts[7] == 1


def test_1_9_request_irq_unmasks_the_line_and_the_pending_interrupt_comes_in():
    host, g = _guest()
    g.launcher.trigger_irq(7)
    host.run()                                            # taken with no handler: masked
    g.launcher.trigger_irq(7)                             # pending, but blocked
    seen = _recorder(g, [7])
    assert not _blocked(g) & 1 << 7
    host.run()
    assert seen == [7] and g.kernel.irq_counts[7] == 2


def test_1_9_a_handled_line_is_unmasked_again_after_its_handlers_run():
    host, g = _guest()
    seen = _recorder(g, [3])
    for _ in range(3):
        g.launcher.trigger_irq(3)
        host.run()
    assert seen == [3, 3, 3] and not _blocked(g) & 1 << 3


def test_1_9_disable_irq_is_lazy_and_the_interrupt_it_catches_is_lost():
    """disable_irq() only marks the line (genirq since 2.6.21). The next interrupt is taken,
    counted and masked without running the handler; enable_irq() unmasks, replaying nothing."""
    host, g = _guest()
    seen = _recorder(g, [3])
    g.kernel.disable_irq(3)
    assert not _blocked(g) & 1 << 3                       # nothing masked yet
    g.launcher.trigger_irq(3)
    assert host.run() == 1                                # taken...
    assert seen == [] and g.kernel.irq_counts[3] == 1 and _blocked(g) & 1 << 3   # ...but not handled
    g.launcher.trigger_irq(3)                             # a second one waits at the Host
    g.kernel.enable_irq(3)
    assert not _blocked(g) & 1 << 3
    host.run()
    assert seen == [3]                                    # the first is lost; the second comes in
    g.kernel.disable_irq(3)
    g.launcher.trigger_irq(3)
    host.run()
    g.kernel.enable_irq(3)
    assert host.run() == 0 and seen == [3]                # nothing replays the one it caught


def test_1_9_an_unbalanced_enable_irq_only_warns():
    host, g = _guest()
    _recorder(g, [3])
    g.kernel.enable_irq(3)
    assert g.kernel.dmesg[-1] == "Unbalanced enable for IRQ 3" and g.kernel.irq_depth[3] == 0


def test_1_9_interrupts_disabled_deliver_nothing_until_enabled():
    host, g = _guest()
    seen = _recorder(g, [2])
    g.kernel.local_irq_disable()
    g.launcher.trigger_irq(2)
    assert host.run() == 0
    assert seen == [] and lg(g).irqs_pending == 1 << 2
    g.kernel.local_irq_enable()
    host.run()
    assert seen == [2]


def test_1_9_a_halted_guest_wakes_with_interrupts_on():
    host, g = _guest()
    seen = _recorder(g, [6])
    g.kernel.local_irq_disable()
    g.hypercall(abi.LHCALL_HALT)
    assert lg(g).halted and _irq_enabled(g) == 0
    g.launcher.trigger_irq(6)
    host.run()
    assert seen == [6]
    assert not lg(g).halted and _irq_enabled(g) == IRQ_ENABLED


def test_1_9_a_halted_guest_is_not_woken_by_a_blocked_line():
    host, g = _guest()
    _recorder(g, [6])
    _set_blocked(g, _blocked(g) | 1 << 6)
    g.hypercall(abi.LHCALL_HALT)
    g.launcher.trigger_irq(6)
    assert host.run() == 0
    assert lg(g).halted


def test_1_9_a_transfer_raises_the_bound_irq_and_the_receiver_takes_it():
    host, (a, b) = lan_guests(2)
    arr, _ = ring(b, [64])
    bind(b, slot_key(b, 1), arr, 1, 13)
    seen = _recorder(b, [13])
    buf = a.alloc(8)
    send(a, slot_key(a, 1), new_dma(a, [(buf, 8)]))
    assert lg(b).irqs_pending == 1 << 13 and lg(a).irqs_pending == 0
    host.run()
    assert seen == [13] and lg(b).irqs_pending == 0


def test_1_9_shared_handlers_all_run_and_one_irq_handled_is_enough():
    host, g = _guest()
    calls = []
    g.kernel.request_irq(3, lambda irq, dev: calls.append("a") or IRQ_NONE, IRQF_SHARED, "a", "a")
    g.kernel.request_irq(3, lambda irq, dev: calls.append("b") or IRQ_HANDLED, IRQF_SHARED, "b", "b")
    assert g.kernel.do_IRQ(3) == IRQ_HANDLED
    assert calls == ["a", "b"] and g.kernel.irqs_unhandled[3] == 0


def test_1_9_a_line_where_every_handler_says_irq_none_counts_as_unhandled():
    host, g = _guest()
    g.kernel.request_irq(3, lambda irq, dev: IRQ_NONE, IRQF_SHARED, "a", "a")
    g.kernel.request_irq(3, lambda irq, dev: IRQ_NONE, IRQF_SHARED, "b", "b")
    g.launcher.trigger_irq(3)
    host.run()
    assert g.kernel.irq_counts[3] == 1 and g.kernel.irqs_unhandled[3] == 1


def test_1_9_a_handler_without_irqf_shared_cannot_share_a_line():
    host, g = _guest()
    assert g.kernel.request_irq(3, lambda irq, dev: IRQ_HANDLED, IRQF_SHARED, "a", "a") == 0
    assert g.kernel.request_irq(3, lambda irq, dev: IRQ_HANDLED, 0, "b", "b") == -errno.EBUSY
    assert g.kernel.request_irq(4, lambda irq, dev: IRQ_HANDLED, 0, "c", "c") == 0
    assert g.kernel.request_irq(4, lambda irq, dev: IRQ_HANDLED, IRQF_SHARED, "d", "d") == -errno.EBUSY


def test_1_9_free_irq_removes_only_that_handler():
    host, g = _guest()
    calls = []
    g.kernel.request_irq(3, lambda irq, dev: calls.append("a") or IRQ_HANDLED, IRQF_SHARED, "a", "a")
    g.kernel.request_irq(3, lambda irq, dev: calls.append("b") or IRQ_HANDLED, IRQF_SHARED, "b", "b")
    g.kernel.free_irq(3, "a")
    g.launcher.trigger_irq(3)
    host.run()
    assert calls == ["b"]


def test_1_9_each_guest_has_its_own_lines():
    host = lguest.Host()
    a, b = host.launch(mem_mb=1, drivers=()), host.launch(mem_mb=1, drivers=())
    seen_a, seen_b = _recorder(a, [3]), _recorder(b, [3])
    a.launcher.trigger_irq(3)
    host.run()
    assert seen_a == [3] and seen_b == []


def test_1_9_a_dead_guest_takes_no_interrupts():
    host, g = _guest()
    seen = _recorder(g, [3])
    g.launcher.trigger_irq(3)
    g.hypercall(abi.LHCALL_CRASH, 0)
    assert g.dead is not None
    assert host.run() == 0 and seen == []


def test_1_9_free_irq_removes_one_handler_per_call_and_logs_an_unknown_dev_id():
    """2.6.23's free_irq() unlinks the first action with that dev_id and returns; when none is
    left it logs "Trying to free already-free IRQ n" and changes nothing."""
    host, g = _guest()
    calls = []
    for name in ("a", "b", "a"):
        g.kernel.request_irq(3, lambda irq, dev, name=name: calls.append(name) or IRQ_HANDLED,
                             IRQF_SHARED, name, "a" if name == "a" else "b")
    g.kernel.free_irq(3, "a")
    assert [a.name for a in g.kernel.irq_actions[3]] == ["b", "a"]
    g.kernel.free_irq(3, "a")
    g.kernel.free_irq(3, "a")
    assert g.kernel.dmesg[-1] == "Trying to free already-free IRQ 3"
    g.launcher.trigger_irq(3)
    host.run()
    assert calls == ["b"]


def test_1_9_free_irq_leaves_the_depth_so_a_later_enable_is_unbalanced():
    """2.6.23's free_irq() marks the line IRQ_DISABLED but leaves desc->depth at 0; an interrupt
    finds no handler and leaves the line masked, and enable_irq() warns "Unbalanced enable"."""
    host, g = _guest()
    g.kernel.request_irq(5, lambda irq, dev: IRQ_HANDLED, 0, "x", "x")
    g.kernel.free_irq(5, "x")
    assert g.kernel.irq_depth[5] == 0
    g.kernel.enable_irq(5)
    assert g.kernel.dmesg[-1] == "Unbalanced enable for IRQ 5"


def test_1_9_request_irq_resets_the_count_of_unhandled_interrupts():
    """setup_irq(): "Reset broken irq detection when installing new handler"."""
    host, g = _guest()
    g.kernel.request_irq(6, lambda irq, dev: IRQ_NONE, IRQF_SHARED, "deaf", "deaf")
    g.launcher.trigger_irq(6)
    host.run()
    assert g.kernel.irqs_unhandled[6] == 1
    g.kernel.request_irq(6, lambda irq, dev: IRQ_HANDLED, IRQF_SHARED, "more", "more")
    assert g.kernel.irqs_unhandled[6] == 0
