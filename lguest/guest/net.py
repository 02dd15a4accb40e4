"""D:500–D:580: the Guest network driver (drivers/net/lguest_net.c), in the tour's order.

D:500: the last Guest driver, and a simple one with one trick. The device page is an
array of MAC slots, one per peer on the LAN; every peer binds its receive ring at its own
key in that page, so a Guest sends a frame straight to the peers that want it, each with
its own SEND_DMA. With --tunnet the only peer is the Host (slot 0, always promiscuous).
One instance per Guest kernel holds what the C file keeps per device and in statics.
The C's per-packet pr_debug() lines are left out (compiled out there, they would only
fill the log here); the ones for things going wrong are kept.

Quirks of the 2007 code are kept, not fixed: transmit always reports success; counters
are per copy (a broadcast to k peers counts k packets); a packet needing more than 16
sections goes out truncated ("Megapacket!"); multicast is flooded like broadcast.
"""
from __future__ import annotations

import errno
import struct
from dataclasses import dataclass, field

import numpy as np

from .. import abi
from .bus import LguestDevice, LguestDriver, lgdev_irq
from .linux.interrupt import IRQ_HANDLED, IRQ_NONE, IRQF_SAMPLE_RANDOM, IRQF_SHARED
from .linux.netdev import (CHECKSUM_UNNECESSARY, ETH_ALEN, ETH_DATA_LEN, ETH_HLEN, IFF_ALLMULTI, IFF_PROMISC,
                           NETIF_F_NO_CSUM, NETIF_F_SG, NetDevice, SkBuff, alloc_etherdev, dev_kfree_skb,
                           eth_type_trans, free_netdev, netdev_alloc_skb, netif_rx, register_netdev,
                           unregister_netdev, wmb)

NUM_SKBS = 8                          # receive buffers per Guest
MAX_LANS = 4                          # defined in the C file, used nowhere
SHARED_SIZE = abi.PAGE_SIZE
PROMISC_BIT = 0x01                    # the group bit of mac[0]: "send me everything"
NET_SLOT = abi.lguest_net.itemsize    # 6 bytes: one MAC per slot
RX_BUF_LEN = ETH_HLEN + ETH_DATA_LEN  # 1514: a full frame

# The addr[16] and len[16] arrays of an lguest_dma, which follow used_len. skb_to_dma()
# writes only these: used_len is the Host's signal and fill_slot() writes it last.
_SECTIONS = struct.Struct("<16I16H")

# D:530 on i386: five words (peer, peer_phys, mapsize, lgdev, me), skb[8] pointers, then dma[8].
INFO_DMA_OFFSET = 4 * 5 + 4 * NUM_SKBS
SIZEOF_LGUESTNET_INFO = INFO_DMA_OFFSET + NUM_SKBS * abi.DMA_SIZE


# --- D:530 ------------------------------------------------------------------------------------
@dataclass(eq=False)
class LguestnetInfo:
    """D:530 ``struct lguestnet_info``: all the driver knows about one network device."""
    peer: np.ndarray                  # the mapped device page(s): an array of struct lguest_net
    peer_phys: int                    # their physical address (peer_key() starts here)
    mapsize: int                      # their size in bytes
    lgdev: LguestDevice               # the lguest_device we came from
    me: int                           # our own slot in the array
    dma: int                          # address of dma[0]: the receive ring, in Guest memory
    skb: list = field(default_factory=lambda: [None] * NUM_SKBS)   # the skb behind each dma[i]

    @property
    def nslots(self) -> int:
        """mapsize / sizeof(struct lguest_net): 682 for one page."""
        return self.mapsize // NET_SLOT

    def slots(self) -> np.ndarray:
        """The MAC slots as a (nslots, 6) uint8 view of the shared page: no copy."""
        return self.peer[:self.nslots * NET_SLOT].reshape(self.nslots, NET_SLOT)

    def dma_addr(self, i: int) -> int:
        return self.dma + i * abi.DMA_SIZE

    def __repr__(self):
        return f"LguestnetInfo(me={self.me}, peer_phys={self.peer_phys:#x}, mapsize={self.mapsize})"


def netdev_priv(dev: NetDevice) -> LguestnetInfo:
    return dev.priv


# --- D:570 ------------------------------------------------------------------------------------
def peer_key(info: LguestnetInfo, peernum: int) -> int:
    """D:570: each peer's receive key is the page's address plus 4 × its slot number.

    The 4 is there because the Host insists that keys be 4-byte aligned (reference §3.1)."""
    return info.peer_phys + 4 * peernum


def promisc(info: LguestnetInfo, peer: int) -> bool:
    """D:570: does this peer want every packet? (its PROMISC_BIT)"""
    return bool(info.peer[peer * NET_SLOT] & PROMISC_BIT)


def mac_eq(mac: bytes, info: LguestnetInfo, peer: int) -> bool:
    """D:570: is ``mac`` this peer's address? Its PROMISC_BIT is ignored, since a peer sets
    it to mean "promiscuous", not as part of its address."""
    slot = info.peer[peer * NET_SLOT:(peer + 1) * NET_SLOT]
    return (int(slot[0]) & ~PROMISC_BIT) == mac[0] and bytes(slot[1:]) == bytes(mac[1:ETH_ALEN])


def unused_peer(peer: np.ndarray, num: int) -> bool:
    """D:570: a slot is unused when mac[0] is 0 (a live one always has the 0x02 bit)."""
    return peer[num * NET_SLOT] == 0


def xmit_peers(slots: np.ndarray, me: int, dest: bytes) -> list[int]:
    """D:570: the slots lguestnet_start_xmit() sends a frame for ``dest`` to, in slot order.

    The C loop asks, slot by slot: not me, not unused, and then broadcast (dest's group
    bit), or the peer is promiscuous, or mac_eq(). Here one numpy pass over the 682
    first bytes finds the used slots, and only those few are asked the rest, in
    ascending order, with the same tests."""
    used = np.flatnonzero(slots[:, 0]).tolist()
    if dest[0] & 1:                                  # broadcast (and multicast): every peer
        return [i for i in used if i != me]
    first, rest = dest[0], bytes(dest[1:ETH_ALEN])
    chosen = []
    for i in used:
        mac = slots[i].tobytes()
        if i != me and (mac[0] & PROMISC_BIT or ((mac[0] & ~PROMISC_BIT) == first and mac[1:] == rest)):
            chosen.append(i)
    return chosen


class LguestNet:
    """The driver in one Guest kernel: its devices and transfer_packet()'s DMA."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.devices: list[NetDevice] = []
        self.stack_dma = None                 # transfer_packet()'s local lguest_dma (first probe)
        self.lguestnet_drv = LguestDriver("lguestnet", abi.LGUEST_DEVICE_T_NET, self.lguestnet_probe)

    # --- D:570: building a DMA from an skb -------------------------------------------------
    def skb_to_dma(self, skb: SkBuff, headlen: int, dma: int) -> list[tuple[int, int]]:
        """D:570: point ``dma`` at the skb: its linear head split where pages end, then one
        section per fragment. Returns the sections written.

        Past 16 sections it logs "Woah dude!  Megapacket!" and stops, so the packet goes out
        truncated.
        """
        # 2007-DIFF(megapacket-head): the C checks only in the fragment loop; a head of more
        # than 16 pieces would run off the end of the array. Here the head is checked too.
        sections: list[tuple[int, int]] = []
        for addr, length in _page_pieces(skb.data, headlen):
            if len(sections) == abi.LGUEST_MAX_DMA_SECTIONS:
                self._megapacket()
                break
            sections.append((addr, length))
        else:
            for page, offset, size in skb.frags:
                if len(sections) == abi.LGUEST_MAX_DMA_SECTIONS:
                    self._megapacket()
                    break
                sections.append((page + offset, size))
        pad = abi.LGUEST_MAX_DMA_SECTIONS - len(sections)   # a 0 length ends a shorter list
        self.kernel.memory.pack(_SECTIONS, dma + 4, *(a for a, _ in sections), *[0] * pad,
                                *(n for _, n in sections), *[0] * pad)
        return sections

    def _megapacket(self) -> None:
        self.kernel.printk("Woah dude!  Megapacket!")

    # --- D:570: transmit ------------------------------------------------------------------
    def lguestnet_set_multicast(self, dev: NetDevice) -> None:
        """D:570: no real multicast: any wish for it, or promiscuity, sets our PROMISC_BIT."""
        info = netdev_priv(dev)
        at = info.me * NET_SLOT
        if dev.flags & (IFF_PROMISC | IFF_ALLMULTI) or dev.mc_count:
            info.peer[at] |= PROMISC_BIT
        else:
            info.peer[at] &= ~PROMISC_BIT & 0xFF

    def transfer_packet(self, dev: NetDevice, skb: SkBuff, peernum: int) -> None:
        """D:570: one SEND_DMA of the whole skb to one peer, then count it, per copy.

        A short used_len is a carrier error: a short receive buffer (never from this
        driver), or more likely a dead peer, or one whose ring stayed full."""
        info = netdev_priv(dev)
        kernel = self.kernel
        self.skb_to_dma(skb, skb.headlen, self.stack_dma)
        kernel.lguest_send_dma(peer_key(info, peernum), self.stack_dma)
        used = kernel.memory.u32(self.stack_dma)
        if used != skb.len:
            dev.stats.tx_carrier_errors += 1
            dma = kernel.memory.struct_at(self.stack_dma, abi.lguest_dma)
            kernel.pr_debug(f"Bad xfer to peer {peernum}: {used} of {skb.len} "     # %p: 8 hex digits
                            f"(dma {int(dma['addr'][0]):08x}/{int(dma['len'][0])})")
        else:
            dev.stats.tx_bytes += skb.len
            dev.stats.tx_packets += 1

    def lguestnet_start_xmit(self, skb: SkBuff, dev: NetDevice) -> int:
        """D:570: send the frame to every peer that wants it, free it, and report success.

        Success even if nobody was sent to: "0 means success", as the kernel convention has it.
        """
        info = netdev_priv(dev)
        dest = self.kernel.memory.read(skb.data, ETH_ALEN)
        for i in xmit_peers(info.slots(), info.me, dest):
            self.transfer_packet(dev, skb, i)
        dev_kfree_skb(skb)
        return 0

    # --- D:560: receive -------------------------------------------------------------------
    def fill_slot(self, dev: NetDevice, slot: int) -> int:
        """D:560: a fresh 1514-byte skb behind dma[slot], and only then used_len = 0.

        The barrier keeps the Host from ever seeing a free slot whose addresses are stale."""
        info = netdev_priv(dev)
        skb = netdev_alloc_skb(dev, RX_BUF_LEN)
        info.skb[slot] = skb
        if skb is None:
            self.kernel.printk(f"{dev.name}: could not fill slot {slot}")
            return -errno.ENOMEM
        dma = info.dma_addr(slot)
        self.skb_to_dma(skb, RX_BUF_LEN, dma)
        wmb(self.kernel, "fill_slot")
        self.kernel.memory.set_u32(dma, 0)                 # the Host may use it now
        self.kernel.emit("used_len", addr=dma, value=0, slot=slot)
        return 0

    def lguestnet_rcv(self, irq: int, dev: NetDevice) -> int:
        """D:560: take every filled slot, 0 to 7, refill it at once, and pass the frame up.

        A length outside 14..1514 is dropped: micropackets could come from a badly-behaved
        Guest (the Host never writes more than the buffer holds). The drop is not counted."""
        info = netdev_priv(dev)
        memory = self.kernel.memory
        done = 0
        for i in range(NUM_SKBS):
            length = memory.u32(info.dma_addr(i))
            if length == 0:
                continue
            done += 1
            skb = info.skb[i]
            if skb is None or skb.freed:                   # fill_slot() failed, or close freed it
                # 2007-DIFF(rx-oops): the C would dereference the NULL skb and oops, or use the
                # freed one; the model stops with an error that says so.
                raise AssertionError(f"BUG: {dev.name} slot {i} has data but "
                                     + ("no skb (the 2007 driver would oops)" if skb is None else
                                        "its skb was freed (the 2007 driver would use freed memory)"))
            self.fill_slot(dev, i)
            if length < ETH_HLEN or length > RX_BUF_LEN:
                self.kernel.pr_debug(f"{dev.name}: unbelievable skb len: {length}")
                dev_kfree_skb(skb)
                continue
            skb.skb_put(length)
            skb.protocol = eth_type_trans(skb, dev)
            if dev.features & NETIF_F_NO_CSUM:
                skb.ip_summed = CHECKSUM_UNNECESSARY
            dev.stats.rx_bytes += skb.len                  # after eth_type_trans ate the header
            dev.stats.rx_packets += 1
            netif_rx(skb)
        return IRQ_HANDLED if done else IRQ_NONE

    # --- D:550 ----------------------------------------------------------------------------
    def lguestnet_open(self, dev: NetDevice) -> int:
        """D:550: publish our MAC in our slot, fill the 8 receive buffers, bind them.

        If any of it fails, the buffers go back and the answer is -ENOMEM. (The MAC stays
        published, as in 2007.)"""
        info = netdev_priv(dev)
        info.peer[info.me * NET_SLOT:(info.me + 1) * NET_SLOT] = np.frombuffer(dev.dev_addr, np.uint8)
        self.lguestnet_set_multicast(dev)                  # we may be promiscuous already
        filled = 0
        while filled < NUM_SKBS and self.fill_slot(dev, filled) == 0:
            filled += 1
        if filled == NUM_SKBS and self.kernel.lguest_bind_dma(peer_key(info, info.me), info.dma, NUM_SKBS,
                                                               lgdev_irq(info.lgdev)) == 0:
            return 0
        for i in range(filled):                            # the pointers are left as they are
            dev_kfree_skb(info.skb[i])
        return -errno.ENOMEM

    def lguestnet_close(self, dev: NetDevice) -> int:
        """Zero our slot (others stop sending to us), unbind the ring, free the buffers."""
        info = netdev_priv(dev)
        info.peer[info.me * NET_SLOT:(info.me + 1) * NET_SLOT] = 0
        self.kernel.lguest_unbind_dma(peer_key(info, info.me), info.dma)
        for i in range(NUM_SKBS):                          # the pointers are left as they are
            dev_kfree_skb(info.skb[i])
        return 0

    # --- D:510 ----------------------------------------------------------------------------
    def lguestnet_probe(self, lgdev: LguestDevice) -> int:
        """D:510: the standard Ethernet set-up: MAC 02:00:<guestid, little-endian>:00:00,
        our hooks, SG and NO_CSUM together or not at all, the page mapped, our slot, the irq."""
        kernel = self.kernel
        desc = kernel.bus.desc(lgdev.index)
        kernel.pr_debug(f"lguest_net: probing for device {lgdev.index}")
        features, num_pages = int(desc["features"]), int(desc["num_pages"])
        dev = alloc_etherdev(kernel, SIZEOF_LGUESTNET_INFO)
        if dev is None:
            return -errno.ENOMEM
        if self.stack_dma is None:
            self.stack_dma = kernel.kmalloc.alloc(abi.DMA_SIZE, align=4)
        dev.set_mac_address = None                         # the address is fixed by our guestid
        guestid = int(kernel.lguest_data_fields()["guestid"])
        dev.dev_addr = b"\x02\x00" + guestid.to_bytes(2, "little") + b"\x00\x00"
        dev.open, dev.stop = self.lguestnet_open, self.lguestnet_close
        dev.hard_start_xmit = self.lguestnet_start_xmit
        dev.set_multicast_list = self.lguestnet_set_multicast     # promisc on/off calls it too
        if features & abi.LGUEST_NET_F_NOCSUM:             # SG without checksum offload is "illogical"
            dev.features = NETIF_F_SG | NETIF_F_NO_CSUM
        peer_phys = int(desc["pfn"]) << abi.PAGE_SHIFT
        mapsize = abi.PAGE_SIZE * num_pages
        peer = np.frombuffer(kernel.lguest_map(peer_phys, num_pages), np.uint8)
        dev.priv = LguestnetInfo(peer, peer_phys, mapsize, lgdev, features & (mapsize - 1),
                                 dev.priv_addr + INFO_DMA_OFFSET)
        err = register_netdev(dev)
        if err:
            kernel.pr_debug("lguestnet: registering device failed")
            free_netdev(dev)
            return err
        irqf = IRQF_SHARED | (IRQF_SAMPLE_RANDOM if features & abi.LGUEST_DEVICE_F_RANDOMNESS else 0)
        if kernel.request_irq(lgdev_irq(lgdev), self.lguestnet_rcv, irqf, "lguestnet", dev) != 0:
            # A 2007 bug, kept: the C jumps to its unwinding with err still 0 from
            # register_netdev(), so the probe "succeeds" and the bus sets DRIVER_OK on a
            # device it has just torn down.
            kernel.pr_debug(f"lguestnet: cannot get irq {lgdev_irq(lgdev)}")
            unregister_netdev(dev)
            free_netdev(dev)
            return err
        kernel.pr_debug(f"lguestnet: registered device {dev.name}")
        lgdev.private = dev
        self.devices.append(dev)
        return 0

    def lguestnet_init(self) -> int:
        """D:510: register with the lguest bus, which calls our probe for each net device."""
        return self.kernel.bus.register_lguest_driver(self.lguestnet_drv)

    def dev(self, name: str) -> NetDevice:
        for dev in self.devices:
            if dev.name == name:
                return dev
        raise LookupError(f"no network device {name!r}; this Guest has {[d.name for d in self.devices]}")


def _page_pieces(addr: int, length: int):
    """[addr, addr+length) cut where pages end: the head loop of skb_to_dma()."""
    end = addr + length
    while addr < end:
        n = min(end - addr, abi.PAGE_SIZE - addr % abi.PAGE_SIZE)
        yield addr, n
        addr += n
