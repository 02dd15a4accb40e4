"""The Launcher: the user program that made the Guest and serves its devices.

It lays out memory (RAM, the descriptor page, device pages, the console last), tells the
Host about the Guest (LHREQ_INITIALIZE), and then serves the Guest: a SEND_DMA to a
private key comes here, and is handed to the device whose watch_key equals the key.
It trusts nothing the Guest says, but its checks are its own: every pointer must lie
below ``top``. Anything else stops the Launcher, and so the Guest, with a message.
"""
from __future__ import annotations

from .. import abi
from ..memory import GuestMemory
from .console import setup_console
from .block import BlockFile
from .devices import DeviceTable
from .net import setup_net_file


class LauncherExit(Exception):
    """The Launcher gave up (errx()); the Guest dies with it."""


class Launcher:
    def __init__(self, host, mem_mb: int, sharenet=(), block=(), tunnet=None, o_direct: bool = False):
        self.host = host
        self.o_direct = o_direct                            # open --block images with O_DIRECT
        self.log: list[str] = []                            # what it prints on stderr
        self.memory = GuestMemory(mem_mb << 20)
        self.devices = DeviceTable(self.memory)
        try:
            self._setup_devices(sharenet, block, tunnet)
            self.lg = host.initialize(self.memory, self)    # LHREQ_INITIALIZE(pfnlimit = top/4096)
        except Exception:
            self._release_devices()                          # a Launcher that dies frees its locks
            raise

    def _setup_devices(self, sharenet, block, tunnet) -> None:
        """Devices in command-line order, then the console, which always comes last."""
        for name in sharenet:
            setup_net_file(self, name)
        self.tunnet = None
        if tunnet is not None:
            from .tunnet import setup_tun_net       # here: only a --tunnet Launcher needs dpkt
            self.tunnet = setup_tun_net(self, tunnet)
        self.disks = [BlockFile(self, path, self.o_direct) for path in block]
        self.console = setup_console(self)

    @property
    def top(self) -> int:
        return self.memory.top

    def warn(self, line: str) -> None:
        self.log.append(line)
        self.host.emit(self.lg, "launcher_warn", msg=line)

    # --- serving output (a SEND_DMA to a private key) -------------------------------------
    def handle_output(self, key: int, udma: int) -> None:
        """Hand the Guest's DMA to the device watching ``key``; store what it used in used_len."""
        try:
            iov = self.dma_to_iov(udma)
        except LauncherExit as e:
            self.exit(str(e))
            return
        for device in self.devices.devices:
            if device.handle_output is not None and device.watch_key == key:
                used = device.handle_output(key, iov)
                if self.lg.dead is None:
                    self.memory.set_u32(udma, used)
                    self.host.emit(self.lg, "used_len", addr=udma, value=used, by="launcher")
                return
        self.warn(f"Pending dma {udma:#x}, key {key:#x}")

    def dma_to_iov(self, udma: int) -> list[tuple[int, int]]:
        """The sections of a Guest DMA as (addr, len), each pointer checked against ``top``."""
        self._check_pointer(udma, abi.lguest_dma.itemsize)
        fields = self.memory.unpack(abi.LGUEST_DMA_STRUCT, udma)
        top = self.memory.top                         # read once: this runs for every section
        iov = []
        for addr, length in zip(fields[1:17], fields[17:33]):
            if not length:
                break
            if addr >= top or addr + length >= top:
                self._check_pointer(addr, length)     # raises, with the message
            iov.append((addr, length))
        return iov

    def _check_pointer(self, addr: int, size: int) -> None:
        if addr >= self.top or addr + size >= self.top:
            raise LauncherExit(f"Invalid address {addr:#x} (+{size}): top is {self.top:#x}")

    # --- talking to the Host through /dev/lguest ------------------------------------------
    def get_dma_buffer(self, key: int) -> tuple[int, int] | None:
        """LHREQ_GETDMA: a receive buffer and its irq (passed back in used_len), or None."""
        try:
            addr = self.host.lhreq_getdma(self.lg, key)
        except OSError:
            return None
        return addr, self.memory.u32(addr)

    def trigger_irq(self, irq: int) -> None:
        """LHREQ_IRQ."""
        self.host.lhreq_irq(self.lg, irq)

    def handle_input(self) -> bool:
        """Serve every device with waiting input once; True if any was served."""
        served = False
        for device in self.devices.devices:
            if device.handle_input is None or self.lg.dead is not None:
                continue
            try:
                served = device.handle_input() or served
            except LauncherExit as e:
                self.exit(str(e))
                return True
        return served

    # --- endings --------------------------------------------------------------------------
    def exit(self, msg: str) -> None:
        """errx(): the Launcher exits, which takes its Guest with it."""
        self.log.append(msg)
        self.host.kill_guest(self.lg, f"Launcher exited: {msg}")

    def guest_died(self, msg: str) -> None:
        """read() returned ENOENT: print the reason and let go of shared resources."""
        self.log.append(f"lguest: {msg}")
        self._release_devices()

    def _release_devices(self) -> None:
        for device in self.devices.devices:
            if device.release is not None:
                device.release()
