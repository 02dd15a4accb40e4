"""The lguest Drivers, executable: a faithful model of the 2007 lguest I/O design.

Three characters, kept in separate rooms:

* ``lguest.guest``: the Linux kernel inside the virtual machine and its drivers;
* ``lguest.host``: the hypervisor, with its hypercalls, keys, checks and copies;
* ``lguest.launcher``: the user program that laid out the Guest and serves its devices.

Below them: ``lguest.abi`` (the C constants and struct layouts), ``lguest.memory``
(Guest-physical memory) and ``lguest.trace`` (the event log).
"""
from . import abi
from .errors import GuestDead, GuestMemoryError, LguestError, NotYetAvailable
from .machine import Guest, Host

__all__ = ["Host", "Guest", "abi", "LguestError", "NotYetAvailable", "GuestDead", "GuestMemoryError"]
