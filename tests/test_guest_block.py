"""D:400-D:495: the Guest block driver over a real image, through the queue and the Launcher."""
import hashlib
import io
import random
import tarfile

import pytest

import lguest
from lguest import abi
from lguest.guest.linux.blkdev import Bio, BioVec, Request

SECTOR = abi.SECTOR_SIZE


def make_image(path, sectors=256, seed=1):
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(sectors * SECTOR))
    path.write_bytes(data)
    return data


@pytest.fixture
def disk(tmp_path):
    path = tmp_path / "disk.img"
    data = make_image(path)
    host = lguest.Host()
    guest = host.launch(mem_mb=16, block=[path])
    host.run()
    return host, guest, path, data


def test_d425_probe_names_binds_and_sizes_the_disk(disk):
    host, guest, path, data = disk
    bd = guest.kernel.block.disk("lgba")
    assert bd.disk.capacity == len(data) // SECTOR
    assert (bd.irq, bd.phys_addr) == (1, int(guest.devices[0]["pfn"]) << abi.PAGE_SHIFT)
    assert any(b.ukey == bd.phys_addr and b.dmas == bd.dma and b.num_dmas == 1 for b in host.bindings())
    assert bd.disk.queue.max_hw_segments == 16 and bd.disk.queue.seg_boundary_mask == abi.PAGE_SIZE - 1
    assert int(guest.devices[0]["status"]) == 7
    assert "lgba: device 0 at major 254" in guest.kernel.dmesg


def test_d425_a_failed_probe_gives_its_major_and_reply_dma_back_but_not_its_letter(disk):
    """lguestblk_probe()'s unwind: free_irq, blk_cleanup_queue, put_disk, unregister_blkdev,
    lguest_unmap, kfree(bd). register_blkdev(0) then hands the freed major to the next disk;
    next_block_index++ is not undone, so the next disk skips a letter."""
    host, guest, path, data = disk
    kernel = guest.kernel
    pfn = int(guest.devices[0]["pfn"])                 # any page will do for the probe's bind
    kernel.request_irq(4, lambda irq, dev: 0, 0, "squatter", "squatter")   # irq 4, not shared
    heap_before = kernel.kmalloc.alloc(abi.DMA_SIZE, align=4)
    kernel.kmalloc.free(heap_before)
    for index in (3, 4):                               # irqs 4 (taken) and 5 (free)
        guest.devices[index]["type"] = abi.LGUEST_DEVICE_T_BLOCK
        guest.devices[index]["pfn"] = pfn
        kernel.bus.add_lguest_device(index)
        if index == 3:
            assert kernel.dmesg[-1] == "lguestblk: probe of 3 failed with error -16"
            assert kernel.kmalloc.alloc(abi.DMA_SIZE, align=4) == heap_before   # kfree(bd)
            kernel.kmalloc.free(heap_before)
    assert kernel.dmesg[-1] == "lgbc: device 4 at major 253"
    assert int(guest.devices[3]["status"]) == 3 and int(guest.devices[4]["status"]) == 7


def test_d425_next_block_index_makes_the_27th_disk_lgb_brace():
    """Only 15 disks fit beside the console (LGUEST_MAX_DEVICES = 16), so the 27th name is
    reached by the counter, as it would be after 26 earlier probes."""
    kernel = lguest.Host().launch(mem_mb=4).kernel
    names = []
    for _ in range(29):
        names.append(f"lgb{kernel.block.next_block_index}")
        kernel.block.next_block_index = chr(ord(kernel.block.next_block_index) + 1)
    assert names[:2] == ["lgba", "lgbb"] and names[25:] == ["lgbz", "lgb{", "lgb|", "lgb}"]


def test_d400_read_and_write_through_the_driver_match_the_image(disk):
    host, guest, path, data = disk
    f = guest.open("/dev/lgba", "r+b")
    f.seek(1000)
    assert f.read(5000) == data[1000:6000]
    f.seek(700)
    f.write(b"lguest!" * 300)
    f.flush()
    assert path.read_bytes()[700:2800] == b"lguest!" * 300


def test_d440_one_request_in_flight_and_the_queue_stops(disk):
    host, guest, path, data = disk
    bd = guest.kernel.block.disk("lgba")
    q = bd.disk.queue
    reqs = [Request(bd.disk, s, False, [Bio(s, [BioVec(guest.alloc(4096, 4096), 0, SECTOR)])]) for s in (0, 8)]
    q.submit(reqs[0])
    q.submit(reqs[1])                              # the queue is stopped: it waits
    assert bd.req is reqs[0] and q.stopped and list(q.queue) == reqs
    host.run()                                      # irq: end, restart, the next one goes
    assert all(r.uptodate for r in reqs) and not q.queue and not q.stopped
    assert (q.stops, q.starts) == (2, 2)


def test_d440_a_non_fs_request_fails_and_the_queue_goes_on(disk):
    host, guest, path, data = disk
    bd = guest.kernel.block.disk("lgba")
    odd = Request(bd.disk, 0, False, [Bio(0, [BioVec(guest.alloc(4096, 4096), 0, SECTOR)])], fs=False)
    bd.disk.queue.submit(odd)
    assert odd.uptodate is False and odd.errors >= 1 and bd.req is None


def test_d480_req_to_dma_one_section_per_segment_zero_terminated(disk):
    host, guest, path, data = disk
    blk, bd = guest.kernel.block, guest.kernel.block.disk("lgba")
    page = guest.alloc(8192, 4096)
    req = Request(bd.disk, 0, False, [Bio(0, [BioVec(page, 0, 1024)]), Bio(2, [BioVec(page + 4096, 512, 512)])])
    dma = guest.alloc(100, 4)
    assert blk.req_to_dma(req, dma) == 1536
    d = guest.memory.struct_at(dma, abi.lguest_dma)
    assert [int(x) for x in d["addr"][:2]] == [page, page + 4096 + 512] and [int(x) for x in d["len"][:3]] == [1024, 512, 0]


def test_d480_segment_rules_refuse_17_segments_and_a_page_crossing(disk):
    host, guest, path, data = disk
    bd = guest.kernel.block.disk("lgba")
    page = guest.alloc(17 * 4096, 4096)
    many = Request(bd.disk, 0, False, [Bio(i, [BioVec(page + i * 4096, 0, SECTOR)]) for i in range(17)])
    with pytest.raises(ValueError, match="at most 16 segments"):
        bd.disk.queue.submit(many)
    across = Request(bd.disk, 0, False, [Bio(0, [BioVec(page, 4096 - 512, 1024)])])
    with pytest.raises(ValueError, match="may not cross"):
        bd.disk.queue.submit(across)


def test_d490_irq_with_no_request_says_no_work(disk):
    host, guest, path, data = disk
    blk, bd = guest.kernel.block, guest.kernel.block.disk("lgba")
    assert blk.lgb_irq(bd.irq, bd) == lguest.guest.kernel.IRQ_NONE
    assert guest.kernel.debug[-1] == "No work!"


def test_d495_end_request_resends_the_rest_end_entire_request_does_not(tmp_path):
    """k bios: the old end_request() ends one per interrupt and the rest goes out again."""
    counts = {}
    for entire in (True, False):
        path = tmp_path / f"d{entire}.img"
        data = make_image(path, sectors=64)
        host = lguest.Host()
        guest = host.launch(mem_mb=16, block=[path])
        guest.kernel.block.end_entire = entire
        f = guest.open("/dev/lgba", "rb", buffering=0)
        assert f.read(8 * 4096) == data[:8 * 4096]          # one request of 8 bios
        counts[entire] = host.trace.counts()["block_io"]
    assert counts == {True: 1, False: 8}


def test_failed_request_raises_eio_and_changes_nothing(tmp_path):
    path = tmp_path / "disk.img"
    make_image(path, sectors=8)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    host = lguest.Host()
    guest = host.launch(mem_mb=16, block=[path])
    f = guest.open("/dev/lgba", "r+b", buffering=0)
    f.size = 64 * SECTOR                                      # a Guest that believes the disk is bigger
    f.seek(16 * SECTOR)
    with pytest.raises(OSError, match="never finished: Launcher exited: Bad offset 8192"):
        f.write(b"x" * SECTOR)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_tarfile_round_trip_through_the_driver(tmp_path):
    files = {"a.txt": b"hello, disk\n", "b.bin": bytes(range(256)) * 400}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    image = raw.getvalue() + bytes(-len(raw.getvalue()) % SECTOR + 64 * SECTOR)
    path = tmp_path / "tar.img"
    path.write_bytes(image)
    host = lguest.Host()
    guest = host.launch(mem_mb=16, block=[path])
    with tarfile.open(fileobj=guest.open("/dev/lgba", "rb")) as t:
        assert t.getnames() == list(files)
        assert {n: t.extractfile(n).read() for n in files} == files
    assert guest.shell("tar tf /dev/lgba") == "a.txt\nb.bin\n"
    out = guest.shell("dd if=/dev/lgba of=/dev/null bs=64k count=2")
    assert out.splitlines()[-1] == "131072 bytes copied, 2 requests, 2 interrupts"


def test_integrity_random_workload_matches_a_bytearray_model(tmp_path):
    """Seeded random reads and writes through Guest.open against a reference bytearray."""
    path = tmp_path / "disk.img"
    model = bytearray(make_image(path, sectors=512, seed=7))
    host = lguest.Host(trace=False)
    guest = host.launch(mem_mb=16, block=[path])
    f = guest.open("/dev/lgba", "r+b", buffering=0)
    rng = random.Random(2007)
    for _ in range(5000):
        off = rng.randrange(len(model))
        n = rng.randrange(1, min(20000, len(model) - off) + 1)
        f.seek(off)
        if rng.random() < 0.5:
            assert f.read(n) == bytes(model[off:off + n])
        else:
            data = rng.randbytes(n)
            f.write(data)
            model[off:off + n] = data
    assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(model).digest()


# --- the D:440 exercise: N requests in flight -----------------------------------------------

def test_d440_exercise_n_in_flight_one_interrupt_ends_them_all(tmp_path):
    path = tmp_path / "big.img"
    data = make_image(path, sectors=1024)
    guest = lguest.Host().launch(mem_mb=16, block=[path])
    guest.kernel.block.max_in_flight = 4
    bd = guest.kernel.block.disk("lgba")
    f = guest.open("/dev/lgba", "rb", buffering=0)
    irqs, stops = guest.kernel.irq_counts[bd.irq], bd.disk.queue.stops
    assert f.read(4 * 65536) == data[:4 * 65536]
    assert f.requests == 4
    assert guest.kernel.irq_counts[bd.irq] - irqs == 1 and bd.disk.queue.stops - stops == 1
    assert bd.req is None and not bd.disk.queue.queue


def test_d440_exercise_in_flight_requests_share_the_one_result(disk):
    """The page has one ``result``: a short read followed by a good one is reported good."""
    host, guest, path, data = disk
    guest.kernel.block.max_in_flight = 2
    bd = guest.kernel.block.disk("lgba")
    last = bd.disk.capacity - 1
    pages = [guest.alloc(4096, 4096) for _ in range(2)]
    short = Request(bd.disk, last, False, [Bio(last, [BioVec(pages[0], 0, 2 * SECTOR)])])   # runs off the end
    good = Request(bd.disk, 0, False, [Bio(0, [BioVec(pages[1], 0, SECTOR)])])
    for req in (short, good):
        bd.disk.queue.submit(req)
    assert bd.inflight == [short, good] and bd.disk.queue.stopped
    host.run()
    assert [e.result for e in host.trace.filter("block_result")][-2:] == [2, 1]
    assert short.uptodate is True and good.uptodate is True     # the 2 was overwritten by the 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_d440_exercise_max_in_flight_must_be_a_whole_number_at_least_1(bad):
    block = lguest.Host().launch(mem_mb=4).kernel.block
    with pytest.raises(ValueError, match="at least 1"):
        block.max_in_flight = bad
    assert block.max_in_flight == 1


def test_end_that_request_first_keeps_hard_nr_sectors_as_linux_does(disk):
    from lguest.guest.linux.blkdev import end_that_request_first
    host, guest, path, data = disk
    bd = guest.kernel.block.disk("lgba")
    req = Request(bd.disk, 8, False, [Bio(8 + 2 * i, [BioVec(4096 * i, 0, 1024)]) for i in range(3)])
    assert (req.hard_nr_sectors, [b.bi_size for b in req.bios]) == (6, [1024] * 3)
    assert end_that_request_first(req, True, 3) is True          # 1.5 bios' worth ends only the first
    assert (req.sector, req.hard_nr_sectors, len(req.bios), req.bios_completed) == (10, 4, 2, 1)
    assert end_that_request_first(req, False, 4) is False
    assert (req.sector, req.hard_nr_sectors, req.errors) == (14, 0, 2)
