"""The Guest's small IPv4 stack: addresses, ARP and ICMP echo, on top of the net driver.

Just enough for two Guests on a LAN to find each other and ping: an address per
interface, an ARP table filled by real requests and replies, and echo requests answered.
Every header is built and parsed by dpkt; this file only decides what to send.
It is deterministic: a ping's id comes from the Guest's id, its sequence numbers count
from 1, and waiting means letting the Host run until nothing is left to do.

Simplifications, said plainly: no routing beyond "the interface whose subnet holds the
address" (and packets to our own address turn straight round, as the loopback would);
no fragments, no IP options, no TCP/UDP. An unanswered ARP request fails as
soon as the Host goes idle (Linux retries three times, a second apart).
"""
from __future__ import annotations

# 2007-DIFF(inet): a Guest ran Linux's own IPv4 stack and user programs; this stack, with
# one ARP try and no TCP or UDP, is the model's.

import errno
import os
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface
from typing import NamedTuple

import dpkt

from .linux.netdev import (CHECKSUM_UNNECESSARY, ETH_HLEN, ETH_P_ARP, ETH_P_IP, IFF_ALLMULTI, IFF_NAMES,
                           IFF_PROMISC, NET_RX_SUCCESS, PACKET_OTHERHOST, NetDevice, dev_change_flags, dev_close,
                           dev_kfree_skb, dev_open, dev_queue_xmit, mac_str, skb_from_bytes)

ARP_QUEUE_LEN = 3            # packets held per unresolved neighbour (Linux's unres_qlen)
PING_DATA = bytes(range(56))  # ping's 56 data bytes: i at offset i (no timestamp: no wall clock)
TTL = 64
TAP_LEN = 256                # frames the packet tap remembers
IFCONFIG_FLAGS = {"promisc": (True, IFF_PROMISC), "-promisc": (False, IFF_PROMISC),
                  "allmulti": (True, IFF_ALLMULTI), "-allmulti": (False, IFF_ALLMULTI)}


class Frame(NamedTuple):
    """One frame as the stack received it: what a packet socket (tcpdump) would see."""
    dev: str
    pkt_type: int
    protocol: int
    data: bytes              # the whole frame, Ethernet header included


class EchoReply(NamedTuple):
    src: IPv4Address
    seq: int
    ttl: int
    nbytes: int              # ICMP header + data, as ping reports it


@dataclass(eq=False)
class Neighbour:
    """One ARP table entry: a MAC once resolved, packets waiting until then."""
    ip: IPv4Address
    dev: str
    mac: bytes | None = None
    failed: bool = False
    queue: list = field(default_factory=list)
    probes: int = 0

    def __repr__(self):
        return f"Neighbour({self.ip} on {self.dev}: {mac_str(self.mac) if self.mac else 'incomplete'})"


@dataclass
class PingReport:
    """What ``ping -c N`` saw: per sequence number a reply, "unreachable" or None (lost)."""
    dst: IPv4Address
    src: IPv4Address
    results: list = field(default_factory=list)

    @property
    def transmitted(self) -> int:
        return len(self.results)

    @property
    def received(self) -> int:
        return sum(isinstance(r, EchoReply) for r in self.results)

    @property
    def errors(self) -> int:
        return sum(r == "unreachable" for r in self.results)

    def text(self) -> str:
        """iputils' output, without times (there is no wall clock in the model)."""
        lines = [f"PING {self.dst} ({self.dst}) {len(PING_DATA)}({len(PING_DATA) + 28}) bytes of data."]
        for seq, r in enumerate(self.results, 1):
            if isinstance(r, EchoReply):
                lines.append(f"{r.nbytes} bytes from {r.src}: icmp_seq={r.seq} ttl={r.ttl}")
            elif r == "unreachable":
                lines.append(f"From {self.src} icmp_seq={seq} Destination Host Unreachable")
        loss = (self.transmitted - self.received) * 100 // self.transmitted
        errors = f", +{self.errors} errors" if self.errors else ""
        lines += ["", f"--- {self.dst} ping statistics ---",
                  f"{self.transmitted} packets transmitted, {self.received} received{errors}, {loss}% packet loss"]
        return "\n".join(lines) + "\n"


class Inet:
    """One Guest kernel's network stack: its devices (dev_base), addresses and ARP table."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.dev_base: list[NetDevice] = []                      # register_netdev() adds here
        self.addrs: dict[str, IPv4Interface] = {}                # interface name -> address/prefix
        self.neigh: dict[tuple[str, IPv4Address], Neighbour] = {}
        self.echo_replies: dict[tuple[int, int], EchoReply] = {}
        self.tap: deque[Frame] = deque(maxlen=TAP_LEN)
        self.ip_id = 0
        self.ping_ident = 0x1000 + kernel.id                     # fixed per Guest: deterministic

    # --- configuration (what ifconfig asks for) ------------------------------------------
    def dev(self, name: str) -> NetDevice:
        for dev in self.dev_base:
            if dev.name == name:
                return dev
        raise LookupError(f"{name}: no such interface; this Guest has {[d.name for d in self.dev_base]}")

    def default_address(self, dev: NetDevice) -> IPv4Interface:
        """10.N.0.(guest id + 1)/24 for ethN: every Guest on a LAN gets its own address."""
        n = int(dev.name.removeprefix("eth") or 0)
        return IPv4Interface(f"10.{n}.0.{self.kernel.id + 1}/24")

    def set_address(self, dev: NetDevice, address: str) -> IPv4Interface:
        """ifconfig ethN ADDR[/PREFIX]: keep the old prefix (or /24) unless one is given."""
        try:
            iface = IPv4Interface(address)
        except ValueError:
            raise ValueError(f"{address!r} is not an IPv4 address such as 10.0.0.5 or 10.0.0.5/24") from None
        if "/" not in address:
            old = self.addrs.get(dev.name)
            iface = IPv4Interface(f"{iface.ip}/{old.network.prefixlen if old else 24}")
        self.addrs[dev.name] = iface
        return iface

    def init_scripts(self) -> None:
        """What the init scripts do at boot: give each interface an address and bring it up."""
        for dev in self.dev_base:
            self.addrs.setdefault(dev.name, self.default_address(dev))
            err = dev_open(dev)
            if err:
                self.kernel.printk(f"ifconfig {dev.name} up: failed ({errno.errorcode.get(-err, err)})")

    def route(self, dst: IPv4Address) -> NetDevice | None:
        """The first interface that is up and whose subnet holds ``dst``."""
        for dev in self.dev_base:
            addr = self.addrs.get(dev.name)
            if dev.up and addr is not None and dst in addr.network:
                return dev
        return None

    # --- sending --------------------------------------------------------------------------
    def eth_xmit(self, dev: NetDevice, dst_mac: bytes, eth_type: int, payload: bytes) -> None:
        """Frame ``payload`` for ``dst_mac`` and hand it to the driver."""
        frame = dpkt.ethernet.Ethernet(dst=dst_mac, src=dev.dev_addr, type=eth_type, data=payload)
        skb = skb_from_bytes(self.kernel, bytes(frame))
        if skb is None:
            dev.stats.tx_dropped += 1
            return
        skb.dev = dev
        dev_queue_xmit(skb)

    def ip_output(self, dst: IPv4Address, proto: int, l4, df: bool = False) -> int:
        """Wrap ``l4`` (a dpkt ICMP) in IPv4 and send it towards ``dst``; -ENETUNREACH if no route."""
        dev = self.local_dev(dst) or self.route(dst)
        if dev is None:
            return -errno.ENETUNREACH
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        packet = bytes(dpkt.ip.IP(src=self.addrs[dev.name].ip.packed, dst=dst.packed, p=proto, ttl=TTL,
                                  id=self.ip_id, df=int(df), data=l4))
        if self.local_dev(dst) is not None:
            self.ip_rcv(dev, packet, True)                      # to ourselves: the loopback's job
        else:
            self.neigh_output(dev, dst, packet)
        return 0

    def local_dev(self, dst: IPv4Address) -> NetDevice | None:
        """The interface that owns ``dst``, if it is one of our own addresses (and up)."""
        for dev in self.dev_base:
            addr = self.addrs.get(dev.name)
            if dev.up and addr is not None and addr.ip == dst:
                return dev
        return None

    def neigh_output(self, dev: NetDevice, dst: IPv4Address, packet: bytes) -> None:
        """Send at once if ARP knows ``dst``; otherwise hold the packet and ask who has it."""
        n = self.neigh.get((dev.name, dst))
        if n is not None and n.mac is not None:
            self.eth_xmit(dev, n.mac, dpkt.ethernet.ETH_TYPE_IP, packet)
            return
        if n is None or n.failed:
            n = self.neigh[(dev.name, dst)] = Neighbour(dst, dev.name)
        if len(n.queue) == ARP_QUEUE_LEN:
            n.queue.pop(0)                                      # Linux drops the oldest
        n.queue.append(packet)
        n.probes += 1
        self.arp_send(dev, dpkt.arp.ARP_OP_REQUEST, dev.broadcast, bytes(6), dst)

    def arp_send(self, dev: NetDevice, op: int, dst_mac: bytes, tha: bytes, tip: IPv4Address) -> None:
        arp = dpkt.arp.ARP(op=op, sha=dev.dev_addr, spa=self.addrs[dev.name].ip.packed, tha=tha, tpa=tip.packed)
        self.eth_xmit(dev, dst_mac, dpkt.ethernet.ETH_TYPE_ARP, bytes(arp))

    def neigh_update(self, dev: NetDevice, ip: IPv4Address, mac: bytes) -> None:
        """ARP told us ``ip`` is at ``mac``: remember it and send what was waiting."""
        n = self.neigh.get((dev.name, ip))
        if n is None or n.failed:
            n = self.neigh[(dev.name, ip)] = Neighbour(ip, dev.name)
        n.mac = bytes(mac)
        waiting, n.queue = n.queue, []
        for packet in waiting:
            self.eth_xmit(dev, n.mac, dpkt.ethernet.ETH_TYPE_IP, packet)

    def neigh_timeout(self, n: Neighbour) -> int:
        """Nobody answered: drop what was waiting; returns how many packets that was."""
        n.failed = True
        lost, n.queue = len(n.queue), []
        return lost

    # --- receiving (netif_rx() lands here) ---------------------------------------------------
    def netif_receive_skb(self, skb) -> int:
        """Pass one received frame to ARP or IPv4, then free it."""
        dev = skb.dev
        payload = self.kernel.memory.read(skb.data, skb.len) if not skb.frags else skb.bytes()
        header = self.kernel.memory.read(skb.mac_header, ETH_HLEN)
        self.tap.append(Frame(dev.name, skb.pkt_type, skb.protocol, header + payload))
        try:
            if skb.pkt_type != PACKET_OTHERHOST:                # not for us: only a tap sees it
                if skb.protocol == ETH_P_ARP:
                    self.arp_rcv(dev, payload)
                elif skb.protocol == ETH_P_IP:
                    self.ip_rcv(dev, payload, skb.ip_summed == CHECKSUM_UNNECESSARY)
        finally:
            dev_kfree_skb(skb)
        return NET_RX_SUCCESS

    def arp_rcv(self, dev: NetDevice, payload: bytes) -> None:
        """Learn the sender if the ARP is for us (or we already know it); answer a request."""
        try:
            arp = dpkt.arp.ARP(payload)
        except dpkt.UnpackError:
            return
        if (arp.hrd, arp.pro, arp.hln, arp.pln) != (dpkt.arp.ARP_HRD_ETH, dpkt.arp.ARP_PRO_IP, 6, 4):
            return
        ours = self.addrs.get(dev.name)
        sender = IPv4Address(arp.spa)
        for_us = ours is not None and arp.tpa == ours.ip.packed
        if for_us or (dev.name, sender) in self.neigh:
            self.neigh_update(dev, sender, arp.sha)
        if for_us and arp.op == dpkt.arp.ARP_OP_REQUEST:
            self.arp_send(dev, dpkt.arp.ARP_OP_REPLY, arp.sha, arp.sha, sender)

    def ip_rcv(self, dev: NetDevice, payload: bytes, csum_ok: bool) -> None:
        """Accept a well-formed IPv4 packet addressed to this interface; ICMP goes on up."""
        try:
            packet = dpkt.ip.IP(payload)
        except dpkt.UnpackError:
            return
        header_len = packet.hl * 4
        if packet.v != 4 or dpkt.in_cksum(payload[:header_len]) != 0:
            return                                              # the header sum is always checked
        ours = self.addrs.get(dev.name)
        if ours is None or packet.dst != ours.ip.packed:
            return                                              # no forwarding here
        if packet.p == dpkt.ip.IP_PROTO_ICMP:
            self.icmp_rcv(packet, payload[header_len:packet.len], csum_ok)

    def icmp_rcv(self, packet, raw: bytes, csum_ok: bool) -> None:
        """Answer an echo request; file an echo reply for ping. NO_CSUM devices skip the sum."""
        icmp = packet.data
        if not isinstance(icmp, dpkt.icmp.ICMP) or not isinstance(icmp.data, dpkt.icmp.ICMP.Echo):
            return
        if not csum_ok and dpkt.in_cksum(raw) != 0:
            return
        echo, src = icmp.data, IPv4Address(packet.src)
        if icmp.type == dpkt.icmp.ICMP_ECHO:
            reply = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHOREPLY,
                                   data=dpkt.icmp.ICMP.Echo(id=echo.id, seq=echo.seq, data=echo.data))
            self.ip_output(src, dpkt.ip.IP_PROTO_ICMP, reply)
        elif icmp.type == dpkt.icmp.ICMP_ECHOREPLY:
            self.echo_replies[(echo.id, echo.seq)] = EchoReply(src, echo.seq, packet.ttl, len(raw))

    # --- ping ---------------------------------------------------------------------------------
    def ping(self, address: str, count: int) -> PingReport:
        """Send ``count`` echo requests (sequence 1..count), letting the Host run after each.

        Raises OSError(ENETUNREACH) when no interface's subnet holds the address."""
        try:
            dst = IPv4Address(address)
        except ValueError:
            raise ValueError(f"{address!r} is not an IPv4 address such as 10.0.0.2") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a whole number of packets, at least 1, got {count!r}")
        dev = self.local_dev(dst) or self.route(dst)
        if dev is None:
            raise OSError(errno.ENETUNREACH, "Network is unreachable")
        report = PingReport(dst, self.addrs[dev.name].ip)
        for seq in range(1, count + 1):
            self.echo_replies.pop((self.ping_ident, seq), None)
            request = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO,
                                     data=dpkt.icmp.ICMP.Echo(id=self.ping_ident, seq=seq, data=PING_DATA))
            self.ip_output(dst, dpkt.ip.IP_PROTO_ICMP, request, df=True)
            self._wait()
            report.results.append(self._outcome(dev, dst, seq))
        return report

    def _wait(self) -> None:
        """Sleep while the Host runs: ARP, the echo and its reply all happen meanwhile."""
        self.kernel.sleep_until(lambda: True)

    def _outcome(self, dev: NetDevice, dst: IPv4Address, seq: int):
        reply = self.echo_replies.pop((self.ping_ident, seq), None)
        if reply is not None:
            return reply
        n = self.neigh.get((dev.name, dst))
        if n is not None and n.mac is None and not n.failed:
            self.neigh_timeout(n)
            return "unreachable"
        return None


# --- the userspace tools: ifconfig, ping, arp (the shell runs them) ------------------------------
def ifconfig_command(inet: Inet, args) -> str:
    """ifconfig [-a] | ifconfig ethN | ifconfig ethN [ADDR[/N]] [netmask M] [up|down]
    [promisc|-promisc] [allmulti|-allmulti]"""
    if not args or list(args) == ["-a"]:
        return "\n".join(format_interface(d, inet.addrs.get(d.name)) for d in inet.dev_base)
    try:
        dev = inet.dev(args[0])
    except LookupError:
        return f"{args[0]}: error fetching interface information: Device not found\n"
    words = list(args[1:])
    while words:
        word = words.pop(0)
        if word in IFCONFIG_FLAGS:
            on, bit = IFCONFIG_FLAGS[word]
            dev_change_flags(dev, bit if on else 0, 0 if on else bit)
        elif word in ("up", "down"):
            err = dev_open(dev) if word == "up" else dev_close(dev)
            if err:
                return f"SIOCSIFFLAGS: {os.strerror(-err)}\n"
        elif word == "netmask" and words:
            mask = words.pop(0)
            addr = inet.addrs.get(dev.name) or inet.default_address(dev)
            try:
                inet.set_address(dev, f"{addr.ip}/{mask}")
            except ValueError:
                return f"ifconfig: {mask}: bad netmask (try 255.255.255.0)\n"
        else:
            try:
                inet.set_address(dev, word)
            except ValueError as e:
                return f"ifconfig: {e}\n"
            dev_open(dev)                                       # giving an address brings it up
    return "" if args[1:] else format_interface(dev, inet.addrs.get(dev.name))


def ping_command(inet: Inet, args) -> str:
    """ping [-c COUNT] ADDR. COUNT defaults to 4, since there is no ^C to stop it."""
    count, rest = 4, list(args)
    if rest[:1] == ["-c"]:
        if len(rest) < 2 or not rest[1].isdigit() or int(rest[1]) < 1:
            return "ping: bad number of packets to transmit.\n"
        count, rest = int(rest[1]), rest[2:]
    if len(rest) != 1:
        return "ping: usage: ping [-c COUNT] ADDRESS\n"
    try:
        return inet.ping(rest[0], count).text()
    except ValueError:
        return f"ping: {rest[0]}: Name or service not known\n"
    except OSError as e:
        return f"ping: connect: {e.strerror}\n"


# --- what the userspace tools print -------------------------------------------------------------
def human_bytes(n: int) -> str:
    """net-tools' "(196.0 B)", "(1.5 KiB)"."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n}.0 B"


def format_interface(dev: NetDevice, addr: IPv4Interface | None) -> str:
    """One interface, as net-tools' ifconfig shows it."""
    s = dev.stats
    pad = " " * 10
    lines = [f"{dev.name:<10}Link encap:Ethernet  HWaddr {mac_str(dev.dev_addr).upper()}"]
    if addr is not None:
        lines.append(f"{pad}inet addr:{addr.ip}  Bcast:{addr.network.broadcast_address}  Mask:{addr.netmask}")
    flags = " ".join(name for bit, name in IFF_NAMES if dev.flags & bit)
    lines += [f"{pad}{flags}  MTU:{dev.mtu}  Metric:1",
              f"{pad}RX packets:{s.rx_packets} errors:{s.rx_errors} dropped:{s.rx_dropped} "
              f"overruns:{s.rx_fifo_errors} frame:{s.rx_frame_errors}",
              f"{pad}TX packets:{s.tx_packets} errors:{s.tx_errors} dropped:{s.tx_dropped} "
              f"overruns:{s.tx_fifo_errors} carrier:{s.tx_carrier_errors}",
              f"{pad}collisions:{s.collisions} txqueuelen:1000",
              f"{pad}RX bytes:{s.rx_bytes} ({human_bytes(s.rx_bytes)})  TX bytes:{s.tx_bytes} ({human_bytes(s.tx_bytes)})"]
    return "\n".join(lines) + "\n"


def format_arp(inet: Inet) -> str:
    """The ARP table, as ``arp -n`` shows it, but for the Address column: 16 wide, room for any
    IPv4 address, where net-tools pads it to 25 (so that a line fits the book's 76 columns)."""
    lines = [f"{'Address':<16}{'HWtype':<8}{'HWaddress':<20}{'Flags':<6}{'Mask':<16}Iface"]
    for n in inet.neigh.values():
        if n.mac is not None:
            lines.append(f"{str(n.ip):<16}{'ether':<8}{mac_str(n.mac):<20}{'C':<6}{'':<16}{n.dev}")
        else:
            lines.append(f"{str(n.ip):<24}{'(incomplete)':<42}{n.dev}")
    return "\n".join(lines) + "\n"
