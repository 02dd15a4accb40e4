"""The Host and Launcher side of the network: --tunnet (reference §4.4, §4.2, §4.3) and pcap capture.

Every Guest here is bus-only (``drivers=()``): the test plays the net driver by hand, building
frames with dpkt, lguest_dma structs with put_dma, and making the raw hypercalls.
"""
import filecmp
import os
import shutil
import subprocess
import sys

import dpkt
import pytest

import lguest
from lguest import abi

from host_helpers import PAGE, bind, events, lan_guests, new_dma, put_dma, send, slot_key, used_len

HOST_IP = "10.0.0.254"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (make tshark installs it)")


# --- helpers: a hand-played Guest net driver ------------------------------------------------------
def ip4(text):
    return bytes(int(part) for part in text.split("."))


def guest_mac(guest):
    """The MAC the Guest driver builds (§1.6): 02:00, guestid little-endian, 00:00."""
    return bytes([2, 0, guest.id & 0xFF, guest.id >> 8, 0, 0])


def arp_request(src_mac, spa, tpa):
    arp = dpkt.arp.ARP(op=dpkt.arp.ARP_OP_REQUEST, sha=src_mac, spa=ip4(spa), tha=bytes(6), tpa=ip4(tpa))
    return bytes(dpkt.ethernet.Ethernet(dst=b"\xff" * 6, src=src_mac, type=dpkt.ethernet.ETH_TYPE_ARP, data=arp))


def echo_request(src_mac, dst_mac, src, dst, ident, seq, payload=b"lguest ping!", icmp_type=dpkt.icmp.ICMP_ECHO):
    icmp = dpkt.icmp.ICMP(type=icmp_type, code=0,
                          data=dpkt.icmp.ICMP.Echo(id=ident, seq=seq, data=payload))
    ip = dpkt.ip.IP(src=ip4(src), dst=ip4(dst), p=dpkt.ip.IP_PROTO_ICMP, ttl=64, id=seq, data=icmp)
    return bytes(dpkt.ethernet.Ethernet(dst=dst_mac, src=src_mac, type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def fragment(frame):
    """The same packet with More Fragments set (and its header checksum redone)."""
    eth = dpkt.ethernet.Ethernet(frame)
    eth.data.mf, eth.data.sum = 1, 0
    return bytes(eth)


def tun_guest(tunnet=HOST_IP, host=None, mem_mb=16):
    host = host or lguest.Host()
    g = host.launch(mem_mb=mem_mb, tunnet=tunnet, drivers=())
    return host, g, g.launcher.tunnet


def transmit(guest, key, frame):
    """The driver's transfer_packet(): the frame in one section, SEND_DMA, and the used_len."""
    buf = guest.alloc(len(frame), align=2048)
    guest.memory.write(buf, frame)
    dma = new_dma(guest, [(buf, len(frame))])
    send(guest, key, dma)
    return used_len(guest, dma)


def rx_ring(guest, tun, sizes=(1514,) * 8):
    """The driver's open(): one receive buffer per entry, bound to its own slot's key (peer 1)."""
    bufs = [guest.alloc(size, align=2048) for size in sizes]
    arr = guest.alloc(100 * len(sizes), align=4)
    for i, (buf, size) in enumerate(zip(bufs, sizes)):
        put_dma(guest, arr + 100 * i, [(buf, size)])
    assert bind(guest, tun.guest_key, arr, len(sizes), tun.device.index + 1) == 1
    return arr, bufs


def received(guest, arr, i=0):
    """The frame in ring entry i, as long as its used_len says."""
    n = used_len(guest, arr + 100 * i)
    buf = guest.memory.u32(arr + 100 * i + 4)
    return guest.memory.read(buf, n)


def read_pcap(path):
    with open(path, "rb") as f:
        reader = dpkt.pcap.Reader(f)
        assert reader.datalink() == dpkt.pcap.DLT_EN10MB
        return [(round(ts * 1_000_000), bytes(frame)) for ts, frame in reader]


def arp_and_ping(host, g, tun):
    """ARP for the Host, then one ping to it; returns the ticks of the two sends."""
    rx_ring(g, tun)
    me, guest_ip = guest_mac(g), tun.guest_ip
    transmit(g, tun.host_key, arp_request(me, guest_ip, HOST_IP))
    t_arp = host.tick
    host.run()
    transmit(g, tun.host_key, echo_request(me, tun.host_mac, guest_ip, HOST_IP, 0x1234, 1))
    t_ping = host.tick
    host.run()
    return t_arp, t_ping


# --- §4.4 the tunnet layout -----------------------------------------------------------------------
def test_tunnet_is_a_one_page_net_device_with_the_guest_as_peer_1_and_no_nocsum():
    host, g, tun = tun_guest()
    type_, features, _status, num_pages, pfn = (int(v) for v in g.devices[0])
    assert type_ == abi.LGUEST_DEVICE_T_NET and num_pages == 1
    assert features == 1 | abi.LGUEST_DEVICE_F_RANDOMNESS
    assert not features & abi.LGUEST_NET_F_NOCSUM           # frames may reach the real world
    assert pfn * PAGE == tun.device.mem == g.memory.ram_size + PAGE
    assert features & (PAGE - 1) == 1                       # the driver's `me`: slot 1


def test_tunnet_slot0_is_host_mac_with_promisc_bit():
    host, g, tun = tun_guest()
    page = g.memory.read(tun.device.mem, PAGE)
    slot0 = page[0:6]
    assert slot0[0] & 0x01                                   # PROMISC_BIT: every frame goes to the Host
    assert bytes([slot0[0] & ~0x01]) + slot0[1:] == tun.host_mac
    assert not tun.host_mac[0] & 0x01 and tun.host_mac[0] & 0x02   # a locally administered station
    assert page[6:] == bytes(PAGE - 6)                       # slot 1 is the Guest's to fill


def test_tunnet_watch_key_is_the_page_and_the_guest_binds_page_plus_4():
    host, g, tun = tun_guest()
    assert tun.device.watch_key == tun.host_key == tun.device.mem
    assert tun.guest_key == tun.device.mem + 4
    frame = arp_request(guest_mac(g), tun.guest_ip, HOST_IP)
    assert transmit(g, tun.device.mem + 0, frame) == len(frame)    # reached handle_tun_output
    assert tun.tx_frames == 1
    assert transmit(g, tun.guest_key, frame) == 0            # nobody watches slot 1's key
    assert any("Pending dma" in line for line in g.launcher.log) and tun.tx_frames == 1


def test_tunnet_layout_follows_command_line_order_before_block_and_console(tmp_path):
    disk = tmp_path / "disk.img"
    disk.write_bytes(bytes(4096))
    g = lguest.Host().launch(mem_mb=4, sharenet=["lan0"], tunnet=HOST_IP, block=[str(disk)], drivers=())
    kinds = [int(t) for t in g.devices["type"][:4]]
    assert kinds == [abi.LGUEST_DEVICE_T_NET, abi.LGUEST_DEVICE_T_NET, abi.LGUEST_DEVICE_T_BLOCK,
                     abi.LGUEST_DEVICE_T_CONSOLE]
    assert g.launcher.tunnet.device.index == 1


@pytest.mark.parametrize("arg, host_ip, guest_ip", [
    ("10.0.0.254", "10.0.0.254", "10.0.0.1"),
    ("192.168.19.1", "192.168.19.1", "192.168.19.2"),
    ("pcap:{tmp}/t.pcap", "10.0.0.254", "10.0.0.1"),
])
def test_tunnet_exposes_the_host_address_and_a_guest_address_on_its_slash_24(tmp_path, arg, host_ip, guest_ip):
    host, g, tun = tun_guest(arg.format(tmp=tmp_path))
    assert (tun.host_ip, tun.guest_ip, tun.prefixlen, tun.netmask) == (host_ip, guest_ip, 24, "255.255.255.0")
    assert host.tunnets[tun.lan] is tun and tun.lan == "tap0"


def test_each_tunnet_gets_its_own_tap_and_host_mac():
    host = lguest.Host()
    _, a, ta = tun_guest(host=host)
    _, b, tb = tun_guest("10.0.1.254", host=host)
    assert (ta.lan, tb.lan) == ("tap0", "tap1") and ta.host_mac != tb.host_mac
    assert sorted(host.tunnets) == ["tap0", "tap1"]


@pytest.mark.parametrize("arg, error", [
    ("bridge:br0", ValueError), ("10.0.0.255", ValueError), ("10.0.0.0", ValueError), ("224.0.0.1", ValueError),
    ("not-an-ip", ValueError), ("pcap:", ValueError), (42, TypeError),
])
def test_tunnet_refuses_what_it_cannot_model_and_says_what_is_allowed(arg, error):
    host = lguest.Host()
    with pytest.raises(error, match=r"--tunnet takes the Host's IPv4 address .* or pcap:FILE"):
        host.launch(mem_mb=1, tunnet=arg, drivers=())
    assert host.tunnets == {} and host.lgs == []


# --- the Host's stack behind the tap: ARP and ping -------------------------------------------------
def test_responder_answers_an_arp_request_for_the_host_address():
    host, g, tun = tun_guest()
    arr, bufs = rx_ring(g, tun)
    me = guest_mac(g)
    transmit(g, tun.host_key, arp_request(me, tun.guest_ip, HOST_IP))
    assert used_len(g, arr) == 0                             # the reply comes out of the tap later
    host.run()
    reply = dpkt.ethernet.Ethernet(received(g, arr))
    assert (reply.dst, reply.src, reply.type) == (me, tun.host_mac, dpkt.ethernet.ETH_TYPE_ARP)
    arp = reply.data
    assert arp.op == dpkt.arp.ARP_OP_REPLY
    assert (arp.sha, arp.spa, arp.tha, arp.tpa) == (tun.host_mac, ip4(HOST_IP), me, ip4(tun.guest_ip))
    assert tun.rx_frames == 1 and tun.stack.arp_replies == 1


def test_responder_raises_the_guests_irq_for_each_reply():
    host, g, tun = tun_guest()
    rx_ring(g, tun)
    seen = []
    irq = tun.device.index + 1
    g.kernel.request_irq(irq, lambda n, dev: seen.append(n) or 1, 0, "eth0", None)
    transmit(g, tun.host_key, arp_request(guest_mac(g), tun.guest_ip, HOST_IP))
    host.run()
    assert seen == [irq]


def test_responder_answers_icmp_echo_with_the_same_id_seq_and_data_and_good_checksums():
    host, g, tun = tun_guest()
    arr, bufs = rx_ring(g, tun)
    me = guest_mac(g)
    request = echo_request(me, tun.host_mac, tun.guest_ip, HOST_IP, 0xBEEF, 7, b"x" * 56)
    assert transmit(g, tun.host_key, request) == len(request)
    host.run()
    raw = received(g, arr)
    reply = dpkt.ethernet.Ethernet(raw)
    ip, icmp = reply.data, reply.data.data
    assert (reply.dst, reply.src) == (me, tun.host_mac)
    assert (ip.src, ip.dst, ip.p) == (ip4(HOST_IP), ip4(tun.guest_ip), dpkt.ip.IP_PROTO_ICMP)
    assert (icmp.type, icmp.code) == (dpkt.icmp.ICMP_ECHOREPLY, 0)
    assert (icmp.data.id, icmp.data.seq, icmp.data.data) == (0xBEEF, 7, b"x" * 56)
    assert dpkt.in_cksum(raw[14:34]) == 0 and dpkt.in_cksum(raw[34:]) == 0
    assert tun.stack.echo_replies == 1


@pytest.mark.parametrize("case", ["arp_for_another_ip", "ping_another_ip", "unicast_to_another_mac",
                                  "bad_ip_checksum", "bad_icmp_checksum", "echo_reply", "fragment", "runt",
                                  "garbage"])
def test_responder_ignores_what_a_quiet_host_would_ignore(case):
    host, g, tun = tun_guest()
    arr, bufs = rx_ring(g, tun)
    me, gip = guest_mac(g), tun.guest_ip
    good = echo_request(me, tun.host_mac, gip, HOST_IP, 1, 1)
    frame = {
        "arp_for_another_ip": arp_request(me, gip, "10.0.0.77"),
        "ping_another_ip": echo_request(me, tun.host_mac, gip, "10.0.0.77", 1, 1),
        "unicast_to_another_mac": echo_request(me, b"\x02\x99\x99\x99\x99\x99", gip, HOST_IP, 1, 1),
        "bad_ip_checksum": good[:24] + bytes([good[24] ^ 0xFF]) + good[25:],
        "bad_icmp_checksum": good[:36] + bytes([good[36] ^ 0xFF]) + good[37:],
        "echo_reply": echo_request(me, tun.host_mac, gip, HOST_IP, 1, 1, icmp_type=dpkt.icmp.ICMP_ECHOREPLY),
        "fragment": fragment(good),
        "runt": good[:10],
        "garbage": bytes(range(60)),
    }[case]
    assert transmit(g, tun.host_key, frame) == len(frame)   # the tap takes any frame
    host.run()
    assert tun.tx_frames == 1 and tun.rx_frames == 0 and used_len(g, arr) == 0
    assert tun.stack.ignored == 1 and tun.stack.echo_replies == tun.stack.arp_replies == 0


def test_reply_is_copied_across_the_buffers_sections_in_order():
    host, g, tun = tun_guest()
    a, b = g.alloc(20, align=64), g.alloc(1494, align=2048)
    arr = g.alloc(100, align=4)
    put_dma(g, arr, [(a, 20), (b, 1494)])
    bind(g, tun.guest_key, arr, 1, tun.device.index + 1)
    transmit(g, tun.host_key, echo_request(guest_mac(g), tun.host_mac, tun.guest_ip, HOST_IP, 9, 9, b"z" * 40))
    host.run()
    n = used_len(g, arr)
    joined = g.memory.read(a, 20) + g.memory.read(b, n - 20)
    assert n == 14 + 20 + 8 + 40
    assert dpkt.ethernet.Ethernet(joined).data.data.data.data == b"z" * 40


def test_reply_longer_than_the_buffer_is_cut_to_it_and_captured_cut(tmp_path):
    host, g, tun = tun_guest()
    arr, bufs = rx_ring(g, tun, sizes=[30])
    with host.capture(tun.lan, tmp_path / "cut.pcap") as cap:
        request = echo_request(guest_mac(g), tun.host_mac, tun.guest_ip, HOST_IP, 3, 3, b"y" * 100)
        transmit(g, tun.host_key, request)
        host.run()
    assert used_len(g, arr) == 30
    frames = [f for _, f in read_pcap(cap.path)]
    assert [len(f) for f in frames] == [len(request), 30]
    assert frames[1] == g.memory.read(bufs[0], 30)


def test_no_buffer_bound_drops_the_frame_and_warns_once_the_guest_has_sent():
    host, g, tun = tun_guest()
    transmit(g, tun.host_key, arp_request(guest_mac(g), tun.guest_ip, HOST_IP))
    host.run()
    assert tun.rx_dropped == 1 and tun.rx_frames == 0 and tun.rx_overwritten == 0
    assert g.launcher.log == ["lguest: network: no dma buffer!: No such file or directory"] and g.dead is None
    assert events(host, "tun_drop", guest=g)[-1].reason == "no buffer bound"


def test_no_buffer_before_the_guest_sent_drops_silently():
    host, g, tun = tun_guest()
    tun.tap_queue.append(arp_request(b"\x02\x01\x01\x01\x01\x01", "10.0.0.9", tun.guest_ip))
    host.run()
    assert tun.rx_dropped == 1 and g.launcher.log == []


def test_full_ring_overwrites_the_last_buffer_and_counts_a_drop():
    """get_dma_buffer's quirk (§3.6): with every entry in use it hands back the last one."""
    host, g, tun = tun_guest()
    arr, bufs = rx_ring(g, tun, sizes=[1514, 1514])
    me = guest_mac(g)
    for seq in (1, 2, 3):
        transmit(g, tun.host_key, echo_request(me, tun.host_mac, tun.guest_ip, HOST_IP, 5, seq))
        host.run()                                           # nobody empties the ring
    seqs = [dpkt.ethernet.Ethernet(received(g, arr, i)).data.data.data.seq for i in (0, 1)]
    assert seqs == [1, 3]                                    # reply 2 was overwritten by reply 3
    assert tun.rx_frames == 3 and tun.rx_overwritten == 1 and tun.rx_dropped == 1


def test_a_reply_buffer_past_top_stops_the_launcher_and_the_guest():
    host, g, tun = tun_guest()
    arr = g.alloc(100, align=4)
    put_dma(g, arr, [(g.memory.top + 8, 64)])
    bind(g, tun.guest_key, arr, 1, tun.device.index + 1)
    transmit(g, tun.host_key, arp_request(guest_mac(g), tun.guest_ip, HOST_IP))
    host.run()
    assert g.dead == f"Launcher exited: Invalid address {g.memory.top + 8}"


# --- pcap capture ---------------------------------------------------------------------------------
def test_pcap_of_arp_and_ping_holds_each_frame_as_delivered(tmp_path):
    host, g, tun = tun_guest()
    with host.capture("tap0", tmp_path / "tap0.pcap") as cap:
        arp_and_ping(host, g, tun)
    assert cap.frames == 4 and cap.closed
    frames = [dpkt.ethernet.Ethernet(f) for _, f in read_pcap(tmp_path / "tap0.pcap")]
    assert [f.type for f in frames] == [dpkt.ethernet.ETH_TYPE_ARP] * 2 + [dpkt.ethernet.ETH_TYPE_IP] * 2
    assert [f.data.op for f in frames[:2]] == [dpkt.arp.ARP_OP_REQUEST, dpkt.arp.ARP_OP_REPLY]
    assert [f.data.data.type for f in frames[2:]] == [dpkt.icmp.ICMP_ECHO, dpkt.icmp.ICMP_ECHOREPLY]
    assert [f.src for f in frames] == [guest_mac(g), tun.host_mac] * 2


@needs_tshark
def test_pcap_is_decoded_by_tshark(tmp_path):
    host, g, tun = tun_guest()
    path = tmp_path / "tap0.pcap"
    with host.capture("tap0", path):
        arp_and_ping(host, g, tun)
    out = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "eth.src", "-e", "eth.dst",
                          "-e", "arp.opcode", "-e", "icmp.type", "-e", "icmp.ident", "-e", "icmp.seq"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    gm, hm = "02:00:00:00:00:00", "02:74:61:70:00:00"
    assert [r[:4] for r in rows] == [[gm, "ff:ff:ff:ff:ff:ff", "1", ""], [hm, gm, "2", ""],
                                     [gm, hm, "", "8"], [hm, gm, "", "0"]]
    assert [r[4].split(",")[0] for r in rows[2:]] == [str(0x1234)] * 2    # tshark may add the LE ident
    assert [r[5].split(",")[0] for r in rows[2:]] == ["1", "1"]


def test_pcap_timestamps_are_the_host_tick_in_ms_plus_a_us_per_frame_within_the_tick(tmp_path):
    host, g, tun = tun_guest()
    with host.capture("tap0", tmp_path / "a.pcap"):
        t_arp, t_ping = arp_and_ping(host, g, tun)
    stamps = [us for us, _ in read_pcap(tmp_path / "a.pcap")]
    assert t_ping > t_arp > 0
    assert stamps == [t_arp * 1000, t_arp * 1000 + 1, t_ping * 1000, t_ping * 1000 + 1]


def test_pcap_of_the_same_run_is_the_same_file(tmp_path):
    for name in ("one.pcap", "two.pcap"):
        host, g, tun = tun_guest()
        with host.capture("tap0", tmp_path / name):
            arp_and_ping(host, g, tun)
    assert os.path.getsize(tmp_path / "one.pcap") > 24
    assert filecmp.cmp(tmp_path / "one.pcap", tmp_path / "two.pcap", shallow=False)


def test_capture_of_an_unknown_lan_names_the_known_ones(tmp_path):
    host, _ = lan_guests(1, lan="lan0")
    tun_guest(host=host)
    with pytest.raises(lguest.LguestError, match=r"no LAN named 'lan9'.*'lan0', 'tap0'"):
        host.capture("lan9", tmp_path / "x.pcap")
    assert not (tmp_path / "x.pcap").exists()
    with pytest.raises(LookupError, match="none yet"):
        lguest.Host().capture("lan0", tmp_path / "x.pcap")


def test_closing_a_capture_stops_it_and_empties_the_hot_path_test(tmp_path):
    host, g, tun = tun_guest()
    rx_ring(g, tun)
    cap = host.capture("tap0", tmp_path / "c.pcap")
    transmit(g, tun.host_key, arp_request(guest_mac(g), tun.guest_ip, HOST_IP))
    host.run()
    cap.close()
    cap.close()                                              # twice is harmless
    assert host.captures == {}
    transmit(g, tun.host_key, arp_request(guest_mac(g), tun.guest_ip, HOST_IP))
    host.run()
    assert cap.frames == 2 and len(read_pcap(cap.path)) == 2 and tun.rx_frames == 2
    with pytest.raises(ValueError, match="closed"):
        cap.write(b"\x00" * 60)


def test_sharenet_frame_is_captured_once_per_delivered_copy(tmp_path):
    """A "broadcast" from Guest 0 is one SEND_DMA per live peer: each copy that lands is a record."""
    host, (a, b, c) = lan_guests(3, lan="lan0", mem_mb=2)
    rings = {}
    for g, slot in ((b, 1), (c, 2)):
        buf = g.alloc(1514, align=2048)
        arr = new_dma(g, [(buf, 1514)])
        assert bind(g, slot_key(g, slot), arr, 1, 1) == 1
        rings[g.id] = arr
    frame = arp_request(guest_mac(a), "10.1.0.1", "10.1.0.3")
    with host.capture("lan0", tmp_path / "lan0.pcap") as cap:
        for slot in (1, 2, 3):                               # slot 3: nobody bound, nothing delivered
            transmit(a, slot_key(a, slot), frame)
        send(a, slot_key(a, 1), new_dma(a, []))              # an empty "ping": no bytes, no frame
    records = read_pcap(cap.path)
    assert cap.frames == 2 and [f for _, f in records] == [frame, frame]
    assert used_len(b, rings[b.id]) == used_len(c, rings[c.id]) == len(frame)


def test_sharenet_capture_records_what_was_copied_not_what_was_sent(tmp_path):
    host, (a, b) = lan_guests(2, lan="lan0", mem_mb=2)
    buf = b.alloc(64, align=64)
    arr = new_dma(b, [(buf, 20)])
    bind(b, slot_key(b, 1), arr, 1, 1)
    frame = echo_request(guest_mac(a), guest_mac(b), "10.1.0.1", "10.1.0.2", 1, 1)
    with host.capture("lan0", tmp_path / "short.pcap"):
        transmit(a, slot_key(a, 1), frame)
    assert read_pcap(tmp_path / "short.pcap")[0][1] == frame[:20]


def test_two_captures_of_one_lan_both_record_and_other_lans_stay_out(tmp_path):
    host, (a, b) = lan_guests(2, lan="lan0", mem_mb=2)
    tun_host, g, tun = tun_guest(host=host)
    buf = b.alloc(128, align=128)
    bind(b, slot_key(b, 1), new_dma(b, [(buf, 128)]), 1, 1)
    with host.capture("lan0", tmp_path / "1.pcap") as one, host.capture("lan0", tmp_path / "2.pcap") as two, \
            host.capture("tap0", tmp_path / "t.pcap") as tap:
        transmit(a, slot_key(a, 1), b"\x02" * 60)
    assert (one.frames, two.frames, tap.frames) == (1, 1, 0)
    assert filecmp.cmp(one.path, two.path, shallow=False)


# --- tunnet=pcap:FILE and the command line --------------------------------------------------------
def test_tunnet_pcap_option_captures_from_the_start_and_closes_when_the_guest_dies(tmp_path):
    path = tmp_path / "boot.pcap"
    host, g, tun = tun_guest(f"pcap:{path}")
    assert tun.capture is not None and host.captures["tap0"] == [tun.capture]
    arp_and_ping(host, g, tun)
    assert len(read_pcap(path)) == 4                         # flushed frame by frame: readable now
    g.hypercall(abi.LHCALL_CRASH, 0)
    assert tun.capture.closed and host.captures == {}


def test_a_launch_that_fails_after_tunnet_leaves_no_tap_and_no_pcap_file(tmp_path):
    host = lguest.Host()
    path = tmp_path / "never.pcap"
    with pytest.raises(ValueError, match="no such disk image"):
        host.launch(mem_mb=1, tunnet=f"pcap:{path}", block=[str(tmp_path / "missing.img")], drivers=())
    assert not path.exists() and host.tunnets == {} and host.captures == {}


def test_cli_tunnet_pcap_boots_and_leaves_a_valid_capture(tmp_path):
    path = tmp_path / "cli.pcap"
    out = subprocess.run([sys.executable, "-m", "lguest", f"--tunnet=pcap:{path}", "16"], cwd=ROOT,
                         input=b"echo up\n", capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "not yet available" not in out.stderr.decode()
    assert "up" in out.stdout.decode()
    read_pcap(path)                                          # a pcap file dpkt accepts (maybe no frames)


def test_cli_tunnet_bridge_is_refused_with_what_is_allowed():
    out = subprocess.run([sys.executable, "-m", "lguest", "--tunnet=bridge:br0", "16"], cwd=ROOT,
                         capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "--tunnet takes the Host's IPv4 address" in out.stderr.decode()
