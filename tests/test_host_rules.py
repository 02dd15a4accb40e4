"""The ground the Host stands on: the ABI layouts, checked memory, the allocator, reader misuse
and the trace (issue 2, part 2; DESIGN.md "Bad input").

The Host rules of reference §3 and §1.9 are in the sibling files:
test_host_keys_bind.py (§3.1-3.2), test_host_send.py (§3.3-3.5, D:200),
test_host_launcher.py (§1.4, §4.1-4.2, §3.6), test_host_interrupts.py (§1.9),
test_host_kill.py (§3.7).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lguest
from lguest import abi
from lguest.errors import LguestError
from lguest.memory import GuestMemoryError

from host_helpers import DMA_STRUCT, PAGE, bind, lan_guests, new_dma, pattern, ring, send, slot_key


# --- abi: the i386 layouts ---------------------------------------------------------------------
def _offsets(dtype):
    return {name: dtype.fields[name][1] for name in dtype.names}


def test_abi_lguest_dma_is_100_bytes_used_len_at_0_addr_at_4_len_at_68():
    dt = abi.lguest_dma
    assert dt.itemsize == 100
    assert _offsets(dt) == {"used_len": 0, "addr": 4, "len": 68}
    assert dt.fields["used_len"][0] == np.dtype("<u4")
    assert dt.fields["addr"][0].shape == (16,) and dt.fields["addr"][0].base == np.dtype("<u4")
    assert dt.fields["len"][0].shape == (16,) and dt.fields["len"][0].base == np.dtype("<u2")


def test_abi_lguest_dma_reads_bytes_packed_as_the_c_struct():
    raw = DMA_STRUCT.pack(0x01020304, *range(0x1000, 0x1010), *range(1, 17))
    rec = np.frombuffer(raw, dtype=abi.lguest_dma)[0]
    assert rec["used_len"] == 0x01020304
    assert list(rec["addr"]) == list(range(0x1000, 0x1010))
    assert list(rec["len"]) == list(range(1, 17))


def test_abi_lguest_device_desc_is_12_bytes():
    dt = abi.lguest_device_desc
    assert dt.itemsize == 12
    assert _offsets(dt) == {"type": 0, "features": 2, "status": 4, "num_pages": 6, "pfn": 8}
    assert [dt.fields[n][0] for n in dt.names] == [np.dtype("<u2")] * 4 + [np.dtype("<u4")]


def test_abi_lguest_block_page_is_20_bytes():
    dt = abi.lguest_block_page
    assert dt.itemsize == 20
    assert _offsets(dt) == {"type": 0, "sector": 4, "bytes": 8, "result": 12, "num_sectors": 16}
    assert dt.fields["type"][0] == np.dtype("<i4") and dt.fields["result"][0] == np.dtype("<i4")
    assert dt.fields["sector"][0] == np.dtype("<u4") and dt.fields["num_sectors"][0] == np.dtype("<u4")


def test_abi_lguest_net_is_6_bytes():
    dt = abi.lguest_net
    assert dt.itemsize == 6
    assert dt.fields["mac"][0].shape == (6,) and dt.fields["mac"][0].base == np.dtype("u1")
    assert abi.PAGE_SIZE // dt.itemsize == 682


def test_abi_constants_have_their_c_values():
    assert (abi.PAGE_SIZE, abi.LGUEST_MAX_DMA, abi.LGUEST_MAX_DMA_SECTIONS) == (4096, 32, 16)
    assert (abi.LGUEST_MAX_DEVICES, abi.LGUEST_CONSOLE_DMA_KEY, abi.LGUEST_IRQS) == (16, 0, 32)
    assert (abi.LGUEST_TRAP_ENTRY, abi.MAX_LGUEST_GUESTS) == (0x1F, 16)
    assert (abi.LHCALL_LGUEST_INIT, abi.LHCALL_CRASH, abi.LHCALL_HALT) == (1, 2, 10)
    assert (abi.LHCALL_BIND_DMA, abi.LHCALL_SEND_DMA) == (12, 13)
    assert (abi.LHREQ_INITIALIZE, abi.LHREQ_GETDMA, abi.LHREQ_IRQ, abi.LHREQ_BREAK) == (0, 1, 2, 3)
    assert (abi.LGUEST_DEVICE_T_CONSOLE, abi.LGUEST_DEVICE_T_NET, abi.LGUEST_DEVICE_T_BLOCK) == (1, 2, 3)
    assert (abi.LGUEST_NET_F_NOCSUM, abi.LGUEST_DEVICE_F_RANDOMNESS) == (0x4000, 0x8000)
    assert (abi.LGUEST_DEVICE_S_ACKNOWLEDGE, abi.LGUEST_DEVICE_S_DRIVER, abi.LGUEST_DEVICE_S_DRIVER_OK,
            abi.LGUEST_DEVICE_S_REMOVED, abi.LGUEST_DEVICE_S_REMOVED_ACK, abi.LGUEST_DEVICE_S_FAILED) == \
        (1, 2, 4, 8, 16, 128)


# --- memory: checked access ----------------------------------------------------------------------
@pytest.mark.parametrize("how", ["read", "write", "u32", "view"])
def test_memory_access_past_top_raises_naming_the_address(how):
    g = lguest.Host().launch(mem_mb=1, drivers=())
    mem = g.memory
    bad = mem.top + 0x10
    with pytest.raises(GuestMemoryError) as exc:
        {"read": lambda: mem.read(bad, 4), "write": lambda: mem.write(bad, b"abcd"),
         "u32": lambda: mem.u32(bad), "view": lambda: mem.view(bad, 4)}[how]()
    assert hex(bad) in str(exc.value)


def test_memory_access_running_off_the_top_raises_naming_the_address():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    addr = g.memory.top - 2
    with pytest.raises(GuestMemoryError) as exc:
        g.memory.read(addr, 4)
    assert hex(addr) in str(exc.value)
    with pytest.raises(GuestMemoryError):
        g.memory.set_u32(addr, 1)


def test_memory_negative_address_raises():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    with pytest.raises(GuestMemoryError):
        g.memory.read(-4, 4)


def test_memory_is_ram_of_mem_mb_in_4096_byte_pages_and_reads_back():
    g = lguest.Host().launch(mem_mb=2, drivers=())
    assert g.memory.ram_size == 2 << 20
    assert all(r.start % 4096 == 0 and r.size % 4096 == 0 for r in g.memory.regions)
    g.memory.write(0x1234, b"hello")
    assert g.memory.read(0x1234, 5) == b"hello"
    # a read may span mappings: the end of RAM and the descriptor page above it
    ram = g.memory.ram_size
    g.memory.write(ram - 2, b"xyzw")
    assert g.memory.read(ram - 2, 4) == b"xyzw"


# --- the allocator ---------------------------------------------------------------------------------
def test_allocator_gives_aligned_nonoverlapping_addresses_in_ram():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    blocks = []
    for i, (size, align) in enumerate([(100, 4), (1, 16), (4096, 4096), (7, 8), (3000, 64), (1600, 4), (20, 4096)] * 3):
        addr = g.alloc(size, align=align)
        assert addr % align == 0, (size, align, hex(addr))
        assert 0 <= addr and addr + size <= g.memory.ram_size
        blocks.append((addr, addr + size))
    blocks.sort()
    for (a0, a1), (b0, b1) in zip(blocks, blocks[1:]):
        assert a1 <= b0, f"blocks overlap: [{a0:#x},{a1:#x}) and [{b0:#x},{b1:#x})"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(1, 4096), st.sampled_from([1, 2, 4, 8, 16, 64, 256])), max_size=40))
def test_allocator_never_splits_a_page_for_a_block_of_at_most_a_page(requests):
    """As no object of a Linux kmalloc cache does: so a receive buffer is one DMA section."""
    from lguest.guest.kmalloc import Allocator
    heap = Allocator(1 << 20, 8 << 20)
    for size, align in requests:
        addr = heap.alloc(size, align)
        assert addr % align == 0 and addr // PAGE == (addr + size - 1) // PAGE, (size, align, hex(addr))


def test_allocator_is_deterministic():
    def addrs():
        g = lguest.Host().launch(mem_mb=1, sharenet=["lan0"], drivers=())
        out = [g.alloc(s, align=a) for s, a in [(100, 4), (4096, 4096), (33, 16)]]
        g.free(out[1])
        out.append(g.alloc(50, align=4))
        return out
    assert addrs() == addrs()


def test_allocator_reuses_freed_memory():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    a = g.alloc(4096, align=4096)
    g.free(a)
    assert g.alloc(4096, align=4096) == a


@pytest.mark.parametrize("size", [0, -1, 1.5, "8", None])
def test_allocator_rejects_bad_sizes_with_a_clear_message(size):
    g = lguest.Host().launch(mem_mb=1, drivers=())
    with pytest.raises((ValueError, TypeError)) as exc:
        g.alloc(size)
    msg = str(exc.value)
    assert "size" in msg and "positive" in msg and repr(size) in msg


@pytest.mark.parametrize("align", [0, 3, -4, 6])
def test_allocator_rejects_bad_alignment_with_a_clear_message(align):
    g = lguest.Host().launch(mem_mb=1, drivers=())
    with pytest.raises((ValueError, TypeError)) as exc:
        g.alloc(16, align=align)
    assert "power of two" in str(exc.value)


def test_allocator_out_of_memory_says_so():
    g = lguest.Host().launch(mem_mb=1, drivers=())
    with pytest.raises(LguestError) as exc:
        g.alloc(2 << 20)
    assert "out of Guest memory" in str(exc.value)


# --- reader misuse (DESIGN.md "Bad input") ----------------------------------------------------------
@pytest.mark.parametrize("mem_mb", [0, -1, 1.5, "16", True, 1 << 20])
def test_misuse_bad_mem_mb_says_what_is_allowed(mem_mb):
    host = lguest.Host()
    with pytest.raises((ValueError, TypeError)) as exc:
        host.launch(mem_mb=mem_mb, drivers=())
    msg = str(exc.value)
    assert "mem_mb" in msg and str(lguest.machine.MAX_MEM_MB) in msg
    assert host.guests == [] and host.lgs == []


@pytest.mark.parametrize("option", ["sharenet", "block"])
def test_misuse_bare_string_instead_of_list_says_a_list_is_wanted(option):
    host = lguest.Host()
    with pytest.raises((TypeError, ValueError)) as exc:
        host.launch(mem_mb=1, drivers=(), **{option: "lan0"})
    msg = str(exc.value)
    assert option in msg and "list" in msg
    assert host.guests == [] and host.shared_pages.get("lan0") is None


def test_misuse_17th_guest_is_refused_saying_16_is_the_limit():
    host = lguest.Host()
    for _ in range(16):
        host.launch(mem_mb=1, drivers=())
    with pytest.raises(LguestError) as exc:
        host.launch(mem_mb=1, drivers=())
    assert "16" in str(exc.value)
    assert len(host.guests) == 16 and len(host.lgs) == 16


def test_misuse_17th_guest_refused_leaves_no_lan_slot_locked():
    """§4.4: the slot lock "disappears automatically if the Launcher dies"; a refused
    Launcher (ENOSPC from LHREQ_INITIALIZE) exits, so its slot must be free again."""
    host = lguest.Host()
    for _ in range(16):
        host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    locked = dict(host.shared_page("lan0").locked_slots)
    with pytest.raises(LguestError):
        host.launch(mem_mb=1, sharenet=["lan0"], drivers=())
    assert host.shared_page("lan0").locked_slots == locked and sorted(locked) == list(range(16))


# --- the trace --------------------------------------------------------------------------------------
def _scenario():
    host, (a, b) = lan_guests(2)
    arr, bufs = ring(b, [64])
    bind(b, slot_key(b, 1), arr, 1, 3)
    buf = a.alloc(32)
    a.memory.write(buf, pattern(32))
    send(a, slot_key(a, 1), new_dma(a, [(buf, 32)]))
    host.run()
    a.hypercall(abi.LHCALL_BIND_DMA, 2, 0, (1 << 8) | 1)      # misaligned key: killed
    return host


def test_trace_records_every_kind_of_io_event_with_tick_and_guest():
    host = _scenario()
    kinds = {e.kind for e in host.trace}
    for kind in ("hypercall", "bind", "send_dma", "check", "copy", "used_len", "irq_raise", "irq_deliver", "kill"):
        assert kind in kinds, kind
    for e in host.trace:
        assert isinstance(e.tick, int) and e.tick >= 0
        assert e.guest is None or e.guest in (0, 1)
    ticks = [e.tick for e in host.trace]
    assert ticks == sorted(ticks)


def test_trace_is_deterministic():
    assert _scenario().trace.show() == _scenario().trace.show()
