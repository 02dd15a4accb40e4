"""D:500's checkable exercises: who gets a frame, when to warn, what a ping costs, the retry, the probe.

Every answer is worked out by running the model itself (a few Guests, a few frames: a few
milliseconds), so what the checks call right is what the trace shows.
"""
from __future__ import annotations

import errno

from .. import abi
from ..guest.linux.interrupt import IRQF_SAMPLE_RANDOM, IRQF_SHARED
from ..guest.linux.netdev import dev_mc_add, dev_queue_xmit, mac_str, skb_from_bytes
from ..guest.net import netdev_priv
from ..host.interrupts import maybe_do_interrupt
from ..launcher.tunnet import TunNet
from . import Exercise, Explore

DRIVER_OK = abi.LGUEST_DEVICE_S_DRIVER_OK
EXPERIMENT_TYPE = b"\x88\xb5"          # the local experimental EtherType: no stack answers it
MCAST_GROUP = bytes.fromhex("01005e0000fb")
BROADCAST = b"\xff" * 6


def _lan(k: int):
    """k Guests on lan0, Guest n in slot n with eth0 up at 10.0.0.n+1."""
    import lguest                                    # the facade imports the classroom's users
    host = lguest.Host()
    return host, [host.launch(mem_mb=1, sharenet=["lan0"]) for _ in range(k)]


def _send_raw(guest, dest: bytes, payload: bytes = b"") -> None:
    """One frame from ``guest``'s eth0 to ``dest``, of a type nobody answers."""
    dev = guest.kernel.net.dev("eth0")
    skb = skb_from_bytes(guest.kernel, dest + dev.dev_addr + EXPERIMENT_TYPE + payload.ljust(46, b"."))
    skb.dev = dev
    dev_queue_xmit(skb)


def _as_int_list(value):
    if not isinstance(value, (list, tuple)) or any(isinstance(x, bool) or not isinstance(x, int) for x in value):
        return None
    return sorted(set(value))


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- predict: which peers get this frame ------------------------------------------------------
ROLES = {
    "up": "eth0 up",
    "promisc": "eth0 up, then `ifconfig eth0 promisc`",
    "multicast": "eth0 up, then joined the multicast group 01:00:5e:00:00:fb",
    "down": "eth0 up, then `ifconfig eth0 down`",
    "crashed": "eth0 up, then crashed",
    "crashed-promisc": "eth0 up, `ifconfig eth0 promisc`, then crashed",
}


class Peers(Exercise):
    """A seeded LAN: which slots get a SEND_DMA for one frame, and which Guests get a copy."""

    label = "d500-ex-peers"
    kind = "predict"
    points = 2
    minutes = 15
    what = 'a dict: {"sent_to": [slots], "received": [slots]}'

    def make(self, rng):
        k = rng.randrange(4, 8)
        sender = rng.randrange(k)
        roles = []
        for n in range(k):
            if n == sender:
                roles.append(rng.choice(["up", "up", "promisc"]))
            else:
                roles.append(rng.choice(["up", "up", "promisc", "multicast", "down", "crashed", "crashed-promisc"]))
        others = [n for n in range(k) if n != sender]
        if all(roles[n] == "up" for n in others):        # at least one peer worth thinking about
            roles[rng.choice(others)] = rng.choice(["promisc", "multicast", "crashed", "crashed-promisc"])
        kind = rng.choice(["broadcast", "multicast", "unicast", "unicast", "unicast", "nobody"])
        if kind == "broadcast":
            dest, said = BROADCAST, "the broadcast address"
        elif kind == "multicast":
            dest, said = MCAST_GROUP, "the multicast group 01:00:5e:00:00:fb"
        elif kind == "unicast":
            to = rng.choice(others)
            dest, said = self.mac(to), f"Guest {to}'s MAC"
        else:
            dest, said = self.mac(rng.randrange(k, 12)), "a MAC no Guest of this LAN has"
        rows = "\n".join(f"    slot {n}: Guest {n}, MAC {mac_str(self.mac(n))}, {ROLES[roles[n]]}"
                         for n in range(k))
        text = (f"{k} Guests share lan0, launched in order, so Guest n holds slot n. What happened to each:\n"
                f"{rows}\n"
                f"Now Guest {sender} sends one frame to {mac_str(dest)} ({said}).\n"
                'Answer with a dict: {"sent_to": the slots its driver makes a SEND_DMA to, "received": the\n'
                "slots whose Guest gets a copy of the frame in its receive ring}, each a list of slot numbers.")
        return dict(text=text, k=k, sender=sender, roles=roles, dest=dest)

    @staticmethod
    def mac(n: int) -> bytes:
        return b"\x02\x00" + n.to_bytes(2, "little") + b"\x00\x00"

    def answer(self, p):
        """Build the LAN in the model, send the frame, and read the trace."""
        host, guests = _lan(p.k)
        for g, role in zip(guests, p.roles):
            if role in ("promisc", "crashed-promisc"):
                g.shell("ifconfig eth0 promisc")
            elif role == "multicast":
                dev_mc_add(g.kernel.net.dev("eth0"), MCAST_GROUP)
            elif role == "down":
                g.shell("ifconfig eth0 down")
        for g, role in zip(guests, p.roles):
            if role.startswith("crashed"):
                host.kill_guest(host.lgs[g.id], "crashed (an exercise)")
        page = netdev_priv(guests[p.sender].kernel.net.dev("eth0")).peer_phys
        mark = host.trace.mark()
        _send_raw(guests[p.sender], p.dest)
        host.run()
        events = host.trace.since(mark)
        return {"sent_to": [(e.key - page) // 4 for e in events if e.kind == "send_dma"],
                "received": sorted(e.to for e in events if e.kind == "copy")}

    def _by_role(self, p, *roles):
        return {n for n, r in enumerate(p.roles) if r in roles}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"sent_to", "received"}:
            return 'answer with a dict of exactly two keys, "sent_to" and "received"'
        got = {key: _as_int_list(answer[key]) for key in answer}
        if any(v is None for v in got.values()):
            return "each value is a list of slot numbers (whole numbers), such as [1, 3]"
        right = self.answer(p)
        promisc = self._by_role(p, "promisc", "crashed-promisc")
        crashed = self._by_role(p, "crashed", "crashed-promisc")
        for key in ("sent_to", "received"):
            extra = set(got[key]) - set(right[key])
            missing = set(right[key]) - set(got[key])
            if p.sender in extra:
                return "the sender's walk over the page skips its own slot"
            if extra & self._by_role(p, "down"):
                return "`ifconfig eth0 down` zeroes the Guest's slot, and the walk skips an unused slot"
            if key == "sent_to" and missing & crashed:
                return "nobody zeroes a crashed Guest's slot: its MAC (and its PROMISC bit) stays in the page"
            if key == "received" and extra & crashed:
                return "a crashed Guest's ring is unbound: the SEND_DMA finds nobody, and nothing is copied"
            if missing & self._by_role(p, "multicast"):
                return "joining a multicast group sets the same bit in the slot as promisc does"
            if missing & promisc:
                return "a slot with the PROMISC bit set asks for every frame on the LAN"
            if extra or missing:
                return (f"your {key!r} is not it: walk the used slots one by one with the driver's three "
                        "tests (group address, PROMISC bit, same MAC), and remember who is still alive")
        return None

    def mistakes(self, p):
        right = self.answer(p)
        out = []
        crashed = sorted(self._by_role(p, "crashed", "crashed-promisc") & set(right["sent_to"]))
        if crashed:
            out.append(({"sent_to": right["sent_to"], "received": sorted(right["received"] + crashed)},
                        "nothing is copied"))
            out.append(({"sent_to": [s for s in right["sent_to"] if s not in crashed], "received": right["received"]},
                        "nobody zeroes a crashed Guest's slot"))
        down = sorted(self._by_role(p, "down"))
        if down:
            out.append(({"sent_to": sorted(right["sent_to"] + down), "received": right["received"]},
                        "zeroes the Guest's slot"))
        out.append(({"sent_to": sorted(right["sent_to"] + [p.sender]), "received": right["received"]},
                    "skips its own slot"))
        return out


# --- implement: warn on DRIVER_OK, not on "sent something" ------------------------------------
class _AskingTunNet(TunNet):
    """A --tunnet Launcher whose "should I warn?" test is the student's function of the status."""

    @property
    def sent_something(self):
        status = int(self.launcher.devices.descriptors[self.device.index]["status"])
        return self.should_warn(status)

    @sent_something.setter
    def sent_something(self, value):                 # handle_tun_output() still sets the old flag
        self.was_sent = value


def _squat(guest, fixed: bool, flags: int = 0) -> None:
    """Before boot: a handler that takes line 1 with ``flags``; with ``fixed``, a probe that
    returns request_irq()'s error as the fixed C does (2007's probe, then the error it dropped)."""
    net = guest.kernel.net
    guest.kernel.request_irq(1, lambda irq, dev: 1, flags, "squatter", None)
    if fixed:
        def fixed_probe(lgdev, probe=net.lguestnet_probe):
            probe(lgdev)
            return 0 if net.devices else -errno.EBUSY
        net.lguestnet_drv.probe = fixed_probe


SITUATIONS = {
    "booting": "the Guest is still booting: its kernel has not scanned the bus yet",
    "no-driver": "the Guest's kernel has no network driver built in",
    "unregistered": "the Guest's bus failed to register the device",
    "probe-fixed": "the net probe could not get its irq, and returned the error (the fixed probe)",
    "probe-2007": "the net probe could not get its irq, and returned 0 (2007's probe)",
    "down-quiet": "the Guest booted and took eth0 down before sending anything",
    "down-after-ping": "the Guest pinged the Host, then took eth0 down",
    "rewritten": "the Guest took eth0 down before sending anything, then wrote {value:#x} to\n"
                 "     /sys/bus/lguest/devices/0/status",
}


class DriverOk(Exercise):
    """should_warn(status): the --tunnet Launcher's test for "network: no dma buffer!"."""

    label = "d500-ex-driver-ok"
    kind = "implement"
    points = 3
    minutes = 20
    what = "your function should_warn(status: int) -> bool"

    def make(self, rng):
        rewritten = rng.choice([0x4, 0x5, 0x6, 0x84, 0x85, 0x87, 0xF])
        must = ["booting", "probe-fixed", "down-quiet", "rewritten"]
        more = rng.sample(["no-driver", "unregistered", "probe-2007", "down-after-ping"], rng.randrange(1, 4))
        names = must + more
        rng.shuffle(names)
        lines = "\n".join(f"  {i + 1}. " + SITUATIONS[n].format(value=rewritten) for i, n in enumerate(names))
        text = ("The check runs a --tunnet Guest (lguest --tunnet=10.0.0.254 1) in each of these situations, puts\n"
                "one frame from the Host on its tap while no receive buffer is bound, and reads the Launcher's\n"
                "stderr; your should_warn(status) decides, from the device's descriptor status, whether it warns:\n"
                f"{lines}")
        return dict(text=text, situations=names, rewritten=rewritten)

    def answer(self, p):
        def should_warn(status: int) -> bool:
            return bool(status & DRIVER_OK)
        return should_warn

    def build(self, name: str, rewritten: int):
        """The Guest of one situation, with no receive buffer bound at its key."""
        import lguest
        host = lguest.Host()
        if name == "no-driver":
            return host, host.launch(mem_mb=1, tunnet="10.0.0.254", drivers=("console",))
        guest = host.launch(mem_mb=1, tunnet="10.0.0.254", boot=False)
        if name == "booting":
            return host, guest
        if name == "unregistered":
            guest.kernel.bus.fail_registration = {0}
        elif name in ("probe-fixed", "probe-2007"):
            _squat(guest, fixed=name == "probe-fixed")
        guest.kernel.boot()
        if name in ("unregistered", "probe-fixed", "probe-2007"):
            return host, guest
        if name == "down-after-ping":
            guest.shell("ping -c 1 10.0.0.254")
        guest.shell("ifconfig eth0 down")
        if name == "rewritten":
            guest.kernel.bus.sysfs_write_status(0, hex(rewritten))
        return host, guest

    def run(self, should_warn, name: str, rewritten: int) -> tuple[int, bool]:
        """(the descriptor status, whether the Launcher warned) with ``should_warn`` as its test;
        ``should_warn=None`` keeps 2007's test, the sent_something flag."""
        host, guest = self.build(name, rewritten)
        tun = guest.launcher.tunnet
        if should_warn is not None:
            tun.__class__ = _AskingTunNet
            tun.should_warn = should_warn
        tun.tap_queue.append(tun.host_mac + BROADCAST + EXPERIMENT_TYPE + bytes(46))   # from the Host
        host.run()
        warned = any("no dma buffer" in line for line in guest.launcher.log)
        return int(guest.devices[0]["status"]), warned

    def judge(self, answer, p):
        if not callable(answer):
            return "put a function in the answer cell: def should_warn(status: int) -> bool"
        runs = []
        for name in p.situations:
            host, guest = self.build(name, p.rewritten)
            status = int(guest.devices[0]["status"])
            said = answer(status)
            if not isinstance(said, bool):
                return f"should_warn({status:#x}) returned {type(said).__name__} {said!r}: return True or False"
            runs.append((name, *self.run(answer, name, p.rewritten)))
        where = {name: i + 1 for i, name in enumerate(p.situations)}
        for name, status, warned in runs:                 # the worst mistake first
            if warned and status == 0:
                return (f"situation {where[name]}: your Launcher warned about a Guest that is still booting "
                        f"(status {status:#x}); no driver has even looked at the device")
        for name, status, warned in runs:
            if warned and not status & DRIVER_OK:
                return (f"situation {where[name]}: your Launcher warned although the Guest never said its driver "
                        f"was ready (status {status:#x}); finding a driver is not the same as a working one")
        for name, status, warned in runs:
            if not warned and status & DRIVER_OK:
                return (f"situation {where[name]}: the Guest's status {status:#x} says its driver is ready, and your "
                        "Launcher stayed quiet; test the one bit that says so, whatever the others are")
        return None

    def mistakes(self, p):
        return [(lambda status: status != 0, "finding a driver is not the same"),
                (lambda status: (status & abi.LGUEST_DEVICE_S_DRIVER) != 0, "finding a driver is not the same"),
                (lambda status: True, "still booting"),
                (lambda status: status == 7, "stayed quiet"),
                (lambda status: False, "stayed quiet"),
                (lambda status: status & DRIVER_OK, "return True or False")]


# --- explore: what one ping costs on a LAN of k ------------------------------------------------
class Amplify(Explore):
    """The SEND_DMAs, copies and carrier errors of one ping to a fresh address, with crashed peers."""

    label = "d500-ex-amplify"
    points = 2
    minutes = 15
    tolerance = 0                      # these are counts: exact
    what = 'a dict of three counts: {"send_dma": ..., "copy": ..., "carrier_errors": ...}'

    def make(self, rng):
        k = rng.randrange(4, 9)
        sender, target = rng.sample(range(k), 2)
        rest = [n for n in range(k) if n not in (sender, target)]
        crashed = sorted(rng.sample(rest, rng.randrange(1, min(2, len(rest)) + 1)))
        text = (f"Launch {k} Guests on lan0 (Guest n is 10.0.0.n+1), crash Guest(s) {crashed} with\n"
                f"host.kill_guest(), then run `ping -c 1 10.0.0.{target + 1}` in Guest {sender}.\n"
                "Measure, for that ping only: the trace's send_dma events, its copy events, and the carrier\n"
                f"errors Guest {sender}'s eth0 counted. Answer with a dict of those three counts:\n"
                '{"send_dma": ..., "copy": ..., "carrier_errors": ...}.')
        return dict(text=text, k=k, sender=sender, target=target, crashed=crashed)

    def answer(self, p):
        host, guests = _lan(p.k)
        for n in p.crashed:
            host.kill_guest(host.lgs[guests[n].id], "crashed (an exercise)")
        dev = guests[p.sender].kernel.net.dev("eth0")
        errors, mark = dev.stats.tx_carrier_errors, host.trace.mark()
        guests[p.sender].shell(f"ping -c 1 10.0.0.{p.target + 1}")
        counts = host.trace.counts(since=mark)
        return {"send_dma": counts.get("send_dma", 0), "copy": counts.get("copy", 0),
                "carrier_errors": dev.stats.tx_carrier_errors - errors}

    def judge(self, answer, p):
        keys = {"send_dma", "copy", "carrier_errors"}
        if not isinstance(answer, dict) or set(answer) != keys:
            return 'answer with a dict of exactly three keys: "send_dma", "copy", "carrier_errors"'
        if not all(_is_count(v) for v in answer.values()):
            return "each value is a count: a whole number"
        right = self.answer(p)
        k, c = p.k, len(p.crashed)
        if answer["send_dma"] != right["send_dma"]:
            if answer["send_dma"] in (k - 1, k - 1 - c):
                return "the ARP request is only the start of the ping: count every frame that crosses the LAN"
            return "count the send_dma events between a mark taken just before the ping and its end"
        if answer["copy"] != right["copy"]:
            if answer["copy"] == right["send_dma"]:
                return "a SEND_DMA to a crashed Guest finds no ring bound: the trace shows no copy for it"
            return "count the copy events: one per frame that landed in a receive buffer"
        if answer["carrier_errors"] != right["carrier_errors"]:
            return "a carrier error is counted for each SEND_DMA whose used_len comes back short"
        return None

    def mistakes(self, p):
        right = self.answer(p)
        return [({**right, "send_dma": p.k - 1}, "the ARP request is only the start"),
                ({**right, "copy": right["send_dma"]}, "finds no ring bound"),
                ({**right, "carrier_errors": 0}, "used_len comes back short")]


# --- predict: the retry, made to succeed ---------------------------------------------------------
class Retry(Exercise):
    """Frames sent back to back to an idle receiver, with a watcher that plays its other CPU."""

    label = "d500-ex-retry"
    kind = "predict"
    points = 2
    minutes = 15
    what = 'a dict: {"received": ..., "carrier_errors": ...}'

    SHOTS = {1: "after the first ring_full event only", 2: "after the first two ring_full events only",
             None: "after every ring_full event"}

    def make(self, rng):
        frames = rng.randrange(9, 31)
        shots = rng.choice([1, 1, 2, None])
        text = (f"Guests 0 and 1 share lan0. Guest 0 sends {frames} frames to Guest 1 back to back, with no\n"
                "host.run() in between. A host.watch() callback delivers Guest 1's pending interrupt (so its\n"
                f"handler runs, as it would on another CPU) {self.SHOTS[shots]}, for Guest 1's ring.\n"
                "Then host.run(). How many frames has Guest 1 received (rx_packets), and how many carrier\n"
                'errors did Guest 0 count? Answer with a dict: {"received": ..., "carrier_errors": ...}.')
        return dict(text=text, frames=frames, shots=shots)

    @staticmethod
    def experiment(frames: int, shots):
        host, (a, b) = _lan(2)
        dev_a, dev_b = a.kernel.net.dev("eth0"), b.kernel.net.dev("eth0")
        left = [shots]

        def on_event(event):
            if event.kind == "ring_full" and event.guest == b.id and left[0] != 0:
                if left[0] is not None:
                    left[0] -= 1
                maybe_do_interrupt(host, host.lgs[b.id])

        stop = host.watch(on_event)
        for _ in range(frames):
            _send_raw(a, dev_b.dev_addr)
        stop()
        host.run()
        return {"received": dev_b.stats.rx_packets, "carrier_errors": dev_a.stats.tx_carrier_errors}

    def answer(self, p):
        return self.experiment(p.frames, p.shots)

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"received", "carrier_errors"}:
            return 'answer with a dict of exactly two keys, "received" and "carrier_errors"'
        if not all(_is_count(v) for v in answer.values()):
            return "each value is a count: a whole number"
        right = self.answer(p)
        if answer == right:
            return None
        if answer["received"] + answer["carrier_errors"] != p.frames:
            return "every frame either lands in a buffer or comes back short as a carrier error: they add up"
        if answer["received"] == 8:
            return "the watcher runs the handler between the two tries: the retry finds the ring emptied"
        if answer["received"] == p.frames:
            return "after the watcher's last run nothing empties the ring while Guest 0 sends: it fills up again"
        return "follow the ring: 8 buffers, refilled all at once each time the handler runs"

    def mistakes(self, p):
        right = self.answer(p)
        out = [({"received": 8, "carrier_errors": p.frames - 8}, "the retry finds the ring emptied")]
        if right["received"] != p.frames:
            out.append(({"received": p.frames, "carrier_errors": 0}, "it fills up again"))
        out.append(({"received": right["received"], "carrier_errors": 0}, "they add up"))
        return [(w, h) for w, h in out if w != right]


# --- predict: the probe, squatted --------------------------------------------------------------------
class Probe(Exercise):
    """A squatter on the net device's line: the status and whether eth0 exists, 2007's probe or fixed."""

    label = "d500-ex-probe"
    kind = "predict"
    points = 2
    minutes = 10
    what = 'a dict: {"status": ..., "eth0": True or False}'

    def make(self, rng):
        net = rng.choice(["--sharenet=lan0", "--tunnet=10.0.0.254"])
        flags = rng.choice([0x00, 0x40, 0x80, 0xC0, 0x20])
        fixed = rng.choice([False, True])
        probe = "the fixed probe (it returns what request_irq() returned)" if fixed else "2007's probe"
        text = (f"A Guest is launched with {net} and built without booting. A squatter takes irq\n"
                f"line 1 with request_irq(1, handler, {flags:#04x}, \"squatter\", None). Then the Guest boots,\n"
                f"with {probe}.\n"
                "What status does descriptor 0 show then, and does the Guest have an eth0? Answer with a\n"
                'dict: {"status": the status as a number, "eth0": True or False}.')
        return dict(text=text, net=net, flags=flags, fixed=fixed)

    def answer(self, p):
        import lguest
        host = lguest.Host()
        option = {"sharenet": ["lan0"]} if p.net.startswith("--sharenet") else {"tunnet": "10.0.0.254"}
        guest = host.launch(mem_mb=1, boot=False, **option)
        _squat(guest, p.fixed, p.flags)
        guest.kernel.boot()
        return {"status": int(guest.devices[0]["status"]), "eth0": bool(guest.kernel.net.devices)}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"status", "eth0"}:
            return 'answer with a dict of exactly two keys, "status" and "eth0"'
        if not _is_count(answer["status"]) or not isinstance(answer["eth0"], bool):
            return 'the status is a whole number (such as 0x3), and "eth0" is True or False'
        right = self.answer(p)
        shared = bool(p.flags & IRQF_SHARED)
        if answer["eth0"] != right["eth0"]:
            if p.flags & IRQF_SAMPLE_RANDOM and not shared:
                return "0x40 is IRQF_SAMPLE_RANDOM; look for the one flag that lets a line be shared"
            if shared:
                return ("request_irq() shares a line when every handler on it, the new one too, asks for "
                        "IRQF_SHARED (0x80); the net driver always does")
            return "when request_irq() fails, the probe unwinds: it unregisters and frees the net_device"
        if answer["status"] != right["status"]:
            if not shared and not p.fixed:
                return "the 2007 probe returns err, which still holds what register_netdev() returned"
            if not shared and p.fixed:
                return "the fixed probe returns request_irq()'s error, and the bus sets DRIVER_OK only on a 0"
            return "a probe that got everything it asked for returns 0: what does the bus write then?"
        return None

    def mistakes(self, p):
        right = self.answer(p)
        shared = bool(p.flags & IRQF_SHARED)
        fragment = ("IRQF_SHARED (0x80)" if shared else "IRQF_SAMPLE_RANDOM" if p.flags & IRQF_SAMPLE_RANDOM
                    else "the probe unwinds")
        out = [({**right, "eth0": not right["eth0"]}, fragment)]
        if not right["eth0"]:
            other = 3 if right["status"] == 7 else 7
            out.append(({**right, "status": other}, "the bus sets DRIVER_OK only on a 0" if p.fixed
                        else "still holds what register_netdev() returned"))
        return out


peers, driver_ok, amplify, retry, probe = Peers(), DriverOk(), Amplify(), Retry(), Probe()
EXERCISES = (peers, driver_ok, amplify, retry, probe)
