"""The lguest ABI of 2007: the constants and struct layouts the I/O path shares.

Everything here keeps its C name from ``lguest_launcher.h`` and ``lguest.h`` (Linux
2.6.23), so a reader holding the C headers finds each twin at once. The structs are
numpy dtypes with the i386 little-endian layout (``unsigned long`` is 32 bits), because
the Guest, the Host and the Launcher share them as bytes in Guest memory.
"""
import struct

import numpy as np

# --- Sizes of the machine -------------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT          # x86-32 pages
SECTOR_SIZE = 512                    # block offsets and sizes count in sectors

# --- lguest_launcher.h: limits --------------------------------------------------------
LGUEST_MAX_DMA = 32                  # bound DMA arrays per Guest (its binding table)
LGUEST_MAX_DMA_SECTIONS = 16         # addr/len pairs in one struct lguest_dma
LGUEST_MAX_DEVICES = LGUEST_MAX_DMA // 2   # "up to two dma arrays per device"
LGUEST_CONSOLE_DMA_KEY = 0           # where the Guest sends console output

# --- lguest.h: traps, interrupts, Guests ----------------------------------------------
LGUEST_TRAP_ENTRY = 0x1F             # int $0x1F is a hypercall
LGUEST_IRQS = 32                     # virtual interrupt lines; 0 is the timer
LHCALL_RING_SIZE = 64                # async hypercall ring (not used by I/O)
MAX_LGUEST_GUESTS = 16               # the Host's fixed table of Guests (core.c)

# --- lguest.h: hypercall numbers (eax) ------------------------------------------------
LHCALL_FLUSH_ASYNC = 0
LHCALL_LGUEST_INIT = 1
LHCALL_CRASH = 2
LHCALL_LOAD_GDT = 3
LHCALL_NEW_PGTABLE = 4
LHCALL_FLUSH_TLB = 5
LHCALL_LOAD_IDT_ENTRY = 6
LHCALL_SET_STACK = 7
LHCALL_TS = 8
LHCALL_SET_CLOCKEVENT = 9
LHCALL_HALT = 10
LHCALL_GET_WALLCLOCK = 11
LHCALL_BIND_DMA = 12
LHCALL_SEND_DMA = 13
LHCALL_SET_PTE = 14
LHCALL_SET_PMD = 15
LHCALL_LOAD_TLS = 16

HCALL_NAMES = {v: k for k, v in dict(globals()).items() if k.startswith("LHCALL_") and k != "LHCALL_RING_SIZE"}

# --- lguest_launcher.h: device descriptors --------------------------------------------
LGUEST_DEVICE_T_CONSOLE = 1
LGUEST_DEVICE_T_NET = 2
LGUEST_DEVICE_T_BLOCK = 3

LGUEST_NET_F_NOCSUM = 0x4000         # net: don't bother checksumming
LGUEST_DEVICE_F_RANDOMNESS = 0x8000  # any type: irq timing feeds the entropy pool

LGUEST_DEVICE_S_ACKNOWLEDGE = 1      # the Guest has seen the device
LGUEST_DEVICE_S_DRIVER = 2           # a driver matched it
LGUEST_DEVICE_S_DRIVER_OK = 4        # the driver's probe succeeded
LGUEST_DEVICE_S_REMOVED = 8          # the Host says it is gone (unused: no hotplug)
LGUEST_DEVICE_S_REMOVED_ACK = 16     # the driver has been told (unused)
LGUEST_DEVICE_S_FAILED = 128         # something actually failed

DEVICE_TYPE_NAMES = {0: "empty", LGUEST_DEVICE_T_CONSOLE: "console",
                     LGUEST_DEVICE_T_NET: "net", LGUEST_DEVICE_T_BLOCK: "block"}
DEVICE_STATUS_NAMES = {LGUEST_DEVICE_S_ACKNOWLEDGE: "ACKNOWLEDGE", LGUEST_DEVICE_S_DRIVER: "DRIVER",
                       LGUEST_DEVICE_S_DRIVER_OK: "DRIVER_OK", LGUEST_DEVICE_S_REMOVED: "REMOVED",
                       LGUEST_DEVICE_S_REMOVED_ACK: "REMOVED_ACK", LGUEST_DEVICE_S_FAILED: "FAILED"}

# --- lguest_launcher.h: requests written to /dev/lguest --------------------------------
LHREQ_INITIALIZE = 0
LHREQ_GETDMA = 1
LHREQ_IRQ = 2
LHREQ_BREAK = 3

# --- Struct layouts (i386, little-endian) ---------------------------------------------
lguest_dma = np.dtype({
    "names": ["used_len", "addr", "len"],
    "formats": ["<u4", ("<u4", (LGUEST_MAX_DMA_SECTIONS,)), ("<u2", (LGUEST_MAX_DMA_SECTIONS,))],
    "offsets": [0, 4, 4 + 4 * LGUEST_MAX_DMA_SECTIONS],
    "itemsize": 100,
})
lguest_device_desc = np.dtype({
    "names": ["type", "features", "status", "num_pages", "pfn"],
    "formats": ["<u2", "<u2", "<u2", "<u2", "<u4"],
    "offsets": [0, 2, 4, 6, 8],
    "itemsize": 12,
})
lguest_block_page = np.dtype({
    "names": ["type", "sector", "bytes", "result", "num_sectors"],
    "formats": ["<i4", "<u4", "<u4", "<i4", "<u4"],
    "offsets": [0, 4, 8, 12, 16],
    "itemsize": 20,
})
X86_EFLAGS_IF = 0x200                # lguest_data.irq_enabled holds this bit when interrupts are on

# struct lguest_data (lguest.h), abridged to the fields the I/O path reads.
# 2007-DIFF(lguest-data): the real struct also carries the async hypercall ring, the
# clock and more, so it is over a kilobyte, and guestid sits further in.
lguest_data = np.dtype({
    "names": ["irq_enabled", "blocked_interrupts", "guestid"],
    "formats": ["<u4", "<u4", "<u2"],
    "offsets": [0, 4, 8],
    "itemsize": 12,
})
lguest_net = np.dtype({"names": ["mac"], "formats": [("u1", (6,))], "offsets": [0], "itemsize": 6})

# The same lguest_dma layout for the Host's hot path: struct is ~4x cheaper than numpy
# for one 100-byte record (see conventions.md).
LGUEST_DMA_STRUCT = struct.Struct("<I16I16H")
USED_LEN_OFFSET = 0
DMA_SIZE = LGUEST_DMA_STRUCT.size           # sizeof(struct lguest_dma): the one definition
assert DMA_SIZE == lguest_dma.itemsize == 100
assert lguest_device_desc.itemsize == 12 and lguest_block_page.itemsize == 20 and lguest_net.itemsize == 6


def hcall_name(nr: int) -> str:
    """The C name of hypercall ``nr``, or a plain description of an unknown one."""
    return HCALL_NAMES.get(nr, f"unknown hypercall {nr}")
