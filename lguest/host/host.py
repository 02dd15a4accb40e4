"""The Host: the hypervisor that runs up to 16 Guests and carries their I/O.

It owns the table of Guests, the hash of DMA bindings, the clock (a tick counter) and
the trace. Guests reach it only through hypercalls; Launchers only through the
/dev/lguest requests (LHREQ_*). It never raises for Guest misbehaviour: it kills.
"""
from __future__ import annotations

import errno

from .. import abi
from ..errors import GuestDead, LguestError
from ..memory import SharedPage
from ..trace import Trace
from . import dma
from .interrupts import maybe_do_interrupt, set_irq_pending
from .lg import Lg
from .lgmem import lgread, lgwrite_u32
from .pcap import start_capture

CRASH_MSG_MAX = 128


class Host:
    """The hypervisor. ``launch()`` makes Guests; ``run()`` lets them take interrupts."""

    def __init__(self, trace: bool = True, copy_data_fixed: bool = False):
        self.lgs: list[Lg] = []                  # lguests[]: a dead Guest's slot is reused
        self.guests: list = []                   # the facades handed to readers, by id
        self.dma_hash: dict = {}                 # FutexKey -> [Binding], newest first
        self.shared_pages: dict[str, SharedPage] = {}
        self.tick = 0
        self.trace = Trace(enabled=trace)
        self._watchers: list = []                # called after each event (TracePlayer)
        self.tunnets: dict = {}                  # tap name -> TunNet, one per --tunnet
        self.captures: dict = {}                 # LAN name -> [Capture]; empty when nothing captures
        # 2007-DIFF(copy-fix): an exercise switch, off as in 2007: copy_data() reads each
        # source section from its start (the bug of reference §3.5); True reads from the
        # offset reached.
        self.copy_data_fixed = copy_data_fixed

    # --- making Guests --------------------------------------------------------------------
    def launch(self, mem_mb: int = 16, block=(), sharenet=(), tunnet=None, devices=None, drivers=None,
               boot: bool = True, o_direct: bool = False):
        """Start a Guest as the Launcher's command line would, and boot its kernel.

        Devices take descriptor slots in command-line order, the console last. ``devices``
        gives that order: ``devices=["--block=disk.img", "--sharenet=lan0"]``. The keyword
        lists ``sharenet``, ``tunnet`` (one argument or a list) and ``block`` are laid out
        in that order: every --sharenet, then every --tunnet, then every --block.
        ``drivers`` names the drivers built into the Guest kernel (default: all there are);
        ``drivers=()`` gives a kernel with only the bus, for playing a driver by hand.
        ``boot=False`` stops before the kernel boots: change it, then ``guest.kernel.boot()``.
        ``o_direct=True`` opens the ``block`` images with O_DIRECT, as the 2007 Launcher did.
        """
        from ..machine import boot_guest, command_line   # the facade ties all three rooms together
        from ..guest.kernel import DRIVERS
        return boot_guest(self, mem_mb=mem_mb, devices=command_line(block, sharenet, tunnet, devices),
                          drivers=DRIVERS if drivers is None else tuple(drivers), boot=boot, o_direct=o_direct)

    def shared_page(self, name: str) -> SharedPage:
        """The one page every Guest naming LAN ``name`` maps (created on first use)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a shared network is named by a non-empty string, got {name!r}")
        return self.shared_pages.setdefault(name, SharedPage(name))

    def initialize(self, memory, launcher) -> Lg:
        """LHREQ_INITIALIZE: make the Host's record of a new Guest (ENOSPC past 16).

        Like find_free_guest(), it takes the lowest free slot of the table, and a dead
        Guest's slot is free: its Launcher exited and closed /dev/lguest. So ids, and the
        MACs and addresses made from them, come round again, as they did in 2007.
        """
        slot = next((i for i, lg in enumerate(self.lgs) if lg.dead is not None), len(self.lgs))
        if slot >= abi.MAX_LGUEST_GUESTS:
            raise LguestError(f"the Host holds at most {abi.MAX_LGUEST_GUESTS} live Guests (MAX_LGUEST_GUESTS); "
                              "start a new Host for more")
        lg = Lg(slot, memory, memory.pfn_limit, launcher)
        if slot == len(self.lgs):
            self.lgs.append(lg)
        else:
            self.lgs[slot] = lg
        self.emit(lg, "initialize", pfn_limit=lg.pfn_limit)
        return lg

    def capture(self, lan: str, path):
        """Record every frame delivered on ``lan`` (a --sharenet name or a --tunnet tap) to a pcap file.

        Returns a ``Capture``: ``.frames`` counts records, ``.close()`` stops it, and it is a
        context manager. Time stamps: tick N is N ms (see lguest.host.pcap).
        """
        return start_capture(self, lan, path)

    # --- the trace and death --------------------------------------------------------------
    def emit(self, lg: Lg | None, kind: str, **fields) -> None:
        if self.trace.enabled:
            self.trace._events.append((self.tick, None if lg is None else lg.id, kind, fields))
            if self._watchers:
                event = self.trace[-1]
                for watcher in list(self._watchers):
                    watcher(event)

    def watch(self, fn):
        """Call ``fn(event)`` after every traced event; returns a function that stops it."""
        self._watchers.append(fn)
        return lambda: self._watchers.remove(fn)

    def kill_guest(self, lg: Lg, msg: str) -> None:
        """Record why a Guest died. The first message wins; the Guest never runs again.

        Its Launcher sees read() fail and exits, closing /dev/lguest, which releases the
        Guest's DMA bindings: so a dead Guest never receives again either.
        """
        if lg.dead is not None:
            return
        lg.dead = msg
        self.emit(lg, "kill", msg=msg)
        # 2007-DIFF(release-at-kill): the bindings went when the Launcher, having read the
        # message, exited and closed /dev/lguest; here that all happens at the moment of death.
        dma.release_all_dma(self, lg)
        lg.launcher.guest_died(msg)

    # --- hypercalls (the Guest's int $0x1F) -----------------------------------------------
    def hypercall(self, lg: Lg, nr: int, arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        """Run one hypercall to completion and return what the Guest would find in eax."""
        if lg.dead is not None:
            raise GuestDead(f"Guest {lg.id} is dead ({lg.dead}): it cannot make hypercalls")
        nr, arg1, arg2, arg3 = int(nr) & 0xFFFFFFFF, int(arg1) & 0xFFFFFFFF, int(arg2) & 0xFFFFFFFF, \
            int(arg3) & 0xFFFFFFFF                                                    # 32-bit registers
        self.tick += 1
        self.emit(lg, "hypercall", call=abi.hcall_name(nr), args=(arg1, arg2, arg3))
        if lg.lguest_data is None:               # H:100: nothing runs until LGUEST_INIT
            self._initialize(lg, nr, arg1)
            return 0
        return self._do_hcall(lg, nr, arg1, arg2, arg3)

    def _do_hcall(self, lg: Lg, nr: int, arg1: int, arg2: int, arg3: int) -> int:
        """H:120: the one big switch."""
        if nr == abi.LHCALL_SEND_DMA:
            dma.send_dma(self, lg, arg1, arg2)
        elif nr == abi.LHCALL_BIND_DMA:
            return dma.bind_dma(self, lg, arg1, arg2, (arg3 >> 8) & 0xFFFF, arg3 & 0xFF)
        elif nr == abi.LHCALL_LGUEST_INIT:
            self.kill_guest(lg, "already have lguest_data")
        elif nr == abi.LHCALL_CRASH:
            self._crash(lg, arg1)
        elif nr == abi.LHCALL_HALT:
            lg.halted = True
        elif nr not in abi.HCALL_NAMES:
            self.kill_guest(lg, f"Bad hypercall {_signed(nr)}\n")    # the newline is 2007's
        # 2007-DIFF(no-cpu): there is no CPU to switch to: the calls for page tables, the GDT,
        # the IDT, the stack, TLS and the clock are accepted and do nothing.
        return 0

    def _initialize(self, lg: Lg, nr: int, data_addr: int) -> None:
        """The first hypercall must be LGUEST_INIT, naming a good lguest_data; else death."""
        if nr != abi.LHCALL_LGUEST_INIT:
            self.kill_guest(lg, f"hypercall {_signed(nr)} before LGUEST_INIT")
        elif not lg.memory.in_range(data_addr, abi.lguest_data.itemsize):
            # 2007 printed lg->lguest_data with %p, and it is still NULL here: so every bad
            # address is reported as the same zero pointer.
            self.kill_guest(lg, "bad guest page 00000000")
        else:
            lg.lguest_data = data_addr
            lg.memory.struct_at(data_addr, abi.lguest_data)["guestid"] = lg.id

    def _crash(self, lg: Lg, addr: int) -> None:
        """LHCALL_CRASH: read the Guest's 128-byte message (lgread), then die with it."""
        raw = lgread(self, lg, addr, CRASH_MSG_MAX)
        self.kill_guest(lg, "CRASH: " + raw[:CRASH_MSG_MAX - 1].split(b"\0", 1)[0].decode("latin-1"))

    # --- what the Launcher may ask (writes to /dev/lguest) --------------------------------
    def lhreq_getdma(self, lg: Lg, key: int) -> int:
        """LHREQ_GETDMA: the address of a receive buffer bound to key, its irq in used_len."""
        if lg.dead is not None:
            raise OSError(errno.ENOENT, f"Guest {lg.id} is dead")
        found = dma.get_dma_buffer(self, lg, key)
        if found is None:
            raise OSError(errno.ENOENT, f"no DMA buffer bound to key {key:#x}")
        udma, irq = found
        lgwrite_u32(self, lg, udma, irq, trace=False)
        return udma

    def lhreq_irq(self, lg: Lg, irq: int) -> None:
        """LHREQ_IRQ: the Launcher raises one of its Guest's interrupts."""
        if lg.dead is not None:
            raise OSError(errno.ENOENT, f"Guest {lg.id} is dead")
        if not 0 <= irq < abi.LGUEST_IRQS:
            raise OSError(errno.EINVAL, f"irq must be 0..{abi.LGUEST_IRQS - 1}, got {irq}")
        self.raise_irq(lg, irq)

    def raise_irq(self, lg: Lg, irq: int) -> None:
        fresh = set_irq_pending(lg, irq)
        self.emit(lg, "irq_raise", irq=irq, already_pending=not fresh)

    # --- running --------------------------------------------------------------------------
    def run(self, max_steps: int = 100_000) -> int:
        """Serve Launcher input and deliver interrupts until nothing is left to do.

        2007-DIFF(run-loop): each Guest had a Launcher process and its own run loop in the
        Host, all running at once on real CPUs; here one loop takes turns, Guest by Guest.

        Each step visits every live Guest in id order: its Launcher handles waiting
        input, then the Guest takes at most one interrupt. Returns the number of steps.
        """
        steps = 0
        while self._step():
            steps += 1
            if steps >= max_steps:
                raise LguestError(f"the Guests were still busy after {max_steps} steps: "
                                  "is an interrupt handler re-raising its own irq?")
        return steps

    def _step(self) -> bool:
        busy = False
        for lg in self.lgs:
            if lg.dead is None and lg.launcher.handle_input():
                busy = True
            if lg.dead is None and maybe_do_interrupt(self, lg):
                busy = True
        return busy

    # --- looking ----------------------------------------------------------------------------
    def bindings(self) -> list:
        """Every live DMA binding, Guest by Guest, in table order."""
        return [b for lg in self.lgs for b in lg.bindings()]

    def __repr__(self):
        alive = sum(lg.dead is None for lg in self.lgs)
        return f"Host(guests={len(self.lgs)}, alive={alive}, bindings={len(self.bindings())}, tick={self.tick})"


def _signed(n: int) -> int:
    """A 32-bit register as C's %li prints it on i386."""
    return n - (1 << 32) if n & (1 << 31) else n
