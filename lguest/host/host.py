"""The Host: the hypervisor that runs up to 16 Guests and carries their I/O.

It owns the table of Guests, the hash of DMA bindings, the clock (a tick counter) and
the trace. Guests reach it only through their hypercall gate (gate.py); Launchers only
through their /dev/lguest handle (lguest_user.py). It never raises for Guest
misbehaviour: it kills. It knows no Guest or Launcher code: booting a Guest with its
drivers is the facade's work (``lguest.Host.launch()``, in lguest/machine.py).
"""
from __future__ import annotations

from .. import abi
from ..errors import GuestDead, LguestError
from ..memory import SharedPage
from ..trace import Trace
from . import dma
from .interrupts import maybe_do_interrupt, set_irq_pending
from .lg import Lg
from .lgmem import lgread
from .lguest_user import DevLguest
from .pcap import start_capture

CRASH_MSG_MAX = 128


class Host:
    """The hypervisor: its Guests, their bindings, the clock and the trace; ``run()`` runs them."""

    def __init__(self, trace: bool = True, copy_data_fixed: bool = False, debug_list: bool = False):
        self.lgs: list[Lg] = []                  # lguests[]: a dead Guest's slot is reused
        self.dma_hash: dict = {}                 # FutexKey -> [Binding], newest first
        self.shared_pages: dict[str, SharedPage] = {}
        self.tick = 0
        self.trace = Trace(enabled=trace)
        self.tunnets: dict = {}                  # tap name -> TunNet, one per --tunnet
        self.captures: dict = {}                 # LAN name -> [Capture]; empty when nothing captures
        # 2007-DIFF(copy-fix): an exercise switch, off as in 2007: copy_data() reads each
        # source section from its start (the bug of reference §3.5); True reads from the
        # offset reached.
        self.copy_data_fixed = copy_data_fixed
        self.debug_list = debug_list             # CONFIG_DEBUG_LIST: list_del() checks, and BUGs
        # What a Guest can do to the Host itself (the chapter "When Guests misbehave"):
        self.key_refs: dict = {}                 # ("mm", id) | ("inode", LAN) -> references held
        self.lock_holder: int | None = None      # the Guest whose hypercall oopsed holding lguest_lock
        self.corruption: list[str] = []          # Host state a Guest has damaged, in words

    # --- making Guests --------------------------------------------------------------------
    def open_dev_lguest(self) -> DevLguest:
        """open("/dev/lguest"): a Launcher's handle, its only way to this Host."""
        return DevLguest(self)

    def shared_page(self, name: str) -> SharedPage:
        """The one page every Guest naming LAN ``name`` maps (created on first use)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a shared network is named by a non-empty string, got {name!r}")
        if name in self.tunnets:
            raise ValueError(f"{name!r} is a --tunnet's tap on this Host: name the --sharenet LAN otherwise")
        return self.shared_pages.setdefault(name, SharedPage(name))

    def new_guest(self, memory, fd: DevLguest) -> Lg:
        """LHREQ_INITIALIZE on ``fd``: make the Host's record of a new Guest (ENOSPC past 16).

        Like find_free_guest(), it takes the lowest free slot of the table, and a dead
        Guest's slot is free: its Launcher exited and closed /dev/lguest. So ids, and the
        MACs and addresses made from them, come round again, as they did in 2007.
        """
        if self.lock_holder is not None:         # initialize() takes lguest_lock too
            raise LguestError(f"this Host oopsed holding lguest_lock (in g{self.lock_holder}'s hypercall): "
                              "a new Launcher's LHREQ_INITIALIZE would wait for ever; start a new Host")
        slot = next((i for i, lg in enumerate(self.lgs) if lg.dead is not None), len(self.lgs))
        if slot >= abi.MAX_LGUEST_GUESTS:
            raise LguestError(f"the Host holds at most {abi.MAX_LGUEST_GUESTS} live Guests (MAX_LGUEST_GUESTS); "
                              "start a new Host for more")
        lg = Lg(slot, memory, memory.pfn_limit, fd)
        self.key_refs.pop(("mm", slot), None)    # a new Launcher, a new mm
        if slot == len(self.lgs):
            self.lgs.append(lg)
        else:
            self.lgs[slot] = lg
        self.emit(lg, "initialize", pfn_limit=lg.pfn_limit)
        return lg

    def add_tap(self, tunnet) -> str:
        """A new tap device for a --tunnet: named tapN, the lowest N no LAN of this Host has."""
        n = 0
        while f"tap{n}" in self.tunnets or f"tap{n}" in self.shared_pages:
            n += 1
        self.tunnets[f"tap{n}"] = tunnet
        return f"tap{n}"

    def capture(self, lan: str, path):
        """Record every frame delivered on ``lan`` (a --sharenet name or a --tunnet tap) to a pcap file.

        Returns a ``Capture``: ``.frames`` counts records, ``.close()`` stops it, and it is a
        context manager. Time stamps: tick N is N ms (see lguest.host.pcap).
        """
        return start_capture(self, lan, path)

    # --- the trace and death --------------------------------------------------------------
    def emit(self, lg: Lg | None, kind: str, **fields) -> None:
        """Record an event at the current tick, for Guest ``lg`` (None: the Host itself)."""
        if self.trace.enabled:                   # tested here too: this runs for every step of every send
            self.trace.record(self.tick, None if lg is None else lg.id, kind, fields)

    def watch(self, fn):
        """Call ``fn(event)`` after every traced event; returns a function that stops it."""
        return self.trace.watch(fn)

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
        if not self.lock_blocks(lg):             # release_all_dma() takes lguest_lock
            dma.release_all_dma(self, lg)
        lg.fd.guest_died(msg)

    def oops(self, lg: Lg, msg: str) -> None:
        """The Host itself fails in ``lg``'s hypercall, holding lguest_lock: the lock is never
        released, the Launcher's task dies, and everyone who asks for the lock waits forever."""
        self.emit(lg, "oops", msg=msg)
        self.lock_holder = lg.id
        self.corruption.append(f"Host oops in g{lg.id}'s hypercall, lguest_lock held for ever: {msg}")
        lg.blocked = f"its Launcher's task oopsed in the Host: {msg}"
        if lg.dead is None:
            lg.dead = f"Host oops: {msg}"
            self.emit(lg, "kill", msg=lg.dead)
            lg.fd.guest_died(lg.dead)

    def lock_blocks(self, lg: Lg) -> bool:
        """mutex_lock(&lguest_lock) after an oops: ``lg`` waits for ever. True if it does."""
        if self.lock_holder is None:
            return False
        # 2007-DIFF(oops-staged): the waiting Guest's CPU stayed in its hypercall for ever; here
        # the call returns having done nothing, and the Guest is marked blocked: nothing of it
        # runs again.
        if lg.blocked is None:
            lg.blocked = f"waiting for ever for lguest_lock, held by the oops in g{self.lock_holder}"
        self.emit(lg, "blocked", reason=lg.blocked)
        return True

    # --- hypercalls (the Guest's int $0x1F) -----------------------------------------------
    def hypercall(self, lg: Lg, nr: int, arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        """Run one hypercall to completion and return what the Guest would find in eax.

        H:100: until LGUEST_INIT has named a good lguest_data, that is the only call there
        is; every other one, first, kills the Guest. After it, H:120's switch (HYPERCALLS)."""
        if lg.dead is not None:
            raise GuestDead(f"Guest {lg.id} is dead: it cannot make hypercalls. It was killed with:\n"
                            f"    {lg.dead}")
        if lg.blocked is not None:
            self.emit(lg, "blocked", reason=lg.blocked)
            return 0
        nr, arg1, arg2, arg3 = int(nr) & 0xFFFFFFFF, int(arg1) & 0xFFFFFFFF, int(arg2) & 0xFFFFFFFF, \
            int(arg3) & 0xFFFFFFFF                                                    # 32-bit registers
        self.tick += 1
        self.emit(lg, "hypercall", call=abi.hcall_name(nr), args=(arg1, arg2, arg3))
        # eax comes in holding the call number, and of the calls here only BIND_DMA writes it:
        # every other call hands the Guest its own number back (SEND_DMA returns 13). 2007's
        # GET_WALLCLOCK wrote the time there; with no clock of its own (no-cpu) it returns 11.
        if lg.lguest_data is None:
            self._initialize(lg, nr, arg1)
            return nr
        call = HYPERCALLS.get(nr)
        if call is None:
            if nr not in abi.HCALL_NAMES:
                self.kill_guest(lg, f"Bad hypercall {_signed(nr)}\n")    # the newline is 2007's
            # 2007-DIFF(no-cpu): there is no CPU to switch to: the calls for page tables, the GDT,
            # the IDT, the stack, TLS and the clock are accepted and do nothing.
            return nr
        result = call(self, lg, arg1, arg2, arg3)
        return nr if result is None else result

    def _send_dma(self, lg: Lg, key: int, udma: int, _unused: int) -> None:
        dma.send_dma(self, lg, key, udma)

    def _bind_dma(self, lg: Lg, key: int, dmas: int, num_and_irq: int) -> int:
        return dma.bind_dma(self, lg, key, dmas, (num_and_irq >> 8) & 0xFFFF, num_and_irq & 0xFF)

    def _init_again(self, lg: Lg, *_args) -> None:
        self.kill_guest(lg, "already have lguest_data")

    def _halt(self, lg: Lg, *_args) -> None:
        lg.halted = True

    def _initialize(self, lg: Lg, nr: int, data_addr: int) -> None:
        """The first hypercall must be LGUEST_INIT, naming a good lguest_data; else death."""
        if nr != abi.LHCALL_LGUEST_INIT:
            self.kill_guest(lg, f"hypercall {_signed(nr)} before LGUEST_INIT")
        elif not lg.memory.in_range(data_addr, abi.lguest_data.itemsize):
            # 2007 stored the address in lg->lguest_data first, then printed it with the
            # kernel's %p: eight hex digits, zero-padded, no 0x.
            self.kill_guest(lg, f"bad guest page {data_addr:08x}")
        else:
            lg.lguest_data = data_addr
            lg.memory.struct_at(data_addr, abi.lguest_data)["guestid"] = lg.id

    def _crash(self, lg: Lg, addr: int, *_args) -> None:
        """LHCALL_CRASH: read the Guest's 128-byte message (lgread), then die with it."""
        raw = lgread(self, lg, addr, CRASH_MSG_MAX)
        self.kill_guest(lg, "CRASH: " + raw[:CRASH_MSG_MAX - 1].split(b"\0", 1)[0].decode("latin-1"))

    # --- interrupts ----------------------------------------------------------------------
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

    def idle(self, ms: int) -> None:
        """Time passes with nothing to run: the clock moves on ``ms`` ticks (1 tick = 1 ms).
        ``python -m lguest`` lets wall time in between keystrokes this way."""
        allowed = f"idle(ms) takes a whole number of milliseconds, at least 0; got {ms!r}"
        if isinstance(ms, bool) or not isinstance(ms, int):
            raise TypeError(allowed)
        if ms < 0:
            raise ValueError(allowed)
        self.tick += ms

    def _step(self) -> bool:
        busy = False
        for lg in self.lgs:
            if lg.dead is not None or lg.blocked is not None:
                continue
            if lg.fd.serve_input():
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


HYPERCALLS = {                 # H:120: the calls the I/O story uses; the rest do nothing
    abi.LHCALL_SEND_DMA: Host._send_dma,
    abi.LHCALL_BIND_DMA: Host._bind_dma,
    abi.LHCALL_LGUEST_INIT: Host._init_again,
    abi.LHCALL_CRASH: Host._crash,
    abi.LHCALL_HALT: Host._halt,
}


def _signed(n: int) -> int:
    """A 32-bit register as C's %li prints it on i386."""
    return n - (1 << 32) if n & (1 << 31) else n
