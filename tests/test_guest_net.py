"""D:500-D:580: the Guest network driver, its quirks, and Guests pinging each other on a LAN."""
import errno

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lguest
from lguest import abi
from lguest.errors import LguestError
from lguest.guest.kernel import DRIVERS, IRQ_HANDLED, IRQ_NONE, IRQF_SAMPLE_RANDOM, IRQF_SHARED
from lguest.guest.linux.netdev import (CHECKSUM_UNNECESSARY, NETIF_F_NO_CSUM, NETIF_F_SG, PACKET_OTHERHOST,
                                      SkBuff, alloc_skb, dev_queue_xmit)
from lguest.guest.net import (NUM_SKBS, PROMISC_BIT, LguestNet, LguestnetInfo, mac_eq, peer_key, promisc,
                              unused_peer, xmit_peers)

from host_helpers import bind, events, lan_page, pattern, ring, slot_key

PAGE = abi.PAGE_SIZE
TEST_ETHERTYPE = 0x88B5            # IEEE's "local experimental": the stack ignores it


def lan(n=2, mem_mb=4, **kw):
    host = lguest.Host()
    guests = [host.launch(mem_mb=mem_mb, sharenet=["lan0"], **kw) for _ in range(n)]
    host.run()
    return host, guests


def eth0(guest):
    return guest.kernel.net.dev("eth0")


def send_raw(sender, dest_mac, payload=b"x" * 50, eth_type=TEST_ETHERTYPE):
    sender.kernel.inet.eth_xmit(eth0(sender), dest_mac, eth_type, payload)


def failing_after(kmalloc, n):
    """An allocator that gives ``n`` more blocks, then runs out."""
    real, left = kmalloc.alloc, [n]

    def alloc(size, align=16):
        if left[0] == 0:
            raise LguestError("out of Guest memory (test)")
        left[0] -= 1
        return real(size, align)
    return alloc


# --- D:510 probe -------------------------------------------------------------------------------
def test_d510_mac_is_02_00_guestid_le_00_00():
    host, (a, b) = lan(2)
    assert eth0(a).dev_addr == bytes([2, 0, 0, 0, 0, 0]) and eth0(b).dev_addr == bytes([2, 0, 1, 0, 0, 0])
    g = host.launch(mem_mb=4, sharenet=["lan1"], drivers=())
    g.kernel.lguest_data_fields()["guestid"] = 0x0203          # a guestid past 255 shows the byte order
    g.kernel.net = LguestNet(g.kernel)
    g.kernel.net.lguestnet_init()
    assert eth0(g).dev_addr == bytes([2, 0, 0x03, 0x02, 0, 0])


def test_d510_sg_and_no_csum_only_together_and_only_with_nocsum():
    host, (a,) = lan(1)
    assert eth0(a).features == NETIF_F_SG | NETIF_F_NO_CSUM
    g = host.launch(mem_mb=4, sharenet=["lan1"], drivers=())
    g.devices[0]["features"] = 5                          # slot 5, no NOCSUM
    g.kernel.net = LguestNet(g.kernel)
    g.kernel.net.lguestnet_init()
    assert eth0(g).features == 0 and eth0(g).priv.me == 5


def test_d510_me_masks_off_the_feature_bits_and_randomness_adds_sample_random():
    g = lguest.Host().launch(mem_mb=4, sharenet=["lan0"], drivers=())
    g.devices[0]["features"] = abi.LGUEST_DEVICE_F_RANDOMNESS | abi.LGUEST_NET_F_NOCSUM | 9
    g.kernel.net = LguestNet(g.kernel)
    g.kernel.net.lguestnet_init()
    assert eth0(g).priv.me == 9
    (action,) = g.kernel.irq_actions[1]
    assert action.name == "lguestnet" and action.flags == IRQF_SHARED | IRQF_SAMPLE_RANDOM


def test_d510_probe_registers_eth0_maps_the_page_and_takes_irq_index_plus_1():
    host, (a,) = lan(1)
    dev = eth0(a)
    info = dev.priv
    assert int(a.devices[0]["status"]) == 7 and "eth0" not in a.kernel.dev_nodes   # no /dev node
    assert (info.peer_phys, info.mapsize, info.nslots) == (lan_page(a), PAGE, 682)
    (action,) = a.kernel.irq_actions[1]
    assert (action.name, action.flags, action.dev_id) == ("lguestnet", IRQF_SHARED, dev)
    assert a.kernel.dmesg == ["Linux version 2.6.23 (the lguest model): Guest 0, 4 MiB"]   # the bus says nothing
    assert a.kernel.debug[:2] == ["lguest_net: probing for device 0", "lguestnet: registered device eth0"]
    assert DRIVERS == ("console", "block", "net")


def test_d510_a_failed_request_irq_tears_the_device_down_but_the_probe_returns_0():
    """2007's bug: err still holds register_netdev()'s 0, so the bus sets DRIVER_OK on a device
    with no net_device behind it."""
    host = lguest.Host()
    g = host.launch(mem_mb=4, sharenet=["lan0"], boot=False)
    kernel = g.kernel
    assert kernel.request_irq(1, lambda irq, dev: 1, 0, "squatter", None) == 0   # line 1, unshared
    kernel.boot()
    assert int(g.devices[0]["status"]) == 7                      # ACKNOWLEDGE|DRIVER|DRIVER_OK
    assert kernel.net.devices == [] and kernel.bus.devices[0].private is None
    assert kernel.debug[-1] == "lguestnet: cannot get irq 1"
    assert [a.name for a in kernel.irq_actions[1]] == ["squatter"]


def test_probe_order_console_binds_before_net_and_net_comes_up_at_boot():
    host, (a,) = lan(1)
    binds = events(host, "bind", guest=a)
    assert [e.key for e in binds] == [0, peer_key(eth0(a).priv, 0)]
    assert eth0(a).up and str(a.kernel.inet.addrs["eth0"]) == "10.0.0.1/24"


def test_two_lans_give_eth0_and_eth1_on_their_own_subnets():
    host = lguest.Host()
    g = host.launch(mem_mb=4, sharenet=["a", "b"])
    out = g.shell("ifconfig")
    assert "eth0" in out and "eth1" in out
    assert [str(g.kernel.inet.addrs[n]) for n in ("eth0", "eth1")] == ["10.0.0.1/24", "10.1.0.1/24"]
    assert sorted(g.kernel.irq_actions) == [1, 2, 3]


# --- D:520 / D:530 / D:570: the page, the struct and the keys --------------------------------
def test_d520_every_guest_sees_every_mac_in_its_own_mapping_of_the_page():
    host, (a, b) = lan(2)
    for g in (a, b):
        page = g.memory.read(lan_page(g), 12)
        assert page == eth0(a).dev_addr + eth0(b).dev_addr


def test_d530_info_holds_the_ring_inside_the_driver_struct():
    host, (a,) = lan(1)
    dev = eth0(a)
    info = dev.priv
    assert info.dma == dev.priv_addr + 52 and len(info.skb) == NUM_SKBS
    assert info.slots().shape == (682, 6) and np.shares_memory(info.slots(), info.peer)


def test_d570_peer_key_is_page_plus_4n():
    host, (a, b) = lan(2)
    for g in (a, b):
        info = eth0(g).priv
        assert [peer_key(info, n) for n in (0, 1, 681)] == [lan_page(g), lan_page(g) + 4, lan_page(g) + 2724]
    assert {(bd.guestid, bd.ukey) for bd in host.bindings() if bd.ukey} == {
        (a.id, lan_page(a)), (b.id, lan_page(b) + 4)}


def test_mac_eq_ignores_promisc_bit():
    page = np.zeros(PAGE, np.uint8)
    page[6:12] = [0x03, 0, 1, 0, 0, 0]                    # slot 1: 02:00:01:00:00:00, promiscuous
    info = LguestnetInfo(page, 0, PAGE, None, 0, 0)
    assert mac_eq(bytes([2, 0, 1, 0, 0, 0]), info, 1) and promisc(info, 1)
    assert not mac_eq(bytes([2, 0, 1, 0, 0, 1]), info, 1)
    assert unused_peer(page, 0) and not unused_peer(page, 1)


# --- D:570 skb_to_dma --------------------------------------------------------------------------
def dma_fields(guest, dma):
    d = guest.memory.struct_at(dma, abi.lguest_dma)
    return int(d["used_len"]), [int(x) for x in d["addr"]], [int(x) for x in d["len"]]


def test_skb_to_dma_splits_head_at_page_boundary():
    host, (a,) = lan(1)
    page = a.alloc(2 * PAGE, align=PAGE)
    skb = SkBuff(a.kernel, page + 4000, 1514)
    skb.skb_put(1514)
    scratch = a.dma(used_len=99)
    sections = a.kernel.net.skb_to_dma(skb, 1514, scratch)
    used, addrs, lens = dma_fields(a, scratch)
    assert sections == [(page + 4000, 96), (page + PAGE, 1418)]
    assert (addrs[:2], lens[:3]) == ([page + 4000, page + PAGE], [96, 1418, 0])
    assert used == 99                                    # skb_to_dma leaves used_len to its caller


def test_skb_to_dma_puts_fragments_after_the_head():
    host, (a,) = lan(1)
    pages = a.alloc(2 * PAGE, align=PAGE)
    skb = alloc_skb(a.kernel, 64)
    skb.skb_put(20)
    skb.add_frag(pages, 100, 300)
    skb.add_frag(pages + PAGE, 0, 4096)
    sections = a.kernel.net.skb_to_dma(skb, skb.headlen, a.dma())
    assert sections == [(skb.data, 20), (pages + 100, 300), (pages + PAGE, 4096)]
    assert skb.len == 4416 and skb.headlen == 20


def test_megapacket_truncates_past_16_sections():
    host, (a, b) = lan(2)
    dev = eth0(a)
    pages = a.alloc(16 * PAGE, align=PAGE)
    skb = alloc_skb(a.kernel, 64)
    a.memory.write(skb.skb_put(14), eth0(b).dev_addr + dev.dev_addr + TEST_ETHERTYPE.to_bytes(2, "big"))
    for i in range(16):                                  # 1 head section + 16 fragments = 17
        a.memory.write(pages + i * PAGE, pattern(50, seed=i))
        skb.add_frag(pages + i * PAGE, 0, 50)
    skb.dev = dev
    rx_before = eth0(b).stats.rx_bytes
    assert dev_queue_xmit(skb) == 0
    host.run()
    assert "Woah dude!  Megapacket!" in a.kernel.dmesg
    used, addrs, lens = dma_fields(a, a.kernel.net.stack_dma)
    assert used == 14 + 15 * 50 and all(lens)            # 16 sections, no terminator
    assert dev.stats.tx_carrier_errors == 1 and dev.stats.tx_packets == 0
    assert eth0(b).stats.rx_bytes - rx_before == 15 * 50
    assert b.kernel.inet.tap[-1].data[-50:] == pattern(50, seed=14)   # the 16th fragment never left


# --- D:550 open, close -------------------------------------------------------------------------
def test_d550_open_fills_8_slots_and_binds_them_at_peer_key_me():
    host, (a, b) = lan(2)
    info = eth0(b).priv
    (binding,) = [bd for bd in host.bindings() if bd.guestid == b.id and bd.ukey]
    assert (binding.ukey, binding.dmas, binding.num_dmas, binding.interrupt) == (
        peer_key(info, 1), info.dma, NUM_SKBS, 1)
    for i, skb in enumerate(info.skb):
        used, addrs, lens = dma_fields(b, info.dma_addr(i))
        assert used == 0 and addrs[0] == skb.data and sum(lens) == 1514


def test_d550_open_failure_frees_what_it_filled_and_returns_enomem(monkeypatch):
    host, (a,) = lan(1)
    dev, kernel = eth0(a), a.kernel
    assert a.shell("ifconfig eth0 down") == ""
    blocks = dict(kernel.kmalloc._sizes)
    monkeypatch.setattr(kernel.kmalloc, "alloc", failing_after(kernel.kmalloc, 3))
    assert a.shell("ifconfig eth0 up") == "SIOCSIFFLAGS: Cannot allocate memory\n"
    skbs = dev.priv.skb                       # 2007 left the freed pointers, and slot 3's NULL
    assert kernel.kmalloc._sizes == blocks and all(s.freed for s in skbs[:3]) and skbs[3] is None
    assert "eth0: could not fill slot 3" in kernel.dmesg and not dev.up
    assert not [bd for bd in host.bindings() if bd.ukey]
    assert a.memory.read(lan_page(a), 6) == dev.dev_addr    # 2007: the MAC stays published


def test_close_zeroes_slot_and_unbinds():
    host, (a, b) = lan(2)
    info = eth0(a).priv
    heads = [skb.head for skb in info.skb]
    mark = host.trace.mark()
    assert a.shell("ifconfig eth0 down") == ""
    assert a.memory.read(lan_page(a), 6) == bytes(6)
    assert [(e.key, e.dmas) for e in events(host, "unbind", mark)] == [(peer_key(info, 0), info.dma)]
    assert not any(h in a.kernel.kmalloc._sizes for h in heads) and all(s.freed for s in info.skb)
    assert "100% packet loss" in b.shell("ping -c 1 10.0.0.1")
    assert a.shell("ifconfig eth0 up") == ""
    assert "1 received" in b.shell("ping -c 1 10.0.0.1")


# --- D:560 receive ---------------------------------------------------------------------------------
def test_d560_fill_slot_barrier_before_used_len():
    host, (a,) = lan(1)
    dev, net = eth0(a), a.kernel.net
    info = dev.priv
    dma = info.dma_addr(3)
    a.memory.set_u32(dma, 77)                            # slot 3 holds a frame we have taken
    old = info.skb[3]
    seen = []

    def sink(event):                                     # what the Host could see at each step
        seen.append((event.kind, a.memory.u32(dma), a.memory.u32(dma + 4)))
    stop = a.host.watch(sink)
    assert net.fill_slot(dev, 3) == 0
    stop()
    new = info.skb[3]
    assert new is not old
    assert seen == [("wmb", 77, new.data), ("used_len", 0, new.data)]
    assert [k for k, _ in list(a.kernel.events)[-2:]] == ["wmb", "used_len"]


def test_d560_fill_slot_failure_is_enomem(monkeypatch):
    host, (a,) = lan(1)
    monkeypatch.setattr(a.kernel.kmalloc, "alloc", failing_after(a.kernel.kmalloc, 0))
    assert a.kernel.net.fill_slot(eth0(a), 0) == -errno.ENOMEM
    assert a.kernel.dmesg[-1] == "eth0: could not fill slot 0"


def test_d560_a_frame_left_in_the_ring_at_close_meets_a_freed_skb():
    """lguestnet_close() frees the eight skbs but leaves info->skb[] pointing at them; a frame
    the Host filled in before the unbind, whose interrupt comes after the close, sends the
    handler into freed memory. The model stops there, saying so (rx-oops)."""
    host, (a, b) = lan(2)
    dev, net = eth0(a), a.kernel.net
    send_raw(b, dev.dev_addr)                          # into a's ring; a has not run yet
    assert a.memory.u32(dev.priv.dma_addr(0)) == 64
    assert a.shell("ifconfig eth0 down") == "" and all(s.freed for s in dev.priv.skb)
    with pytest.raises(AssertionError, match="eth0 slot 0 has data but its skb was freed"):
        net.lguestnet_rcv(1, dev)


def test_rcv_drops_lengths_outside_14_1514():
    host, (a,) = lan(1)
    dev, net = eth0(a), a.kernel.net
    info = dev.priv
    for slot, length in zip(range(4), (13, 14, 1514, 1515)):
        a.memory.set_u32(info.dma_addr(slot), length)
    old = list(info.skb)
    assert net.lguestnet_rcv(1, dev) == IRQ_HANDLED
    assert (dev.stats.rx_packets, dev.stats.rx_bytes, dev.stats.rx_dropped) == (2, 0 + 1500, 0)
    assert [d for d in a.kernel.debug if "unbelievable" in d] == [
        "eth0: unbelievable skb len: 13", "eth0: unbelievable skb len: 1515"]
    assert all(a.memory.u32(info.dma_addr(i)) == 0 for i in range(NUM_SKBS))
    assert all(info.skb[i] is not old[i] for i in range(4)) and info.skb[4:] == old[4:]
    assert net.lguestnet_rcv(1, dev) == IRQ_NONE


def test_rcv_marks_checksum_unnecessary_on_no_csum_devices():
    """With NO_CSUM a corrupt ICMP sum is never looked at; without it the packet is ignored."""
    host, (a, b) = lan(2)
    bad = dpkt.icmp.ICMP(type=dpkt.icmp.ICMP_ECHO, sum=0x1234,
                         data=dpkt.icmp.ICMP.Echo(id=7, seq=1, data=b"checksum"))
    packet = dpkt.ip.IP(src=bytes([10, 0, 0, 1]), dst=bytes([10, 0, 0, 2]), p=1, ttl=64, id=9, data=bad)
    send_raw(a, eth0(b).dev_addr, bytes(packet), dpkt.ethernet.ETH_TYPE_IP)
    host.run()
    assert (7, 1) in a.kernel.inet.echo_replies
    eth0(b).features = 0
    bad.data.seq = 2
    send_raw(a, eth0(b).dev_addr, bytes(packet), dpkt.ethernet.ETH_TYPE_IP)
    host.run()
    assert (7, 2) not in a.kernel.inet.echo_replies
    assert CHECKSUM_UNNECESSARY == 2


# --- D:570 transmit ------------------------------------------------------------------------------
def test_start_xmit_walks_all_682_slots():
    host = lguest.Host()
    a = host.launch(mem_mb=4, sharenet=["lan0"])
    x = host.launch(mem_mb=4, sharenet=["lan0"], drivers=())    # plays peer 681 by hand
    far = bytes([2, 0, 0xAA, 0xBB, 0, 0])
    x.memory.write(lan_page(x) + 681 * 6, far)
    x.memory.write(lan_page(x) + 682 * 6, far[:4])              # the 4 spare bytes are no slot
    arr, (buf,) = ring(x, [1514])
    assert bind(x, slot_key(x, 681), arr, 1, 5) == 1
    host.run()
    mark = host.trace.mark()
    send_raw(a, far)
    sends = events(host, "send_dma", mark, guest=a)
    assert [e.key for e in sends] == [peer_key(eth0(a).priv, 681)]
    assert x.memory.u32(arr) == 64 and x.memory.read(buf, 6) == far


def test_unicast_goes_only_to_the_addressed_peer_and_xmit_returns_0():
    host, (a, b, c) = lan(3)
    dev = eth0(a)
    mark = host.trace.mark()
    send_raw(a, eth0(c).dev_addr)
    assert [e.key for e in events(host, "send_dma", mark, guest=a)] == [peer_key(dev.priv, 2)]
    skb = alloc_skb(a.kernel, 64)
    a.memory.write(skb.skb_put(60), bytes([2, 0, 9, 9, 0, 0]) + bytes(54))
    head = skb.head
    assert a.kernel.net.lguestnet_start_xmit(skb, dev) == 0      # nobody wanted it: still "success"
    assert head not in a.kernel.kmalloc._sizes                   # and the skb was freed


def test_counters_per_copy_on_broadcast():
    host, (a, b, c) = lan(3)
    dev = eth0(a)
    before = (dev.stats.tx_packets, dev.stats.tx_bytes)
    send_raw(a, b"\xff" * 6)                                     # 14 + 50 bytes, to 2 peers
    assert (dev.stats.tx_packets - before[0], dev.stats.tx_bytes - before[1]) == (2, 128)
    send_raw(a, bytes([0x01, 0x00, 0x5E, 0, 0, 1]))              # multicast is flooded too
    assert dev.stats.tx_packets - before[0] == 4


def test_promiscuous_guest_sees_everything():
    host, (a, b, c) = lan(3)
    assert "1 received" in a.shell("ping -c 1 10.0.0.2")        # ARP done
    assert c.shell("ifconfig eth0 promisc") == ""
    assert c.memory.read(lan_page(c) + 12, 1)[0] == 0x02 | PROMISC_BIT
    assert "PROMISC" in c.shell("ifconfig eth0")
    rx, tx = eth0(c).stats.rx_packets, eth0(c).stats.tx_packets
    assert "1 received" in a.shell("ping -c 1 10.0.0.2")
    assert (eth0(c).stats.rx_packets - rx, eth0(c).stats.tx_packets - tx) == (2, 0)
    assert [f.pkt_type for f in list(c.kernel.inet.tap)[-2:]] == [PACKET_OTHERHOST] * 2
    assert "1 received" in a.shell("ping -c 1 10.0.0.3")        # its own address still matches
    assert c.shell("ifconfig eth0 -promisc") == ""
    assert c.memory.read(lan_page(c) + 12, 1)[0] == 0x02
    rx = eth0(c).stats.rx_packets
    a.shell("ping -c 1 10.0.0.2")
    assert eth0(c).stats.rx_packets == rx


def test_set_multicast_sets_the_bit_for_allmulti_and_for_any_group():
    host, (a,) = lan(1)
    net, dev = a.kernel.net, eth0(a)
    a.shell("ifconfig eth0 allmulti")
    assert a.memory.read(lan_page(a), 1)[0] & PROMISC_BIT
    a.shell("ifconfig eth0 -allmulti")
    assert not a.memory.read(lan_page(a), 1)[0] & PROMISC_BIT
    dev.mc_list.append(bytes([1, 0, 0x5E, 0, 0, 1]))
    net.lguestnet_set_multicast(dev)
    assert a.memory.read(lan_page(a), 1)[0] & PROMISC_BIT


def test_full_ring_retries_once_counts_a_carrier_error_and_still_raises_the_irq():
    host, (a, b) = lan(2)
    irq = 1
    b.kernel.disable_irq(irq)                                   # b is too slow to drain its ring
    for _ in range(NUM_SKBS):
        send_raw(a, eth0(b).dev_addr)
    assert eth0(a).stats.tx_packets == NUM_SKBS
    mark = host.trace.mark()
    send_raw(a, eth0(b).dev_addr)
    assert [e.attempt for e in events(host, "send_dma", mark, guest=a)] == [1, 2]
    assert len(events(host, "ring_full", mark, guest=b)) == 2
    assert len(events(host, "send_dma_full", mark, guest=a)) == 1
    assert [e.irq for e in events(host, "irq_raise", mark, guest=b)] == [irq, irq]
    assert eth0(a).stats.tx_carrier_errors == 1 and eth0(a).stats.tx_packets == NUM_SKBS
    b.kernel.enable_irq(irq)
    host.run()
    assert eth0(b).stats.rx_packets == NUM_SKBS


def test_dead_peer_gives_used_len_0_and_a_carrier_error():
    host, (a, b) = lan(2)
    assert "1 received" in a.shell("ping -c 1 10.0.0.2")
    b.hypercall(abi.LHCALL_CRASH, b.alloc(16))
    assert b.dead == "CRASH: "
    assert a.memory.read(lan_page(a) + 6, 6) == eth0(b).dev_addr   # its slot is left stale
    mark = host.trace.mark()
    out = a.shell("ping -c 1 10.0.0.2")
    assert "1 packets transmitted, 0 received, 100% packet loss" in out
    assert [e.to for e in events(host, "send_dma", mark, guest=a)] == [None]
    assert a.memory.u32(a.kernel.net.stack_dma) == 0
    assert eth0(a).stats.tx_carrier_errors == 1
    # pr_debug("Bad xfer to peer %i: %i of %i (dma %p/%i)"), compiled out in 2007, kept here
    head = int(a.memory.struct_at(a.kernel.net.stack_dma, abi.lguest_dma)["addr"][0])
    assert a.kernel.debug[-1] == f"Bad xfer to peer 1: 0 of 98 (dma {head:08x}/98)"


# --- the vectorised slot choice against the C loop ------------------------------------------------
DESTS = [bytes([2, 0, 1, 0, 0, 0]), b"\xff" * 6, bytes([1, 0, 0x5E, 0, 0, 7]), bytes([2, 0, 5, 0, 0, 9])]


def c_loop(info, dest):
    """lguestnet_start_xmit()'s loop, slot by slot, as the C wrote it."""
    chosen = []
    for i in range(info.nslots):
        if i == info.me or unused_peer(info.peer, i):
            continue
        if not (dest[0] & 1) and not promisc(info, i) and not mac_eq(dest, info, i):
            continue
        chosen.append(i)
    return chosen


@settings(derandomize=True, max_examples=200, deadline=None)
@given(st.data())
def test_xmit_peers_matches_the_c_loop(data):
    dest = data.draw(st.sampled_from(DESTS))
    near = [dest, bytes([dest[0] | 1]) + dest[1:], dest[:5] + b"\x01", bytes([dest[0] ^ 2]) + dest[1:],
            bytes([0]) + dest[1:]]
    mac = st.one_of(st.sampled_from(near), st.binary(min_size=6, max_size=6))
    page = np.zeros(PAGE, np.uint8)
    for slot, value in data.draw(st.lists(st.tuples(st.integers(0, 681), mac), max_size=40)):
        page[slot * 6:slot * 6 + 6] = np.frombuffer(value, np.uint8)
    page[4092:] = np.frombuffer(data.draw(st.binary(min_size=4, max_size=4)), np.uint8)
    info = LguestnetInfo(page, 0x10000, PAGE, None, data.draw(st.integers(0, 681)), 0)
    assert xmit_peers(info.slots(), info.me, dest) == c_loop(info, dest)


# --- the stack: ARP, ICMP and the shell ------------------------------------------------------------
def test_three_guests_ping_each_other_with_arp_then_icmp():
    host, (a, b, c) = lan(3)
    mark = host.trace.mark()
    out = a.shell("ping -c 2 10.0.0.2")
    assert out == ("PING 10.0.0.2 (10.0.0.2) 56(84) bytes of data.\n"
                   "64 bytes from 10.0.0.2: icmp_seq=1 ttl=64\n"
                   "64 bytes from 10.0.0.2: icmp_seq=2 ttl=64\n"
                   "\n--- 10.0.0.2 ping statistics ---\n"
                   "2 packets transmitted, 2 received, 0% packet loss\n")
    # a: ARP request to 2 peers (42 bytes each), 2 echo requests (98); b: ARP reply, 2 echo replies
    sa, sb, sc = (eth0(g).stats for g in (a, b, c))
    assert (sa.tx_packets, sa.tx_bytes, sa.rx_packets, sa.rx_bytes) == (4, 2 * 42 + 2 * 98, 3, 28 + 2 * 84)
    assert (sb.tx_packets, sb.tx_bytes, sb.rx_packets, sb.rx_bytes) == (3, 42 + 2 * 98, 3, 28 + 2 * 84)
    assert (sc.tx_packets, sc.rx_packets, sc.rx_bytes) == (0, 1, 28)   # heard the broadcast only
    first = [e.key - lan_page(a) for e in events(host, "send_dma", mark, guest=a)][:2]
    assert first == [4, 8]                                       # the ARP request, in slot order
    assert "10.0.0.2        ether   02:00:01:00:00:00   C" in a.shell("arp")
    assert "10.0.0.1 " in b.shell("arp") and c.kernel.inet.neigh == {}
    assert "3 packets transmitted, 3 received, 0% packet loss" in c.shell("ping -c 3 10.0.0.1")
    assert "1 received" in b.shell("ping -c 1 10.0.0.3")
    assert all(eth0(g).stats.tx_carrier_errors == 0 for g in (a, b, c))


def test_ping_id_is_fixed_per_guest_and_sequence_counts_from_1():
    host, (a, b) = lan(2)
    a.shell("ping -c 2 10.0.0.2")
    echoes = [dpkt.ethernet.Ethernet(f.data) for f in b.kernel.inet.tap if f.protocol == 0x0800]
    assert [(e.data.data.data.id, e.data.data.data.seq) for e in echoes] == [(0x1000, 1), (0x1000, 2)]
    assert a.kernel.inet.ping_ident == 0x1000 and b.kernel.inet.ping_ident == 0x1001


def test_ping_an_absent_host_is_unreachable():
    host, (a, b) = lan(2)
    out = a.shell("ping -c 2 10.0.0.9")
    assert "From 10.0.0.1 icmp_seq=1 Destination Host Unreachable" in out
    assert out.endswith("2 packets transmitted, 0 received, +2 errors, 100% packet loss\n")
    assert "10.0.0.9" + " " * 16 + "(incomplete)" in a.shell("arp")
    head, row = a.shell("arp").splitlines()          # the columns line up, within the book's 76
    assert row.index("eth0") == head.index("Iface") and max(len(head), len(row)) <= 76
    assert a.shell("ping -c 1 192.168.1.1") == "ping: connect: Network is unreachable\n"


def test_ping_own_address_turns_round_without_touching_the_lan():
    host, (a, b) = lan(2)
    mark = host.trace.mark()
    assert "1 packets transmitted, 1 received, 0% packet loss" in a.shell("ping -c 1 10.0.0.1")
    assert events(host, "send_dma", mark) == [] and eth0(a).stats.tx_packets == 0


def test_ifconfig_sets_an_address_and_others_reach_it():
    host, (a, b) = lan(2)
    assert b.shell("ifconfig eth0 10.0.0.5") == ""
    assert "inet addr:10.0.0.5  Bcast:10.0.0.255  Mask:255.255.255.0" in b.shell("ifconfig eth0")
    assert "1 received" in a.shell("ping -c 1 10.0.0.5")
    assert b.shell("ifconfig eth0 netmask 255.255.0.0") == ""
    assert str(b.kernel.inet.addrs["eth0"]) == "10.0.0.5/16"


def test_ifconfig_shows_the_counters():
    host, (a, b) = lan(2)
    a.shell("ping -c 1 10.0.0.2")
    out = a.shell("ifconfig eth0")
    assert out.splitlines()[0] == "eth0      Link encap:Ethernet  HWaddr 02:00:00:00:00:00"
    assert "UP BROADCAST RUNNING MULTICAST  MTU:1500  Metric:1" in out
    assert "TX packets:2 errors:0 dropped:0 overruns:0 carrier:0" in out
    assert "RX bytes:112 (112.0 B)  TX bytes:140 (140.0 B)" in out


def test_shell_misuse_says_what_is_allowed():
    host, (a,) = lan(1)
    assert a.shell("ping -c 0 10.0.0.2") == "ping: bad number of packets to transmit.\n"
    assert a.shell("ping") == "ping: usage: ping [-c COUNT] ADDRESS\n"
    assert a.shell("ifconfig eth9") == "eth9: error fetching interface information: Device not found\n"
    assert "10.0.0.5 or 10.0.0.5/24" in a.shell("ifconfig eth0 10.0.0.300")
    with pytest.raises(ValueError, match="at least 1"):
        a.kernel.inet.ping("10.0.0.2", 0)
    with pytest.raises(ValueError, match="tailroom"):
        alloc_skb(a.kernel, 16).skb_put(17)
    with pytest.raises(ValueError, match="positive size"):
        alloc_skb(a.kernel, 0)
