"""A stand-in for the Linux 2.6.23 networking core: sk_buffs and net_devices.

Just enough for lguest_net.c. An ``SkBuff`` is bytes in Guest memory: a linear head at
a physical address (``data``, ``len - data_len`` bytes of it) and, optionally, page
fragments ``(page, offset, size)`` holding the other ``data_len`` bytes. A ``NetDevice``
is an Ethernet interface (ethN) with the driver's hooks and the counters ifconfig shows.
``netif_rx`` hands a received frame to the Guest's stack (lguest.guest.inet) at once:
the model runs the receive softirq straight away instead of from a backlog.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Callable

from ... import abi
from ...errors import LguestError

# --- <linux/if_ether.h> ----------------------------------------------------------------
ETH_ALEN = 6                   # bytes in an Ethernet address
ETH_HLEN = 14                  # destination, source, protocol
ETH_DATA_LEN = 1500            # the largest payload (the MTU)
ETH_FRAME_LEN = ETH_HLEN + ETH_DATA_LEN
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_802_3 = 0x0001           # what eth_type_trans() calls a raw 802.3 frame
ETH_P_802_2 = 0x0004           # ... and an 802.2 LLC one

# --- <linux/if.h>: interface flags ------------------------------------------------------
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_RUNNING = 0x40
IFF_PROMISC = 0x100
IFF_ALLMULTI = 0x200
IFF_MULTICAST = 0x1000
IFF_NAMES = ((IFF_UP, "UP"), (IFF_BROADCAST, "BROADCAST"), (IFF_RUNNING, "RUNNING"),
             (IFF_PROMISC, "PROMISC"), (IFF_ALLMULTI, "ALLMULTI"), (IFF_MULTICAST, "MULTICAST"))

# --- <linux/netdevice.h>: features ------------------------------------------------------
NETIF_F_SG = 1                 # scatter-gather: an skb may come with page fragments
NETIF_F_NO_CSUM = 4            # no checksums needed at all (a reliable virtual wire)

# --- <linux/skbuff.h> (2.6.23 values) ---------------------------------------------------
CHECKSUM_NONE = 0
CHECKSUM_UNNECESSARY = 2
PACKET_HOST, PACKET_BROADCAST, PACKET_MULTICAST, PACKET_OTHERHOST = 0, 1, 2, 3
NET_SKB_PAD = 16               # netdev_alloc_skb() keeps this much headroom
MAX_SKB_FRAGS = 18             # 65536 / PAGE_SIZE + 2

NET_RX_SUCCESS, NET_RX_DROP = 0, 1


class SkBuff:
    """``struct sk_buff``: one packet, as bytes in Guest memory.

    ``head`` is the kmalloc'd buffer (``size`` bytes); ``data`` is where the packet starts
    in it and ``tail`` where the linear part ends. ``frags`` are ``(page, offset, size)``
    pieces that follow the linear part (the "non-linear" skb of a NETIF_F_SG device).
    """
    __slots__ = ("kernel", "head", "size", "data", "tail", "frags", "len", "data_len",
                 "dev", "protocol", "pkt_type", "ip_summed", "mac_header", "freed")

    def __init__(self, kernel, head: int, size: int):
        self.kernel = kernel
        self.head = head
        self.size = size
        self.data = self.tail = head
        self.frags: list[tuple[int, int, int]] = []
        self.len = 0                     # all the bytes: linear part + fragments
        self.data_len = 0                # the bytes in fragments
        self.dev = None
        self.protocol = 0
        self.pkt_type = PACKET_HOST
        self.ip_summed = CHECKSUM_NONE
        self.mac_header = None           # where the Ethernet header was (set by eth_type_trans)
        self.freed = False               # dev_kfree_skb() has given it back

    @property
    def headlen(self) -> int:
        """skb_headlen(): the bytes in the linear part."""
        return self.len - self.data_len

    @property
    def end(self) -> int:
        return self.head + self.size

    # --- the pointer moves of <linux/skbuff.h> ------------------------------------------
    def skb_reserve(self, n: int) -> None:
        """Leave ``n`` bytes of headroom; only on an empty skb."""
        if self.len or self.data + n > self.end:
            raise ValueError(f"skb_reserve({n}) needs an empty skb with room; this one has len {self.len}")
        self.data += n
        self.tail += n

    def skb_put(self, n: int) -> int:
        """Claim ``n`` more bytes at the tail (someone has written them); returns where they start."""
        if n < 0 or self.tail + n > self.end:
            raise ValueError(f"skb_put({n}): only {self.end - self.tail} bytes of tailroom left")
        if self.frags:
            raise ValueError("skb_put() adds to the linear part, so it must come before any fragment")
        start = self.tail
        self.tail += n
        self.len += n
        return start

    def skb_pull(self, n: int) -> int:
        """Drop ``n`` bytes from the front of the linear part; returns the new data pointer."""
        if not 0 <= n <= self.headlen:
            raise ValueError(f"skb_pull({n}): the linear part holds only {self.headlen} bytes")
        self.data += n
        self.len -= n
        return self.data

    def add_frag(self, page: int, offset: int, size: int) -> None:
        """skb_fill_page_desc(): append ``size`` bytes at ``offset`` in ``page`` (one page at most)."""
        if page % abi.PAGE_SIZE or not 0 <= offset < abi.PAGE_SIZE or not 0 < size <= abi.PAGE_SIZE - offset:
            raise ValueError(f"a fragment is 1..(4096 - offset) bytes inside one page-aligned page, "
                             f"got page {page:#x}, offset {offset}, size {size}")
        if len(self.frags) >= MAX_SKB_FRAGS:
            raise ValueError(f"an skb holds at most {MAX_SKB_FRAGS} fragments")
        self.frags.append((page, offset, size))
        self.len += size
        self.data_len += size

    def bytes(self) -> bytes:
        """The packet's bytes: the linear part, then each fragment."""
        memory = self.kernel.memory
        out = memory.read(self.data, self.headlen)
        for page, offset, size in self.frags:
            out += memory.read(page + offset, size)
        return out

    def __repr__(self):
        frags = f", {len(self.frags)} frag(s)" if self.frags else ""
        return f"SkBuff(data {self.data:#x}, len {self.len}{frags})"


def alloc_skb(kernel, size: int) -> SkBuff | None:
    """An empty skb with room for ``size`` bytes of Guest memory; None when memory runs out."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"alloc_skb() takes a positive size in bytes, got {size!r}")
    try:
        head = kernel.kmalloc.alloc(size)
    except LguestError:
        return None
    return SkBuff(kernel, head, size)


def dev_alloc_skb(kernel, length: int) -> SkBuff | None:
    """alloc_skb() with NET_SKB_PAD bytes of headroom reserved, as drivers use for receive."""
    skb = alloc_skb(kernel, length + NET_SKB_PAD)
    if skb is not None:
        skb.skb_reserve(NET_SKB_PAD)
    return skb


def netdev_alloc_skb(dev: "NetDevice", length: int) -> SkBuff | None:
    """dev_alloc_skb() for a device: the skb remembers it."""
    skb = dev_alloc_skb(dev.kernel, length)
    if skb is not None:
        skb.dev = dev
    return skb


def dev_kfree_skb(skb: SkBuff) -> None:
    """Give the skb's buffer back (page fragments belong to whoever attached them)."""
    skb.kernel.kmalloc.free(skb.head)
    skb.freed = True


kfree_skb = dev_kfree_skb


def skb_from_bytes(kernel, data: bytes) -> SkBuff | None:
    """A linear skb holding ``data``: what the stack builds before dev_queue_xmit()."""
    skb = alloc_skb(kernel, max(1, len(data)))
    if skb is not None:
        kernel.memory.write(skb.skb_put(len(data)), data)
    return skb


# --- barriers ------------------------------------------------------------------------------
def wmb(kernel, why: str = "") -> None:
    """A write memory barrier. The model's stores are already in order; it is recorded in
    the Guest's event log so the order of "barrier, then used_len = 0" can be seen."""
    kernel.emit("wmb", why=why)


# --- struct net_device -------------------------------------------------------------------
@dataclass
class NetDeviceStats:
    """``struct net_device_stats``: the counters ifconfig prints."""
    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    multicast: int = 0
    collisions: int = 0
    rx_length_errors: int = 0
    rx_over_errors: int = 0
    rx_crc_errors: int = 0
    rx_frame_errors: int = 0
    rx_fifo_errors: int = 0
    rx_missed_errors: int = 0
    tx_aborted_errors: int = 0
    tx_carrier_errors: int = 0
    tx_fifo_errors: int = 0
    tx_heartbeat_errors: int = 0
    tx_window_errors: int = 0

    def nonzero(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


@dataclass(eq=False)
class NetDevice:
    """``struct net_device``: one interface, its hooks and its counters."""
    kernel: object
    name: str = "eth%d"                              # the number is picked at register time
    dev_addr: bytes = bytes(ETH_ALEN)
    broadcast: bytes = b"\xff" * ETH_ALEN
    flags: int = IFF_BROADCAST | IFF_MULTICAST
    mc_list: list = field(default_factory=list)      # multicast addresses asked for
    features: int = 0
    mtu: int = ETH_DATA_LEN
    priv: object = None                              # netdev_priv(): the driver's own struct
    priv_addr: int = 0                               # ... and where it sits in Guest memory
    open: Callable | None = None
    stop: Callable | None = None
    hard_start_xmit: Callable | None = None
    set_multicast_list: Callable | None = None
    set_mac_address: Callable | None = None
    stats: NetDeviceStats = field(default_factory=NetDeviceStats)
    registered: bool = False

    @property
    def mc_count(self) -> int:
        return len(self.mc_list)

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    def __repr__(self):
        return f"NetDevice({self.name}, {mac_str(self.dev_addr)}, {'up' if self.up else 'down'})"


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def alloc_etherdev(kernel, sizeof_priv: int) -> NetDevice | None:
    """An Ethernet device with ``sizeof_priv`` bytes of driver struct in Guest memory; None if
    that memory cannot be had. The driver's struct lives there because the Host reads its
    receive DMA array from it."""
    try:
        priv_addr = kernel.kmalloc.alloc(sizeof_priv, align=4)
    except LguestError:
        return None
    kernel.memory.write(priv_addr, bytes(sizeof_priv))
    dev = NetDevice(kernel, priv_addr=priv_addr)
    dev.set_mac_address = eth_mac_addr
    return dev


def eth_mac_addr(dev: NetDevice, addr: bytes) -> int:
    dev.dev_addr = bytes(addr)
    return 0


def free_netdev(dev: NetDevice) -> None:
    dev.kernel.kmalloc.free(dev.priv_addr)


def register_netdev(dev: NetDevice) -> int:
    """Name it (the lowest free ethN) and add it to the kernel's list of devices."""
    devices = dev.kernel.inet.dev_base
    if "%d" in dev.name:
        taken = {d.name for d in devices}
        dev.name = next(dev.name % n for n in range(len(devices) + 1) if dev.name % n not in taken)
    devices.append(dev)
    dev.registered = True
    return 0


def unregister_netdev(dev: NetDevice) -> None:
    if dev.up:
        dev_close(dev)
    dev.kernel.inet.dev_base.remove(dev)
    dev.registered = False


# --- what ifconfig does through ioctls ---------------------------------------------------
def dev_open(dev: NetDevice) -> int:
    """ifconfig ethN up: the driver's open hook, then the flags."""
    if dev.up:
        return 0
    err = dev.open(dev) if dev.open else 0
    if err == 0:
        dev.flags |= IFF_UP | IFF_RUNNING
        # 2007-DIFF(all-hosts): here 2.6.23 sent NETDEV_UP, and IPv4 (inetdev_event() ->
        # ip_mc_up()) joined 224.0.0.1 on the interface. lguestnet's multicast hook then saw
        # mc_count 1 and set the slot's PROMISC_BIT. The model's stack joins no group.
    return err


def dev_close(dev: NetDevice) -> int:
    """ifconfig ethN down."""
    if not dev.up:
        return 0
    dev.flags &= ~(IFF_UP | IFF_RUNNING)
    return dev.stop(dev) if dev.stop else 0


def dev_change_flags(dev: NetDevice, set_flags: int = 0, clear_flags: int = 0) -> None:
    """Turn PROMISC or ALLMULTI on or off: the driver hears about it through set_multicast_list."""
    old = dev.flags
    dev.flags = (dev.flags | set_flags) & ~clear_flags
    if (old ^ dev.flags) & (IFF_PROMISC | IFF_ALLMULTI) and dev.set_multicast_list and dev.up:
        dev.set_multicast_list(dev)


def dev_mc_add(dev: NetDevice, addr: bytes) -> None:
    """Join a multicast group (the driver can only answer with its promiscuous bit)."""
    dev.mc_list.append(bytes(addr))
    if dev.set_multicast_list and dev.up:
        dev.set_multicast_list(dev)


def dev_queue_xmit(skb: SkBuff) -> int:
    """Hand a packet to its device. A device that is down drops it."""
    dev = skb.dev
    if not dev.up:
        dev.stats.tx_dropped += 1
        dev_kfree_skb(skb)
        return NET_RX_DROP
    return dev.hard_start_xmit(skb, dev)


# --- receiving --------------------------------------------------------------------------
def eth_type_trans(skb: SkBuff, dev: NetDevice) -> int:
    """Note who the frame was for (pkt_type), eat the Ethernet header, return the protocol."""
    header = dev.kernel.memory.read(skb.data, ETH_HLEN)
    skb.dev = dev
    skb.mac_header = skb.data
    skb.skb_pull(ETH_HLEN)
    dest = header[:ETH_ALEN]
    if dest[0] & 1:                                  # the group bit: broadcast is a multicast too
        skb.pkt_type = PACKET_BROADCAST if dest == dev.broadcast else PACKET_MULTICAST
    elif dest != dev.dev_addr:
        skb.pkt_type = PACKET_OTHERHOST
    proto = int.from_bytes(header[12:14], "big")
    if proto >= 1536:
        return proto
    return ETH_P_802_3 if skb.len >= 2 and dev.kernel.memory.read(skb.data, 2) == b"\xff\xff" else ETH_P_802_2


def netif_rx(skb: SkBuff) -> int:
    """Pass a received packet up; the stack frees it."""
    return skb.dev.kernel.inet.netif_receive_skb(skb)
