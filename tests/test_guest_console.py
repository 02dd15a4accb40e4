"""D:300-D:370: the console driver, hvc's 16-byte reads, and the Launcher's console service."""
import lguest
from lguest import abi
from lguest.guest.linux.hvc import N_INBUF
from lguest.guest.linux.interrupt import IRQF_DISABLED


def boot(**kw):
    host = lguest.Host()
    guest = host.launch(mem_mb=4, **kw)
    host.run()
    return host, guest


def test_d310_put_chars_sends_one_section_to_key_0():
    host, guest = boot()
    con = guest.kernel.console
    buf = guest.alloc(5)
    guest.memory.write(buf, b"hello")
    mark = host.trace.mark()
    assert con.put_chars(0, buf, 5) == 5
    sends = host.trace.filter("send_dma", since=mark)
    assert [(e.key, e.to) for e in sends] == [(0, "launcher")]
    assert guest.memory.read(con.stack_dma, 4 + 4 + 4) [4:8] == buf.to_bytes(4, "little")
    assert guest.console.output.endswith("hello")


def test_d310_fixme_page_crossing_buffer_is_fine_on_the_launcher_path():
    host, guest = boot()
    page = guest.alloc(8192, align=4096)
    guest.memory.write(page + 4090, b"across!!")
    guest.kernel.console.put_chars(0, page + 4090, 8)       # crosses a page: nobody checks
    assert guest.dead is None and guest.console.output.endswith("across!!")


def test_d310_same_crossing_list_guest_to_guest_kills_the_sender():
    host = lguest.Host()
    a = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())
    b = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())
    lan_a, lan_b = (int(g.devices[0]["pfn"]) << 12 for g in (a, b))
    rx = b.dma_array([[(b.alloc(64), 64)]])
    b.kernel.lguest_bind_dma(lan_b + 4, rx, 1, 1)
    page = a.alloc(8192, align=4096)
    a.kernel.lguest_send_dma(lan_a + 4, a.dma([(page + 4090, 8)]))
    assert a.dead == f"bad DMA entry: 8@{page + 4090:#x}"
    assert b.dead is None and b.memory.u32(rx) == 0


def test_d340_input_buffer_is_256_bytes_one_section_zero_terminated():
    host, guest = boot()
    con = guest.kernel.console
    dma = guest.memory.struct_at(con.cons_input, abi.lguest_dma)
    assert (int(dma["addr"][0]), int(dma["len"][0]), int(dma["len"][1])) == (con.inbuf, 256, 0)


def test_d350_get_chars_hands_out_16_bytes_at_a_time_and_hands_the_buffer_back():
    host, guest = boot()
    hp = guest.kernel.hvc.consoles[0]
    calls_before = hp.get_chars_calls
    text = "echo " + "x" * 35                                  # 40 bytes, no newline yet
    guest.console.type(text)
    host.run()
    assert hp.get_chars_calls - calls_before == -(-40 // N_INBUF) + 1   # 3 chunks, then an empty read
    assert guest.memory.u32(guest.kernel.console.cons_input) == 0       # handed back to the Host
    assert guest.kernel.console.cons_offset == 0
    assert guest.console.output.endswith(text)                           # echoed by the tty


def test_d350_overrun_quirk_the_launcher_overwrites_the_unread_buffer():
    """All entries in use: get_dma_buffer returns the last one anyway (reference §3.6)."""
    host, guest = boot()
    irq = guest.kernel.hvc.consoles[0].irq
    guest.kernel.disable_irq(irq)                             # the Guest is slow to take input
    guest.console.type("first\r")
    guest.console.type("second\r")
    mark = host.trace.mark()
    host.run()
    assert host.trace.counts(since=mark)["getdma_reuse_last"] == 1   # the second read reused it
    guest.kernel.enable_irq(irq)
    host.run()
    assert "second" in guest.console.output and "first" not in guest.console.output


def test_d370_probe_binds_the_input_buffer_at_key_0_with_irq_index_plus_1():
    host, guest = boot(sharenet=["lan0"])
    (binding,) = [b for b in host.bindings() if b.ukey == 0]      # eth0 binds its ring too
    assert (binding.ukey, binding.dmas, binding.num_dmas, binding.interrupt) == (
        0, guest.kernel.console.cons_input, 1, 2)               # console at index 1: irq 2


def test_launcher_zero_byte_read_still_raises_the_irq_and_ends_input():
    host, guest = boot()
    con = guest.kernel.console
    guest.memory.struct_at(con.cons_input, abi.lguest_dma)["len"][0] = 0    # a buffer with no room
    mark = host.trace.mark()
    guest.console.type("lost")
    host.run()
    raised = host.trace.filter("irq_raise", since=mark)
    assert [e.irq for e in raised] == [guest.kernel.hvc.consoles[0].irq]
    assert guest.console.watching is False
    assert guest.launcher.log == ["lguest: Failed to get console input, ignoring console."]
    kinds = [e.kind for e in host.trace.since(mark) if e.kind in ("launcher_warn", "used_len", "irq_raise")]
    assert kinds == ["launcher_warn", "used_len", "irq_raise"]     # warned first, then used_len 0 and the irq


def test_shell_unknown_command_and_proc_interrupts():
    host, guest = boot()
    assert guest.shell("frob") == "sh: frob: command not found (try help)\n"
    guest.console.type("echo hi\r")
    host.run()
    line = [l for l in guest.shell("cat /proc/interrupts").splitlines() if "hvc_console" in l][0]
    assert line.split()[:2] == ["1:", str(guest.kernel.irq_counts[1])] and guest.kernel.irq_counts[1] >= 1


def test_1_9_the_console_irq_is_requested_at_the_first_open_not_shared():
    """hvc_alloc() only notes the irq; hvc_open() asks for it, IRQF_DISABLED, once."""
    host = lguest.Host()
    guest = host.launch(mem_mb=4, boot=False)
    kernel = guest.kernel                                        # boot by hand, stopping before init
    kernel.hcall(abi.LHCALL_LGUEST_INIT, kernel.lguest_data)
    kernel.console.cons_init()
    kernel.bus.lguest_bus_init()
    kernel.console.hvc_lguest_init()
    hp = kernel.hvc.consoles[0]
    assert hp.irq not in kernel.irq_actions                      # probed, bound, but no handler yet
    kernel.open_console()
    (action,) = kernel.irq_actions[hp.irq]
    assert action.flags == IRQF_DISABLED and action.name == "hvc_console"
    kernel.hvc.hvc_open(hp)                                      # a second open asks for nothing
    assert len(kernel.irq_actions[hp.irq]) == 1 and hp.count == 2
