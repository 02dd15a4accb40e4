"""Issue 13, "API misuse": a reader who calls the model wrongly gets an exception that says
what is allowed, and a launch that fails leaves nothing half-made behind.

Each test calls one public entry point the way a hurried reader might (a wrong type, a
negative or huge number, an unknown name, a list of the wrong shape) and checks two things:
the exception names what the entry point takes, and the model is exactly as it was before
the call. For ``launch()`` "as it was" means: no new Guest, no DMA binding, no LAN slot
lock, no tap and no open file descriptor (read from /proc/self/fd).

Misuse by the *Guest* (a bad key, a bad DMA) never raises: the Host kills the Guest. Those
rules have their own tests (test_host_kill.py and friends); nothing here repeats them.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import lguest
from lguest import abi, cli, show
from lguest.errors import GuestMemoryError, LguestError
from lguest.memory import GuestMemory
from lguest.trace import Trace

from host_helpers import lg

PAGE = abi.PAGE_SIZE


# --- helpers -----------------------------------------------------------------------------------
def open_fds() -> set[str]:
    """The descriptors this process holds (the listing's own descriptor is closed by then)."""
    return set(os.listdir("/proc/self/fd"))


def leftovers(host) -> dict:
    """Everything a launch may take hold of, in a form that compares by value."""
    return {
        "lgs": [(x.id, x.dead) for x in host.lgs],
        "guests": list(host.guests),
        "bindings": [repr(b) for b in host.bindings()],
        "locks": {name: dict(page.locked_slots) for name, page in host.shared_pages.items()
                  if page.locked_slots},
        "taps": dict(host.tunnets),
        "captures": {lan: list(c) for lan, c in host.captures.items()},
        "fds": open_fds(),
    }


def disk(tmp_path, name: str = "disk.img", size: int = 4096) -> str:
    path = tmp_path / name
    path.write_bytes(bytes(size))
    return str(path)


@pytest.fixture
def busy_host(tmp_path):
    """A Host that already holds one of everything a launch can leak: a Guest with a LAN
    slot, a tap, a disk and live bindings (its console and net drivers bound at boot)."""
    host = lguest.Host()
    host.launch(mem_mb=2, sharenet=["lan0"], tunnet="10.0.0.254", block=[disk(tmp_path, "first.img")])
    assert host.bindings() and host.shared_page("lan0").locked_slots and host.tunnets
    return host


def check_words(exc, *words) -> None:
    msg = str(exc.value)
    for word in words:
        assert word in msg, f"{word!r} not in the message {msg!r}"


# --- launch(): refused, and nothing left behind ---------------------------------------------------
def _launch_cases(tmp_path):
    lans = [f"lan{i}" for i in range(16)]
    return {
        # the kernel refused its drivers after the Launcher had registered the Guest
        "unknown_driver": (dict(sharenet=["lan0"], tunnet="10.1.0.1", block=[disk(tmp_path)], drivers=["bogus"]),
                           ValueError, ("unknown driver", "'console', 'block', 'net'")),
        "drivers_as_a_string": (dict(sharenet=["lan0"], drivers="console"), TypeError,
                                ("drivers takes a list", "['console']")),
        "drivers_not_a_list": (dict(sharenet=["lan0"], drivers=5), TypeError, ("drivers takes a list",)),
        # the 17th device: the disk was opened (or the slot locked) before its descriptor was refused
        "seventeenth_device_a_disk": (dict(sharenet=lans, block=[disk(tmp_path)]), LguestError,
                                      ("at most 16 devices",)),
        "seventeenth_device_a_lan": (dict(sharenet=lans + ["lan99"]), LguestError, ("at most 16 devices",)),
        # regression guards for paths that already cleaned up
        "bad_disk_after_a_lan_and_a_tap": (dict(sharenet=["lan0"], tunnet="10.1.0.1",
                                                block=[str(tmp_path / "missing.img")]),
                                           lguest.errors.LauncherBlockError, ("no such disk image",)),
        "pcap_in_a_missing_directory": (dict(sharenet=["lan0"], tunnet=f"pcap:{tmp_path}/no/such/dir.pcap"),
                                        FileNotFoundError, ("dir.pcap",)),
        "bad_tunnet_after_a_disk": (dict(devices=[f"--block={disk(tmp_path)}", "--tunnet=bridge:br0"]),
                                    ValueError, ("--tunnet takes the Host's IPv4 address",)),
        # flags that are not flags: "no" is true
        "boot_not_a_flag": (dict(sharenet=["lan0"], boot="no"), TypeError, ("boot must be True or False",)),
        "o_direct_not_a_flag": (dict(block=[disk(tmp_path)], o_direct="yes"), TypeError,
                                ("o_direct must be True or False",)),
    }


LAUNCH_CASES = ["unknown_driver", "drivers_as_a_string", "drivers_not_a_list", "seventeenth_device_a_disk",
                "seventeenth_device_a_lan", "bad_disk_after_a_lan_and_a_tap", "pcap_in_a_missing_directory",
                "bad_tunnet_after_a_disk", "boot_not_a_flag", "o_direct_not_a_flag"]


@pytest.mark.parametrize("case", LAUNCH_CASES)
def test_misuse_a_failed_launch_says_what_is_allowed_and_leaves_nothing_behind(busy_host, tmp_path, case):
    kwargs, error, words = _launch_cases(tmp_path)[case]
    before = leftovers(busy_host)
    with pytest.raises(error) as exc:
        busy_host.launch(mem_mb=1, **kwargs)
    check_words(exc, *words)
    assert leftovers(busy_host) == before
    assert not os.path.exists(tmp_path / "no")


def test_misuse_after_a_failed_launch_the_next_launch_gets_the_same_slot_id_and_tap(busy_host, tmp_path):
    """The proof that nothing was held: the next good launch is the one that would have come."""
    with pytest.raises(ValueError):
        busy_host.launch(mem_mb=1, sharenet=["lan0"], tunnet="10.1.0.1", drivers=["bogus"])
    g = busy_host.launch(mem_mb=1, sharenet=["lan0"], tunnet="10.1.0.1", drivers=())
    assert g.id == 1 and len(busy_host.lgs) == 2
    assert int(g.devices[0]["features"]) & 0xFFF == 1              # lan0's slot 1, not 2
    assert g.launcher.tunnet.lan == "tap1"


@pytest.mark.parametrize("kwargs", [dict(trace="no"), dict(trace=16), dict(copy_data_fixed="yes"),
                                    dict(copy_data_fixed=None)])
def test_misuse_host_flags_must_be_true_or_false(kwargs):
    with pytest.raises(TypeError) as exc:
        lguest.Host(**kwargs)
    check_words(exc, next(iter(kwargs)), "True or False")


# --- the Host's other methods -------------------------------------------------------------------
@pytest.mark.parametrize("max_steps, error", [(0, ValueError), (-1, ValueError), ("100", TypeError),
                                              (1.5, TypeError), (None, TypeError)])
def test_misuse_run_takes_a_whole_number_of_steps(max_steps, error):
    host = lguest.Host()
    with pytest.raises(error) as exc:
        host.run(max_steps)
    check_words(exc, "max_steps", "at least 1")


@pytest.mark.parametrize("ms, error", [(-1, ValueError), (1.5, TypeError), ("10", TypeError), (True, TypeError)])
def test_misuse_idle_takes_whole_milliseconds(ms, error):
    host = lguest.Host()
    with pytest.raises(error) as exc:
        host.idle(ms)
    check_words(exc, "milliseconds", "at least 0")
    assert host.tick == 0


def test_misuse_kill_guest_takes_the_hosts_record_and_a_message_and_kills_nothing_otherwise():
    host = lguest.Host()
    g = host.launch(mem_mb=1, sharenet=["lan0"])
    other = lguest.Host().launch(mem_mb=1, drivers=())
    for args, error, words in [((g, "x"), TypeError, ("host.lgs[guest.id]",)),
                               ((g.id, "x"), TypeError, ("host.lgs[guest.id]",)),
                               ((lg(g), 5), TypeError, ("message", "string")),
                               ((lg(g), None), TypeError, ("message", "string")),
                               ((lg(other), "x"), ValueError, ("not one of this Host's Guests",))]:
        with pytest.raises(error) as exc:
            host.kill_guest(*args)
        check_words(exc, *words)
    assert g.dead is None and other.dead is None and not host.trace.filter("kill")
    assert host.shared_page("lan0").locked_slots and host.bindings()
    host.kill_guest(lg(g), "the right way")                            # and the right call still works
    assert g.dead == "the right way" and not host.shared_page("lan0").locked_slots


@pytest.mark.parametrize("name", ["", 5, None, b"lan0"])
def test_misuse_shared_page_is_named_by_a_non_empty_string(name):
    host = lguest.Host()
    with pytest.raises(ValueError) as exc:
        host.shared_page(name)
    check_words(exc, "non-empty string")
    assert host.shared_pages == {}


@pytest.mark.parametrize("path", [None, 3, 2.5])
def test_misuse_capture_path_is_a_file_name_and_a_refused_capture_is_not_registered(path):
    host = lguest.Host()
    host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    fds = open_fds()
    with pytest.raises(TypeError) as exc:
        host.capture("lan0", path)
    check_words(exc, "str", "os.PathLike")
    assert host.captures == {} and open_fds() == fds


# --- the Guest facade ------------------------------------------------------------------------------
@pytest.fixture
def guest():
    return lguest.Host().launch(mem_mb=1, drivers=())


def next_alloc(g) -> int:
    """The address the allocator would hand out next (allocated, then given back)."""
    addr = g.alloc(abi.DMA_SIZE, align=4)
    g.free(addr)
    return addr


@pytest.mark.parametrize("addr", ["0x100000", None, 1.5])
def test_misuse_free_takes_an_address_from_alloc(guest, addr):
    with pytest.raises((TypeError, ValueError)) as exc:
        guest.free(addr)
    check_words(exc, "alloc()", repr(addr))


@pytest.mark.parametrize("args", [("x",), (None,), (abi.LHCALL_HALT + 0.5,), (abi.LHCALL_HALT, 1.5),
                                  (abi.LHCALL_SEND_DMA, 0, "0x1000")])
def test_misuse_hypercall_registers_are_whole_numbers_and_nothing_is_called(guest, args):
    tick, events = guest.host.tick, len(guest.host.trace)
    with pytest.raises(TypeError) as exc:
        guest.hypercall(*args)
    check_words(exc, "whole number", "register")
    assert guest.host.tick == tick and len(guest.host.trace) == events and guest.dead is None


def test_hypercall_still_takes_numpy_integers_as_registers(guest):
    """Addresses read out of Guest structs are numpy integers; they are good registers."""
    assert guest.hypercall(np.uint32(abi.LHCALL_HALT), np.int64(0)) == abi.LHCALL_HALT and guest.dead is None


@pytest.mark.parametrize("sections, used_len, error, words", [
    ([1, 2], 0, TypeError, ("(addr, len) pairs",)),
    ([(0x1000,)], 0, TypeError, ("(addr, len) pairs",)),
    ([("buf", 4)], 0, TypeError, ("(addr, len) pairs",)),
    ([(0x1000, 1.5)], 0, TypeError, ("(addr, len) pairs",)),
    ([(0x1000, 4)] * 17, 0, ValueError, ("at most 16 sections",)),
    ([(0x1000, 70000)], 0, ValueError, ("u16",)),
    ([(0x1000, -1)], 0, ValueError, ("u16",)),
    ([(0x1000, 4)], "4", TypeError, ("used_len", "whole number")),
    (5, 0, TypeError, ("(addr, len) pairs",)),
])
def test_misuse_dma_sections_say_what_a_section_is_and_no_memory_is_lost(guest, sections, used_len, error, words):
    nxt = next_alloc(guest)
    with pytest.raises(error) as exc:
        guest.dma(sections, used_len)
    check_words(exc, *words)
    assert next_alloc(guest) == nxt                              # the allocation was given back


@pytest.mark.parametrize("entries, error, words", [
    (5, TypeError, ("a list of entries",)),
    ([(0x100000, 64)], TypeError, ("each entry is a list of (addr, len)",)),  # one level of nesting short
    ([[(0x100000, 64)], [(0x100000, 64)] * 17], ValueError, ("at most 16 sections",)),
    ([], ValueError, ("at least one entry",)),
])
def test_misuse_dma_array_says_what_an_entry_is_and_no_memory_is_lost(guest, entries, error, words):
    nxt = next_alloc(guest)
    with pytest.raises(error) as exc:
        guest.dma_array(entries)
    check_words(exc, *words)
    assert next_alloc(guest) == nxt


@pytest.mark.parametrize("command", [5, b"echo hi", None, ["echo", "hi"]])
def test_misuse_shell_takes_a_command_line_string(command):
    g = lguest.Host().launch(mem_mb=1)
    with pytest.raises(TypeError) as exc:
        g.shell(command)
    check_words(exc, "shell()", "string")


@pytest.mark.parametrize("path, mode, buffering, error, words", [
    (5, "rb", -1, TypeError, ("/dev/lgba",)),
    (None, "rb", -1, TypeError, ("/dev/lgba",)),
    ("/dev/lgba", "rb", "0", TypeError, ("buffering", "whole number")),
    ("/dev/lgba", "w", -1, ValueError, ("'rb' or 'r+b'",)),
    ("/dev/lgbz", "rb", -1, FileNotFoundError, ("/dev/lgba",)),
])
def test_misuse_open_says_which_disks_and_modes_there_are(tmp_path, path, mode, buffering, error, words):
    g = lguest.Host().launch(mem_mb=2, block=[disk(tmp_path)])
    with pytest.raises(error) as exc:
        g.open(path, mode, buffering)
    check_words(exc, *words)


def test_misuse_a_raw_disk_file_checks_seek_and_write_as_a_python_file_does(tmp_path):
    g = lguest.Host().launch(mem_mb=2, block=[disk(tmp_path)])
    raw = g.open("/dev/lgba", "r+b", buffering=0)
    with pytest.raises(ValueError) as exc:
        raw.seek(0, 7)
    check_words(exc, "whence", "SEEK_SET", "SEEK_END")
    with pytest.raises(TypeError) as exc:
        raw.seek(1.5)
    check_words(exc, "whole number")
    with pytest.raises(TypeError) as exc:
        raw.write("text")
    check_words(exc, "bytes")
    assert raw.tell() == 0 and raw.read(4) == bytes(4)               # nothing moved, nothing written


@pytest.mark.parametrize("text", [5, None, 3.0, ["ls"]])
def test_misuse_console_type_takes_text_or_bytes_and_queues_nothing_else(text):
    g = lguest.Host().launch(mem_mb=1)
    with pytest.raises(TypeError) as exc:
        g.console.type(text)
    check_words(exc, "str", "bytes")
    assert repr(g.console).endswith("input waiting=0 bytes)")


def test_console_type_still_takes_str_bytes_and_bytearray():
    g = lguest.Host().launch(mem_mb=1)
    for text in ("echo a\r", b"echo b\r", bytearray(b"echo c\r")):
        g.console.type(text)
    g.host.run()
    assert "\na\r\n" in g.console.output and "\nb\r\n" in g.console.output and "\nc\r\n" in g.console.output


# --- GuestMemory -----------------------------------------------------------------------------------
@pytest.fixture
def memory():
    m = GuestMemory(1 << 20)
    m.map_pages(1, "descriptor page")
    return m


ACCESSORS = {
    "read": lambda m, a: m.read(a, 4),
    "write": lambda m, a: m.write(a, b"abcd"),
    "view": lambda m, a: m.view(a, 4),
    "views": lambda m, a: m.views(a, 4),
    "u32": lambda m, a: m.u32(a),
    "u16": lambda m, a: m.u16(a),
    "set_u32": lambda m, a: m.set_u32(a, 1),
    "array_at": lambda m, a: m.array_at(a, abi.lguest_dma),
    "struct_at": lambda m, a: m.struct_at(a, abi.lguest_dma),
}


@pytest.mark.parametrize("addr", [1.5, "16", None, float(1 << 30)])
@pytest.mark.parametrize("name", list(ACCESSORS))
def test_misuse_memory_addresses_are_whole_numbers(memory, name, addr):
    before = memory.read(0, 64)
    with pytest.raises(TypeError) as exc:
        ACCESSORS[name](memory, addr)
    check_words(exc, "whole number", "addr", repr(addr))
    assert memory.read(0, 64) == before


@pytest.mark.parametrize("length", [1.5, "4", None])
@pytest.mark.parametrize("name", ["read", "view", "views"])
def test_misuse_memory_lengths_are_whole_numbers(memory, name, length):
    with pytest.raises(TypeError) as exc:
        getattr(memory, name)(0, length)
    check_words(exc, "whole number", "length")


@pytest.mark.parametrize("addr, length", [(-4, 4), ((1 << 20) + PAGE, 4), (0, 1 << 40), (1 << 40, 4)])
@pytest.mark.parametrize("name", ["read", "view", "views"])
def test_misuse_memory_out_of_range_names_the_range_there_is(memory, name, addr, length):
    with pytest.raises(GuestMemoryError) as exc:
        getattr(memory, name)(addr, length)
    check_words(exc, "outside Guest memory [0, 0x101000)")


def test_misuse_memory_values_and_typed_views_say_what_they_take(memory):
    with pytest.raises(TypeError) as exc:
        memory.set_u32(0, 1.5)
    check_words(exc, "value", "whole number")
    with pytest.raises(TypeError) as exc:
        memory.array_at(0, "<u4")
    check_words(exc, "numpy dtype")
    with pytest.raises(TypeError) as exc:
        memory.struct_at(0, None)
    check_words(exc, "numpy dtype")
    with pytest.raises(ValueError) as exc:
        memory.array_at(0, np.dtype("<u4"), -1)
    check_words(exc, "count", "0 or more")
    with pytest.raises(TypeError) as exc:
        memory.array_at(0, np.dtype("<u4"), 1.5)
    check_words(exc, "count", "whole number")
    with pytest.raises(TypeError) as exc:
        memory.write(0, "text")
    check_words(exc, "bytes-like")
    assert memory.read(0, 8) == bytes(8)


@pytest.mark.parametrize("num_pages, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                              ("1", TypeError), (1 << 20, ValueError)])
def test_misuse_map_pages_takes_a_whole_number_of_pages_and_leaves_the_layout_alone(memory, num_pages, error):
    top, regions = memory.top, list(memory.regions)
    with pytest.raises(error) as exc:
        memory.map_pages(num_pages, "device")
    check_words(exc, "num_pages" if num_pages != 1 << 20 else "4 GiB")
    assert memory.top == top and memory.regions == regions and memory.pfn_limit == top // PAGE


@pytest.mark.parametrize("ram, error", [(4096.0, TypeError), ("4096", TypeError), (0, ValueError),
                                        (4097, ValueError), (1 << 32, ValueError)])
def test_misuse_guest_memory_size_is_whole_pages_below_4_gib(ram, error):
    with pytest.raises(error) as exc:
        GuestMemory(ram)
    check_words(exc, "whole number of 4096-byte pages")


# --- the trace -------------------------------------------------------------------------------------
@pytest.fixture
def trace():
    t = Trace()
    for i in range(5):
        t.emit(i, i % 2, "tick", n=i)
    return t


@pytest.mark.parametrize("mark", ["x", 1.5, None, True])
@pytest.mark.parametrize("call", ["since", "filter", "show", "counts"])
def test_misuse_trace_bookmarks_are_whole_numbers_from_mark(trace, call, mark):
    with pytest.raises(TypeError) as exc:
        getattr(trace, call)(mark) if call == "since" else getattr(trace, call)(since=mark)
    check_words(exc, "whole number", "trace.mark()")


def test_a_bookmark_before_the_start_asks_from_the_start_and_invents_no_dropped_events(trace):
    """``mark() - 1`` is a fair bookmark (the newest event), so on a fresh trace one can be -1.
    Before the fix, show(since=-5) claimed "(5 earlier events dropped...)" of a trace that
    had dropped none."""
    assert trace.dropped == 0
    assert trace.show(since=-5) == trace.show(since=0) and "dropped" not in trace.show(since=-5)
    assert trace.since(np.int64(-1)) == trace.since(0)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(kind=5), TypeError, ("kind", "'send_dma'")),
    (dict(kind=["tick", 5]), TypeError, ("kind", "'send_dma'")),
    (dict(guest="g0"), TypeError, ("guest", "0..15")),
    (dict(guest=1.0), TypeError, ("guest", "0..15")),
    (dict(guest=-1), ValueError, ("guest", "0..15")),
    (dict(guest=16), ValueError, ("guest", "0..15")),
])
def test_misuse_trace_filter_says_what_kind_and_guest_take(trace, kwargs, error, words):
    with pytest.raises(error) as exc:
        trace.filter(**kwargs)
    check_words(exc, *words)
    with pytest.raises(error):
        trace.show(**kwargs)


def test_trace_filter_still_takes_lists_tuples_and_numpy_ids(trace):
    assert [e.n for e in trace.filter(["tick"], guest=np.int64(1))] == [1, 3]
    assert len(trace.filter(("tick", "other"))) == 5


def test_misuse_chrome_export_takes_a_file_name_not_a_descriptor(trace, tmp_path):
    """open() takes an int as a descriptor: before the check, to_chrome_json(fd) wrote the
    JSON into whatever that descriptor was and closed it."""
    path = tmp_path / "victim.txt"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        with pytest.raises(TypeError) as exc:
            trace.to_chrome_json(fd)
        check_words(exc, "os.PathLike")
        os.fstat(fd)                                               # still open
        assert path.read_bytes() == b""
    finally:
        os.close(fd)


# --- show ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, words", [
    (dict(data="abc"), TypeError, ("bytes",)),
    (dict(data=5), TypeError, ("bytes",)),
    (dict(width=1.5), TypeError, ("width", "whole number")),
    (dict(width="8"), TypeError, ("width", "whole number")),
    (dict(width=0), ValueError, ("width", "positive")),
    (dict(start=-5), ValueError, ("start", "0 or more")),
    (dict(start="0"), TypeError, ("start", "whole number")),
    (dict(width=16, groups=(20, -4)), ValueError, ("groups", "positive")),
    (dict(width=16, groups=(8, 4)), ValueError, ("add up to the line width 16",)),
])
def test_misuse_hexdump_says_what_it_takes(kwargs, error, words):
    kwargs = {"data": b"abc", **kwargs}
    with pytest.raises(error) as exc:
        show.hexdump(**kwargs)
    check_words(exc, *words)


@pytest.mark.parametrize("call", [lambda: show.type_name("net"), lambda: show.feature_names("x", 1),
                                  lambda: show.feature_names(2, None), lambda: show.status_names(1.5)])
def test_misuse_field_names_take_the_fields_numbers(call):
    with pytest.raises(TypeError) as exc:
        call()
    check_words(exc, "whole number")


def test_misuse_show_views_name_what_they_take_when_given_the_wrong_object():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    for call, words in [(lambda: show.descriptor_table(g), "guest.devices"),
                        (lambda: show.descriptor_table(5), "guest.devices"),
                        (lambda: show.memory_map(g), "guest.memory"),
                        (lambda: show.dma_sections(g, 0), "guest.memory"),
                        (lambda: show.dma_table(g, 0), "guest.memory"),
                        (lambda: show.bindings_table(g), "the Host"),
                        (lambda: show.key_table([g]), "(guest, key) pairs"),
                        (lambda: show.key_table([(g.memory, 0)]), "(guest, key) pairs"),
                        (lambda: show.key_table([(g, "0x1000")]), "(guest, key) pairs"),
                        (lambda: show.dma_table(g.memory, "0x1000"), "whole number")]:
        with pytest.raises(TypeError) as exc:
            call()
        check_words(exc, words)


@pytest.mark.parametrize("src, dst, error", [([-5], [10], ValueError), ([70000], [10], ValueError),
                                             ([1.5], [10], TypeError), (["a"], [10], TypeError),
                                             (5, [10], TypeError), ([10], None, TypeError)])
@pytest.mark.parametrize("view", [show.lockstep, show.lockstep_table])
def test_misuse_lockstep_lengths_are_u16s(view, src, dst, error):
    with pytest.raises(error) as exc:
        view(src, dst)
    check_words(exc, "section lengths", "0..65535")


# --- the widgets' constructors ---------------------------------------------------------------------
def test_misuse_views_name_the_object_they_take():
    from lguest.widgets import BufferMap, InterruptPanel, KeyTable, LanPage, TracePlayer
    host = lguest.Host()
    g = host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    for call, error, words in [
        (lambda: KeyTable(g), TypeError, ("KeyTable", "the Host", "guest.host")),
        (lambda: KeyTable(None), TypeError, ("KeyTable", "the Host")),
        (lambda: InterruptPanel(g), TypeError, ("InterruptPanel", "the Host", "guest.host")),
        (lambda: LanPage(g, "lan0"), TypeError, ("LanPage", "the Host", "guest.host")),
        (lambda: TracePlayer(g, []), TypeError, ("TracePlayer", "the Host")),
        (lambda: BufferMap(host), TypeError, ("BufferMap", "one Guest")),
        (lambda: BufferMap(g.id), TypeError, ("BufferMap", "one Guest")),
        (lambda: InterruptPanel(host, since="x"), TypeError, ("trace.mark()",)),
        (lambda: InterruptPanel(host, since=None), TypeError, ("trace.mark()",)),
        (lambda: LanPage(host, 5), KeyError, ("no LAN named 5", "'lan0'")),
        (lambda: TracePlayer(host, KeyTable(host)), TypeError, ("a list of views", "KeyTable(host)")),
        (lambda: TracePlayer(host, [5]), TypeError, ("a list of views",)),
        (lambda: TracePlayer(host, [], max_frames=0), ValueError, ("max_frames", "at least 1")),
        (lambda: TracePlayer(host, [], max_frames=2.5), TypeError, ("max_frames", "whole number")),
        (lambda: TracePlayer(host, [], interval_ms=-5), ValueError, ("interval_ms", "at least 1")),
        (lambda: KeyTable(host).route(7, 0), ValueError, ("sender", "0..0")),
        (lambda: KeyTable(host).route("g0", 0), TypeError, ("sender", "0..0")),
        (lambda: KeyTable(host).route(g, "0x1000"), TypeError, ("key", "whole number")),
    ]:
        with pytest.raises(error) as exc:
            call()
        check_words(exc, *words)
    assert KeyTable(host).route(g, 0).startswith("g0 -> key 0x0")     # the good calls still work


# --- python -m lguest ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, words", [
    (["--tunnet=bridge:br0", "4"], "--tunnet takes the Host's IPv4 address"),
    (["--sharenet=", "4"], "--block=FILE, --sharenet=NAME"),
    (["--block=/no/such/disk.img", "4"], "no such disk image"),
    (["--o-direct", "--block={disk}", "2048"], "mem_mb must be a whole number of MiB, 1..1024"),
    ([f"--sharenet=lan{i}" for i in range(16)] + ["--block={disk}", "4"], "at most 16 devices"),
])
def test_misuse_cli_device_errors_say_what_is_allowed_and_leak_no_descriptor(tmp_path, capfd, argv, words):
    """In-process, to see the descriptors: boot_and_serve() refuses before it reads stdin."""
    image = disk(tmp_path)
    args = cli.parse_args([a.format(disk=image) for a in argv])
    fds = open_fds()
    assert cli.boot_and_serve(args, fd=-1, interactive=False) == 2
    err = capfd.readouterr().err
    assert err.startswith("lguest: ") and words in err
    assert open_fds() == fds


def test_a_sharenet_may_not_take_the_name_of_a_tap():
    """Captures and views name a LAN by its name: a --sharenet called tap0 beside the tap tap0
    would be two networks under one name."""
    host = lguest.Host()
    host.launch(mem_mb=1, tunnet="10.0.0.254")
    locks_before = {name: dict(p.locked_slots) for name, p in host.shared_pages.items()}
    with pytest.raises(ValueError, match="'tap0' is a --tunnet's tap on this Host"):
        host.launch(mem_mb=1, sharenet=["tap0"])
    assert len(host.lgs) == 1 and "tap0" not in host.shared_pages
    assert {name: dict(p.locked_slots) for name, p in host.shared_pages.items()} == locks_before


@pytest.mark.parametrize("call", ["free_irq", "disable_irq", "enable_irq"])
@pytest.mark.parametrize("irq", [32, -1, 40, "3", 2.5, None])
def test_misuse_an_irq_call_on_a_line_the_guest_does_not_have_says_which_lines_exist(call, irq):
    g = lguest.Host().launch(mem_mb=1)
    before = (list(g.kernel.irq_depth), {n: list(a) for n, a in g.kernel.irq_actions.items()})
    args = (irq, "dev") if call == "free_irq" else (irq,)
    with pytest.raises(ValueError, match=r"irq must be a line 0\.\.31, got"):
        getattr(g.kernel, call)(*args)
    assert (list(g.kernel.irq_depth), {n: list(a) for n, a in g.kernel.irq_actions.items()}) == before
