"""D:500-D:580 end to end: Guests ping each other and the Host, and tshark reads the capture."""
import shutil
import subprocess

import pytest

import lguest
from lguest.widgets import LanPage

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(TSHARK is None, reason="tshark is not installed (make tshark installs it)")
FIELDS = ("eth.src", "eth.dst", "arp.opcode", "icmp.type", "icmp.ident", "icmp.seq")


def tshark_rows(path):
    args = [TSHARK, "-r", str(path), "-T", "fields"] + [a for f in FIELDS for a in ("-e", f)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines()]


def mac(guest) -> str:
    return ":".join(f"{b:02x}" for b in guest.kernel.net.dev("eth0").dev_addr)


def lan_of_three():
    host = lguest.Host()
    return host, [host.launch(mem_mb=16, sharenet=["lan0"]) for _ in range(3)]


@needs_tshark
def test_ping_between_two_guests_is_arp_then_matching_echoes_in_tshark(tmp_path):
    host, (a, b, c) = lan_of_three()
    with host.capture("lan0", tmp_path / "lan0.pcap") as cap:
        out = a.shell("ping -c 2 10.0.0.2")
    assert "2 packets transmitted, 2 received, 0% packet loss" in out
    rows = tshark_rows(tmp_path / "lan0.pcap")
    assert len(rows) == cap.frames
    arp = [r for r in rows if r["arp.opcode"]]
    # The request is broadcast, so it is delivered (and captured) once per other peer: b and c.
    assert [(r["eth.src"], r["eth.dst"], r["arp.opcode"]) for r in arp] == [
        (mac(a), "ff:ff:ff:ff:ff:ff", "1"), (mac(a), "ff:ff:ff:ff:ff:ff", "1"), (mac(b), mac(a), "2")]
    echoes = [(r["eth.src"], r["eth.dst"], r["icmp.type"], int(r["icmp.ident"].split(",")[0]), r["icmp.seq"].split(",")[0])
              for r in rows if r["icmp.type"]]
    ident = 0x1000 + a.kernel.id
    assert echoes == [(mac(a), mac(b), "8", ident, "1"), (mac(b), mac(a), "0", ident, "1"),
                      (mac(a), mac(b), "8", ident, "2"), (mac(b), mac(a), "0", ident, "2")]


@needs_tshark
def test_ping_the_host_over_tunnet_is_answered_and_captured(tmp_path):
    host = lguest.Host()
    g = host.launch(mem_mb=16, tunnet=f"pcap:{tmp_path / 'tap0.pcap'}")
    tun = g.launcher.tunnet
    assert "2 packets transmitted, 2 received" in g.shell(f"ping -c 2 {tun.host_ip}")
    rows = tshark_rows(tmp_path / "tap0.pcap")
    host_mac = ":".join(f"{x:02x}" for x in tun.host_mac)
    assert [(r["eth.src"], r["arp.opcode"], r["icmp.type"]) for r in rows] == [
        (mac(g), "1", ""), (host_mac, "2", ""), (mac(g), "", "8"), (host_mac, "", "0"), (mac(g), "", "8"),
        (host_mac, "", "0")]


def test_capture_is_deterministic(tmp_path):
    files = []
    for run in range(2):
        host, (a, b, c) = lan_of_three()
        path = tmp_path / f"run{run}.pcap"
        with host.capture("lan0", path):
            a.shell("ping -c 3 10.0.0.3")
        files.append(path.read_bytes())
    assert files[0] == files[1] and len(files[0]) > 24


def test_lanpage_shows_slots_holders_promisc_and_rings():
    host, (a, b, c) = lan_of_three()
    b.shell("ifconfig eth0 promisc")
    slots = LanPage(host, "lan0").slots()
    assert [(s.slot, s.holder, s.promisc) for s in slots] == [(0, "g0", False), (1, "g1", True), (2, "g2", False)]
    assert all(len(s.entries) == 8 and all(e.used_len == 0 for e in s.entries) for s in slots)
    text = LanPage(host, "lan0").text()
    assert text.startswith("LanPage lan0: 3 of 682 slots in use") and "PROMISC" in text
    c.shell("ifconfig eth0 down")                      # close: the slot is zeroed and the ring unbound
    assert [s.slot for s in LanPage(host, "lan0").slots()] == [0, 1]


def test_lanpage_of_a_tunnet_shows_the_host_in_slot_0():
    host = lguest.Host()
    g = host.launch(mem_mb=16, tunnet="10.0.0.254")
    slots = LanPage(host, g.launcher.tunnet.lan).slots()
    assert [(s.slot, s.holder, s.promisc, len(s.entries)) for s in slots] == [
        (0, "Host (tap0)", True, 0), (1, f"g{g.kernel.id}", False, 8)]
    assert "<svg" in LanPage(host, "tap0").svg()


def test_lanpage_of_an_unknown_lan_names_the_lans():
    host, _ = lan_of_three()
    with pytest.raises(KeyError, match="lan0"):
        LanPage(host, "lan9")


def test_tunnet_guest_gets_the_address_beside_the_host():
    host = lguest.Host()
    g = host.launch(mem_mb=16, sharenet=["lan0"], tunnet="192.168.7.1")
    out = g.shell("ifconfig eth1")
    assert "inet addr:192.168.7.2" in out and "Mask:255.255.255.0" in out
