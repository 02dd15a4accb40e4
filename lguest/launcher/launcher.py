"""The Launcher: the user program that made the Guest and serves its devices.

It lays out memory (RAM, the descriptor page, device pages, the console last), tells the
Host about the Guest (LHREQ_INITIALIZE), and then serves the Guest: a SEND_DMA to a
private key comes here, and is handed to the device whose watch_key equals the key.
Everything it does to the Host goes through ``self.lguest``, its /dev/lguest handle.
It trusts nothing the Guest says, but its checks are its own: every pointer must lie
below ``top``. Anything else stops the Launcher, and so the Guest, with a message.
"""
from __future__ import annotations

import os

from .. import abi
from ..errors import LauncherExit, LauncherStuck
from ..memory import GuestMemory
from .console import setup_console
from .block import BlockFile
from .devices import DeviceTable
from .net import setup_net_file


PROGRAM = "lguest"                 # err()/warn() print the program's name first


class Launcher:
    def __init__(self, lguest, mem_mb: int, devices=(), o_direct: bool = False):
        """``lguest``: an open /dev/lguest (``host.open_dev_lguest()``). ``devices``:
        ("sharenet" | "tunnet" | "block", argument) pairs, in command-line order.

        2007-DIFF(no-vmlinux): the 2007 Launcher also loaded the kernel image (and an initrd),
        built the first page tables and wrote the boot header at address 0; here the Guest
        kernel is Python, and RAM starts empty."""
        self.lguest = lguest                                # the only thing it has of the Host
        self.o_direct = o_direct                            # open --block images with O_DIRECT
        self.log: list[str] = []                            # what it prints on stderr, line by line
        self.memory = GuestMemory(mem_mb << 20)
        self.devices = DeviceTable(self.memory)
        self.disks, self.tunnets = [], []
        self.guest_id: int | None = None
        self.exited = False                                 # the Guest died, so the Launcher has exited
        self.status: int | None = None                      # its exit status, once it has exited
        self.stuck = False                                  # a request to the Host never returned
        try:
            self._setup_devices(devices)
            self.guest_id = lguest.initialize(self.memory, self)   # LHREQ_INITIALIZE(pfnlimit = top/4096)
        except Exception:
            self._release_devices()                          # a Launcher that dies frees its locks
            raise

    def _setup_devices(self, devices) -> None:
        """Devices in command-line order (getopt's), then the console, which always comes last."""
        for kind, arg in devices:
            if kind == "sharenet":
                setup_net_file(self, arg)
            elif kind == "block":
                self.disks.append(BlockFile(self, arg, self.o_direct))
            else:
                from .tunnet import setup_tun_net       # here: only a --tunnet Launcher needs dpkt
                self.tunnets.append(setup_tun_net(self, arg))
        self.console = setup_console(self)

    @property
    def tunnet(self):
        """The first --tunnet device, or None."""
        return self.tunnets[0] if self.tunnets else None

    @property
    def top(self) -> int:
        return self.memory.top

    # --- err(3) and friends: what reaches stderr --------------------------------------------
    def warnx(self, msg: str) -> None:
        """warnx(): "lguest: MSG"."""
        line = f"{PROGRAM}: {msg}"
        self.log.append(line)
        self.lguest.trace("launcher_warn", msg=line)

    def warn(self, msg: str, err: int) -> None:
        """warn(): warnx() with the failed call's errno spelled out after it."""
        self.warnx(f"{msg}: {os.strerror(err)}")

    # --- serving output (a SEND_DMA to a private key) -------------------------------------
    def dma_for_launcher(self, key: int, udma: int) -> None:
        """read() returned [dma, key]: hand the DMA to the device watching ``key``, and store
        what it used in the DMA's used_len."""
        try:
            iov = self.dma_to_iov(udma)
            for device in self.devices.devices:
                if device.handle_output is not None and device.watch_key == key:
                    used = device.handle_output(key, iov)
                    if not self.exited:
                        self.set_used_len(udma, used)
                    return
        except LauncherExit as e:
            self.exit(str(e))
            return
        self.warnx(f"Pending dma {c_pointer(udma)}, key {c_pointer(key)}")

    def set_used_len(self, udma: int, used: int) -> None:
        """Write how much a DMA carried into its used_len, as the Guest will read it."""
        self.memory.set_u32(udma, used)
        self.lguest.trace("used_len", addr=udma, value=used, by="launcher")

    def deliver(self, udma: int, used: int, irq: int) -> None:
        """Input is in the Guest's buffer: set its used_len, then raise the buffer's irq."""
        self.set_used_len(udma, used)
        self.trigger_irq(irq)

    def dma_to_iov(self, udma: int) -> list[tuple[int, int]]:
        """dma2iov(): the sections of a Guest DMA as (addr, len), each checked against ``top``."""
        self._check_pointer(udma, abi.DMA_SIZE)
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
            # 2007-DIFF(launcher-messages): errx() printed "lguest.c:LINE: Invalid address N";
            # the file and line of the 2007 source are left out here.
            raise LauncherExit(f"Invalid address {addr - (1 << 32) if addr >= 1 << 31 else addr}")

    # --- talking to the Host through /dev/lguest ------------------------------------------
    def get_dma_buffer(self, key: int) -> tuple[int, int, list] | None:
        """LHREQ_GETDMA, then dma2iov(): (buffer address, its irq, its sections), or None.

        The Host hands the irq back in the buffer's used_len. The pointer checks of
        dma_to_iov() may stop the Launcher (LauncherExit); a request that never returns
        leaves it stuck (LauncherStuck)."""
        try:
            udma = self.lguest.getdma(key)
        except OSError:
            return None
        except LauncherStuck:
            self.stuck = True
            raise
        iov = self.dma_to_iov(udma)
        return udma, self.memory.u32(udma), iov

    def trigger_irq(self, irq: int) -> None:
        """LHREQ_IRQ."""
        self.lguest.irq(irq)

    def serve_input(self) -> bool:
        """Serve every device with waiting input once; True if any was served.

        2007-DIFF(no-waker): a forked Waker select()ed on the input fds and broke the Guest
        out of read() with LHREQ_BREAK; here the Host's run loop asks every Launcher in turn."""
        served = False
        for device in self.devices.devices:
            if device.handle_input is None or self.exited or self.stuck:
                continue
            try:
                served = device.handle_input() or served
            except LauncherExit as e:
                self.exit(str(e))
                return True
            except LauncherStuck:
                return served
        return served

    # --- endings --------------------------------------------------------------------------
    def exit(self, msg: str) -> None:
        """errx(): the Launcher prints its message and exits, which takes its Guest with it."""
        self.warnx(msg)
        self.status = 1
        # 2007-DIFF(launcher-exit): the Launcher process simply ended; the Host freed its Guest
        # with no message of its own. The model records the exit as the Guest's death message.
        self.lguest.close(f"Launcher exited: {msg}")

    def exit_quietly(self, status: int, why: str) -> None:
        """exit(status) with nothing on stderr; ``why`` is only for the death message."""
        self.status = status
        self.lguest.close(f"Launcher exited: {why} (status {status})")

    def guest_died(self, msg: str) -> None:
        """read() returned ENOENT: print the reason (errx), exit, and so let go of everything."""
        self.exited = True
        if self.status is None:
            self.status = 1
        if not msg.startswith("Launcher exited: "):
            self.log.append(f"{PROGRAM}: {msg}")
        self._release_devices()

    def _release_devices(self) -> None:
        for device in self.devices.devices:
            if device.release is not None:
                device.release()


def c_pointer(value: int) -> str:
    """glibc's %p: 0x-prefixed hex, or "(nil)" for 0."""
    return f"{value:#x}" if value else "(nil)"
