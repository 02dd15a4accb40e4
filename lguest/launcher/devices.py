"""D:010 on the Launcher side: the descriptor page and the device pages above RAM.

The Launcher puts one page of ``LGUEST_MAX_DEVICES`` descriptors just above the top of
the Guest's RAM, then hands out device pages upward from there, in command-line order.
The console comes last, with no pages. Device ``i`` will use irq ``i + 1``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .. import abi
from ..errors import LguestError


@dataclass(eq=False)
class Device:
    """The Launcher's own record of a device (the Guest sees only the descriptor)."""
    index: int
    type: int
    name: str
    mem: int                                   # address of its first page (0 if none)
    watch_key: int | None = None               # SEND_DMA to this key reaches handle_output
    handle_output: Callable | None = None      # (key, iov) -> bytes used
    handle_input: Callable[[], bool] | None = None
    release: Callable[[], None] | None = None      # let go of shared resources when the Launcher exits

    def __repr__(self):
        kind = abi.DEVICE_TYPE_NAMES.get(self.type, str(self.type))
        return f"Device({self.index}, {kind}, {self.name!r}, mem={self.mem:#x})"


class DeviceTable:
    """The descriptor page in Guest memory, and the devices behind its entries."""

    def __init__(self, memory):
        self.memory = memory
        self.desc_addr = memory.map_pages(1, "descriptor page")
        self.devices: list[Device] = []

    @property
    def descriptors(self):
        """The 16 ``lguest_device_desc`` as a numpy view of the real bytes."""
        return self.memory.array_at(self.desc_addr, abi.lguest_device_desc, abi.LGUEST_MAX_DEVICES)

    def new_dev_desc(self, type_: int, features: int, num_pages: int, name: str, shared=None) -> Device:
        """Fill the next descriptor and map the device's pages at the current top."""
        index = len(self.devices)
        if index >= abi.LGUEST_MAX_DEVICES:
            raise LguestError(f"a Guest has at most {abi.LGUEST_MAX_DEVICES} devices (LGUEST_MAX_DEVICES)")
        mem = self.memory.map_pages(num_pages, f"{name} page", shared) if num_pages else 0
        desc = self.descriptors[index]
        desc["type"], desc["features"], desc["num_pages"] = type_, features, num_pages
        desc["pfn"] = mem // abi.PAGE_SIZE
        device = Device(index, type_, name, mem)
        self.devices.append(device)
        return device
