"""--tunnet on the Launcher side: the Host as peer 0 of a LAN of two (reference §4.4, §4.2, §4.3).

The real Launcher opened a TAP device (tapN) and made a one-page net device with the Guest
as peer 1. Slot 0 holds the tap's MAC with the PROMISC bit set, so the Guest's transmit
loop sends *every* frame to slot 0's key; that key is private (the page is the Launcher's
own), so the SEND_DMA comes to the Launcher, which writes the frame to the tap. Frames the
Host's kernel sends back come out of the tap, and the Launcher puts them into the buffer
the Guest bound to its own slot's key, then raises the irq.

There is no tap here (no root, no network), so ``HostStack`` stands where the Host's
kernel was on the other side of it: it answers ARP requests for the Host address and ICMP
echo requests to it, and ignores the rest, as a quiet Host would. dpkt parses and builds
the frames. Everything is deterministic: the MAC comes from the tap number, the IP id from
a counter.

For the Guest's side (its driver and its ``ifconfig``), each tunnet is reachable as
``guest.launcher.tunnet`` and ``host.tunnets[lan]``, with ``host_ip``, ``host_mac``,
``guest_ip``, ``prefixlen`` and ``netmask``.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import struct
from collections import deque

import dpkt

from .. import abi

PROMISC_BIT = 0x01                     # bit 0 of mac[0]: "send me every packet" (§1.6)
HOST_SLOT = 0                          # the Host (the tap) is peer 0
GUEST_SLOT = 1                         # and the Guest peer 1: features = 1 | RANDOMNESS
DEFAULT_HOST_IP = "10.0.0.254"         # for --tunnet=pcap:FILE, which names no address
PREFIXLEN = 24                         # the tap's address is a /24, as `ifconfig tapN IP` gave
HOST_MAC_PREFIX = b"\x02tap"           # 02:74:61:70 ("tap"), locally administered, then 00:N
ETH_BROADCAST = b"\xff" * 6


def peer_key(page: int, n: int) -> int:
    """Slot n's key: the net page's physical address + 4*n (reference §1.6)."""
    return page + 4 * n


def parse_tunnet(arg) -> tuple[str, str | None]:
    """``IP`` or ``pcap:FILE`` -> (host IP, capture path or None). Anything else is refused."""
    allowed = "--tunnet takes the Host's IPv4 address (e.g. tunnet=\"10.0.0.254\") or pcap:FILE"
    if not isinstance(arg, str):
        raise TypeError(f"{allowed}; got {arg!r}")
    if arg.startswith("pcap:"):
        path = arg[len("pcap:"):]
        if not path:
            raise ValueError(f"{allowed}: pcap: needs a file name, as in pcap:tap0.pcap")
        return DEFAULT_HOST_IP, path
    if arg.startswith("bridge:"):
        raise ValueError(f"{allowed}; bridge:NAME joined a real bridge, and this model has no real network")
    try:
        ip = ipaddress.IPv4Address(arg)
    except ValueError:
        raise ValueError(f"{allowed}; got {arg!r}") from None
    last = ip.packed[3]
    if ip.is_multicast or ip.is_loopback or ip.is_unspecified or last in (0, 255):
        raise ValueError(f"{allowed}: {arg} cannot be a host address on a /{PREFIXLEN} "
                         "(not .0, .255, multicast, loopback or 0.0.0.0)")
    return str(ip), None


def suggested_guest_ip(host_ip: str) -> str:
    """The Guest's address on the same /24: .1, or .2 when the Host itself is .1."""
    packed = ipaddress.IPv4Address(host_ip).packed
    return str(ipaddress.IPv4Address(packed[:3] + bytes([2 if packed[3] == 1 else 1])))


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


# 2007-DIFF(no-tap): behind the tap was the Host's own network stack (or a bridge); here
# this small responder stands in for it, answering ARP and ping for the Host's address.
class HostStack:
    """The Host's IP stack behind the tap, cut down to ARP and ping for one address.

    It takes a frame as the tap's write() would and returns the frames the Host sends
    back. Like Linux it ignores unicast frames for another MAC and packets with a bad
    checksum (NOCSUM is off on a tunnet: the Guest must checksum). It answers to the
    requester's MAC, which Linux would have learnt from the Guest's own ARP request.
    """

    def __init__(self, ip: str, mac: bytes):
        self.ip = ipaddress.IPv4Address(ip).packed
        self.mac = bytes(mac)
        self.arp_replies = 0
        self.echo_replies = 0
        self.ignored = 0                     # frames not for us, malformed, or not ARP/ping
        self._ip_id = 0                      # the IP id of our next packet: a plain counter

    def receive(self, frame: bytes) -> list[bytes]:
        try:
            replies = self._receive(frame)
        except (dpkt.Error, struct.error, ValueError, IndexError):
            replies = None                   # the kernel drops what it cannot parse
        if not replies:
            self.ignored += 1
            return []
        return replies

    def _receive(self, frame: bytes):
        if len(frame) < 14:
            return None
        eth = dpkt.ethernet.Ethernet(frame)
        if eth.dst != self.mac and not eth.dst[0] & 1:
            return None                      # unicast for someone else: PACKET_OTHERHOST
        if eth.type == dpkt.ethernet.ETH_TYPE_ARP and isinstance(eth.data, dpkt.arp.ARP):
            return self._arp(eth.data)
        if eth.type == dpkt.ethernet.ETH_TYPE_IP and isinstance(eth.data, dpkt.ip.IP):
            return self._ip(frame[14:], eth)
        return None

    def _arp(self, arp):
        if (arp.op != dpkt.arp.ARP_OP_REQUEST or arp.hrd != dpkt.arp.ARP_HRD_ETH
                or arp.pro != dpkt.ethernet.ETH_TYPE_IP or arp.tpa != self.ip):
            return None
        reply = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REPLY, sha=self.mac, spa=self.ip, tha=arp.sha, tpa=arp.spa)
        self.arp_replies += 1
        return [bytes(dpkt.ethernet.Ethernet(dst=arp.sha, src=self.mac, type=dpkt.ethernet.ETH_TYPE_ARP,
                                             data=reply))]

    def _ip(self, raw: bytes, eth):
        ip = eth.data
        hlen = ip.hl * 4
        if ip.v != 4 or hlen < 20 or ip.len < hlen or ip.len > len(raw) or dpkt.in_cksum(raw[:hlen]):
            return None                      # not IPv4, truncated, or a bad header checksum
        if ip.dst != self.ip or ip.p != dpkt.ip.IP_PROTO_ICMP or ip.mf or ip.offset:
            return None                      # not to us, not ICMP, or a fragment
        payload = raw[hlen:ip.len]
        if len(payload) < 8 or dpkt.in_cksum(payload):
            return None
        icmp = dpkt.icmp.ICMP(payload)
        if icmp.type != dpkt.icmp.ICMP_ECHO or icmp.code != 0:
            return None
        echo = icmp.data
        answer = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHOREPLY, code=0,
                                data=dpkt.icmp.ICMP.Echo(id=echo.id, seq=echo.seq, data=echo.data))
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        packet = dpkt.ip.IP(src=self.ip, dst=ip.src, p=dpkt.ip.IP_PROTO_ICMP, ttl=64, id=self._ip_id, data=answer)
        self.echo_replies += 1
        return [bytes(dpkt.ethernet.Ethernet(dst=eth.src, src=self.mac, type=dpkt.ethernet.ETH_TYPE_IP,
                                             data=packet))]

    def __repr__(self):
        return (f"HostStack({ipaddress.IPv4Address(self.ip)}, {mac_str(self.mac)}, arp_replies={self.arp_replies}, "
                f"echo_replies={self.echo_replies}, ignored={self.ignored})")


class TunNet:
    """One --tunnet device: its page, the Host's stack behind it, and the frames between them."""

    def __init__(self, launcher, arg):
        lguest = launcher.lguest
        self.launcher = launcher
        self.arg = arg
        self.host_ip, pcap_path = parse_tunnet(arg)
        self.guest_ip = suggested_guest_ip(self.host_ip)      # what the Guest should `ifconfig eth0`
        self.prefixlen = PREFIXLEN
        self.netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{PREFIXLEN}").netmask)
        self.lan = lguest.make_tap(self)                      # tapN: its name for host.capture()
        self.host_mac = HOST_MAC_PREFIX + bytes([0, int(self.lan[3:]) & 0xFF])   # no PROMISC bit
        self.stack = HostStack(self.host_ip, self.host_mac)
        try:
            self.device = launcher.devices.new_dev_desc(abi.LGUEST_DEVICE_T_NET,
                                                        GUEST_SLOT | abi.LGUEST_DEVICE_F_RANDOMNESS, 1,
                                                        f"net {self.lan}")
        except Exception:
            lguest.remove_tap(self.lan)                       # no device, so no tap either
            raise
        self.host_key = peer_key(self.device.mem, HOST_SLOT)   # the Guest sends here
        self.guest_key = peer_key(self.device.mem, GUEST_SLOT)  # and binds its receive ring here
        self.device.watch_key = self.host_key
        self.device.handle_output = self.handle_tun_output
        self.device.handle_input = self.handle_tun_input
        self.capture = None
        self.device.release = self.release
        # The tap's MAC into slot 0, then the PROMISC bit: every frame the Guest sends is ours.
        launcher.memory.write(self.device.mem + 6 * HOST_SLOT,
                              bytes([self.host_mac[0] | PROMISC_BIT]) + self.host_mac[1:])
        self.sent_something = False          # the device's private flag in the real Launcher
        self.tap_queue: deque[bytes] = deque()   # frames the Host has sent that the Guest has not had
        self.tx_frames = 0                   # frames from the Guest (written to the tap)
        self.rx_frames = 0                   # frames put into the Guest's buffers
        self.rx_dropped = 0                  # frames lost on the way in (see handle_tun_input)
        self.rx_overwritten = 0              # of those, lost to get_dma_buffer's reuse of the last buffer
        self._pcap_existed = pcap_path is not None and os.path.exists(pcap_path)
        self.capture = lguest.start_capture(self.lan, pcap_path) if pcap_path is not None else None

    # --- the Guest to the tap (reference §4.2) --------------------------------------------
    def handle_tun_output(self, key: int, iov) -> int:
        """The Guest sent to slot 0: write the frame to the tap; used_len = bytes written."""
        memory, lguest = self.launcher.memory, self.launcher.lguest
        self.sent_something = True
        frame = b"".join([memory.read(addr, length) for addr, length in iov])
        self.tx_frames += 1
        lguest.trace("tun_output", bytes=len(frame))
        if lguest.capturing(self.lan):
            lguest.capture_frame(self.lan, frame)
        self.tap_queue.extend(self.stack.receive(frame))
        return len(frame)

    # --- the tap to the Guest (reference §4.3) --------------------------------------------
    def handle_tun_input(self) -> bool:
        """One frame from the tap into the Guest's buffer on its own slot's key, then its irq.

        What the real Launcher did when the Guest had no room, kept here:
        * nothing bound to the key (before the driver opened, after ifdown): GETDMA fails,
          the frame is read into a discard buffer and lost; it warns only once the Guest has
          sent something ("network: no dma buffer!"). Counted in ``rx_dropped``.
        * bound, but every buffer in use: the Host's get_dma_buffer hands back the *last*
          buffer anyway (§3.6), and the frame overwrites one the Guest has not read. The
          real Launcher could not tell; we count it in ``rx_overwritten`` (and ``rx_dropped``).
        """
        if not self.tap_queue:
            return False
        launcher, lguest = self.launcher, self.launcher.lguest
        full = lguest.ring_full(self.guest_key)
        found = launcher.get_dma_buffer(self.guest_key)
        frame = self.tap_queue.popleft()                     # read() from the tap either way
        if found is None:
            if self.sent_something:
                launcher.warn("network: no dma buffer!", errno.ENOENT)    # the GETDMA write's errno
            self.rx_dropped += 1
            lguest.trace("tun_drop", bytes=len(frame), reason="no buffer bound")
            return True
        addr, irq, iov = found
        if full:
            self.rx_dropped += 1
            self.rx_overwritten += 1
            lguest.trace("tun_drop", bytes=len(frame), reason="ring full: last buffer overwritten")
        used = self._readv(iov, frame)
        if used == 0:                                        # readv() into no sections at all
            # err(1): 2007 also printed a stale errno after this message (left out here).
            launcher.exit("reading network")
            return True
        self.rx_frames += 1
        if lguest.capturing(self.lan):
            lguest.capture_frame(self.lan, frame[:used])
        launcher.deliver(addr, used, irq)
        return True

    def _readv(self, iov, frame: bytes) -> int:
        """readv() of one frame into the buffer's sections, in order; what does not fit is lost."""
        launcher = self.launcher
        view, done = memoryview(frame), 0
        for section, length in iov:                          # pointer-checked against top
            n = min(length, len(frame) - done)
            launcher.memory.write(section, view[done:done + n])
            done += n
            if done == len(frame):
                break
        return done

    # --- endings ----------------------------------------------------------------------------
    def release(self) -> None:
        """The Launcher exits: the tap goes away and a pcap:FILE capture is closed.

        If the Launcher never got as far as starting its Guest (a later option was bad), it
        leaves no tap behind, and no capture file it created.
        """
        if self.capture is not None:
            self.capture.close()
        if self.launcher.guest_id is None:
            self.launcher.lguest.remove_tap(self.lan)
            if self.capture is not None and not self._pcap_existed and os.path.exists(self.capture.path):
                os.remove(self.capture.path)

    def __repr__(self):
        return (f"TunNet({self.lan}: host {self.host_ip} {mac_str(self.host_mac)}, guest {self.guest_ip}/"
                f"{self.prefixlen}, tx={self.tx_frames}, rx={self.rx_frames}, dropped={self.rx_dropped})")


def setup_tun_net(launcher, arg) -> TunNet:
    """--tunnet=IP or --tunnet=pcap:FILE (reference §4.4): a net device with the Host as peer 0."""
    return TunNet(launcher, arg)
