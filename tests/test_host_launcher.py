"""The Launcher's side of the Host rules: the layout (reference §1.4, §4.1, §4.4), serving output
(§4.2: dispatch by watch key, its own pointer checks), and get_dma_buffer (§3.6, §1.8)."""
import errno
import struct

import pytest

import lguest
from lguest import abi

from host_helpers import (PAGE, assert_unchanged, bind, events, lan_guests, lan_page, lg, new_dma,
                          put_dma, ring, send, set_used_len, slot_key, snapshot, used_len)

DESC = struct.Struct("<HHHHI")


def _descs(g):
    """The 16 descriptors, decoded from the raw bytes at the top of RAM."""
    raw = g.memory.read(g.memory.ram_size, 12 * abi.LGUEST_MAX_DEVICES)
    return [DESC.unpack_from(raw, 12 * i) for i in range(abi.LGUEST_MAX_DEVICES)]


# --- §1.4 / §4.1 the layout ------------------------------------------------------------------------
def test_4_1_ram_is_mem_mb_and_the_descriptor_page_sits_at_mem():
    g = lguest.Host().launch(mem_mb=3, drivers=())
    mem = 3 << 20
    assert g.memory.ram_size == mem
    assert g.memory.regions[1].start == mem                      # the page right above RAM
    assert g.devices.tobytes() == g.memory.read(mem, 12 * abi.LGUEST_MAX_DEVICES)
    assert _descs(g)[0][0] == abi.LGUEST_DEVICE_T_CONSOLE         # read from the bytes at mem


def test_4_1_device_pages_are_handed_out_upward_in_command_line_order():
    g = lguest.Host().launch(mem_mb=2, sharenet=["lan0", "lan1", "lan2"], drivers=())
    mem = 2 << 20
    descs = _descs(g)
    for i, name in enumerate(["lan0", "lan1", "lan2"]):
        type_, features, status, num_pages, pfn = descs[i]
        assert type_ == abi.LGUEST_DEVICE_T_NET and num_pages == 1
        assert pfn == mem // PAGE + 1 + i
        assert lan_page(g, name) == pfn * PAGE
        assert features & abi.LGUEST_NET_F_NOCSUM


def test_4_1_the_console_comes_last_with_pfn_0():
    g = lguest.Host().launch(mem_mb=1, sharenet=["lan0", "lan1"], drivers=())
    descs = _descs(g)
    assert descs[2][0] == abi.LGUEST_DEVICE_T_CONSOLE
    assert descs[2][3] == 0 and descs[2][4] == 0
    assert all(d == (0, 0, 0, 0, 0) for d in descs[3:])


def test_4_1_console_alone_is_device_0():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    descs = _descs(g)
    assert descs[0][0] == abi.LGUEST_DEVICE_T_CONSOLE and descs[0][4] == 0
    assert all(d[0] == 0 for d in descs[1:])


@pytest.mark.parametrize("lans", [[], ["lan0"], ["lan0", "lan1", "lan2"]])
def test_4_1_pfn_limit_is_top_over_4096(lans):
    g = lguest.Host().launch(mem_mb=1, sharenet=lans, drivers=())
    top = (1 << 20) + PAGE * (1 + len(lans))                     # RAM, descriptor page, device pages
    assert g.memory.top == top
    assert lg(g).pfn_limit == top // PAGE


def test_4_1_device_pages_start_zeroed():
    g = lguest.Host().launch(mem_mb=1, sharenet=["fresh"], drivers=())
    assert g.memory.read(lan_page(g, "fresh"), PAGE) == bytes(PAGE)


def test_4_4_guests_on_one_lan_share_one_page():
    host = lguest.Host()
    a = host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    b = host.launch(mem_mb=2, sharenet=["x", "lan0"], drivers=())
    a.memory.write(lan_page(a) + 100, b"shared!")
    assert b.memory.read(lan_page(b) + 100, 7) == b"shared!"


def test_4_4_each_guest_claims_the_lowest_free_slot_and_dying_frees_it():
    host, (a, b) = lan_guests(2)
    slot = lambda g: _descs(g)[0][1] & ~(abi.LGUEST_NET_F_NOCSUM | abi.LGUEST_DEVICE_F_RANDOMNESS)
    assert (slot(a), slot(b)) == (0, 1)
    a.hypercall(abi.LHCALL_CRASH, 0)
    assert a.dead is not None
    c = host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    assert slot(c) == 0


# --- §4.2 serving output ---------------------------------------------------------------------------
def test_4_2_output_is_dispatched_by_watch_key_0_to_the_console():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    parts = [b"one ", b"two ", b"three"]
    sections = []
    for p in parts:
        x = g.alloc(len(p))
        g.memory.write(x, p)
        sections.append((x, len(p)))
    dma = new_dma(g, sections)
    send(g, 0, dma)
    assert g.console.output == "one two three"
    assert used_len(g, dma) == 13


def test_4_2_unknown_key_warns_pending_dma_and_used_len_stays_0():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    buf = g.alloc(8)
    dma = new_dma(g, [(buf, 8)])
    before = snapshot([g])
    send(g, 0x2000, dma)                                  # a private key nobody watches
    assert g.launcher.log == [f"lguest: Pending dma {dma:#x}, key 0x2000"]      # warnx(), glibc's %p
    assert used_len(g, dma) == 0 and g.dead is None and g.console.output == ""
    assert_unchanged(before, [g])


def test_4_2_section_at_or_above_top_stops_the_guest_with_invalid_address():
    host = lguest.Host()
    g, other = host.launch(mem_mb=1, drivers=()), host.launch(mem_mb=1, drivers=())
    dma = new_dma(g, [(g.memory.top, 8)])
    before = snapshot([g, other])
    send(g, 0, dma)
    assert g.dead == f"Launcher exited: Invalid address {g.memory.top}"
    assert g.console.output == "" and other.dead is None
    assert g.launcher.log == [f"lguest: Invalid address {g.memory.top}"]      # errx()
    assert_unchanged(before, [g, other], allow=[(g, dma, 4)])


def test_4_2_section_ending_exactly_at_top_stops_the_guest():
    """The Launcher's test is addr + len >= top: a buffer ending at top fails."""
    g = lguest.Host().launch(mem_mb=1, drivers=())
    top = g.memory.top
    send(g, 0, new_dma(g, [(top - 16, 16)]))
    assert g.dead == f"Launcher exited: Invalid address {top - 16}"


def test_4_2_section_ending_one_below_top_is_served():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    top = g.memory.top
    g.memory.write(top - 17, b"0123456789abcdef")
    dma = new_dma(g, [(top - 17, 16)])
    send(g, 0, dma)
    assert g.dead is None and g.console.output == "0123456789abcdef" and used_len(g, dma) == 16


@pytest.mark.parametrize("where", ["at_top", "ends_at_top", "far"])
def test_4_2_the_dma_struct_itself_is_pointer_checked(where):
    g = lguest.Host().launch(mem_mb=1, drivers=())
    top = g.memory.top
    udma = {"at_top": top, "ends_at_top": top - 100, "far": 0xFFFFFF00}[where]
    if where == "ends_at_top":
        put_dma(g, udma, [(g.alloc(4), 4)])
    g.hypercall(abi.LHCALL_SEND_DMA, 0, udma)
    shown = udma - (1 << 32) if udma >= 1 << 31 else udma                # %li: signed
    assert g.dead == f"Launcher exited: Invalid address {shown}"


def test_4_2_launcher_accepts_a_section_spanning_ram_top():
    """The Launcher checks only addr < top and addr + len < top (no page test): a section from
    the end of RAM into the descriptor page is ordinary Launcher memory and is written out."""
    g = lguest.Host().launch(mem_mb=1, drivers=())
    start = g.memory.ram_size - 10
    g.memory.write(start, b"0123456789")                  # the descriptor page supplies the rest
    expect = g.memory.read(start, 20)
    dma = new_dma(g, [(start, 20)])
    send(g, 0, dma)
    assert g.dead is None
    assert g.console.raw == expect and used_len(g, dma) == 20


def test_4_2_launcher_pointer_check_on_input_buffers_stops_the_guest():
    """A Guest whose bound console buffer points past top: the Launcher's pointer check
    (dma2iov after GETDMA) stops the Launcher and the Guest; the Host run loop never raises."""
    host = lguest.Host()
    g, other = host.launch(mem_mb=1, drivers=()), host.launch(mem_mb=1, drivers=())
    arr = new_dma(g, [(g.memory.top + 10, 20)])
    bind(g, 0, arr, 1, 1)
    g.console.type("hi")
    before = snapshot([other])
    host.run()
    assert g.dead == f"Launcher exited: Invalid address {g.memory.top + 10}"
    assert other.dead is None
    assert_unchanged(before, [other])


def test_4_3_console_input_into_an_empty_buffer_reads_0_bytes_and_ends():
    """§4.3: a read into a zero-length buffer returns 0 bytes; used_len is set to 0, the irq is
    raised anyway, and console input stops being watched. host.run() must come back."""
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    arr = new_dma(g, [])
    bind(g, 0, arr, 1, 1)
    mark = host.trace.mark()
    g.console.type("hi")
    host.run(max_steps=1000)
    assert g.dead is None and used_len(g, arr) == 0
    assert events(host, "irq_raise", since=mark, guest=g)
    assert g.launcher.log == ["lguest: Failed to get console input, ignoring console."]


def test_4_3_console_input_with_no_buffer_bound_warns_with_errno_and_is_discarded():
    """warn(), not warnx(): the failed GETDMA write's ENOENT is spelled out after the message."""
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    g.console.type("lost")
    host.run()
    assert g.launcher.log == ["lguest: console: no dma buffer!: No such file or directory"]
    assert g.console.watching and not g.console._input


def ctrl_c(g, times: int = 1) -> None:
    """Each ^C typed alone, so each is a read of its own."""
    for _ in range(times):
        g.console.type(b"\x03")
        g.host.run()


def test_4_3_three_ctrl_c_each_read_alone_end_the_launcher_with_status_2():
    """The third reaches the Guest (used_len 1, the irq) before the Launcher exits, saying nothing."""
    host = lguest.Host()
    g = host.launch(mem_mb=1)
    ctrl_c(g, 2)
    assert g.dead is None
    mark = host.trace.mark()
    g.console.type(b"\x03")
    host.run()
    assert g.dead == "Launcher exited: three ^C (status 2)" and g.launcher.status == 2
    assert [e.value for e in events(host, "used_len", since=mark, guest=g)] == [1]
    assert events(host, "irq_raise", since=mark, guest=g)
    assert g.launcher.log == []
    assert g.console.output.count("^C") == 2      # the Guest's tty echoed two; the third died with it


def test_4_3_ctrl_c_read_into_the_discard_buffer_counts_too():
    """2007 looked at the first byte of iov[0], which is the discard buffer when nothing is bound."""
    g = lguest.Host().launch(mem_mb=1, drivers=())
    ctrl_c(g, 3)
    assert g.dead == "Launcher exited: three ^C (status 2)"
    assert g.launcher.log == ["lguest: console: no dma buffer!: No such file or directory"] * 3


@pytest.mark.parametrize("between", [b"a", b"\x03\x03", b"\x03a"])
def test_4_3_any_other_read_starts_the_ctrl_c_count_again(between):
    g = lguest.Host().launch(mem_mb=1)
    ctrl_c(g, 2)
    g.console.type(between)                       # one read, not a ^C alone
    g.host.run()
    ctrl_c(g, 2)
    assert g.dead is None and g.console.abort_count == 2
    ctrl_c(g)
    assert g.dead is not None


@pytest.mark.parametrize("seconds_later, exits", [(0, True), (1, True), (2, False)])
def test_4_3_the_third_ctrl_c_counts_while_the_seconds_are_at_most_one_past_the_first(seconds_later, exits):
    """gettimeofday()'s whole seconds: 1.999 s apart can exit, 1.001 s across two boundaries not.
    A late third ^C sets the count back to 0, so it starts no new count of its own."""
    host = lguest.Host()
    g = host.launch(mem_mb=1)
    host.idle(1000 - host.tick % 1000)            # the first ^C is read at the start of a second
    first = host.tick // 1000
    ctrl_c(g, 2)
    host.idle((first + seconds_later) * 1000 + 999 - host.tick)    # the third at that second's end
    ctrl_c(g)
    assert (g.dead is not None) is exits
    if not exits:
        assert g.console.abort_count == 0
        ctrl_c(g, 2)
        assert g.dead is None


# --- §3.6 get_dma_buffer (LHREQ_GETDMA) ------------------------------------------------------------
def test_3_6_scans_from_index_0_ignoring_next_dma():
    host, (a, b) = lan_guests(2)
    arr, bufs = ring(b, [16, 16, 16])
    bind(b, slot_key(b, 1), arr, 3, 6)
    send(a, slot_key(a, 1), new_dma(a, [(a.alloc(4), 4)]))     # entry 0; next_dma 1
    set_used_len(b, arr, 0)                                      # consumed
    addr, irq, iov = b.launcher.get_dma_buffer(slot_key(b, 1))
    assert addr == arr and irq == 6 and iov == [(bufs[0], 16)]


def test_3_6_writes_the_bindings_irq_into_the_chosen_used_len():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    arr, bufs = ring(g, [16, 16])
    bind(g, 0, arr, 2, 11)
    addr = lg(g).fd.getdma(0)
    assert addr == arr and used_len(g, arr) == 11 and used_len(g, arr + 100) == 0


def test_3_6_reuses_the_last_buffer_when_every_entry_is_full():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    arr, bufs = ring(g, [16, 16, 16])
    for i, v in enumerate((5, 6, 7)):
        set_used_len(g, arr + 100 * i, v)
    bind(g, 0, arr, 3, 4)
    addr, irq, iov = g.launcher.get_dma_buffer(0)
    assert addr == arr + 200 and irq == 4 and iov == [(bufs[2], 16)]
    assert [used_len(g, arr + 100 * i) for i in range(3)] == [5, 6, 4]
    assert g.dead is None


def test_3_6_only_this_guests_binding_counts():
    host, (a, b) = lan_guests(2)
    arr, bufs = ring(a, [16])
    bind(a, slot_key(a, 1), arr, 1, 5)
    before = snapshot([a, b])
    assert b.launcher.get_dma_buffer(slot_key(b, 1)) is None
    with pytest.raises(OSError) as exc:
        lg(b).fd.getdma(slot_key(b, 1))
    assert exc.value.errno == errno.ENOENT
    assert a.dead is None and b.dead is None
    assert_unchanged(before, [a, b])


def test_3_6_nothing_bound_is_enoent():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    with pytest.raises(OSError) as exc:
        lg(g).fd.getdma(0)
    assert exc.value.errno == errno.ENOENT and g.dead is None


def test_3_6_a_count_of_0_hands_out_nothing():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    arr, bufs = ring(g, [16])
    bind(g, 0, arr, 0, 3)
    with pytest.raises(OSError) as exc:
        lg(g).fd.getdma(0)
    assert exc.value.errno == errno.ENOENT and g.dead is None


def test_3_6_bad_array_address_kills_the_guest_and_the_launcher_exits_on_it():
    """lgread() kills and reads zeros, so the bad entry looks free and is handed out; the
    Launcher's own pointer check then stops it (io.c, lguest_user.c, Launcher dma2iov)."""
    g = lguest.Host().launch(mem_mb=1, drivers=())
    bad = g.memory.top + PAGE
    bind(g, 0, bad, 1, 3)
    g.console.type("x")
    g.host.run()
    assert g.dead == f"bad read address {bad:#x} len 100"
    assert g.launcher.log[-1] == f"lguest: Invalid address {bad}"
    getdma, = events(g.host, "getdma", guest=g)
    assert getdma.entry == bad and getdma.irq == 3      # the binding's irq, read before the kill


def test_3_6_console_input_fills_the_buffer_sets_used_len_and_raises_the_irq():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    arr, (buf,) = ring(g, [16])
    bind(g, 0, arr, 1, 1)
    seen = []
    g.kernel.request_irq(1, lambda irq, dev: seen.append(irq) or 1, 0x80, "console", None)
    g.console.type("hi!")
    host.run()
    assert g.memory.read(buf, 3) == b"hi!" and used_len(g, arr) == 3
    assert seen == [1]


def test_3_6_console_input_overwrites_an_unread_buffer():
    """The quirk: with every entry full, the Launcher still gets the last one."""
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    arr, (buf,) = ring(g, [16])
    bind(g, 0, arr, 1, 1)
    g.console.type("abc")
    host.run()
    assert used_len(g, arr) == 3                          # the Guest never reads it ...
    g.console.type("XY")
    host.run()
    assert g.memory.read(buf, 3) == b"XYc" and used_len(g, arr) == 2


def test_3_6_console_input_with_nothing_bound_warns_and_is_dropped():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    before = snapshot([g])
    g.console.type("lost")
    host.run()
    assert any("no dma buffer" in line for line in g.launcher.log)
    assert g.dead is None
    assert_unchanged(before, [g])


# --- §1.8 LHREQ_IRQ ---------------------------------------------------------------------------------
@pytest.mark.parametrize("irq", [32, 100])
def test_1_8_lhreq_irq_32_or_more_is_einval(irq):
    g = lguest.Host().launch(mem_mb=1, drivers=())
    with pytest.raises(OSError) as exc:
        lg(g).fd.irq(irq)
    assert exc.value.errno == errno.EINVAL and lg(g).irqs_pending == 0


# --- §1.4: devices in command-line order ------------------------------------------------------------
def _kinds(g):
    return [abi.DEVICE_TYPE_NAMES[int(t)] for t in g.devices["type"] if t]


def test_1_4_devices_take_descriptor_slots_in_command_line_order(tmp_path):
    disk = tmp_path / "a.img"
    disk.write_bytes(bytes(4096))
    g = lguest.Host().launch(mem_mb=4, devices=[f"--block={disk}", "--sharenet=lan0"])
    assert _kinds(g) == ["block", "net", "console"]
    assert g.kernel.block.disks[0].irq == 1 and g.kernel.net.devices[0].priv.lgdev.index == 1
    assert int(g.devices[0]["pfn"]) + 1 == int(g.devices[1]["pfn"])       # pages upward, in that order


def test_1_4_keyword_lists_are_laid_out_sharenet_then_tunnet_then_block(tmp_path):
    disk = tmp_path / "a.img"
    disk.write_bytes(bytes(4096))
    g = lguest.Host().launch(mem_mb=4, block=[disk], tunnet="10.0.0.254", sharenet=["lan0"], drivers=())
    assert _kinds(g) == ["net", "net", "block", "console"]
    assert g.launcher.devices.devices[1].name == "net tap0"


def test_1_4_several_tunnets_each_get_a_tap_and_their_own_address():
    g = lguest.Host().launch(mem_mb=4, devices=["--tunnet=10.0.0.254", "--sharenet=lan0", "--tunnet=10.9.0.1"])
    assert [t.lan for t in g.launcher.tunnets] == ["tap0", "tap1"]
    assert [str(g.kernel.inet.addrs[f"eth{i}"]) for i in range(3)] == ["10.0.0.1/24", "10.1.0.1/24", "10.9.0.2/24"]
    assert "1 received" in g.shell("ping -c 1 10.9.0.1")


@pytest.mark.parametrize("devices, error, words", [
    (["--block"], ValueError, "--block=FILE, --sharenet=NAME"),
    (["--disk=a.img"], ValueError, "--block=FILE, --sharenet=NAME"),
    ("--sharenet=lan0", TypeError, "a list"),
    ([("sharenet", "lan0")], ValueError, "--block=FILE, --sharenet=NAME"),
])
def test_misuse_a_bad_device_option_says_what_is_allowed(devices, error, words):
    with pytest.raises(error, match=words):
        lguest.Host().launch(mem_mb=1, devices=devices)


def test_misuse_devices_in_order_and_keyword_lists_together_is_refused():
    with pytest.raises(TypeError, match="not both"):
        lguest.Host().launch(mem_mb=1, devices=["--sharenet=a"], sharenet=["b"])


# --- L:020 find_free_guest(): a dead Guest's slot is the next Guest's ---------------------------------
def test_l020_a_dead_guests_slot_is_reused_so_ids_and_macs_come_round_again():
    host = lguest.Host()
    a, b = host.launch(mem_mb=4, sharenet=["lan0"]), host.launch(mem_mb=4, sharenet=["lan0"])
    mac = a.kernel.net.devices[0].dev_addr
    a.hypercall(abi.LHCALL_CRASH, 0)
    c = host.launch(mem_mb=4, sharenet=["lan0"])
    assert (a.id, c.id) == (0, 0) and host.lgs[0] is c._lg and host.guests[0] is c
    assert c.kernel.net.devices[0].dev_addr == mac == b"\x02\x00\x00\x00\x00\x00"
    assert "1 received" in b.shell("ping -c 1 10.0.0.1")          # the new Guest 0 answers
    assert len(host.lgs) == 2


# --- §4.4: one Launcher, one LAN named twice ------------------------------------------------------------
def test_4_4_one_launcher_naming_a_lan_twice_gets_the_same_slot_twice():
    """fcntl locks belong to the process: the Launcher's second F_SETLK on byte 0 succeeds."""
    host = lguest.Host()
    g = host.launch(mem_mb=4, sharenet=["lan0", "lan0"], drivers=())
    h = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())
    slots = [int(d["features"]) & 0xFFF for d in g.devices[:2]]
    assert slots == [0, 0] and int(h.devices[0]["features"]) & 0xFFF == 1
