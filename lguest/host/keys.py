"""Keys and the Futex Trick (reference §3.1).

A DMA key is a Guest-physical address, but the Host never compares the raw number. It
asks, as the futex code does, *what memory* the address names:

* normal Guest RAM and device pages are private to one Launcher, so the key is
  (that Guest, that address), and only that Guest can ever match it;
* a page of a shared file (a LAN) is the same memory in every Guest that maps it, so the
  key is (that file, the offset in it), and two Guests get **equal keys even when they
  map the page at different physical addresses**. That is the Futex Trick.
"""
from __future__ import annotations

from typing import NamedTuple


class FutexKey(NamedTuple):
    """What a DMA key names: ``shared`` memory of a file, or one Guest's ``private`` memory.

    A bound key holds a reference on the mm or the inode behind it (get_futex_key_refs),
    dropped again at unbind: the Host counts them in ``host.key_refs`` (dma.get_key_refs)."""
    shared: bool
    space: int | str        # the Guest id (private) or the shared file's name
    offset: int             # the physical address (private) or the offset in the file

    def __repr__(self):
        if self.shared:
            return f"shared({self.space!r}+{self.offset:#x})"
        return f"private(g{self.space}, {self.offset:#x})"


def get_futex_key(memory, guest_id: int, addr: int) -> FutexKey | None:
    """The key ``addr`` names in this Guest, or None if get_futex_key() would fail.

    It fails unless the address is 4-byte aligned (a futex rule lguest inherits, not one
    it needs) and mapped. The caller kills the Guest; its message depends on the call.
    """
    # 2007-DIFF(keys-above-top): any address the Launcher had mapped had a futex key, its
    # own code and stack above the Guest included; here nothing is mapped above top.
    if addr % 4 or not 0 <= addr < memory.top:
        return None
    region = memory.region_at(addr)
    if region.shared is not None:
        return FutexKey(True, region.shared.name, addr - region.start)
    return FutexKey(False, guest_id, addr)
