"""--sharenet on the Launcher side: claim a slot on a LAN's shared page (reference §4.4).

Every Guest naming the same LAN maps *one* page, so their keys into it are equal (the
Futex Trick) and frames go Guest to Guest inside the Host. The Launcher claims a slot
the way the real one did, with an exclusive fcntl lock on byte ``slot`` of the file: the
lowest slot no *other* process holds. fcntl locks belong to a process and never conflict
with its own, so a Launcher naming one LAN twice gets the same slot twice. The locks go
when the Launcher dies. It takes no part in the data path.
"""
from __future__ import annotations

from .. import abi

NET_SLOTS = abi.PAGE_SIZE // abi.lguest_net.itemsize      # 682 MAC slots in one page


def find_slot(launcher, page) -> int:
    """The first byte of the LAN's file that F_SETLK can lock for this Launcher."""
    locks = page.locked_slots                               # slot -> the Launcher holding it
    for slot in range(NET_SLOTS):
        if locks.get(slot, launcher) is launcher:
            locks[slot] = launcher
            return slot
    raise ValueError(f"No free slots in network file {page.name}: all {NET_SLOTS} are locked")


def setup_net_file(launcher, name: str):
    page = launcher.lguest.map_lan_file(name)
    slot = find_slot(launcher, page)
    try:
        device = launcher.devices.new_dev_desc(abi.LGUEST_DEVICE_T_NET, slot | abi.LGUEST_NET_F_NOCSUM, 1,
                                               f"net {name}", shared=page)
    except Exception:
        page.locked_slots.pop(slot, None)                   # no device, so no lock either
        raise
    device.release = lambda: page.locked_slots.pop(slot, None)
    return device
