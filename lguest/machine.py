"""The facade: where the three rooms are put together for a reader.

``lguest.Host`` is the hypervisor (lguest.host.Host) plus ``launch()``, which does what
the lguest program and a booting kernel did: a Launcher opens /dev/lguest, lays out the
Guest and initializes it; the Guest kernel is built with the hypercall gate the Host gives
that Guest, and boots. ``launch()`` returns a ``Guest``, whose methods say which room they
act in: memory and ``alloc`` are the Guest's own; ``hypercall`` is the Guest trapping into
the Host; ``console`` is the Launcher's end of the console. Only this module knows all
three rooms; the rooms know only their own doors (see lguest/README.md).
"""
from __future__ import annotations

import operator

from . import abi
from . import host as host_room
from .errors import GuestDead
from .guest.kernel import DRIVERS, GuestKernel
from .host.lg import Lg
from .launcher.launcher import Launcher
from .structs import write_dma

# 2007-DIFF(mem-limit): the 2007 Launcher, linked high, left room for about 2.5 GiB of Guest;
# the model stops at 1 GiB of numpy memory per Guest.
MAX_MEM_MB = 1024
OPTIONS = ("sharenet", "tunnet", "block")       # the device options of the Launcher's command line


def command_line(block=(), sharenet=(), tunnet=None, devices=None) -> list[tuple[str, str]]:
    """The device options as (option, argument) pairs, in command-line order.

    ``devices`` gives that order itself, as the options are written on the command line:
    ``["--block=disk.img", "--sharenet=lan0", "--tunnet=10.0.0.254"]``. The keyword lists
    are the common case, laid out as every --sharenet, then every --tunnet, then every --block.
    """
    if devices is not None:
        if block or sharenet or tunnet:
            raise TypeError("give the devices either in order, devices=[\"--block=FILE\", ...], "
                            "or by kind with block=, sharenet= and tunnet=, not both")
        if isinstance(devices, (str, bytes)) or not hasattr(devices, "__iter__"):
            raise TypeError(f"devices takes a list such as [\"--sharenet=lan0\"], got {devices!r}")
        return [parse_option(option) for option in devices]
    tunnet = [] if tunnet is None else list(tunnet) if isinstance(tunnet, (list, tuple)) else [tunnet]
    for option, value in (("block", block), ("sharenet", sharenet)):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise TypeError(f"{option} takes a list, e.g. {option}=[{value!r}], got {value!r}")
    return ([("sharenet", name) for name in sharenet] + [("tunnet", arg) for arg in tunnet]
            + [("block", path) for path in block])


def check_flag(name: str, value) -> None:
    """A keyword that is a switch takes True or False: "no" would be true."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")


def driver_names(drivers) -> tuple[str, ...]:
    """``drivers=`` as a tuple of names, checked before the Launcher takes hold of anything."""
    if isinstance(drivers, (str, bytes)) or not hasattr(drivers, "__iter__"):
        raise TypeError(f"drivers takes a list of driver names such as ['console'], from {list(DRIVERS)}; "
                        f"got {drivers!r}")
    drivers = tuple(drivers)
    unknown = [d for d in drivers if d not in DRIVERS]
    if unknown:
        raise ValueError(f"unknown driver(s) {unknown}: this Guest kernel can build in {list(DRIVERS)}")
    return drivers


def whole(value, what: str) -> int:
    """``value`` as an int if it is a whole number (numpy integers too), else TypeError saying ``what``."""
    if isinstance(value, bool):
        return int(value)
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{what}, got {value!r}") from None


SECTIONS = "a DMA's sections are a list of (addr, len) pairs of whole numbers, e.g. [(buf, 64)]"


def dma_sections(sections, what: str = SECTIONS) -> list[tuple[int, int]]:
    """The (addr, len) pairs of one lguest_dma, checked for shape and type (their values are
    the Guest's business: a bad address is for the Host to find, and kill for)."""
    if isinstance(sections, (str, bytes)) or not hasattr(sections, "__iter__"):
        raise TypeError(f"{what}; got {sections!r}")
    pairs = []
    for section in sections:
        try:
            addr, length = section
            pairs.append((whole(addr, what), whole(length, what)))
        except (TypeError, ValueError):
            raise TypeError(f"{what}; got the section {section!r}") from None
    return pairs


def parse_option(option) -> tuple[str, str]:
    """"--block=disk.img" -> ("block", "disk.img"); anything else is refused, saying what is allowed."""
    allowed = "--block=FILE, --sharenet=NAME, --tunnet=IP or --tunnet=pcap:FILE"
    if isinstance(option, str) and option.startswith("--") and "=" in option:
        name, value = option[2:].split("=", 1)
        if name in OPTIONS and value:
            return name, value
    raise ValueError(f"a device option is one of {allowed}; got {option!r}")


class Host(host_room.Host):
    """The hypervisor, with ``launch()``: start a Guest as the lguest command line would."""

    def __init__(self, trace: bool = True, copy_data_fixed: bool = False, debug_list: bool = False):
        for name, flag in (("trace", trace), ("copy_data_fixed", copy_data_fixed), ("debug_list", debug_list)):
            check_flag(name, flag)
        super().__init__(trace=trace, copy_data_fixed=copy_data_fixed, debug_list=debug_list)
        self.guests: list[Guest] = []            # the Guests handed to readers, by id (slots reused)

    def launch(self, mem_mb: int = 16, block=(), sharenet=(), tunnet=None, devices=None, drivers=None,
               boot: bool = True, o_direct: bool = False) -> "Guest":
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
        check_flag("boot", boot)
        check_flag("o_direct", o_direct)
        return boot_guest(self, mem_mb=mem_mb, devices=command_line(block, sharenet, tunnet, devices),
                          drivers=DRIVERS if drivers is None else drivers, boot=boot, o_direct=o_direct)

    def run(self, max_steps: int = 100_000) -> int:
        allowed = f"max_steps is a whole number of steps, at least 1; got {max_steps!r}"
        if isinstance(max_steps, bool) or not isinstance(max_steps, int):
            raise TypeError(allowed)
        if max_steps < 1:
            raise ValueError(allowed)
        return super().run(max_steps)

    run.__doc__ = host_room.Host.run.__doc__

    def kill_guest(self, lg, msg: str) -> None:
        if not isinstance(lg, Lg):
            raise TypeError(f"kill_guest(lg, msg) takes the Host's record of a Guest, host.lgs[guest.id]; got {lg!r}")
        if not isinstance(msg, str):
            raise TypeError(f"kill_guest's message is a string (why the Guest died), got {msg!r}")
        if lg.dead is None and not any(mine is lg for mine in self.lgs):
            raise ValueError(f"{lg!r} is not one of this Host's Guests: kill_guest takes one of host.lgs")
        super().kill_guest(lg, msg)

    kill_guest.__doc__ = host_room.Host.kill_guest.__doc__


def boot_guest(host, mem_mb=16, devices=(), drivers=DRIVERS, boot=True, o_direct=False) -> "Guest":
    """What ``lguest [--sharenet=NAME | --tunnet=IP | --block=FILE]... MEM_MB`` did, then the boot.

    ``devices`` are (option, argument) pairs in command-line order (see command_line())."""
    if isinstance(mem_mb, bool) or not isinstance(mem_mb, int) or not 1 <= mem_mb <= MAX_MEM_MB:
        raise ValueError(f"mem_mb must be a whole number of MiB, 1..{MAX_MEM_MB}, got {mem_mb!r}")
    drivers = driver_names(drivers)                     # before the Launcher registers the Guest
    launcher = Launcher(host.open_dev_lguest(), mem_mb, devices, o_direct=o_direct)
    gate = launcher.lguest.hypercall_gate()
    kernel = GuestKernel(launcher.guest_id, launcher.memory, gate, drivers=drivers, trace_sink=gate.trace)
    guest = Guest(host, launcher, kernel)
    if boot:
        kernel.boot()
        if kernel.net is not None:
            tunnet_init_scripts(launcher, kernel)
    if guest.id < len(host.guests):
        host.guests[guest.id] = guest            # the slot of a dead Guest, reused
    else:
        host.guests.append(guest)
    return guest


def tunnet_init_scripts(launcher, kernel) -> None:
    """The init script of a tunnet Guest: each tunnet interface gets its address beside the Host's.

    Interfaces are named in descriptor order, so --tunnet's ethN counts the net devices before it."""
    nets = [d.index for d in launcher.devices.devices if d.type == abi.LGUEST_DEVICE_T_NET]
    for tun in launcher.tunnets:
        kernel.shell.run(f"ifconfig eth{nets.index(tun.device.index)} {tun.guest_ip}/{tun.prefixlen}")


class Guest:
    """One running Guest: its memory, its kernel, its Launcher and its fate."""

    def __init__(self, host, launcher, kernel):
        self.host = host
        self.launcher = launcher
        self.kernel = kernel
        self.id = kernel.id
        self.memory = launcher.memory
        self._lg = launcher.lguest.lg            # the Host's record: the facade may look at every room

    @property
    def console(self):
        """The Launcher's end of the console: ``.output`` and ``.type()``."""
        return self.launcher.console

    @property
    def dead(self) -> str | None:
        """None while the Guest lives, else the message it was killed with."""
        return self._lg.dead

    @property
    def blocked(self) -> str | None:
        """None, or why the Guest waits for ever: a Host oops holds lguest_lock (see oops-staged)."""
        return self._lg.blocked

    @property
    def devices(self):
        """The descriptor array above the top of RAM, as a numpy view of its bytes."""
        return self.launcher.devices.descriptors

    def alloc(self, size: int, align: int = 16) -> int:
        """Guest memory from the kernel's allocator; returns its physical address."""
        return self.kernel.kmalloc.alloc(size, align)

    def free(self, addr: int) -> None:
        self.kernel.kmalloc.free(whole(addr, "free() takes an address that alloc() returned (a whole number)"))

    def hypercall(self, nr: int, arg1: int = 0, arg2: int = 0, arg3: int = 0) -> int:
        """A raw hypercall, as the Guest's ``int $0x1F`` with eax=nr, edx, ebx, ecx."""
        for name, value in (("nr", nr), ("arg1", arg1), ("arg2", arg2), ("arg3", arg3)):
            whole(value, f"a hypercall's number and arguments are whole numbers (32-bit registers): {name}")
        if self.dead is not None:
            raise GuestDead(f"Guest {self.id} is dead: it cannot make hypercalls. It was killed with:\n"
                            f"    {self.dead}")
        return self.kernel.hcall(nr, arg1, arg2, arg3)

    def dma(self, sections=(), used_len: int = 0) -> int:
        """Allocate one ``lguest_dma`` describing ``[(addr, len), ...]``; returns its address."""
        sections = dma_sections(sections)
        used_len = whole(used_len, "used_len is a whole number")
        return self._write_dmas([sections], used_len)

    def dma_array(self, entries) -> int:
        """Allocate a receive ring: one ``lguest_dma`` per list of sections, back to back."""
        what = ("dma_array takes a list of entries, and each entry is a list of (addr, len) sections, "
                "e.g. [[(buf, 64)], [(buf2, 64)]]")
        if isinstance(entries, (str, bytes)) or not hasattr(entries, "__iter__"):
            raise TypeError(f"{what}; got {entries!r}")
        entries = [dma_sections(sections, what) for sections in entries]
        if not entries:
            raise ValueError("a DMA array needs at least one entry (a list of (addr, len) sections)")
        return self._write_dmas(entries)

    def _write_dmas(self, entries, used_len: int = 0) -> int:
        """Allocate the lguest_dmas back to back and fill them; a refused one gives the memory back."""
        addr = self.alloc(abi.DMA_SIZE * len(entries), align=4)
        try:
            for i, sections in enumerate(entries):
                write_dma(self.memory, addr + i * abi.DMA_SIZE, sections, used_len)
        except Exception:
            self.free(addr)
            raise
        return addr

    @property
    def pending_irqs(self) -> list[int]:
        """The interrupt lines the Host has raised and the Guest has not yet taken."""
        bits = self._lg.irqs_pending
        return [irq for irq in range(abi.LGUEST_IRQS) if bits >> irq & 1]

    def shell(self, command: str) -> str:
        """Run a command in the Guest's tiny userspace and return what it printed."""
        if not isinstance(command, str):
            raise TypeError(f"shell() takes a command line as a string, e.g. guest.shell('ifconfig'); got {command!r}")
        if self.dead is not None:
            raise GuestDead(f"Guest {self.id} is dead: nothing runs in it. It was killed with:\n"
                            f"    {self.dead}")
        return self.kernel.shell.run(command)

    def open(self, path: str, mode: str = "rb", buffering: int = -1):
        """A real file object on a Guest disk: every read and write goes through the driver.

        ``buffering=0`` gives the unbuffered device, as Python's open() does."""
        if self.dead is not None:
            raise GuestDead(f"Guest {self.id} is dead: nothing runs in it. It was killed with:\n"
                            f"    {self.dead}")
        return self.kernel.open(path, mode, buffering)

    def __repr__(self):
        kinds = [abi.DEVICE_TYPE_NAMES[int(t)] for t in self.devices["type"] if t]
        state = f"dead: {self.dead}" if self.dead else f"blocked: {self.blocked}" if self.blocked else "running"
        return f"Guest({self.id}, {self.memory.ram_size >> 20} MiB, devices={kinds}, {state})"
