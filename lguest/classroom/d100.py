"""D:100's checkable exercises: the status bits a boot leaves, second chances, drivers that come
too early, and devices that arrive after their driver."""
from __future__ import annotations

import operator

from .. import abi
from . import Exercise

ACK, DRV, OK, FAILED = (abi.LGUEST_DEVICE_S_ACKNOWLEDGE, abi.LGUEST_DEVICE_S_DRIVER,
                        abi.LGUEST_DEVICE_S_DRIVER_OK, abi.LGUEST_DEVICE_S_FAILED)
CONSOLE, NET, BLOCK = abi.LGUEST_DEVICE_T_CONSOLE, abi.LGUEST_DEVICE_T_NET, abi.LGUEST_DEVICE_T_BLOCK
BUILT_IN = {"console": CONSOLE, "block": BLOCK, "net": NET}     # the model's drivers, in boot order
NAME = abi.DEVICE_TYPE_NAMES
ABI_NAME = {CONSOLE: "abi.LGUEST_DEVICE_T_CONSOLE", NET: "abi.LGUEST_DEVICE_T_NET", BLOCK: "abi.LGUEST_DEVICE_T_BLOCK"}


def _whole(x) -> int | None:
    """x as a whole number (numpy integers too), or None for anything else (bools included)."""
    if isinstance(x, bool):
        return None
    try:
        return operator.index(x)
    except TypeError:
        return None


def _statuses(answer, n: int) -> list[int] | None:
    """answer as a list of n whole numbers, or None if it is not one."""
    if isinstance(answer, (str, bytes, dict)) or not hasattr(answer, "__iter__"):
        return None
    values = [_whole(x) for x in answer]
    return values if len(values) == n and None not in values else None


def _command_line(kinds: list[str]) -> list[str]:
    """The Launcher's options for a list of "net"/"block": one LAN each, one image for the disks."""
    lans = iter(range(len(kinds)))
    return [f"--sharenet=lan{next(lans)}" if k == "net" else "--block=disk.img" for k in kinds]


# --- d100-ex-status ----------------------------------------------------------------------------
class Status(Exercise):
    """After boot: the status of every descriptor, for a mix of devices, built-in drivers and a
    device_register() that may fail."""

    label = "d100-ex-status"
    kind = "predict"
    minutes = 10
    what = "a list of numbers: the status of each descriptor in use, in index order"

    def make(self, rng):
        kinds = [rng.choice(["net", "block"]) for _ in range(rng.randrange(1, 5))]
        types = [NET if k == "net" else BLOCK for k in kinds] + [CONSOLE]
        present = sorted({NAME[t] for t in types})
        covered = rng.choice(present)                                    # one kind of device has its driver,
        chosen = {covered} | {d for d in BUILT_IN if rng.random() < 0.5}
        if set(present) <= chosen:                                       # and at least one has none
            chosen.discard(rng.choice([d for d in present if d != covered]))
        drivers = tuple(d for d in BUILT_IN if d in chosen)              # in their boot order
        keep = [i for i, t in enumerate(types) if NAME[t] == covered]
        spare = [i for i in range(len(types)) if len(keep) > 1 or i not in keep]   # one stays claimed
        fail = rng.choice(spare) if rng.random() < 0.6 else None
        devices = _command_line(kinds)
        if fail is None:
            how = (f"    g = host.launch(mem_mb=16, devices={devices!r},\n"
                   f"                    drivers={drivers!r})\n")
        else:
            how = (f"    g = host.launch(mem_mb=16, devices={devices!r},\n"
                   f"                    drivers={drivers!r}, boot=False)\n"
                   f"    g.kernel.bus.fail_registration = {{{fail}}}\n"
                   f"    g.kernel.boot()\n")
        text = ("A Guest is launched and booted like this (disk.img is any 512-byte image):\n" + how
                + "Answer with a list: the status of every descriptor in use, the console's included,\n"
                  "in index order, as numbers.")
        return dict(text=text, kinds=kinds, devices=devices, drivers=drivers, types=types, fail=fail)

    def answer(self, p):
        built = {BUILT_IN[d] for d in p.drivers}
        return [ACK | FAILED if i == p.fail else ACK | DRV | OK if t in built else ACK
                for i, t in enumerate(p.types)]

    def judge(self, answer, p):
        right = self.answer(p)
        got = _statuses(answer, len(right))
        if got is None:
            return (f"answer with a list of {len(right)} whole numbers: one status per descriptor in use "
                    "(the command line's devices, then the console)")
        for i, (a, r) in enumerate(zip(got, right)):
            if a == r:
                continue
            if i == p.fail:
                if a & (DRV | OK):
                    return (f"device {i}'s device_register() failed: did it ever get as far as meeting a "
                            "driver?")
                return f"device {i}'s device_register() failed: which bits does add_lguest_device() set then?"
            if a & FAILED:
                return (f"device {i} was registered without trouble: FAILED belongs to a device whose "
                        "registration failed, not to one that has no driver")
            if r == ACK:
                return (f"device {i} is a {NAME[p.types[i]]} device: is its driver among those built into "
                        "this kernel? No driver, no probe")
            return (f"device {i} is a {NAME[p.types[i]]} device and its driver is built in: follow it "
                    "through lguest_dev_probe()")
        return None

    def mistakes(self, p):
        right = self.answer(p)
        found = []
        unclaimed = [i for i, r in enumerate(right) if r == ACK]
        if unclaimed:                                   # a missing driver taken for a failure
            found.append(([ACK | FAILED if r == ACK else r for r in right],
                          "FAILED belongs to a device whose registration failed"))
            found.append(([ACK | DRV | OK if r == ACK else r for r in right], "No driver, no probe"))
        if p.fail is not None:
            found.append(([ACK if i == p.fail else r for i, r in enumerate(right)],
                          "which bits does add_lguest_device() set then?"))
            found.append(([ACK | DRV | FAILED if i == p.fail else r for i, r in enumerate(right)],
                          "did it ever get as far as meeting a driver?"))
        return found


# --- d100-ex-second-chance ------------------------------------------------------------------------
BEHAVIOURS = {"takes every device": lambda index: 0,
              "refuses every device": lambda index: -19,               # -ENODEV
              "takes only even-numbered devices": lambda index: 0 if index % 2 == 0 else -19}


def _register_all(types, drivers, second_chance=True, offer_bound=False):
    """Run the drivers' registrations over a booted, driverless bus: (probed, statuses).
    The two flags give the typical misreadings of the bus."""
    status = [ACK] * len(types)
    bound = [False] * len(types)
    probed = {}
    for name, type_, behaviour in drivers:
        probed[name] = []
        for i, t in enumerate(types):
            if t != type_ or (bound[i] and not offer_bound):
                continue
            probed[name].append(i)
            status[i] |= DRV
            if BEHAVIOURS[behaviour](i) == 0:
                status[i] |= OK
                bound[i] = True
            elif not second_chance:
                bound[i] = True                         # misreading: the refused device stays taken
    return probed, status


class SecondChance(Exercise):
    """Made-up drivers registered one by one on a driverless Guest: who is offered what, and the
    status each device ends with."""

    label = "d100-ex-second-chance"
    kind = "predict"
    points = 2
    minutes = 15
    what = 'a dict: {"probed": {driver name: [indexes]}, "status": [...]}'

    def make(self, rng):
        lans = rng.randrange(1, 4)
        types = [NET] * lans + [CONSOLE]
        first_type = rng.choice([NET, NET, CONSOLE])
        first = rng.choice(["refuses every device", "takes only even-numbered devices"])
        if all(i % 2 == 0 for i, t in enumerate(types) if t == first_type):
            first = "refuses every device"                 # it must refuse something
        drivers = [(first_type, first)]
        for _ in range(rng.randrange(1, 3)):
            drivers.append((rng.choice([CONSOLE, NET, BLOCK]), rng.choice(list(BEHAVIOURS))))
        drivers.insert(rng.randrange(1, len(drivers) + 1), (first_type, "takes every device"))
        drivers = [(chr(ord("A") + k), t, b) for k, (t, b) in enumerate(drivers)]
        lines = "\n".join(f"    {name}: a {NAME[t]} driver whose probe {b}" for name, t, b in drivers)
        text = (f"A Guest is launched with sharenet={[f'lan{i}' for i in range(lans)]!r}, drivers=(), and boots.\n"
                f"Then these made-up drivers are registered, in this order, with register_lguest_driver():\n"
                f"{lines}\n"
                "(refusing means the probe returns -ENODEV; \"even-numbered\" is the descriptor's index.)\n"
                'Answer with a dict: {"probed": {each driver\'s name: the indexes its probe is called\n'
                'with, in order}, "status": [the final status of each descriptor in use, in index order]}.')
        return dict(text=text, lans=lans, types=types, drivers=drivers)

    def answer(self, p):
        probed, status = _register_all(p.types, p.drivers)
        return {"probed": probed, "status": status}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"probed", "status"}:
            return 'answer with a dict of exactly two keys: "probed" and "status"'
        right = self.answer(p)
        probed = answer["probed"]
        if not isinstance(probed, dict) or set(probed) != set(right["probed"]):
            return f'"probed" is a dict with one key per driver: {sorted(right["probed"])}'
        try:
            probed = {name: [_whole(i) for i in probed[name]] for name in probed}
        except TypeError:
            return '"probed" gives each driver a list of descriptor indexes (an empty list if none)'
        if probed != right["probed"]:
            if probed == _register_all(p.types, p.drivers, second_chance=False)[0]:
                return ("a failed probe leaves the device without a driver: when the next driver of its "
                        "type registers, is the device among those it is offered?")
            if probed == _register_all(p.types, p.drivers, offer_bound=True)[0]:
                return ("a device that has a driver is never offered to another one: look again at "
                        "lguest_dev_match() and the note beside it")
            for name, type_, _ in p.drivers:
                if probed[name] != right["probed"][name]:
                    return (f"look again at driver {name}: which devices are of its type ({NAME[type_]}) "
                            "and still without a driver when it registers?")
        status = _statuses(answer["status"], len(p.types))
        if status is None:
            return f'"status" is a list of {len(p.types)} whole numbers, one per descriptor in use'
        for i, (a, r) in enumerate(zip(status, right["status"])):
            if a == r:
                continue
            if a & FAILED:
                return (f"device {i}: a probe that returns an error does not set FAILED; that bit is for a "
                        "device that could not be registered")
            if r & DRV and not a & DRV:
                return f"device {i}: lguest_dev_probe() sets a bit before it calls the driver's probe"
            return f"device {i}: which of its probes, if any, returned 0?"
        return None

    def mistakes(self, p):
        right = self.answer(p)
        found = []
        no_second = _register_all(p.types, p.drivers, second_chance=False)
        if no_second[0] != right["probed"]:
            found.append(({"probed": no_second[0], "status": no_second[1]},
                          "a failed probe leaves the device without a driver"))
        again = _register_all(p.types, p.drivers, offer_bound=True)
        if again[0] != right["probed"]:
            found.append(({"probed": again[0], "status": again[1]}, "is never offered to another one"))
        tried = [i for i, s in enumerate(right["status"]) if s == ACK | DRV]
        if tried:
            found.append(({**right, "status": [s | FAILED if s == ACK | DRV else s for s in right["status"]]},
                          "does not set FAILED"))
            found.append(({**right, "status": [ACK if s == ACK | DRV else s for s in right["status"]]},
                          "sets a bit before it calls"))
        return found


# --- d100-ex-too-early -------------------------------------------------------------------------------
class TooEarly(Exercise):
    """Made-up drivers registered before the boot and after it, beside some built-in ones: what
    register_lguest_driver() returns, which drivers the bus keeps, the statuses."""

    label = "d100-ex-too-early"
    kind = "predict"
    minutes = 10
    what = 'a dict: {"returned": [...], "registered": ..., "status": [...]}'

    def make(self, rng):
        kinds = [rng.choice(["net", "block"]) for _ in range(rng.randrange(1, 4))]
        types = [NET if k == "net" else BLOCK for k in kinds] + [CONSOLE]
        drivers = tuple(d for d in BUILT_IN if rng.random() < 0.5)
        unclaimed = [t for t in dict.fromkeys(types) if t not in {BUILT_IN[d] for d in drivers}]
        early = [rng.choice(unclaimed or [CONSOLE, NET, BLOCK])]        # one that would matter
        early += [rng.choice([CONSOLE, NET, BLOCK]) for _ in range(rng.randrange(0, 2))]
        late = [rng.choice([CONSOLE, NET, BLOCK]) for _ in range(rng.randrange(1, 3))]
        devices = _command_line(kinds)
        lines = [f"    g = host.launch(mem_mb=16, devices={devices!r},",
                 f"                    drivers={drivers!r}, boot=False)"]
        n = 0
        for stage, group in (("before", early), ("after", late)):
            if stage == "after":
                lines.append("    g.kernel.boot()")
            for t in group:
                n += 1
                lines.append(f"    g.kernel.bus.register_lguest_driver("
                             f"LguestDriver(\"extra{n}\", {ABI_NAME[t]}, lambda dev: 0))")
        text = ("A Guest is laid out, given extra made-up drivers (each probe returns 0), and booted:\n"
                + "\n".join(lines) + "\n"
                'Answer with a dict: {"returned": what each register_lguest_driver() call returns, in order,\n'
                '"registered": len(g.kernel.bus.drivers) at the end, "status": [the status of each\n'
                'descriptor in use, in index order]}.')
        return dict(text=text, kinds=kinds, devices=devices, types=types, drivers=drivers, early=early, late=late)

    def _status(self, p, drivers_seen):
        return [ACK | DRV | OK if t in drivers_seen else ACK for t in p.types]

    def answer(self, p):
        seen = {BUILT_IN[d] for d in p.drivers} | set(p.late)
        return {"returned": [0] * (len(p.early) + len(p.late)),
                "registered": len(p.drivers) + len(p.late),
                "status": self._status(p, seen)}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"returned", "registered", "status"}:
            return 'answer with a dict of exactly three keys: "returned", "registered", "status"'
        right = self.answer(p)
        returned = _statuses(answer["returned"], len(right["returned"]))
        if returned is None:
            return f'"returned" is a list of {len(right["returned"])} whole numbers, one per call'
        if returned[:len(p.early)] != right["returned"][:len(p.early)]:
            return ("the early calls find no bus: what does register_lguest_driver() return on a kernel "
                    "without one? (the bare kernel of D:100 tried it)")
        if returned != right["returned"]:
            return "the late calls find the bus: does a driver registration ever report the probe's result?"
        registered = _whole(answer["registered"])
        if registered == right["registered"]:
            pass
        elif registered == len(p.drivers) + len(p.early) + len(p.late):
            return "a driver registered before the bus exists is kept nowhere: it takes the not-a-Guest exit"
        elif registered == len(p.late):
            return "the built-in drivers register too, at their initcall, whether or not a device of their type exists"
        else:
            return "count the drivers that reach the bus's list: who registers, and when?"
        status = _statuses(answer["status"], len(p.types))
        if status is None:
            return f'"status" is a list of {len(p.types)} whole numbers, one per descriptor in use'
        for i, (a, r) in enumerate(zip(status, right["status"])):
            if a != r:
                if r == ACK:
                    return (f"device {i} ({NAME[p.types[i]]}): which drivers of its type were on the bus's list "
                            "when the bus scanned, or came after?")
                return f"device {i} ({NAME[p.types[i]]}): some driver of its type did reach the bus"
        return None

    def mistakes(self, p):
        right = self.answer(p)
        found = [({**right, "returned": [-19] * len(p.early) + [0] * len(p.late)}, "the early calls find no bus"),
                 ({**right, "registered": len(p.drivers) + len(p.early) + len(p.late)}, "kept nowhere")]
        if p.drivers:
            found.append(({**right, "registered": len(p.late)}, "the built-in drivers register too"))
        naive = self._status(p, {BUILT_IN[d] for d in p.drivers} | set(p.late) | set(p.early))
        if naive != right["status"]:
            found.append(({**right, "status": naive}, "which drivers of its type were on the bus's list"))
        return found


# --- d100-ex-hotplug ----------------------------------------------------------------------------------
class Hotplug(Exercise):
    """Devices added after boot, drivers registered between them: which bus function calls each new
    device's probe, and its status."""

    label = "d100-ex-hotplug"
    kind = "predict"
    points = 2
    minutes = 15
    what = 'a dict: {slot: [the function that called its probe, or None, its status]}'

    def make(self, rng):
        lans = rng.randrange(1, 3)
        first_free = lans + 1                               # the LANs, then the console
        plugs = [rng.choice([NET, BLOCK]) for _ in range(rng.randrange(2, 4))]
        regs = [rng.choice(plugs + [CONSOLE, NET, BLOCK]) for _ in range(rng.randrange(1, 3))]
        steps = [("plug", t) for t in plugs] + [("register", t) for t in regs]
        rng.shuffle(steps)
        first_reg = next(k for k, (kind, _) in enumerate(steps) if kind == "register")
        later = [k for k, (kind, _) in enumerate(steps) if kind == "plug" and k > first_reg]
        if later:                                           # some device arrives after its driver
            caught = later[0]
            steps[first_reg] = ("register", steps[caught][1])
        else:
            steps.insert(0, ("register", steps[0][1]))      # the first plug's driver comes first
            del steps[first_reg + 1]
            caught = 1
        slots = iter(range(first_free, abi.LGUEST_MAX_DEVICES))
        steps = [(kind, t, next(slots) if kind == "plug" else None) for kind, t in steps]
        plugged = [s for k, (kind, _, s) in enumerate(steps) if kind == "plug" and k != caught]
        fail = rng.choice(plugged) if rng.random() < 0.4 else None
        lines = [f"    g = host.launch(mem_mb=16, sharenet={[f'lan{i}' for i in range(lans)]!r}, drivers=())"]
        if fail is not None:
            lines.append(f"    g.kernel.bus.fail_registration = {{{fail}}}")
        made_up = 0
        for kind, t, slot in steps:
            if kind == "plug":
                lines.append(f"    g.devices[{slot}][\"type\"] = {ABI_NAME[t]}; g.kernel.bus.add_lguest_device({slot})")
            else:
                made_up += 1
                lines.append(f"    g.kernel.bus.register_lguest_driver("
                             f"LguestDriver(\"x{made_up}\", {ABI_NAME[t]}, probe))")
        text = ("A booted Guest without drivers plays host to a hotplugging Launcher. Every made-up driver\n"
                "shares one probe, which returns 0 and records the bus function that called\n"
                "lguest_dev_probe() (inspect.stack()[2].function):\n" + "\n".join(lines) + "\n"
                "Answer with a dict keyed by each slot plugged: [the name of that function for its probe,\n"
                "or None if its probe never ran, its final status].")
        return dict(text=text, lans=lans, steps=steps, fail=fail)

    def answer(self, p):
        registered, devices, result = [], [], {}
        for kind, t, slot in p.steps:
            if kind == "plug":
                if slot == p.fail:
                    result[slot] = [None, ACK | FAILED]
                    continue
                if t in registered:
                    result[slot] = ["add_lguest_device", ACK | DRV | OK]
                else:
                    result[slot] = [None, ACK]
                    devices.append((slot, t))
            else:
                registered.append(t)
                for slot_, t_ in devices:
                    if t_ == t and result[slot_][0] is None:
                        result[slot_] = ["register_lguest_driver", ACK | DRV | OK]
        return result

    def judge(self, answer, p):
        right = self.answer(p)
        if not isinstance(answer, dict) or set(answer) != set(right):
            return f"answer with a dict with one key per slot plugged: {sorted(right)}"
        for slot in sorted(right):
            pair = answer[slot]
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__iter__") or len(list(pair)) != 2:
                return f"slot {slot}: give a pair [caller, status]"
            caller, status = list(pair)
            status = _whole(status)
            if status is None:
                return f"slot {slot}: the status is a whole number"
            want_caller, want_status = right[slot]
            if slot == p.fail and (caller, status) != (want_caller, want_status):
                return (f"slot {slot}: its device_register() failed, so the device never joined the bus. "
                        "What did add_lguest_device() set, and could a later driver find it?")
            if caller != want_caller:
                if want_caller is None:
                    return f"slot {slot}: did a {NAME[self._type(p, slot)]} driver ever reach the bus?"
                return (f"slot {slot}: what was already registered when the device was added? The side that "
                        "arrives second is the one whose loop finds the match")
            if status != want_status:
                if status & FAILED:
                    return f"slot {slot}: FAILED belongs to a device whose registration failed"
                return f"slot {slot}: follow its probe, if any, through lguest_dev_probe()"
        return None

    def _type(self, p, slot):
        return next(t for kind, t, s in p.steps if s == slot)

    def mistakes(self, p):
        right = self.answer(p)
        found = []
        boot_order = {s: ["register_lguest_driver" if c else None, st] for s, (c, st) in right.items()}
        if boot_order != right:
            found.append((boot_order, "The side that arrives second"))
        if p.fail is not None:
            wrong = dict(right)
            wrong[p.fail] = [None, ACK]
            found.append((wrong, "never joined the bus"))
        unclaimed = [s for s, (c, st) in right.items() if c is None and s != p.fail]
        if unclaimed:
            found.append(({s: [c, ACK | FAILED] if s in unclaimed else [c, st] for s, (c, st) in right.items()},
                          "FAILED belongs to a device whose registration failed"))
        return found


status, second_chance, too_early, hotplug = Status(), SecondChance(), TooEarly(), Hotplug()
EXERCISES = (status, second_chance, too_early, hotplug)
