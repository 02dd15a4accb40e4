"""D:100-D:140: the lguest bus, its status bits and its sysfs files."""
import errno

import pytest

import lguest
from lguest import abi
from lguest.guest.bus import LguestDriver, lgdev_irq
from lguest.guest.kernel import GuestKernel
from lguest.memory import GuestMemory

ACK, DRV, OK, FAILED = (abi.LGUEST_DEVICE_S_ACKNOWLEDGE, abi.LGUEST_DEVICE_S_DRIVER,
                        abi.LGUEST_DEVICE_S_DRIVER_OK, abi.LGUEST_DEVICE_S_FAILED)


def statuses(guest):
    return [int(s) for s in guest.devices["status"][:len(guest.launcher.devices.devices)]]


def bare_metal_kernel():
    return GuestKernel(0, GuestMemory(1 << 20), None, paravirt_name="bare hardware")


def test_d100_bus_init_does_nothing_on_a_non_guest():
    kernel = bare_metal_kernel()
    assert kernel.bus.lguest_bus_init() == 0
    assert kernel.bus.lguest_devices is None and kernel.bus.devices == []


def test_d100_bus_init_maps_the_descriptor_page_above_ram_and_scans():
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"], drivers=())
    bus = guest.kernel.bus
    assert bus.lguest_devices is not None
    assert bytes(bus.lguest_devices) == guest.memory.read(4 << 20, abi.LGUEST_MAX_DEVICES * 12)
    assert [d.index for d in bus.devices] == [0, 1]


def test_d100_the_bus_prints_nothing_when_all_goes_well():
    """2007's lguest_bus.c had no printk on success: no "bus registered", no device count."""
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"])
    assert guest.kernel.dmesg == ["Linux version 2.6.23 (the lguest model): Guest 0, 4 MiB"]
    assert guest.console.output == "Linux version 2.6.23 (the lguest model): Guest 0, 4 MiB\r\n# "


def test_d110_scan_devices_skips_type_0():
    guest = lguest.Host().launch(mem_mb=4, drivers=())
    guest.devices[5]["type"] = abi.LGUEST_DEVICE_T_BLOCK     # a hole before it stays a hole
    guest.kernel.bus.devices.clear()
    guest.kernel.bus.scan_devices()
    assert [d.index for d in guest.kernel.bus.devices] == [0, 5]
    assert int(guest.devices[3]["status"]) == 0


def test_d120_add_device_sets_acknowledge_and_failed_when_registration_fails():
    host = lguest.Host()
    good = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())
    assert statuses(good) == [ACK, ACK]
    bad = lguest.Host().launch(mem_mb=4, sharenet=["lan0"], drivers=())
    bad.kernel.bus.fail_registration.add(0)
    bad.devices["status"][:2] = 0
    bad.kernel.bus.devices.clear()
    bad.kernel.bus.scan_devices()
    assert statuses(bad) == [ACK | FAILED, ACK]
    assert "Cannot register lguest device 0" in bad.kernel.dmesg


def test_d130_match_is_by_type():
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"], drivers=())
    probed = []
    driver = LguestDriver("test-net", abi.LGUEST_DEVICE_T_NET, lambda dev: probed.append(dev.index) or 0)
    guest.kernel.bus.register_lguest_driver(driver)
    assert probed == [0]                                       # the net device, not the console


def test_d140_good_probe_sets_driver_then_driver_ok():
    guest = lguest.Host().launch(mem_mb=4)
    assert statuses(guest) == [ACK | DRV | OK]                 # the console driver probed it


def test_d140_failing_probe_sets_driver_but_not_driver_ok_nor_failed():
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"], drivers=())
    seen = []

    def probe(dev):
        seen.append(int(guest.devices[dev.index]["status"]))   # DRIVER is set before the probe
        return -errno.ENOMEM
    assert guest.kernel.bus.register_lguest_driver(LguestDriver("sulky", abi.LGUEST_DEVICE_T_NET, probe)) == 0
    assert seen == [ACK | DRV]
    assert statuses(guest)[0] == ACK | DRV


def test_d140_a_failed_probe_is_logged_by_the_driver_core_unless_it_means_not_mine():
    """2.6.23's really_probe() warns "<driver>: probe of <bus_id> failed with error <n>" for any
    failure but -ENODEV and -ENXIO, which mean "not my device" and stay silent."""
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0", "lan1", "lan2"], drivers=())
    answers = {0: -errno.ENOMEM, 1: -errno.ENODEV, 2: -errno.ENXIO}
    driver = LguestDriver("sulky", abi.LGUEST_DEVICE_T_NET, lambda dev: answers[dev.index])
    before = len(guest.kernel.dmesg)
    guest.kernel.bus.register_lguest_driver(driver)
    assert guest.kernel.dmesg[before:] == ["sulky: probe of 0 failed with error -12"]


def test_d120_a_hotplugged_device_is_offered_to_the_next_driver_when_a_probe_fails():
    """device_register() goes through the bus's drivers in the order they registered until
    one's probe takes the device: a refusal, or any other failure, lets the next one try."""
    guest = lguest.Host().launch(mem_mb=4, drivers=())
    offered = []

    def driver(name, ret):
        return LguestDriver(name, abi.LGUEST_DEVICE_T_BLOCK, lambda dev: offered.append(name) or ret)
    for d in (driver("refuses", -errno.ENODEV), driver("fails", -errno.EIO),
              driver("takes", 0), driver("too late", 0)):
        guest.kernel.bus.register_lguest_driver(d)
    guest.devices[3]["type"] = abi.LGUEST_DEVICE_T_BLOCK
    guest.kernel.bus.add_lguest_device(3)
    assert offered == ["refuses", "fails", "takes"]
    assert int(guest.devices[3]["status"]) == ACK | DRV | OK
    assert guest.kernel.bus.devices[-1].driver.name == "takes"
    assert guest.kernel.dmesg[-1] == "fails: probe of 3 failed with error -5"


def test_d140_register_driver_does_nothing_on_a_non_guest():
    kernel = bare_metal_kernel()
    probed = []
    driver = LguestDriver("x", abi.LGUEST_DEVICE_T_CONSOLE, lambda dev: probed.append(dev) or 0)
    assert kernel.bus.register_lguest_driver(driver) == 0
    assert kernel.bus.drivers == [] and probed == []


def test_d380_lgdev_irq_is_index_plus_one():
    guest = lguest.Host().launch(mem_mb=4, sharenet=["a", "b"])
    assert [lgdev_irq(d) for d in guest.kernel.bus.devices] == [1, 2, 3]
    assert guest.kernel.irq_actions[3][0].name == "hvc_console"   # the console is last: index 2


def test_sysfs_files_show_type_features_pfn_status():
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"])
    assert guest.shell("ls /sys/bus/lguest/devices/0") == "features\npfn\nstatus\ntype\n"
    out = guest.shell("cat /sys/bus/lguest/devices/0/type /sys/bus/lguest/devices/0/features "
                      "/sys/bus/lguest/devices/0/pfn /sys/bus/lguest/devices/1/status")
    assert out.split() == ["2", "4000", str((4 << 20) // 4096 + 1), "7"]
    guest.kernel.bus.sysfs_write_status(0, "0x80")
    assert guest.shell("cat /sys/bus/lguest/devices/0/status") == "80\n"


@pytest.mark.parametrize("text, status", [
    ("7", 7), ("0x7\n", 7), ("010", 8), ("08", 0), ("7 junk", 7), ("0o10", 0), ("1_0", 1),
    ("  0XfF", 0xFF), ("-1", 0xFFFF), ("0x", 0), ("70000", 70000 & 0xFFFF)])
def test_d100_sysfs_status_store_parses_as_the_kernels_sscanf_hi(text, status):
    """status_store(): sscanf(buf, "%hi", &status): base from the prefix, digits as far as they
    go, the rest ignored, cast to a short. It replaces the field, so it can clear bits."""
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"])
    assert int(guest.devices[0]["status"]) == ACK | DRV | OK
    guest.kernel.bus.sysfs_write_status(0, text)
    assert int(guest.devices[0]["status"]) == status


@pytest.mark.parametrize("text", ["", "+5", "x7", "  ", "junk"])
def test_d100_sysfs_status_store_without_a_leading_digit_is_einval_and_changes_nothing(text):
    guest = lguest.Host().launch(mem_mb=4, sharenet=["lan0"])
    with pytest.raises(ValueError, match="EINVAL: status takes a number"):
        guest.kernel.bus.sysfs_write_status(0, text)
    assert int(guest.devices[0]["status"]) == ACK | DRV | OK


def test_boot_messages_reach_the_console_through_the_early_console():
    host = lguest.Host()
    guest = host.launch(mem_mb=4)
    assert guest.console.output.startswith("Linux version 2.6.23")
    first_bind = next(e.seq for e in host.trace if e.kind == "bind")
    sends = [e for e in host.trace if e.kind == "send_dma" and e.key == 0]
    assert sends and sends[0].seq < first_bind                 # output before the probe bound input
