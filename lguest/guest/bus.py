"""D:100–D:140: the lguest bus (drivers/lguest/lguest_bus.c).

The bus is how a Guest finds its devices: it maps the descriptor page the Launcher put
above the top of RAM, adds a device for every non-empty descriptor, and matches each
with the driver that registered for its type. The ``status`` field of each descriptor
records how far that got. In 2007 nothing on the Host side read it back (the Launcher
has a FIXME wishing it did); the bits were put there for a Host to read one day.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Callable

from .. import abi


@dataclass(eq=False)
class LguestDevice:
    """``struct lguest_device``: an index into the descriptor array, and the driver's data."""
    index: int
    private: object = None
    driver: "LguestDriver | None" = None

    @property
    def bus_id(self) -> str:
        return str(self.index)

    def __repr__(self):
        return f"LguestDevice({self.index}, driver={self.driver.name if self.driver else None})"


def lgdev_irq(dev: LguestDevice) -> int:
    """D:380: by convention device ``index`` uses irq index + 1; irq 0 is the timer."""
    return dev.index + 1


@dataclass(eq=False)
class LguestDriver:
    """``struct lguest_driver``: which device type it drives, and its probe function."""
    name: str
    device_type: int
    probe: Callable[[LguestDevice], int]

    def __repr__(self):
        return f"LguestDriver({self.name!r}, type={abi.DEVICE_TYPE_NAMES.get(self.device_type, self.device_type)})"


@dataclass(eq=False)
class LguestBus:
    """The bus state of one Guest kernel (the file's static variables)."""
    kernel: object
    lguest_devices: object = None               # the mapped descriptor array, or None
    devices: list[LguestDevice] = field(default_factory=list)
    drivers: list[LguestDriver] = field(default_factory=list)
    fail_registration: set[int] = field(default_factory=set)   # indexes whose device_register() fails

    # --- D:100 --------------------------------------------------------------------------
    def lguest_bus_init(self) -> int:
        """D:100: if this is an lguest Guest, map the descriptors, register, and scan."""
        kernel = self.kernel
        if kernel.paravirt_name != "lguest":
            return 0
        page = kernel.lguest_map(kernel.max_pfn << abi.PAGE_SHIFT, 1)
        self.lguest_devices = page[:abi.LGUEST_MAX_DEVICES * abi.lguest_device_desc.itemsize].cast("B")
        self.scan_devices()                            # silently: 2007's bus printed nothing here
        return 0

    def desc(self, index: int):
        """The descriptor at ``index``, read and written in Guest memory."""
        return self.kernel.memory.struct_at((self.kernel.max_pfn << abi.PAGE_SHIFT)
                                            + index * abi.lguest_device_desc.itemsize, abi.lguest_device_desc)

    # --- D:110 --------------------------------------------------------------------------
    def scan_devices(self) -> None:
        """D:110: type 0 means "no device"; anything else is added."""
        for i in range(abi.LGUEST_MAX_DEVICES):
            if self.desc(i)["type"]:
                self.add_lguest_device(i)

    # --- D:120 --------------------------------------------------------------------------
    def add_lguest_device(self, index: int) -> None:
        """D:120: say we saw it (ACKNOWLEDGE), then register it; FAILED if that fails."""
        self.desc(index)["status"] |= abi.LGUEST_DEVICE_S_ACKNOWLEDGE
        if index in self.fail_registration:            # a way to watch the failure path
            self.kernel.printk(f"Cannot register lguest device {index}")
            self.desc(index)["status"] |= abi.LGUEST_DEVICE_S_FAILED
            return
        device = LguestDevice(index)
        self.devices.append(device)
        for driver in self.drivers:                    # device_register(): each driver in turn,
            if self.lguest_dev_match(device, driver):  # until one's probe takes the device
                ret = self.lguest_dev_probe(device, driver)
                self.report_failed_probe(device, driver, ret)
                if ret == 0:
                    break

    # --- D:130 --------------------------------------------------------------------------
    def lguest_dev_match(self, device: LguestDevice, driver: LguestDriver) -> bool:
        """D:130: a driver matches a device of its type."""
        return device.driver is None and driver.device_type == self.desc(device.index)["type"]

    # --- D:140 --------------------------------------------------------------------------
    def lguest_dev_probe(self, device: LguestDevice, driver: LguestDriver) -> int:
        """D:140: DRIVER when the couple meets, DRIVER_OK if the probe is happy (returns 0)."""
        desc = self.desc(device.index)
        desc["status"] |= abi.LGUEST_DEVICE_S_DRIVER
        device.driver = driver
        ret = driver.probe(device)
        if ret == 0:
            desc["status"] |= abi.LGUEST_DEVICE_S_DRIVER_OK
        else:
            device.driver = None                      # a failed probe leaves the device unbound
        return ret

    def register_lguest_driver(self, driver: LguestDriver) -> int:
        """Do nothing on a kernel without the lguest bus; otherwise register and match."""
        if self.lguest_devices is None:
            return 0
        self.drivers.append(driver)
        for device in self.devices:                   # driver_register() looks for devices
            if self.lguest_dev_match(device, driver):
                self.report_failed_probe(device, driver, self.lguest_dev_probe(device, driver))
        return 0

    def report_failed_probe(self, device: LguestDevice, driver: LguestDriver, ret: int) -> None:
        """The driver core's really_probe() (drivers/base/dd.c), not lguest's: a probe that
        fails with anything but -ENODEV or -ENXIO ("not my device") is logged. Either way the
        device stays free for the next driver to try."""
        if ret not in (0, -errno.ENODEV, -errno.ENXIO):
            self.kernel.printk(f"{driver.name}: probe of {device.bus_id} failed with error {ret}")

    # --- sysfs --------------------------------------------------------------------------
    SYSFS_FORMATS = {"type": "{:d}", "features": "{:x}", "pfn": "{:d}", "status": "{:x}"}

    def sysfs(self) -> dict[str, str]:
        """/sys/bus/lguest/devices/N/{type,features,pfn,status}: type and pfn in decimal,
        features and status in hex (the "%hu", "%hx", "%u", "%hx" of lguest_bus.c)."""
        files = {}
        for device in self.devices:
            desc = self.desc(device.index)
            for name, fmt in self.SYSFS_FORMATS.items():
                files[f"/sys/bus/lguest/devices/{device.bus_id}/{name}"] = fmt.format(int(desc[name]))
        return files

    def sysfs_write_status(self, index: int, text: str) -> None:
        """status is the one writable file (mode 0644): status_store() parses it with the
        kernel's sscanf("%hi") and replaces the whole field, so a write can clear bits too."""
        value = scan_hi(text)
        if value is None:                             # sscanf() matched nothing: -EINVAL
            raise ValueError(f"EINVAL: status takes a number such as 7, 0x7 or 07, got {text!r}")
        self.desc(index)["status"] = value & 0xFFFF   # the (short) cast


def scan_hi(text: str) -> int | None:
    """The kernel's sscanf("%hi") of 2.6.23 (vsscanf() and simple_strtol()): spaces, an optional
    '-', then a digit; "0x" and a hex digit mean hex, another leading 0 octal, else decimal; the
    digits run as far as they are valid and the rest is ignored. None if it starts with no digit."""
    rest = text.lstrip(" \t\n\v\f\r")
    sign = -1 if rest.startswith("-") else 1
    rest = rest[1:] if sign < 0 else rest
    if not rest[:1].isdigit() or not rest[:1].isascii():
        return None
    base = 10
    if rest[0] == "0":
        base, rest = 8, rest[1:]
        if rest[:1] in ("x", "X") and rest[1:2] and rest[1] in "0123456789abcdefABCDEF":
            base, rest = 16, rest[1:]
    digits = "0123456789abcdef"[:base]
    end = next((i for i, c in enumerate(rest.lower()) if c not in digits), len(rest))
    return sign * int(rest[:end] or "0", base)
