"""D:010's checkable exercises: read a descriptor, predict a memory map, count the slots."""
from __future__ import annotations

from .. import abi
from . import Exercise

STATUS_ORDER = [abi.LGUEST_DEVICE_S_ACKNOWLEDGE, abi.LGUEST_DEVICE_S_DRIVER, abi.LGUEST_DEVICE_S_DRIVER_OK,
                abi.LGUEST_DEVICE_S_FAILED]


class Decode(Exercise):
    """Twelve descriptor bytes, by hand: the type, the status bits, where the pages are, the irq."""

    label = "d010-ex-decode"
    kind = "predict"
    minutes = 10
    what = 'a dict: {"type": ..., "status": {...}, "pages_at": ..., "irq": ...}'

    def make(self, rng):
        type_ = rng.choice([abi.LGUEST_DEVICE_T_NET, abi.LGUEST_DEVICE_T_BLOCK])
        index = rng.randrange(0, abi.LGUEST_MAX_DEVICES - 1)
        status = rng.choice([1, 1 | 2, 1 | 2 | 4, 1 | 2 | 128])
        pfn = rng.randrange(0x400, 0x8000)
        features = abi.LGUEST_DEVICE_F_RANDOMNESS if type_ == abi.LGUEST_DEVICE_T_BLOCK else \
            rng.randrange(0, 16) | abi.LGUEST_NET_F_NOCSUM
        raw = (type_.to_bytes(2, "little") + features.to_bytes(2, "little") + status.to_bytes(2, "little")
               + (1).to_bytes(2, "little") + pfn.to_bytes(4, "little"))
        text = (f"Descriptor {index} of a Guest's descriptor page holds these 12 bytes:\n"
                f"    {raw.hex(' ')}\n"
                'Answer with a dict: {"type": "console" | "net" | "block", "status": a set of status\n'
                'names such as {"ACKNOWLEDGE"}, "pages_at": the physical address of its page, "irq": its irq}.')
        return dict(text=text, raw=raw, index=index, type=type_, status=status, pfn=pfn)

    def answer(self, p):
        return {"type": abi.DEVICE_TYPE_NAMES[p.type],
                "status": {name for bit, name in abi.DEVICE_STATUS_NAMES.items() if p.status & bit},
                "pages_at": p.pfn * abi.PAGE_SIZE, "irq": p.index + 1}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"type", "status", "pages_at", "irq"}:
            return 'answer with a dict of exactly four keys: "type", "status", "pages_at", "irq"'
        right = self.answer(p)
        if answer["type"] != right["type"]:
            return "the type is the first u16, little-endian: look it up in the chapter's table of types"
        if set(answer["status"]) != right["status"]:
            return "status is the third u16: each set bit is one name (1, 2, 4 and 128 are the bits in use)"
        if answer["pages_at"] == p.pfn:
            return "pfn is a page frame number, not an address: a page frame is PAGE_SIZE bytes"
        if answer["pages_at"] != right["pages_at"]:
            return "the pfn is the last four bytes, little-endian; the page's address follows from it"
        if answer["irq"] == p.index:
            return "the driver's irq is not the descriptor's index itself (irq 0 is the timer's)"
        if answer["irq"] != right["irq"]:
            return "the irq comes from the descriptor's index, not from its bytes"
        return None

    def mistakes(self, p):
        right = self.answer(p)
        return [({**right, "irq": p.index}, "irq 0 is the timer's"),
                ({**right, "pages_at": p.pfn}, "page frame number")]


class Layout(Exercise):
    """Where everything lands: the descriptor page, each LAN page, the console's slot, the pfn limit."""

    label = "d010-ex-layout"
    kind = "predict"
    minutes = 15
    what = 'a dict: {"descriptors": ..., "lans": [...], "console": ..., "pfn_limit": ...}'

    def make(self, rng):
        mem_mb = rng.choice([1, 2, 4, 8, 16, 32, 64])
        lans = [f"lan{i}" for i in rng.sample(range(10), rng.randrange(1, 5))]
        text = (f"A Guest is launched with mem_mb={mem_mb}, sharenet={lans!r}.\n"
                'Answer with a dict: {"descriptors": address of the descriptor page, "lans": the address\n'
                'of each LAN page in the order given, "console": the console\'s descriptor index,\n'
                '"pfn_limit": the page-frame limit the Host gets}.')
        return dict(text=text, mem_mb=mem_mb, lans=lans)

    def answer(self, p):
        top_of_ram = p.mem_mb << 20
        lans = [top_of_ram + (i + 1) * abi.PAGE_SIZE for i in range(len(p.lans))]
        return {"descriptors": top_of_ram, "lans": lans, "console": len(p.lans),
                "pfn_limit": top_of_ram // abi.PAGE_SIZE + 1 + len(p.lans)}

    def judge(self, answer, p):
        if not isinstance(answer, dict) or set(answer) != {"descriptors", "lans", "console", "pfn_limit"}:
            return 'answer with a dict of exactly four keys: "descriptors", "lans", "console", "pfn_limit"'
        right = self.answer(p)
        if answer["descriptors"] != right["descriptors"]:
            return "the descriptor page comes straight after the Guest's RAM, which starts at address 0"
        if list(answer["lans"]) != right["lans"]:
            return "device pages follow the descriptor page, one page per LAN, in command-line order"
        if answer["console"] == len(p.lans) + 1 or answer["console"] == 0:
            return "the console is set up after every command-line device, and indexes count from 0"
        if answer["console"] != right["console"]:
            return "count the descriptors the command line fills before the console's"
        if answer["pfn_limit"] == right["pfn_limit"] - 1:
            return "the limit counts every page below the top, the last device page included"
        if answer["pfn_limit"] != right["pfn_limit"]:
            return "the pfn limit is the top of the Guest's memory in pages: RAM, descriptor page, device pages"
        return None

    def mistakes(self, p):
        right = self.answer(p)
        return [({**right, "console": len(p.lans) + 1}, "indexes count from 0"),
                ({**right, "pfn_limit": right["pfn_limit"] - 1}, "the last device page included")]


class Slots(Exercise):
    """How many LANs still fit beside some disks, with the console always needing its slot."""

    label = "d010-ex-fifteen"
    kind = "predict"
    minutes = 5
    what = "a whole number"

    def make(self, rng):
        disks = rng.randrange(0, 9)
        text = (f"A Guest is launched with {disks} --block disk(s). How many --sharenet LANs can it join\n"
                "as well, at most, before the launch fails? Answer with a whole number.")
        return dict(text=text, disks=disks)

    def answer(self, p):
        return abi.LGUEST_MAX_DEVICES - 1 - p.disks

    def mistakes(self, p):
        return [(abi.LGUEST_MAX_DEVICES - p.disks, "the console needs a descriptor of its own"),
                (abi.LGUEST_MAX_DEVICES - 1, "the disks take descriptors too")]

    def generic_hint(self, answer, p):
        return "count the descriptors: how many are there, and who else needs one?"


decode, layout, slots = Decode(), Layout(), Slots()
EXERCISES = (decode, layout, slots)
