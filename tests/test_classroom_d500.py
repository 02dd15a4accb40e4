"""D:500's checkable exercises, against the model: the answers the checks call right are what the
model does, typical wrong answers and implementations fail with their own hint, and the two fixes
of issue 12 hold (a ping costs k + 2 SEND_DMAs, a crashed peer gets a SEND_DMA but no copy; the
retry succeeds once the receiver's handler runs between the tries)."""
from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path

import numpy as np
import pytest

from lguest import abi
from lguest.classroom import d500
from lguest.guest.net import xmit_peers

ROOT = Path(__file__).resolve().parent.parent
SEEDS = (2007, 1, 7, 42, 424242, 99999)


# --- d500-ex-peers ----------------------------------------------------------------------------------
def reasoned_peers(p):
    """The chapter's rules, without the Host: the page as the Guests left it, the driver's walk,
    and no copy for a crashed peer."""
    page = np.zeros((682, 6), np.uint8)
    for n, role in enumerate(p.roles):
        if role != "down":
            page[n] = np.frombuffer(d500.Peers.mac(n), np.uint8)
            if role in ("promisc", "crashed-promisc", "multicast"):
                page[n, 0] |= 1
    sent = xmit_peers(page, p.sender, p.dest)
    return {"sent_to": sent, "received": [n for n in sent if not p.roles[n].startswith("crashed")]}


@pytest.mark.parametrize("seed", range(40))
def test_peers_the_model_does_what_the_rules_say(seed):
    p = d500.peers.problem(seed)
    assert d500.peers.answer(p) == reasoned_peers(p)


def test_peers_instances_cover_every_role_and_destination():
    problems = [d500.peers.problem(s) for s in range(60)]
    assert {r for p in problems for r in p.roles} == set(d500.ROLES)
    assert {p.dest[0] & 1 for p in problems} == {0, 1}
    assert any(p.dest == d500.BROADCAST for p in problems) and any(p.dest == d500.MCAST_GROUP for p in problems)


def test_peers_a_malformed_answer_gets_a_format_hint():
    assert "two keys" in d500.peers.check([1, 2], 2007).hint
    assert "slot numbers" in d500.peers.check({"sent_to": "1,2", "received": []}, 2007).hint


# --- d500-ex-driver-ok -----------------------------------------------------------------------------
def test_driver_ok_the_2007_flag_misses_a_guest_that_never_sent():
    """The --tunnet Launcher's sent_something stays quiet for a Guest that took eth0 down without
    sending, though its status says DRIVER_OK; DRIVER_OK warns. Both agree once it has sent."""
    ok = d500.driver_ok.answer(None)
    assert d500.driver_ok.run(None, "down-quiet", 0) == (7, False)
    assert d500.driver_ok.run(ok, "down-quiet", 0) == (7, True)
    assert d500.driver_ok.run(None, "down-after-ping", 0) == (7, True)
    assert d500.driver_ok.run(ok, "down-after-ping", 0) == (7, True)


@pytest.mark.parametrize("name, status, warns", [
    ("booting", 0, False), ("no-driver", 0x1, False), ("unregistered", 0x81, False),
    ("probe-fixed", 0x3, False), ("probe-2007", 0x7, True), ("down-quiet", 0x7, True),
    ("down-after-ping", 0x7, True)])
def test_driver_ok_each_situation_gives_its_status_inside_the_model(name, status, warns):
    assert d500.driver_ok.run(d500.driver_ok.answer(None), name, 0) == (status, warns)


@pytest.mark.parametrize("value", [0x4, 0x84, 0xF, 0x83, 0x2])
def test_driver_ok_a_status_written_in_sysfs_counts_by_its_driver_ok_bit(value):
    assert d500.driver_ok.run(d500.driver_ok.answer(None), "rewritten", value) == (value, bool(value & 4))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, fragment", [
    (lambda s: s != 0, "finding a driver is not the same"),
    (lambda s: (s & abi.LGUEST_DEVICE_S_DRIVER) != 0, "finding a driver is not the same"),
    (lambda s: s >= 1, "finding a driver is not the same"),
    (lambda s: True, "still booting"),
    (lambda s: s == 7, "stayed quiet"),
    (lambda s: s == abi.LGUEST_DEVICE_S_DRIVER_OK | 3, "stayed quiet"),
    (lambda s: False, "stayed quiet"),
    (lambda s: s & 4, "return True or False"),
    (lambda s: None, "return True or False"),
])
def test_driver_ok_typical_wrong_implementations_fail(seed, wrong, fragment):
    result = d500.driver_ok.check(wrong, seed)
    assert not result.passed and fragment in result.hint


def test_driver_ok_a_right_but_differently_written_function_passes():
    assert d500.driver_ok.check(lambda status: status & 4 == 4, 2007).passed
    assert d500.driver_ok.check(lambda status: bool(status >> 2 & 1), 424242).passed


def test_driver_ok_a_function_that_raises_or_no_function_gets_a_hint():
    def broken(status):
        raise KeyError(status)
    assert "raised KeyError" in d500.driver_ok.check(broken, 2007).hint
    assert "put a function" in d500.driver_ok.check(True, 2007).hint


def test_driver_ok_every_instance_holds_the_telling_situations():
    for seed in range(30):
        p = d500.driver_ok.problem(seed)
        assert {"booting", "probe-fixed", "down-quiet", "rewritten"} <= set(p.situations)
        assert p.rewritten & 4 and p.rewritten != 7


# --- d500-ex-amplify: the fix of issue 12 ------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_amplify_a_ping_costs_k_plus_2_send_dmas_and_a_crashed_peer_no_copy(seed):
    p = d500.amplify.problem(seed)
    k, c = p.k, len(p.crashed)
    assert d500.amplify.answer(p) == {"send_dma": k + 2, "copy": k + 2 - c, "carrier_errors": c}


def test_amplify_the_arp_request_alone_reaches_the_crashed_peer_with_no_copy():
    """One broadcast: k - 1 SEND_DMAs, crashed peers' included (to=None in the trace), and k - 1 - c
    copies of 42 bytes."""
    host, guests = d500._lan(5)
    host.kill_guest(host.lgs[guests[3].id], "crashed")
    mark = host.trace.mark()
    guests[0].kernel.inet.arp_send(guests[0].kernel.net.dev("eth0"), 1, b"\xff" * 6, bytes(6), IPv4Address("10.0.0.2"))
    sends = host.trace.filter("send_dma", since=mark)
    copies = host.trace.filter("copy", since=mark)
    assert [e.to for e in sends] == [1, 2, None, 4]
    assert [(e.to, e.bytes) for e in copies] == [(1, 42), (2, 42), (4, 42)]


def test_amplify_counts_are_exact():
    right = d500.amplify.solution(2007)
    assert not d500.amplify.check({**right, "copy": right["copy"] + 1}, 2007).passed
    assert "whole number" in d500.amplify.check({**right, "copy": 7.0}, 2007).hint


# --- d500-ex-retry: the fix of issue 12 ---------------------------------------------------------------
def test_retry_the_chapters_ten_frames_all_arrive_when_the_handler_runs_once():
    assert d500.Retry.experiment(10, 1) == {"received": 10, "carrier_errors": 0}
    assert d500.Retry.experiment(10, 0) == {"received": 8, "carrier_errors": 2}     # the chapter's run


@pytest.mark.parametrize("frames", [9, 16, 17, 23, 30])
@pytest.mark.parametrize("shots", [1, 2, None])
def test_retry_each_run_of_the_handler_buys_eight_frames(frames, shots):
    received = frames if shots is None else min(frames, 8 * (shots + 1))
    assert d500.Retry.experiment(frames, shots) == {"received": received, "carrier_errors": frames - received}


# --- d500-ex-probe -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("flags, fixed, right", [
    (0x80, False, {"status": 7, "eth0": True}), (0xC0, True, {"status": 7, "eth0": True}),
    (0x00, False, {"status": 7, "eth0": False}), (0x40, False, {"status": 7, "eth0": False}),
    (0x00, True, {"status": 3, "eth0": False}), (0x20, True, {"status": 3, "eth0": False})])
@pytest.mark.parametrize("net", ["--sharenet=lan0", "--tunnet=10.0.0.254"])
def test_probe_the_squatters_flags_and_the_fix_decide(flags, fixed, right, net):
    from lguest.classroom import Problem
    assert d500.probe.answer(Problem("x", 0, "", net=net, flags=flags, fixed=fixed)) == right


# --- the chapter ------------------------------------------------------------------------------------------
def chapter_text() -> str:
    cells = json.loads((ROOT / "book" / "d500_net.ipynb").read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells)


def test_the_chapter_no_longer_says_the_retry_cannot_succeed_or_that_a_ping_is_k_minus_1():
    text = chapter_text()
    assert "can never succeed" not in text and "cannot be made" not in text
    assert "shows *k* − 1 for the request" not in text
    assert "experiment(10, 1)" in text and "k + 2 send_dma events" in text
