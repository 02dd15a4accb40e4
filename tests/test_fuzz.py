"""The whole machine, fuzzed (tests/fuzz_machine.py says what it covers and checks).

* ``TestFuzzWholeMachine``: 2,000 derandomized sequences of up to 10 steps (about 55 s on the
  project's 2-core machine; ``make fuzz`` runs 50,000 seeded ones).
* The oracle's own teeth: a fault planted in the model (a stray byte after a copy, the copy
  without 2007's bug, a write not cut back, a used_len past its buffer, console input past
  its buffer, a dead Guest still bound) must fail the very step that shows it.
* What the fuzzer found where the model was not 2007 (the block Launcher read ``type`` and
  ``bytes`` too early; no three-^C exit): each one's smallest reproduction, now passing, since
  the model was fixed.

The file takes about a minute; everything but the state machine takes well under a second.
"""
from __future__ import annotations

import os
import struct

import pytest

import lguest
from lguest import abi
from lguest.host import dma
from lguest.launcher import console as console_room
from lguest.launcher import launcher as launcher_room

from fuzz_machine import DISK_SECTORS, PAGE, WholeMachine, fuzz_settings

SECTOR = abi.SECTOR_SIZE

TestFuzzWholeMachine = WholeMachine.TestCase
TestFuzzWholeMachine.settings = fuzz_settings(max_examples=2000, derandomize=True)


# --- the oracle catches a planted fault --------------------------------------------------------
@pytest.fixture
def machine():
    m = WholeMachine()
    yield m
    m.teardown()


NO_SECTIONS = ([], None, 0, 0, 1)                      # a SECTIONS draw: an empty list
ONE_PAGE = ([("good", 0, 0, PAGE)], None, 0, 0, 1)     # one good section of a whole page


def test_fuzz_oracle_catches_a_byte_the_copy_should_not_touch(machine, monkeypatch):
    copy = dma._copy_stream

    def one_more(src, at, dst, to, n):
        done = copy(src, at, dst, to, n)
        mv, off, length = dst[-1]
        if off + length < len(mv):
            mv[off + length] ^= 0xFF                   # the byte just past the receiving sections
        return done

    monkeypatch.setattr(dma, "_copy_stream", one_more)
    with pytest.raises(AssertionError, match="changed where no rule allows"):
        machine.frame(gi=0, gj=0, ping=False, broadcast=False)


def test_fuzz_oracle_catches_the_copy_without_its_2007_bug(machine):
    """Guest 1 binds a pool entry of two sections (60 and 300 bytes) at its own slot key, the
    newest binding there; Guest 0 sends 200 bytes. 2007's copy_data() fills the second section
    from the start of the source again; the fixed copy (an exercise switch) does not."""
    machine.host.copy_data_fixed = True
    machine.bind(gi=1, key=("slot", 1), where="pool", i=0, count=1, irq=5)
    with pytest.raises(AssertionError, match="not what 2007's copy_data"):
        machine.send(gi=0, key=("slot", 1), secs=([("good", 0, 0, 200)], None, 0, 0, 1), where="sd", i=0,
                     zero=True)


def test_fuzz_oracle_catches_a_write_past_the_end_not_cut_back(machine, monkeypatch):
    monkeypatch.setattr(os, "ftruncate", lambda fd, length: None)
    with pytest.raises(AssertionError, match="disk image differs"):
        machine.block(gi=0, kind="write", sector=DISK_SECTORS - 1, nbytes=None, secs=ONE_PAGE, reply="driver",
                      rsecs=NO_SECTIONS)


def test_fuzz_oracle_catches_a_used_len_past_the_buffer(machine, monkeypatch):
    set_used_len = launcher_room.Launcher.set_used_len
    monkeypatch.setattr(launcher_room.Launcher, "set_used_len",
                        lambda self, udma, used: set_used_len(self, udma, used + 1))
    with pytest.raises(AssertionError, match="capacity"):
        machine.send(gi=0, key=("console", 0), secs=ONE_PAGE, where="sd", i=0, zero=True)


def test_fuzz_oracle_catches_console_input_past_its_buffer(machine, monkeypatch):
    """The driver's own input buffer lies in the kernel heap, which the kernel may write while
    its handler runs; the Launcher's input is written before that, and must stay inside."""
    readv = console_room.Console._readv

    def stray(self, iov, chunk):
        done = readv(self, iov, chunk)
        addr, length = iov[-1]
        if addr is not None and done:                  # 8 bytes on: past the used_len written next
            self.launcher.memory.write(addr + length + 8, b"\xAA")
        return done

    monkeypatch.setattr(console_room.Console, "_readv", stray)
    with pytest.raises(AssertionError, match="changed where no rule allows"):
        machine.type(gi=0, text=b"X", cut=False)


def test_fuzz_oracle_catches_a_dead_guest_still_bound(machine, monkeypatch):
    monkeypatch.setattr(dma, "release_all_dma", lambda host, lg: None)
    with pytest.raises(AssertionError, match="dead Guest 1 still holds bindings"):
        machine.kill(gi=1)


# --- reference checks the model passes ---------------------------------------------------------
def image(tmp_path, sectors: int = 16):
    path = tmp_path / "disk.img"
    path.write_bytes(b"".join(bytes([0xE0 + s % 16]) * SECTOR for s in range(sectors)))
    return str(path)


def block_guest(tmp_path):
    host = lguest.Host()
    g = host.launch(mem_mb=1, block=[image(tmp_path)])
    return g, g.launcher.disks[0].device.mem, g.kernel.block.disks[0].dma


def put_dma(g, addr, sections, used=0):
    pad = [0] * (16 - len(sections))
    g.memory.write(addr, struct.pack("<I16I16H", used, *[a for a, _ in sections], *pad,
                                     *[n for _, n in sections], *pad))


def request(g, blk, type_, sector, nbytes):
    g.memory.write(blk, struct.pack("<iIIi", type_, sector, nbytes, 0))


def test_d400_handle_output_stores_the_handlers_0_after_the_read(tmp_path):
    """The reply may cover the very DMA that was sent: readv() fills it, then handle_output()
    stores the block handler's 0 in its used_len, last (found by the fuzzer in its own
    reference, which had left that store out)."""
    g, blk, reply = block_guest(tmp_path)
    sent = g.alloc(128, align=64)
    put_dma(g, sent, [])
    put_dma(g, reply, [(sent, 64)])
    request(g, blk, 0, 3, 64)
    g.hypercall(abi.LHCALL_SEND_DMA, blk, sent)
    assert g.dead is None
    assert g.memory.read(sent, 64) == bytes(4) + bytes([0xE3]) * 60
    assert struct.unpack("<i", g.memory.read(blk + 12, 4))[0] == 1


# --- found by the fuzzer where the model was not 2007; the model now reads the page as 2007 did ---
def test_d400_result_compares_bytes_as_read_after_the_readv(tmp_path):
    """p->result = 1 + (p->bytes != len) comes after the readv(): a reply that lands on the
    page's own ``bytes`` field changes what the result compares with."""
    g, blk, reply = block_guest(tmp_path)
    put_dma(g, reply, [(blk + 8, 4)])                 # the reply: 4 bytes over `bytes` itself
    request(g, blk, 0, 0, 4)
    ping = g.dma([])
    g.hypercall(abi.LHCALL_SEND_DMA, blk, ping)
    assert g.memory.read(blk + 8, 4) == bytes([0xE0]) * 4          # the read landed (both agree)
    assert struct.unpack("<i", g.memory.read(blk + 12, 4))[0] == 2   # 0xe0e0e0e0 != 4: 2007 said 2


def test_d400_type_is_read_after_getdma_wrote_the_irq_into_it(tmp_path):
    """A reply array bound at the block page itself: entry 0's used_len *is* ``type``. GETDMA
    hands the irq back in it, so 2007's Launcher saw a write and wrote the sent DMA's bytes."""
    g, blk, _ = block_guest(tmp_path)
    disk = g.launcher.disks[0].path
    request(g, blk, 0, 0, 8)                          # a read of 8 bytes at sector 0 ...
    g.memory.write(blk + 68, struct.pack("<H", 8))    # ... into entry 0's section: 8 bytes at `sector`, 0
    assert g.hypercall(abi.LHCALL_BIND_DMA, blk, blk, (1 << 8) | 9) == 1
    data = g.alloc(16)
    g.memory.write(data, b"WRITTEN!")
    g.hypercall(abi.LHCALL_SEND_DMA, blk, g.dma([(data, 8)]))
    with open(disk, "rb") as f:
        assert f.read(8) == b"WRITTEN!"               # 2007: type read as irq 9, so writev()
    assert g.memory.read(0, 8) == bytes(8)            # and nothing read into the Guest


def test_console_input_three_ctrl_c_each_read_alone_end_the_launcher():
    """2007: each read of exactly one ^C byte counts; the third within a second, after the
    byte went to the Guest, makes the Launcher exit with status 2, and the Guest with it."""
    host = lguest.Host()
    g = host.launch(mem_mb=1)
    for _ in range(3):
        g.console.type(b"\x03")
        host.run()
    assert g.dead == "Launcher exited: three ^C (status 2)"
