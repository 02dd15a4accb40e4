"""What each view draws, computed from model state (issue 3, "Tests").

Each test builds a small, known situation through the public facade (``lguest.Host()``,
``host.launch``, ``guest.dma``/``dma_array``, the kernel's hypercall wrappers, ``host.run()``)
and checks the rows a view computes, its deterministic text and its SVG, against what the
situation must give. Nothing here reaches into a view's private state: the views hold none.

Keys into the LAN page: ``(pfn << 12) + 4 * slot``, slot being the Guest's index on the LAN.

The Guests are launched with ``drivers=()`` (a kernel with only the bus), so the tables hold
exactly what each test binds; ``test_*_with_the_drivers_booted`` checks that the same rows come
out when the Guests' own drivers have bound keys and lines of their own first.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import ipywidgets as w
import pytest
from ipywidgets.embed import embed_data

import lguest
from lguest import abi
from lguest.errors import LguestError
from lguest.widgets import BufferMap, InterruptPanel, KeyTable, TracePlayer
from lguest.widgets.view import LiveView

PAGE = abi.PAGE_SIZE
SVG_NS = "{http://www.w3.org/2000/svg}"
BLUE = "#0072B2"                      # "holds data" / "filled" in the views' legend


# --- building situations ---------------------------------------------------------------------
def lan_key(guest, slot: int) -> int:
    return (int(guest.devices[0]["pfn"]) << abi.PAGE_SHIFT) + 4 * slot


def lan_pair(mem_mb: int = 1, trace: bool = True, drivers=()):
    host = lguest.Host(trace=trace)
    a = host.launch(mem_mb=mem_mb, sharenet=["lan0"], drivers=drivers)
    b = host.launch(mem_mb=mem_mb, sharenet=["lan0"], drivers=drivers)
    return host, a, b


def table_situation():
    """A known binding table.

    g0 binds LAN slot 0 (irq 4, one 64-byte entry).
    g1 binds LAN slot 1 (irq 3, two entries: [100] and [50, 70]) and a private key (irq 5).
    g0 then sends 150 bytes to slot 1: g1's entry 0 fills to 100 of 100, next_dma becomes 1.
    """
    host, a, b = lan_pair()
    ring_a = a.dma_array([[(a.alloc(64), 64)]])
    assert a.kernel.lguest_bind_dma(lan_key(a, 0), ring_a, 1, 4) == 0
    ring_b = b.dma_array([[(b.alloc(100), 100)], [(b.alloc(50), 50), (b.alloc(70), 70)]])
    assert b.kernel.lguest_bind_dma(lan_key(b, 1), ring_b, 2, 3) == 0
    private_key = b.alloc(4, align=4)
    ring_p = b.dma_array([[(b.alloc(32), 32)]])
    assert b.kernel.lguest_bind_dma(private_key, ring_p, 1, 5) == 0
    send = a.dma([(a.alloc(150), 150)])
    a.kernel.lguest_send_dma(lan_key(a, 1), send)
    assert a.memory.u32(send) == 100 and a.dead is None and b.dead is None
    return dict(host=host, a=a, b=b, ring_a=ring_a, ring_b=ring_b, ring_p=ring_p,
                private_key=private_key, send=send)


def svg_tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)            # also proves the SVG is well-formed XML


def rect_titles(svg: str) -> list[tuple[str, str]]:
    """(fill, title) of every <rect> that carries a tooltip."""
    out = []
    for rect in svg_tree(svg).iter(f"{SVG_NS}rect"):
        title = rect.find(f"{SVG_NS}title")
        if title is not None:
            out.append((rect.get("fill"), title.text))
    return out


def svg_texts(svg: str) -> list[str]:
    return [t.text or "" for t in svg_tree(svg).iter(f"{SVG_NS}text")]


def table_cells(text: str) -> list[list[str]]:
    """KeyTable.text() rows split into columns (columns are separated by two or more spaces)."""
    lines = text.splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


# --- KeyTable ----------------------------------------------------------------------------------
def test_keytable_rows_of_a_known_binding_table():
    s = table_situation()
    host, a, b = s["host"], s["a"], s["b"]
    rows = KeyTable(host).rows()
    got = [(r.slot, r.guest, r.ukey, r.identity, r.irq, r.dmas, r.num, r.next_dma,
            [(e.used_len, e.capacity) for e in r.entries], r.fed_by) for r in rows]
    assert got == [
        (0, 0, lan_key(a, 0), "shared('lan0'+0x0)", 4, s["ring_a"], 1, 0, [(0, 64)], ["g1"]),
        (0, 1, lan_key(b, 1), "shared('lan0'+0x4)", 3, s["ring_b"], 2, 1, [(100, 100), (0, 120)], ["g0"]),
        (1, 1, s["private_key"], f"private(g1, {s['private_key']:#x})", 5, s["ring_p"], 1, 0, [(0, 32)],
         ["g1's Launcher"]),
    ]
    # the entries are where the array says, 100 bytes apart, and their sections are read in order
    entries = rows[1].entries
    assert [e.addr for e in entries] == [s["ring_b"], s["ring_b"] + abi.lguest_dma.itemsize]
    assert [sec.len for sec in entries[1].sections] == [50, 70]


def test_keytable_text_has_the_same_rows():
    s = table_situation()
    a, b, key = s["a"], s["b"], s["private_key"]
    text = KeyTable(s["host"]).text()
    assert text.splitlines()[0] == "KeyTable: 3 binding(s)"
    cells = table_cells(text)
    assert cells[0] == ["slot", "guest", "key", "identity", "irq", "dmas", "num", "next",
                        "entries used/cap", "reached from"]
    assert cells[1:] == [
        ["0", "g0", f"{lan_key(a, 0):#x}", "shared('lan0'+0x0)", "4", f"{s['ring_a']:#x}", "1", "0", "0/64", "g1"],
        ["0", "g1", f"{lan_key(b, 1):#x}", "shared('lan0'+0x4)", "3", f"{s['ring_b']:#x}", "2", "1",
         "100/100 0/120", "g0"],
        ["1", "g1", f"{key:#x}", f"private(g1, {key:#x})", "5", f"{s['ring_p']:#x}", "1", "0", "0/32",
         "g1's Launcher"],
    ]


def test_keytable_svg_gauges_show_used_len_of_capacity():
    s = table_situation()
    svg = KeyTable(s["host"]).svg()
    ring_b = s["ring_b"]
    gauges = [(fill, title) for fill, title in rect_titles(svg) if title.startswith("entry @")]
    titles = [t for _, t in gauges]
    assert f"entry @ {ring_b:#x}: used_len 100 of 100" in titles
    assert f"entry @ {ring_b + 100:#x}: used_len 0 of 120" in titles
    # a full entry has a filled (blue) bar over its gauge; an empty one has none
    assert (BLUE, f"entry @ {ring_b:#x}: used_len 100 of 100") in gauges
    assert (BLUE, f"entry @ {ring_b + 100:#x}: used_len 0 of 120") not in gauges
    texts = svg_texts(svg)
    for cell in ("shared('lan0'+0x4)", f"private(g1, {s['private_key']:#x})", "g1's Launcher"):
        assert cell in texts
    assert svg_tree(svg).find(f"{SVG_NS}title").text == "KeyTable: 3 DMA bindings"


def test_keytable_reached_from_follows_the_hash_chain():
    """A third Guest binding the same slot is newer, so it is first on the chain for g0 and g1."""
    host, a, b = lan_pair()
    ring_b = b.dma_array([[(b.alloc(16), 16)]])
    b.kernel.lguest_bind_dma(lan_key(b, 1), ring_b, 1, 3)
    c = host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    ring_c = c.dma_array([[(c.alloc(16), 16)]])
    c.kernel.lguest_bind_dma(lan_key(c, 1), ring_c, 1, 3)
    by_guest = {r.guest: r.fed_by for r in KeyTable(host).rows()}
    assert by_guest == {1: ["g2"], 2: ["g0", "g1"]}
    table = KeyTable(host)
    assert table.route(a, lan_key(a, 1)).endswith("-> g2 (table slot 0)")
    assert table.route(c, lan_key(c, 1)).endswith("-> g1 (table slot 0)")


def test_keytable_route_private_shared_nobody_misaligned_unmapped_dead():
    s = table_situation()
    host, a, b = s["host"], s["a"], s["b"]
    table = KeyTable(host)
    before = (len(host.trace), host.tick)
    k1, k5 = lan_key(a, 1), lan_key(a, 5)
    assert table.route(a, k1) == f"g0 -> key {k1:#x} shared('lan0'+0x4) -> g1 (table slot 0)"
    assert table.route(0, k1) == table.route(a, k1)          # a Guest or its id
    assert table.route(a, k5) == f"g0 -> key {k5:#x} shared('lan0'+0x14) -> nobody bound: used_len stays 0"
    # g1 sending to its own slot-1 key: the only binding is its own, which a sender never reaches
    assert table.route(b, lan_key(b, 1)).endswith("-> nobody bound: used_len stays 0")
    assert table.route(b, lan_key(b, 0)) == f"g1 -> key {lan_key(b, 0):#x} shared('lan0'+0x0) -> g0 (table slot 0)"
    private = s["private_key"]
    assert table.route(b, private) == f"g1 -> key {private:#x} private(g1, {private:#x}) -> g1's Launcher (private key)"
    assert table.route(a, k1 + 2) == (f"g0 would be killed: bad sending DMA key {k1 + 2:#x} "
                                      "(misaligned or unmapped)")
    top = a.memory.top
    assert table.route(a, top) == f"g0 would be killed: bad sending DMA key {top:#x} (misaligned or unmapped)"
    # routing only reads: no event, no tick, nobody killed
    assert (len(host.trace), host.tick) == before and a.dead is None and b.dead is None
    # a dead sender sends nothing; its bindings are gone from the table
    a.kernel.lguest_send_dma(k1 + 2, s["send"])
    assert a.dead is not None
    assert table.route(a, k1) == "g0 is dead: it sends nothing"
    assert [r.guest for r in table.rows()] == [1, 1]
    assert table.rows()[0].fed_by == []               # nobody left alive to reach g1's slot 1
    assert table_cells(table.text())[1][-1] == "-"


def test_keytable_with_the_drivers_booted():
    """The Guests' own drivers bind first; a test's bindings follow in the next free slots."""
    host, a, b = lan_pair(drivers=None)                      # every driver the kernel has
    table = KeyTable(host)
    boot_rows = [(r.guest, r.slot, r.ukey, r.identity) for r in table.rows()]
    free = host.lgs[b.id].dma.index(None)
    ring = b.dma_array([[(b.alloc(100), 100)], [(b.alloc(50), 50), (b.alloc(70), 70)]])
    assert b.kernel.lguest_bind_dma(lan_key(b, 1), ring, 2, 9) == 0
    send = a.dma([(a.alloc(150), 150)])
    a.kernel.lguest_send_dma(lan_key(a, 1), send)
    rows = table.rows()
    assert [(r.guest, r.slot, r.ukey, r.identity) for r in rows if (r.guest, r.slot) != (1, free)] == boot_rows
    mine = [r for r in rows if (r.guest, r.slot) == (1, free)]
    assert [(r.ukey, r.identity, r.irq, r.dmas, r.num, r.next_dma, [(e.used_len, e.capacity) for e in r.entries],
             r.fed_by) for r in mine] == [
        (lan_key(b, 1), "shared('lan0'+0x4)", 9, ring, 2, 1, [(100, 100), (0, 120)], ["g0"])]
    assert table.text().splitlines()[0] == f"KeyTable: {len(boot_rows) + 1} binding(s)"
    assert len(table_cells(table.text())) == len(boot_rows) + 2


def test_keytable_with_no_bindings():
    host, a, b = lan_pair()
    table = KeyTable(host)
    assert table.rows() == []
    assert table.text() == "KeyTable: no DMA bindings"
    assert "no DMA bindings yet" in svg_texts(table.svg())


# --- BufferMap ---------------------------------------------------------------------------------
def crossing_situation(offset_in_page: int, length: int):
    """g1 binds one entry whose only section starts ``offset_in_page`` into a page of its RAM."""
    host, a, b = lan_pair()
    two_pages = b.alloc(2 * PAGE, align=PAGE)
    addr = two_pages + offset_in_page
    ring = b.dma_array([[(addr, length)]])
    b.kernel.lguest_bind_dma(lan_key(b, 1), ring, 1, 3)
    return host, a, b, addr, two_pages


def test_buffermap_flags_a_section_that_crosses_a_page():
    host, a, b, addr, base = crossing_situation(PAGE - 10, 100)     # 10 bytes on one page, 90 on the next
    view = BufferMap(b)
    crossing = view.crossing()
    assert [(bar.addr, bar.len, bar.crosses_page) for bar in crossing] == [(addr, 100, True)]
    label = crossing[0].label
    # drawn on both pages it touches
    on_pages = [r.addr for r in view.rows() if any(bar.label == label for bar in r.bars)]
    assert on_pages == [base, base + PAGE]
    text = view.text()
    flagged = [line for line in text.splitlines() if "CROSSES PAGE" in line]
    assert flagged == [f"    {label}: 100 bytes @ {addr:#x}, 0 filled  CROSSES PAGE"] * 2
    svg = view.svg()
    hatched = [title for fill, title in rect_titles(svg) if fill == "url(#hatch)"]
    assert hatched == [f"{label}: 100 bytes @ {addr:#x}, 0 filled - CROSSES A PAGE BOUNDARY"] * 2
    assert svg_texts(svg).count("crosses!") == 2
    assert '<pattern id="hatch"' in svg


@pytest.mark.parametrize("offset,length", [(PAGE - 100, 100), (0, PAGE), (16, 64)],
                         ids=["ends-exactly-at-page-end", "whole-page", "inside"])
def test_buffermap_does_not_flag_a_section_inside_one_page(offset, length):
    host, a, b, addr, base = crossing_situation(offset, length)
    view = BufferMap(b)
    assert view.crossing() == []
    assert "CROSSES" not in view.text()
    svg = view.svg()
    assert "crosses!" not in svg_texts(svg)
    assert not [title for fill, title in rect_titles(svg) if fill == "url(#hatch)" and title]
    assert [r.addr for r in view.rows() if r.bars] == [base]


def test_buffermap_pages_shown_are_sections_descriptor_and_device_pages():
    s = table_situation()
    b = s["b"]
    rows = BufferMap(b).rows()
    regions = {r.addr: r.region for r in rows}
    ram = b.memory.ram_size
    assert regions[ram] == "descriptor page"
    assert regions[ram + PAGE] == "net lan0 page"
    assert [r.addr for r in rows] == sorted(r.addr for r in rows)
    assert all(r.addr % PAGE == 0 for r in rows)
    text = BufferMap(b).text()
    assert text.splitlines()[0] == (f"BufferMap g1: RAM {ram:#x} bytes, top {b.memory.top:#x}, "
                                    f"{len(rows)} page(s) shown")
    assert f"  page {ram:#x} (descriptor page)" in text.splitlines()


def test_buffermap_fill_spreads_over_an_entrys_sections_in_order():
    s = table_situation()
    host, a, b = s["host"], s["a"], s["b"]
    ring_b = s["ring_b"]
    second = a.dma([(a.alloc(80), 80)])
    a.kernel.lguest_send_dma(lan_key(a, 1), second)          # lands in entry 1: [50, 70]
    assert b.memory.u32(ring_b + 100) == 80
    bars = {bar.label: (bar.len, bar.filled) for row in BufferMap(b).rows() for bar in row.bars if bar.bound}
    key = lan_key(b, 1)
    assert bars[f"slot 0 key {key:#x} [0].0"] == (100, 100)
    assert bars[f"slot 0 key {key:#x} [1].0"] == (50, 50)    # the first section fills first
    assert bars[f"slot 0 key {key:#x} [1].1"] == (70, 30)    # the rest goes to the second
    assert bars[f"slot 1 key {s['private_key']:#x} [0].0"] == (32, 0)
    text = BufferMap(b).text()
    assert f"    slot 0 key {key:#x} [1].1: 70 bytes @ " in text and ", 30 filled" in text
    # the SVG draws a blue fill bar over each filled section, with the same label
    filled = [t for fill, t in rect_titles(BufferMap(b).svg()) if fill == BLUE]
    assert any(t.startswith(f"slot 0 key {key:#x} [1].1: 70 bytes") and t.endswith("30 filled") for t in filled)
    assert not any(t.startswith(f"slot 1 key {s['private_key']:#x} [0].0") for t in filled)


def test_buffermap_of_the_sender_shows_what_it_sent():
    s = table_situation()
    a, send = s["a"], s["send"]
    bars = [bar for row in BufferMap(a).rows() for bar in row.bars if not bar.bound]
    assert [(bar.label, bar.len, bar.filled) for bar in bars] == [(f"sent {send:#x} .0", 150, 150)]


# --- InterruptPanel ----------------------------------------------------------------------------
def irq_situation():
    """g1 has a handler "net" on irq 3 and blocks irq 5; the Launcher raises 3 twice and 5 once."""
    host, a, b = lan_pair()
    seen = []
    assert b.kernel.request_irq(3, lambda irq, dev: seen.append(irq) or 1, 0, "net", "dev") == 0
    b.memory.struct_at(b.kernel.lguest_data, abi.lguest_data)["blocked_interrupts"] |= 1 << 5   # masked
    mark = host.trace.mark()
    lg1 = host.lgs[b.id]
    lg1.fd.irq(3)
    lg1.fd.irq(3)              # already pending: still one interrupt
    lg1.fd.irq(5)
    return host, a, b, mark, seen


def test_interrupt_panel_before_and_after_delivery():
    host, a, b, mark, seen = irq_situation()
    panel = InterruptPanel(host, since=mark)
    lines = {ln.irq: ln for ln in panel.states()[1].lines}
    assert len(panel.states()) == 2 and all(len(s.lines) == 32 for s in panel.states())
    assert (lines[3].pending, lines[3].blocked, lines[3].handlers, lines[3].delivered) == (True, False, ["net"], 0)
    assert (lines[5].pending, lines[5].blocked, lines[5].handlers, lines[5].delivered) == (True, True, [], 0)
    assert panel.text().splitlines() == [
        "g0: running, interrupts enabled",
        "  irq  0: delivered   0  unhandled   0  handlers -  BLOCKED",          # the timer, from boot
        "g1: running, interrupts enabled",
        "  irq  0: delivered   0  unhandled   0  handlers -  BLOCKED",
        "  irq  3: delivered   0  unhandled   0  handlers net  PENDING",
        "  irq  5: delivered   0  unhandled   0  handlers -  PENDING BLOCKED",
        "timeline: 3 raised, 0 delivered",
    ]
    host.run()
    assert seen == [3]
    lines = {ln.irq: ln for ln in panel.states()[1].lines}
    assert (lines[3].pending, lines[3].delivered, lines[3].unhandled) == (False, 1, 0)
    assert (lines[5].pending, lines[5].blocked, lines[5].delivered) == (True, True, 0)   # blocked: stays
    assert panel.text().splitlines()[4:] == [
        "  irq  3: delivered   1  unhandled   0  handlers net",
        "  irq  5: delivered   0  unhandled   0  handlers -  PENDING BLOCKED",
        "timeline: 3 raised, 1 delivered",
    ]


def test_interrupt_panel_svg_marks_pending_blocked_and_the_timeline():
    host, a, b, mark, seen = irq_situation()
    host.run()
    svg = InterruptPanel(host, since=mark).svg()
    titles = dict((t, fill) for fill, t in rect_titles(svg))
    assert titles["g1 irq 5: pending blocked handlers none, delivered 0"] == "url(#hatch)"
    assert titles["g1 irq 3: handlers net, delivered 1"] not in ("url(#hatch)", "#E69F00")
    assert "g0 irq 3: handlers none, delivered 0" in titles
    root = svg_tree(svg)
    raised = [p.find(f"{SVG_NS}title").text for p in root.iter(f"{SVG_NS}polygon")]
    delivered = [c.find(f"{SVG_NS}title").text for c in root.iter(f"{SVG_NS}circle")
                 if c.find(f"{SVG_NS}title") is not None]
    assert len(raised) == 3 and all(t.endswith("raised in g1") for t in raised)
    assert delivered == [f"tick {host.tick}: irq 3 delivered in g1"]


def test_interrupt_panel_disabled_interrupts_and_the_timeline_mark():
    host, a, b, mark, seen = irq_situation()
    host.run()
    b.kernel.local_irq_disable()
    later = host.trace.mark()
    host.lgs[b.id].fd.irq(3)
    host.run()                                     # interrupts off: nothing delivered
    panel_all, panel_later = InterruptPanel(host), InterruptPanel(host, since=later)
    assert panel_later.text().splitlines()[2] == "g1: running, interrupts disabled"
    assert "  irq  3: delivered   1  unhandled   0  handlers net  PENDING" in panel_later.text().splitlines()
    assert panel_later.text().splitlines()[-1] == "timeline: 1 raised, 0 delivered"
    assert panel_all.text().splitlines()[-1] == "timeline: 4 raised, 1 delivered"
    assert [(e.guest, e.irq, e.kind) for e in panel_later.timeline()] == [(1, 3, "raise")]
    assert "irqs OFF" in svg_texts(panel_later.svg())
    b.kernel.local_irq_enable()
    host.run()
    assert panel_later.text().splitlines()[-1] == "timeline: 1 raised, 1 delivered"
    assert panel_later.states()[1].lines[3].delivered == 2


def test_interrupt_panel_with_the_drivers_booted():
    """Lines the drivers use show up too; the test's own line reads the same as on a bare kernel."""
    host, a, b = lan_pair(drivers=None)
    boot = {(s.guest, ln.irq): ln.handlers for s in InterruptPanel(host).states() for ln in s.lines if ln.handlers}
    free_irq = next(i for i in range(1, 32) if (1, i) not in boot)
    b.kernel.request_irq(free_irq, lambda irq, dev: 1, 0, "mine", "dev")
    mark = host.trace.mark()
    host.lgs[b.id].fd.irq(free_irq)
    host.run()
    panel = InterruptPanel(host, since=mark)
    handlers = {(s.guest, ln.irq): ln.handlers for s in panel.states() for ln in s.lines if ln.handlers}
    assert handlers == {**boot, (1, free_irq): ["mine"]}
    assert f"  irq {free_irq:>2}: delivered   1  unhandled   0  handlers mine" in panel.text().splitlines()
    for (guest, irq), names in boot.items():
        assert any(line.startswith(f"  irq {irq:>2}: ") and f"handlers {', '.join(names)}" in line
                   for line in panel.text().splitlines())
    assert panel.text().splitlines()[-1] == "timeline: 1 raised, 1 delivered"


def test_interrupt_panel_shows_a_dead_guest():
    host, a, b = lan_pair()
    d = a.dma([(a.alloc(8), 8)])
    a.kernel.lguest_send_dma(lan_key(a, 1) + 1, d)         # misaligned: killed
    assert a.dead
    assert InterruptPanel(host).text().splitlines()[0] == f"g0: dead ({a.dead}), interrupts enabled"
    assert "g0 dead" in svg_texts(InterruptPanel(host).svg())


# --- TracePlayer -------------------------------------------------------------------------------
def record_send(max_frames: int = 60):
    s = table_situation()
    host, a, b = s["host"], s["a"], s["b"]
    player = TracePlayer(host, [KeyTable(host), BufferMap(b)], max_frames=max_frames)
    msg = a.dma([(a.alloc(30), 30)])
    mark = host.trace.mark()
    with player.recording():
        a.kernel.lguest_send_dma(lan_key(a, 1), msg)
    return s, player, host.trace.since(mark), msg


def test_trace_player_records_one_frame_per_event_plus_the_start():
    s, player, events, msg = record_send()
    assert len(events) >= 5
    assert len(player.frames) == len(events) + 1 and player.dropped == 0
    assert [f.caption for f in player.frames] == ["start"] + [e.line() for e in events]
    assert all(len(f.svgs) == 2 for f in player.frames)
    # each frame shows the model as it was then: the receiver's entry 1 fills only when its
    # used_len is written, which is the receiver's used_len event
    entry1 = f"entry @ {s['ring_b'] + 100:#x}: used_len"
    fill_at = next(i for i, e in enumerate(events, 1) if e.kind == "used_len" and e.guest == 1)
    for i, frame in enumerate(player.frames):
        expected = f"{entry1} 30 of 120" if i >= fill_at else f"{entry1} 0 of 120"
        assert expected in frame.svgs[0], (i, frame.caption)
    text = player.text().splitlines()
    assert text[0] == f"TracePlayer: {len(events) + 1} frames"
    assert text[1] == "  1: start" and text[2] == f"  2: {events[0].line()}"
    # the recording stopped with the block
    s["a"].kernel.lguest_send_dma(lan_key(s["a"], 1), msg)
    assert len(player.frames) == len(events) + 1


def test_trace_player_caps_at_max_frames_and_counts_the_dropped():
    s, player, events, msg = record_send(max_frames=3)
    assert len(player.frames) == 3
    assert player.dropped == len(events) - 2
    assert player.text().splitlines()[0] == f"TracePlayer: 3 frames ({len(events) - 2} events past max_frames not drawn)"


def test_trace_player_refuses_a_host_without_trace():
    host = lguest.Host(trace=False)
    with pytest.raises(LguestError, match="trace"):
        TracePlayer(host, [KeyTable(host)])


def test_trace_player_stops_recording_when_the_block_raises():
    host, a, b = lan_pair()
    player = TracePlayer(host, [KeyTable(host)])
    with pytest.raises(RuntimeError):
        with player.recording():
            raise RuntimeError("boom")
    before = len(host.trace)
    a.kernel.lguest_bind_dma(lan_key(a, 0), a.dma_array([[(a.alloc(8), 8)]]), 1, 3)
    assert len(host.trace) > before                       # events happened, but no frame for them
    assert [f.caption for f in player.frames] == ["start"]


def test_trace_player_widget_is_play_and_slider_jslinked_to_a_stack():
    s, player, events, msg = record_send()
    n = len(player.frames)
    box = player.widget()
    controls, stack = box.children
    play, slider = controls.children
    assert isinstance(play, w.Play) and isinstance(slider, w.IntSlider) and isinstance(stack, w.Stack)
    assert len(stack.children) == n and stack.selected_index == 0
    assert (play.min, play.max, play.value, slider.min, slider.max, slider.value) == (0, n - 1, 0, 0, n - 1, 0)
    assert "lguest-player" in box._dom_classes
    for i, (child, frame) in enumerate(zip(stack.children, player.frames)):
        assert isinstance(child, w.HTML)
        assert child.value.startswith(f'<div class="lguest-frame"><p style="font-family:monospace;margin:2px 0">'
                                      f'{i + 1}/{n}: ')
        assert "".join(frame.svgs) in child.value
    # the links are client-side (jslink), so the static page plays with no kernel: find them in
    # the state that the book embeds
    state = embed_data(views=[box])["manager_state"]["state"]
    links = {(tuple(m["state"]["source"]), tuple(m["state"]["target"]))
             for m in state.values() if m["model_name"] == "LinkModel"}
    ref = "IPY_MODEL_{}".format
    assert (ref(play.model_id), "value") in {src for src, _ in links}
    assert ((ref(play.model_id), "value"), (ref(slider.model_id), "value")) in links
    assert ((ref(slider.model_id), "value"), (ref(stack.model_id), "selected_index")) in links
    # its text/plain is the caption list, and so is the box's repr (what nbval compares)
    assert player._repr_mimebundle_()["text/plain"] == player.text() == repr(box)


def test_trace_player_widget_needs_frames():
    host, a, b = lan_pair()
    with pytest.raises(LguestError, match="recording"):
        TracePlayer(host, [KeyTable(host)]).widget()


# --- every view: deterministic, no object ids, no state of its own ------------------------------
def all_views(s):
    host, b = s["host"], s["b"]
    return {"KeyTable": KeyTable(host), "BufferMap": BufferMap(b), "BufferMap-sender": BufferMap(s["a"]),
            "InterruptPanel": InterruptPanel(host)}


def run_twice_identically():
    out = []
    for _ in range(2):
        s, player, events, msg = record_send()
        s["host"].run()
        views = all_views(s)
        rendered = {name: (v.text(), v.svg(), v._repr_mimebundle_()) for name, v in views.items()}
        rendered["TracePlayer"] = (player.text(), "".join(f.html(i, len(player.frames))
                                                          for i, f in enumerate(player.frames)), None)
        rendered["LiveView"] = (repr(views["KeyTable"].widget()), views["KeyTable"].widget().picture.value, None)
        out.append(rendered)
    return out


def test_every_view_is_deterministic():
    first, second = run_twice_identically()
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


OBJECT_ID = re.compile(r"0x[0-9a-fA-F]{9,}|object at 0x|<[A-Za-z_.]+ object")   # Guest addresses are 32-bit


def test_no_view_prints_an_object_id():
    rendered, _ = run_twice_identically()
    for name, (text, svg, bundle) in rendered.items():
        for form in (text, svg, json.dumps(bundle)):
            assert not OBJECT_ID.search(form), f"{name}: {OBJECT_ID.search(form).group(0)!r} in {form[:200]!r}"


def test_mimebundle_is_text_and_the_svg():
    s = table_situation()
    for name, view in all_views(s).items():
        bundle = view._repr_mimebundle_()
        assert bundle["text/plain"] == view.text(), name
        assert view.svg() in bundle["text/html"], name


def test_views_hold_no_state():
    """One view object, the model changed under it: text() and svg() show the change."""
    host, a, b = lan_pair()
    table, bmap, panel = KeyTable(host), BufferMap(b), InterruptPanel(host)
    before = {v: (v.text(), v.svg()) for v in (table, bmap, panel)}
    ring = b.dma_array([[(b.alloc(40), 40)]])
    b.kernel.lguest_bind_dma(lan_key(b, 1), ring, 1, 3)
    assert [r.ukey for r in table.rows()] == [lan_key(b, 1)]
    assert table.text() != before[table][0] and table.svg() != before[table][1]
    assert "40 bytes" in bmap.text() and bmap.text() != before[bmap][0]
    send = a.dma([(a.alloc(40), 40)])
    a.kernel.lguest_send_dma(lan_key(a, 1), send)
    assert table.rows()[0].entries[0].used_len == 40
    assert "40 filled" in bmap.text()
    assert "PENDING" in panel.text() and panel.text() != before[panel][0]
    host.run()
    assert "PENDING" not in panel.text() and "delivered   1" in panel.text()
    b.kernel.lguest_unbind_dma(lan_key(b, 1), ring)
    assert table.rows() == [] and table.text() == "KeyTable: no DMA bindings"


def test_live_view_refresh_redraws_after_a_model_change():
    host, a, b = lan_pair()
    ring = b.dma_array([[(b.alloc(64), 64)], [(b.alloc(64), 64)]])
    b.kernel.lguest_bind_dma(lan_key(b, 1), ring, 2, 3)
    live_keys, live_map = KeyTable(host).widget(), BufferMap(b).widget()
    assert isinstance(live_keys, LiveView) and "lguest-live" in live_keys._dom_classes
    keys_before, map_before = live_keys.picture.value, live_map.picture.value
    assert keys_before == KeyTable(host).svg()
    live_keys.refresh(), live_map.refresh()                 # nothing changed: same picture
    assert (live_keys.picture.value, live_map.picture.value) == (keys_before, map_before)
    changes = []
    live_keys.picture.observe(lambda ch: changes.append(ch["new"]), "value")
    send = a.dma([(a.alloc(64), 64)])
    a.kernel.lguest_send_dma(lan_key(a, 1), send)
    assert live_keys.picture.value == keys_before           # no kernel hook here: refresh() redraws
    live_keys.refresh(), live_map.refresh()
    assert live_keys.picture.value != keys_before and live_map.picture.value != map_before
    assert f"entry @ {ring:#x}: used_len 64 of 64" in live_keys.picture.value
    assert "64 filled" in live_map.picture.value
    assert changes == [live_keys.picture.value]             # one change event, with the new picture
    assert repr(live_keys) == "live KeyTable\n" + KeyTable(host).text()


# --- Chrome trace JSON ---------------------------------------------------------------------------
def test_chrome_trace_json_validates(tmp_path):
    s, player, events, msg = record_send()
    host = s["host"]
    a = s["a"]
    host.lgs[1].fd.irq(7)
    host.run()
    a.kernel.lguest_send_dma(lan_key(a, 1) + 2, msg)       # a kill, too
    path = tmp_path / "trace.json"
    host.trace.to_chrome_json(path)
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict) and isinstance(doc["traceEvents"], list)
    evs = doc["traceEvents"]
    assert len(evs) == len(host.trace) > 0
    for e in evs:
        for k in ("name", "ph", "ts", "pid", "tid"):
            assert k in e, (k, e)
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["ph"], str) and len(e["ph"]) == 1
        assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "i":
            assert e.get("s", "t") in ("g", "p", "t")
        assert isinstance(e.get("args", {}), dict)
    ts = [e["ts"] for e in evs]
    assert ts == sorted(ts), "timestamps go backwards"
    assert [e["name"] for e in evs] == [e.kind for e in host.trace]
    assert {"hypercall", "send_dma", "copy", "used_len", "irq_raise", "irq_deliver", "kill"} <= {e["name"] for e in evs}
    assert {e["tid"] for e in evs} == {0, 1}


def test_chrome_trace_json_of_an_empty_trace(tmp_path):
    host = lguest.Host(trace=False)
    host.launch(mem_mb=1)                  # the console driver runs at boot: nothing is recorded
    path = tmp_path / "empty.json"
    host.trace.to_chrome_json(path)
    assert json.loads(path.read_text())["traceEvents"] == []
