"""The Guest kernel's side of lguest: hypercall wrappers, lguest_map and the irq table.

The drivers call these, never the Host: a Guest reaches the Host only through
``hcall()``, its hypercall gate, the model of ``int $0x1F``. Addresses here are physical, as ``__pa()``
would give them; the model has no virtual memory, so a pointer *is* its physical address.
"""
from __future__ import annotations

import collections
import errno
import io
from dataclasses import dataclass
from typing import Callable

from .. import abi
from .block import LguestBlk
from .blockfile import BlockDevice
from .bus import LguestBus
from .console import HvcLguest
from .inet import Inet
from .kmalloc import Allocator, heap_start
from .linux.hvc import Hvc
from .linux.interrupt import IRQ_HANDLED, IRQ_NONE, IRQF_DISABLED, IRQF_SAMPLE_RANDOM, IRQF_SHARED  # noqa: F401 (drivers and chapters import them from here)
from .linux.tty import Tty
from .net import LguestNet
from .shell import PROMPT, Shell

DRIVERS = ("console", "block", "net")   # the drivers this model can build into a Guest kernel


@dataclass
class IrqAction:
    """One handler on an irq line (``struct irqaction``)."""
    handler: Callable[[int, object], int]
    flags: int
    name: str
    dev_id: object


class GuestKernel:
    """The parts of a Linux Guest that every lguest driver leans on."""

    def __init__(self, guest_id: int, memory, hypercall: Callable[..., int] | None,
                 paravirt_name: str = "lguest", drivers=DRIVERS, trace_sink: Callable[..., None] | None = None):
        """``hypercall`` is the gate: ``hypercall(nr, arg1, arg2, arg3)`` returns eax. Under
        lguest it is the Host's HypercallGate, which also takes the kernel's interrupt entry
        at boot and lets the Host run while a process sleeps. ``trace_sink(kind, **fields)``,
        if given, receives the kernel's own events (see emit())."""
        unknown = set(drivers) - set(DRIVERS)
        if unknown:
            raise ValueError(f"unknown driver(s) {sorted(unknown)}: this Guest kernel can build in {list(DRIVERS)}")
        self.id = guest_id
        self.memory = memory
        self.hcall = hypercall                            # int $0x1F: the only door to the Host
        self.trace_sink = trace_sink                      # where emit() also sends its events
        self.paravirt_name = paravirt_name                # "lguest" when running under lguest
        self.max_pfn = memory.ram_size >> abi.PAGE_SHIFT
        self.kmalloc = Allocator(heap_start(memory.ram_size), memory.ram_size)
        self.irq_actions: dict[int, list[IrqAction]] = {}
        self.irq_counts = [0] * abi.LGUEST_IRQS           # kstat: every interrupt taken (/proc/interrupts)
        self.irqs_unhandled = [0] * abi.LGUEST_IRQS        # taken with handlers, all of which said IRQ_NONE
        self.irq_depth = [1] * abi.LGUEST_IRQS             # disable depth: a line starts disabled
        self.dmesg: list[str] = []
        self.dev_nodes: list[str] = []
        self.hvc = Hvc(self)
        self.bus = LguestBus(self)
        self.tty = None
        self.shell = Shell(self)
        self.console = HvcLguest(self) if "console" in drivers else None
        self.block = LguestBlk(self) if "block" in drivers else None
        self.net = LguestNet(self) if "net" in drivers else None
        self.inet = Inet(self)                            # the IPv4 stack: interfaces, addresses, ARP
        self.events = collections.deque(maxlen=4096)     # Guest-side steps no hypercall shows (wmb, used_len)
        self.debug: list[str] = []                        # pr_debug(): compiled out, but kept here
        self.lguest_data = self._static_lguest_data()     # lguest.c's static struct, told to the Host at boot

    def boot(self) -> None:
        """The boot steps the I/O story needs, in Linux's initcall order."""
        if self.paravirt_name == "lguest":
            self.hcall(abi.LHCALL_LGUEST_INIT, self.lguest_data)    # lguest_init(): the first hypercall
            self.hcall.load_idt_entry(self.do_IRQ)                 # init_IRQ(): where interrupts enter
        if self.console is not None:
            self.console.cons_init()                      # console_initcall: output from here on
        # 2007-DIFF(boot-banner): the real banner names the compiler, the build and the date.
        self.printk(f"Linux version 2.6.23 (the lguest model): Guest {self.id}, "
                    f"{self.memory.ram_size >> 20} MiB")
        self.bus.lguest_bus_init()                        # postcore_initcall
        if self.console is not None:
            self.console.hvc_lguest_init()                # plain initcalls: drivers after devices
        if self.block is not None:
            self.block.lguestblk_init()
        if self.net is not None:                          # after block, as in the link order
            self.net.lguestnet_init()
        self.inet.init_scripts()                          # "ifconfig ethN ADDR up" for each interface
        if self.hvc.consoles:
            self.open_console()                           # init opens /dev/console and starts a shell

    def open(self, path: str, mode: str = "rb", buffering: int = -1):
        """Open /dev/lgbX as a file whose reads and writes go through the driver.

        As with Python's open(), ``buffering=0`` gives the unbuffered device itself, where
        each read() or write() is its own run of requests (dd uses it to count them)."""
        if mode not in ("rb", "r+b"):
            raise ValueError(f"a Guest disk opens with mode 'rb' or 'r+b', got {mode!r}")
        if not isinstance(path, str):
            raise TypeError(f"a Guest disk is opened by its path, a string such as '/dev/lgba'; got {path!r}")
        if isinstance(buffering, bool) or not isinstance(buffering, int):
            raise TypeError(f"buffering is a whole number (0: the unbuffered device, -1: buffered), got {buffering!r}")
        disks = [] if self.block is None else [bd.disk.disk_name for bd in self.block.disks]
        name = path.removeprefix("/dev/")
        if not path.startswith("/dev/") or name not in disks:
            raise FileNotFoundError(f"{path}: this Guest's disks are {['/dev/' + d for d in disks]}")
        raw = BlockDevice(self, self.block.disk(name), mode == "r+b")
        if buffering == 0:
            return raw
        return io.BufferedRandom(raw) if mode == "r+b" else io.BufferedReader(raw)

    def sleep_until(self, done: Callable[[], bool]) -> None:
        """A process waits for an interrupt: the Host runs (interrupts, Launcher I/O) until all
        is quiet. If ``done()`` is still false then, the wait failed: EIO, saying why."""
        killed = self.hcall.wait()
        if not done():
            why = f": {killed}" if killed else ""
            raise OSError(errno.EIO, f"the request never finished{why}")

    def pr_debug(self, line: str) -> None:
        self.debug.append(line)

    def emit(self, kind: str, **fields) -> None:
        """Record a Guest-side step that no hypercall shows (a barrier, a used_len the Guest wrote)."""
        self.events.append((kind, fields))
        if self.trace_sink is not None:
            self.trace_sink(kind, **fields)

    def register_dev(self, name: str) -> None:
        self.dev_nodes.append(name)

    def open_console(self) -> None:
        """init opens the console (hvc0) and starts a shell on it.

        The tty open is what asks for the console's interrupt (hvc_open(), the first open only)."""
        hp = self.hvc.consoles[0]
        self.hvc.hvc_open(hp)
        self.tty = Tty(lambda data: self.hvc.hvc_write(hp, data))
        self.tty.on_line = self.shell.on_line
        hp.tty = self.tty
        self.tty.write(PROMPT.encode())

    def proc_interrupts(self) -> str:
        """/proc/interrupts: each line with a handler, its count, the chip and the handlers."""
        lines = ["           CPU0"]
        for irq in sorted(self.irq_actions):
            actions = self.irq_actions[irq]
            if actions:
                lines.append(f"{irq:3d}: {self.irq_counts[irq]:10d}   lguest  {', '.join(a.name for a in actions)}")
        return "\n".join(lines) + "\n"

    def _static_lguest_data(self) -> int:
        """lguest.c's ``struct lguest_data``, which the Guest shares with the Host (LHCALL_LGUEST_INIT)."""
        addr = self.kmalloc.alloc(abi.lguest_data.itemsize, align=4)
        data = self.memory.struct_at(addr, abi.lguest_data)
        data["irq_enabled"] = abi.X86_EFLAGS_IF           # as it is once start_kernel() has enabled them
        # The timer's line starts blocked, as lguest.c's lguest_data did, until the clock code
        # unblocks it. 2007-DIFF(no-timer): the model has no clock, so irq 0 stays blocked.
        data["blocked_interrupts"] = 1 << 0
        return addr

    def printk(self, line: str) -> None:
        """The kernel log, echoed to the console once cons_init() has registered one."""
        self.dmesg.append(line)
        self.hvc.hvc_console_print(line + "\n")

    # --- hypercall wrappers (GUEST, lguest.c) ---------------------------------------------
    def lguest_send_dma(self, key: int, dma: int) -> None:
        """D:200: zero used_len, then SEND_DMA; afterwards used_len says how much got through."""
        self.memory.set_u32(dma + abi.USED_LEN_OFFSET, 0)
        self.hcall(abi.LHCALL_SEND_DMA, key, dma)

    def lguest_bind_dma(self, key: int, dmas: int, num: int, irq: int) -> int:
        """D:200: bind ``num`` receive buffers to a key, to raise ``irq``; -ENOMEM on failure."""
        if not self.hcall(abi.LHCALL_BIND_DMA, key, dmas, (num << 8) | irq):
            return -errno.ENOMEM
        return 0

    def lguest_unbind_dma(self, key: int, dmas: int) -> None:
        """D:200: irq 0 means unbind; the key and the array must both match."""
        self.hcall(abi.LHCALL_BIND_DMA, key, dmas, 0)

    def lguest_map(self, phys_addr: int, pages: int) -> memoryview:
        """Map device pages (the real one is ioremap): a view of ``pages`` pages at phys_addr."""
        return self.memory.view(phys_addr, pages * abi.PAGE_SIZE)

    # --- interrupts: genirq's handle_level_irq on lguest's irq chip ---------------------
    # The chip's mask sets the line's bit in lguest_data.blocked_interrupts, and its unmask
    # clears it (lguest.c); the Host delivers nothing on a blocked line.
    def _mask(self, irq: int) -> None:
        self.lguest_data_fields()["blocked_interrupts"] |= 1 << irq

    def _unmask(self, irq: int) -> None:
        self.lguest_data_fields()["blocked_interrupts"] &= ~(1 << irq) & 0xFFFFFFFF

    def request_irq(self, irq: int, handler, flags: int, name: str, dev_id) -> int:
        """Add a handler; a line is shared only if every handler on it says IRQF_SHARED.

        The first handler starts the line (setup_irq()): enabled and unmasked."""
        if not 0 < irq < abi.LGUEST_IRQS:               # line 0 is the timer's (see no-timer)
            return -errno.EINVAL
        chain = self.irq_actions.setdefault(irq, [])
        if chain and not (flags & IRQF_SHARED and all(a.flags & IRQF_SHARED for a in chain)):
            return -errno.EBUSY
        chain.append(IrqAction(handler, flags, name, dev_id))
        self.irqs_unhandled[irq] = 0                      # setup_irq() resets broken-irq detection
        if len(chain) == 1:
            self.irq_depth[irq] = 0
            self._unmask(irq)
        return 0

    def free_irq(self, irq: int, dev_id) -> None:
        """Remove the first handler on the line with this ``dev_id``. With no such handler, only
        an error is logged. The disable depth is left as it was: an interrupt on a line with no
        handler leaves it masked anyway, and an enable_irq() at depth 0 is unbalanced."""
        _check_line(irq)
        chain = self.irq_actions.get(irq, [])
        found = next((i for i, action in enumerate(chain) if action.dev_id is dev_id), None)
        if found is None:
            self.printk(f"Trying to free already-free IRQ {irq}")
            return
        del chain[found]

    def disable_irq(self, irq: int) -> None:
        """Mark the line disabled. Lazily, as genirq has done since 2.6.21: nothing is masked
        yet. The next interrupt on it is taken, counted and masked, but its handlers do not run."""
        _check_line(irq)
        self.irq_depth[irq] += 1

    def enable_irq(self, irq: int) -> None:
        """Undo one disable_irq(); the last one unmasks the line. An interrupt taken while the
        line was disabled is not replayed (x86 has no resend for this chip): it is lost."""
        _check_line(irq)
        if self.irq_depth[irq] == 0:
            # 2007-DIFF(warn-on): Linux followed this line with WARN_ON(1), a stack trace.
            self.printk(f"Unbalanced enable for IRQ {irq}")
            return
        self.irq_depth[irq] -= 1
        if self.irq_depth[irq] == 0:
            self._unmask(irq)                            # check_irq_resend() -> chip->enable

    def do_IRQ(self, irq: int) -> int:
        """Entered by the Host when it delivers ``irq``: handle_level_irq().

        Mask the line and count the interrupt. With no handler, or the line disabled, that
        is all: the line stays masked, so nothing more is delivered on it until request_irq()
        or enable_irq() unmasks it. Otherwise run every handler, then unmask the line."""
        self._mask(irq)
        self.irq_counts[irq] += 1
        actions = self.irq_actions.get(irq)
        if not actions or self.irq_depth[irq]:
            return IRQ_NONE
        result = IRQ_NONE
        for action in list(actions):
            result |= action.handler(irq, action.dev_id)
        if result == IRQ_NONE:
            self.irqs_unhandled[irq] += 1                 # note_interrupt()
        if not self.irq_depth[irq]:
            self._unmask(irq)
        return result

    def lguest_data_fields(self):
        """The fields of lguest.c's ``lguest_data`` (at address ``self.lguest_data``), live."""
        return self.memory.struct_at(self.lguest_data, abi.lguest_data)

    def local_irq_disable(self) -> None:
        self.lguest_data_fields()["irq_enabled"] = 0

    def local_irq_enable(self) -> None:
        self.lguest_data_fields()["irq_enabled"] = abi.X86_EFLAGS_IF

    def __repr__(self):
        return f"GuestKernel(g{self.id}, irq lines in use={sorted(self.irq_actions)})"


def _check_line(irq) -> None:
    """The model has the 32 lines lguest gives a Guest; asking for another is a mistake."""
    try:
        ok = irq == int(irq) and 0 <= irq < abi.LGUEST_IRQS
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"irq must be a line 0..{abi.LGUEST_IRQS - 1}, got {irq!r}")
