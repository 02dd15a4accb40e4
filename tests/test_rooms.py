"""The doors between the rooms: the gate, /dev/lguest, the trace's bounds, and the small rules.

What tests/test_walls.py checks from the imports, these check from behaviour: a Launcher's
handle does what /dev/lguest did and nothing more; a Guest's interrupts wait for its entry;
the routing rule the views draw is the one the Host sends by; the trace stays bounded.
"""
from __future__ import annotations

import errno
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lguest
from lguest import abi
from lguest.errors import (GuestDead, GuestMemoryError, LauncherBlockError, LauncherExit, LguestError,
                           NotYetAvailable, UnknownLanError)
from lguest.memory import GuestMemory
from lguest.trace import DEFAULT_LIMIT, Trace
from lguest.widgets.state import route

from host_helpers import lan_guests, lg, new_dma, slot_key


# --- one exception family ----------------------------------------------------------------------
@pytest.mark.parametrize("error", [NotYetAvailable, GuestDead, GuestMemoryError, UnknownLanError,
                                   LauncherBlockError, LauncherExit])
def test_every_exception_of_the_model_is_an_lguest_error(error):
    assert issubclass(error, LguestError)


def test_the_old_import_places_still_give_the_same_classes():
    from lguest.launcher.block import LauncherBlockError as from_block
    from lguest.memory import GuestMemoryError as from_memory
    assert from_block is LauncherBlockError and from_memory is GuestMemoryError is lguest.GuestMemoryError


# --- GuestMemory.read ----------------------------------------------------------------------------
@pytest.mark.parametrize("addr", [0, 100, (1 << 20) - 8])
def test_memory_read_refuses_a_negative_length_like_its_siblings(addr):
    memory = GuestMemory(1 << 20)
    for call in (lambda: memory.read(addr, -5), lambda: memory.views(addr, -5), lambda: memory.view(addr, -5)):
        with pytest.raises(GuestMemoryError, match="outside Guest memory"):
            call()


# --- the trace: bounded, with its watchers ------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.just("emit"), st.just("clear"), st.integers(1, 9)), max_size=80), st.integers(1, 9))
def test_trace_keeps_the_newest_limit_events_and_counts_the_rest(steps, limit):
    trace, emitted = Trace(limit=limit), []
    for step in steps:
        if step == "emit":
            trace.emit(len(emitted), None, "x")
            emitted.append(len(emitted))
        elif step == "clear":
            trace.clear()
            emitted.clear()
        else:
            trace.limit = step
        assert len(trace) <= trace.limit
        assert trace.dropped + len(trace) == len(emitted)
        assert [e.tick for e in trace] == emitted[trace.dropped:]
        assert [e.seq for e in trace] == list(range(trace.dropped, len(emitted)))
        assert [e.tick for e in trace.since(trace.mark() - 1)] == emitted[-1:]


def test_trace_default_limit_is_documented_and_settable():
    host = lguest.Host()
    assert host.trace.limit == DEFAULT_LIMIT == 200_000
    host.trace.limit = 50
    g = host.launch(mem_mb=1)
    g.console.type("echo hello\n")
    host.run()
    assert len(host.trace) == 50 and host.trace.dropped > 0
    with pytest.raises(ValueError, match="at least 1"):
        host.trace.limit = 0


def test_trace_show_and_chrome_export_say_how_many_were_dropped(tmp_path):
    trace = Trace(limit=3)
    for i in range(10):
        trace.emit(i, 0, "tick", n=i)
    lines = trace.show().splitlines()
    assert lines[0] == "(7 earlier events dropped: the trace keeps the newest 3)" and len(lines) == 4
    assert trace.show(since=8).splitlines()[0].startswith("[   8]")          # nothing asked for was lost
    assert repr(trace) == "Trace(3 events, 7 dropped)"
    trace.to_chrome_json(tmp_path / "t.json")
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["metadata"] == {"events_kept": 3, "events_dropped": 7, "limit": 3}
    assert [e["ts"] for e in doc["traceEvents"]] == [7, 8, 9]


def test_a_long_event_goes_on_under_its_first_field_within_the_book_column():
    trace = Trace()
    trace.emit(3, 1, "bind", key=0x2001004, where="lan0+0x4", dmas=0x103000, num=1, irq=1,
               slot=0, note="a field to make the line long")
    trace.emit(4, 3, "launcher_warn", msg="lguest: console: no dma buffer!: No such file or directory")
    trace.emit(5, None, "irq_deliver", irq=1)
    bind, warn, short = trace
    for event in trace:
        lines = repr(event).splitlines()
        assert all(len(line) <= 76 for line in lines), lines
        assert repr(event).split() == event.line().split()                  # nothing lost
    lines = repr(bind).splitlines()
    assert len(lines) == 3 and lines[0].startswith("[   3] g1   bind             key=0x2001004")
    assert all(line.index(line.strip()) == lines[0].index("key=") for line in lines[1:])
    # a field too long to sit under the others takes a line of its own, 4 columns in
    assert repr(warn).splitlines() == ["[   4] g3   launcher_warn",
                                       "    msg='lguest: console: no dma buffer!: No such file or directory'"]
    assert repr(short) == short.line() == "[   5] host irq_deliver      irq=1"
    assert trace.show() == "\n".join(repr(e) for e in trace)


def test_trace_owns_its_watchers_and_a_host_watch_goes_there():
    host, (a, b) = lan_guests()
    seen = []
    stop = host.watch(seen.append)
    assert host.trace._watchers == [seen.append]
    b.hypercall(abi.LHCALL_HALT)
    stop()
    stop()                                                          # stopping twice is harmless
    b.hypercall(abi.LHCALL_HALT)
    assert [e.kind for e in seen] == ["hypercall"] and seen[0].seq == host.trace[-2].seq
    with pytest.raises(TypeError, match="function of one event"):
        host.trace.watch("not a function")


def test_a_disabled_trace_records_nothing_and_calls_no_watcher():
    trace, seen = Trace(enabled=False), []
    trace.watch(seen.append)
    trace.emit(1, 0, "x")
    assert len(trace) == 0 and not seen


# --- the hypercall gate ----------------------------------------------------------------------------
def test_interrupts_wait_until_the_guest_names_its_interrupt_entry():
    """2007's maybe_do_interrupt() left an irq pending while its IDT entry was not present."""
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=(), boot=False)
    g.hypercall(abi.LHCALL_LGUEST_INIT, g.kernel.lguest_data)          # by hand: no init_IRQ yet
    g.kernel.lguest_data_fields()["blocked_interrupts"] = 0
    lg(g).fd.irq(3)
    host.run()
    assert g.pending_irqs == [3] and not host.trace.filter("irq_deliver")
    g.kernel.hcall.load_idt_entry(g.kernel.do_IRQ)
    host.run()
    assert g.pending_irqs == [] and [e.irq for e in host.trace.filter("irq_deliver")] == [3]


def test_the_kernel_is_built_with_its_gate_and_sink_and_nothing_is_patched_on():
    host = lguest.Host()
    g = host.launch(mem_mb=1)
    gate = g.kernel.hcall
    assert repr(gate) == f"HypercallGate(g{g.id})"
    assert g.kernel.trace_sink == gate.trace
    assert lg(g).interrupt_entry == g.kernel.do_IRQ                      # named by the kernel at boot
    g.kernel.emit("wmb")
    assert host.trace[-1].kind == "wmb" and host.trace[-1].fields == {"by": "guest"}


# --- /dev/lguest --------------------------------------------------------------------------------------
def test_dev_lguest_initializes_once():
    host = lguest.Host()
    g = host.launch(mem_mb=1, drivers=())
    with pytest.raises(LguestError, match="works once"):
        g.launcher.lguest.initialize(g.memory, g.launcher)


def test_dev_lguest_refuses_requests_before_initialize_and_after_death():
    host = lguest.Host()
    fd = host.open_dev_lguest()
    for request in (lambda: fd.getdma(0), lambda: fd.irq(1)):
        with pytest.raises(OSError) as exc:
            request()
        assert exc.value.errno == errno.ENOENT and "LHREQ_INITIALIZE comes first" in str(exc.value)
    with pytest.raises(LguestError, match="LHREQ_INITIALIZE first"):
        fd.hypercall_gate()


def test_dev_lguest_close_is_the_launchers_exit():
    host, (a, b) = lan_guests()
    a.launcher.exit("gone")
    assert a.dead == "Launcher exited: gone" and a.launcher.exited
    assert not [bd for bd in host.bindings() if bd.guestid == a.id]
    assert b.dead is None


# --- one routing rule --------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 3), st.sampled_from(["mine", "lan", "lan+2", "top", "zero"]))
def test_the_view_draws_the_route_the_host_sends_by(slot, kind):
    """route() in words, for any key: the Guest it names is the Guest the SEND_DMA reaches."""
    host, (a, b, c) = lan_guests(3)
    ring = new_dma(c, [(c.alloc(64), 64)])
    c.hypercall(abi.LHCALL_BIND_DMA, slot_key(c, 1), ring, (1 << 8) | 5)
    key = {"mine": a.alloc(8), "lan": slot_key(a, slot), "lan+2": slot_key(a, slot) + 2,
           "top": a.memory.top, "zero": 0}[kind]
    said = route(host, a.id, key)
    msg = new_dma(a, [(a.alloc(16), 16)])
    mark = host.trace.mark()
    a.hypercall(abi.LHCALL_SEND_DMA, key, msg)
    sends = host.trace.filter("send_dma", since=mark)
    if "would be killed" in said:
        assert a.dead == "bad sending DMA key" and not sends
    elif "Launcher" in said:
        assert sends[0].to == "launcher"
    elif "nobody bound" in said:
        assert sends[0].to is None
    else:
        assert said.endswith("(table slot 0)") and f"-> g{sends[0].to} " in said


# --- the Launcher's one delivery helper ----------------------------------------------------------
def test_console_input_is_delivered_by_the_launchers_helper_used_len_then_irq():
    host = lguest.Host()
    g = host.launch(mem_mb=1)
    mark = host.trace.mark()
    g.console.type("x\n")
    host.run()
    kinds = [(e.kind, e.fields.get("by")) for e in host.trace.since(mark) if e.kind in ("used_len", "irq_raise")]
    assert kinds[:2] == [("used_len", "launcher"), ("irq_raise", None)]


# --- the block file's readall ---------------------------------------------------------------------------
def test_read_with_no_size_asks_for_whole_64k_requests(tmp_path):
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(range(256)) * 1024)                           # 256 KiB
    host = lguest.Host()
    g = host.launch(mem_mb=4, block=[image])
    with g.open("/dev/lgba") as f:
        data = f.read()
    assert data == image.read_bytes()
    sizes = [e.bytes for e in host.trace.filter("block_io")]
    assert sizes == [64 * 1024] * 4, sizes
