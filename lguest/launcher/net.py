"""--sharenet on the Launcher side: claim a slot on a LAN's shared page (reference §4.4).

Every Guest naming the same LAN maps *one* page, so their keys into it are equal (the
Futex Trick) and frames go Guest to Guest inside the Host. The Launcher claims a slot
the way the real one took an fcntl lock on byte ``slot`` of the file: the lowest free
one, freed again when the Launcher dies. It takes no part in the data path.
"""
from __future__ import annotations

from .. import abi

NET_SLOTS = abi.PAGE_SIZE // abi.lguest_net.itemsize      # 682 MAC slots in one page


def setup_net_file(launcher, name: str):
    page = launcher.host.shared_page(name)
    locks = page.locked_slots
    slot = next((i for i in range(NET_SLOTS) if i not in locks), None)
    if slot is None:
        raise ValueError(f"LAN {name!r} already has {NET_SLOTS} Guests: every slot is locked")
    locks.add(slot)
    device = launcher.devices.new_dev_desc(abi.LGUEST_DEVICE_T_NET, slot | abi.LGUEST_NET_F_NOCSUM, 1,
                                           f"net {name}", shared=page)
    device.release = lambda: locks.discard(slot)
    return device
