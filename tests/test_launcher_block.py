"""--block, the Launcher's side (reference §4.2, §4.5), with the Guest's driver played by hand."""
import hashlib
import os

import pytest

import lguest
from lguest import abi
from lguest.launcher.block import LauncherBlockError

SECTOR = abi.SECTOR_SIZE


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(i % 251 for i in range(64 * SECTOR)))
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Disk:
    """A Guest with one disk, a bound one-entry reply buffer, and the block page mapped."""

    def __init__(self, image, reply_len=4096, o_direct=False):
        self.host = lguest.Host()
        self.g = self.host.launch(mem_mb=4, block=[image], drivers=(), o_direct=o_direct)
        self.page = int(self.g.devices[0]["pfn"]) << abi.PAGE_SHIFT
        self.buf = self.g.alloc(reply_len, align=4096)
        self.reply = self.g.dma([(self.buf, reply_len)])
        assert self.g.kernel.lguest_bind_dma(self.page, self.reply, 1, 1) == 0

    def request(self, type_, sector, nbytes, sections=(), reply_len=None):
        """As do_read/do_write: the reply buffer is the request's size, unless told otherwise."""
        lb = self.g.memory.struct_at(self.page, abi.lguest_block_page)
        lb["type"], lb["sector"], lb["bytes"], lb["result"] = type_, sector, nbytes, 0
        if type_ == 0 and reply_len != "keep":
            self.g.memory.struct_at(self.reply, abi.lguest_dma)["len"][0] = reply_len or nbytes
        self.g.memory.set_u32(self.reply, 0)
        self.g.kernel.lguest_send_dma(self.page, self.g.dma(sections))
        return int(lb["result"])


def test_4_5_block_device_descriptor_and_num_sectors(image):
    d = Disk(image)
    desc = d.g.devices[0]
    assert (int(desc["type"]), int(desc["features"]), int(desc["num_pages"])) == (
        abi.LGUEST_DEVICE_T_BLOCK, abi.LGUEST_DEVICE_F_RANDOMNESS, 1)
    assert int(d.g.memory.struct_at(d.page, abi.lguest_block_page)["num_sectors"]) == 64
    assert int(d.g.devices[1]["type"]) == abi.LGUEST_DEVICE_T_CONSOLE      # the console still last


def test_4_2_read_fills_the_reply_buffer_sets_result_1_and_raises_the_irq(image):
    d = Disk(image)
    mark = d.host.trace.mark()
    assert d.request(0, 3, 1024) == 1
    assert d.g.memory.read(d.buf, 1024) == image.read_bytes()[3 * SECTOR:3 * SECTOR + 1024]
    assert d.g.memory.u32(d.reply) == 1024
    assert [e.irq for e in d.host.trace.filter("irq_raise", since=mark)] == [1]


def test_4_2_write_goes_to_the_file_and_the_reply_used_len_is_0(image):
    d = Disk(image)
    data = d.g.alloc(1024, align=4096)
    d.g.memory.write(data, b"W" * 1024)
    assert d.request(1, 10, 1024, [(data, 512), (data + 512, 512)]) == 1
    assert image.read_bytes()[10 * SECTOR:12 * SECTOR] == b"W" * 1024
    assert d.g.memory.u32(d.reply) == 0


def test_4_2_a_read_into_more_room_than_bytes_reads_more_and_gives_result_2(image):
    """The Launcher fills the whole reply buffer; result 1 needs exactly `bytes` moved."""
    d = Disk(image)
    assert d.request(0, 0, 1024, reply_len=4096) == 2
    assert d.g.memory.u32(d.reply) == 4096


def test_4_2_short_read_at_the_end_of_the_disk_gives_result_2(image):
    d = Disk(image)
    assert d.request(0, 63, 1024) == 2                   # only one sector is left
    assert d.g.memory.u32(d.reply) == SECTOR


def test_4_2_bad_offset_stops_the_guest_and_leaves_the_image_alone(image):
    before = digest(image)
    d = Disk(image)
    d.request(0, 64, 512)
    assert d.g.dead == "Launcher exited: Bad offset 32768 vs 32768"
    assert digest(image) == before


def test_4_2_write_past_end_writes_first_then_cuts_the_file_back_and_stops_the_guest(image):
    """2007 wrote, then checked: the sector in range *is* changed, the file is cut back to size."""
    original = image.read_bytes()
    d = Disk(image)
    data = d.g.alloc(1024, align=4096)
    d.g.memory.write(data, b"X" * 1024)
    d.request(1, 63, 1024, [(data, 1024)])
    assert d.g.dead == f"Launcher exited: Write past end {63 * SECTOR}+1024"
    assert d.g.launcher.log == [f"lguest: Write past end {63 * SECTOR}+1024"]
    assert image.read_bytes() == original[:63 * SECTOR] + b"X" * SECTOR     # same size, last sector X


def test_4_2_no_reply_buffer_bound_stops_the_guest(image):
    host = lguest.Host()
    g = host.launch(mem_mb=4, block=[image], drivers=())
    page = int(g.devices[0]["pfn"]) << abi.PAGE_SHIFT
    g.kernel.lguest_send_dma(page, g.dma([]))
    assert g.dead == "Launcher exited: Block request didn't give us a dma buffer: No such file or directory"


def test_4_2_a_failed_readv_leaves_minus_1_in_the_replys_used_len_and_result_2(image):
    """readv()'s -1 goes straight into used_len (0xffffffff); result is 2, as bytes != len."""
    d = Disk(image)
    os.close(d.g.launcher.disks[0].fd)                  # every read now fails (EBADF)
    d.g.launcher.disks[0].fd = os.open(os.devnull, os.O_WRONLY)
    assert d.request(0, 0, 512) == 2
    assert d.g.memory.u32(d.reply) == 0xFFFFFFFF and d.g.dead is None


def test_4_2_a_failed_writev_is_a_write_past_end(image):
    """2007's len was unsigned: writev()'s -1 became 4294967295, "past the end" of any disk."""
    before = digest(image)
    d = Disk(image)
    os.close(d.g.launcher.disks[0].fd)
    d.g.launcher.disks[0].fd = os.open(image, os.O_RDONLY)   # writes now fail (EBADF)
    data = d.g.alloc(512, align=4096)
    d.request(1, 0, 512, [(data, 512)])
    assert d.g.dead == "Launcher exited: Write past end 0+4294967295"
    assert digest(image) == before


def test_4_2_a_reply_section_straddling_the_top_of_ram_is_filled_across_it(image):
    d = Disk(image)
    top_of_ram = d.g.memory.ram_size
    d.g.memory.struct_at(d.reply, abi.lguest_dma)["addr"][0] = top_of_ram - 100
    d.g.memory.struct_at(d.reply, abi.lguest_dma)["len"][0] = 200
    assert d.request(0, 0, 200, reply_len="keep") == 1
    assert d.g.memory.read(top_of_ram - 100, 200) == image.read_bytes()[:200]


@pytest.mark.parametrize("content, words", [
    (None, "no such disk image"), (b"", "non-empty whole number of 512-byte sectors"),
    (b"x" * 1000, "is 1000 bytes"), ("dir", "is a directory")])
def test_4_5_unusable_image_is_refused_at_launch_with_a_clear_message(tmp_path, content, words):
    path = tmp_path / "disk.img"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(LauncherBlockError, match=words):
        lguest.Host().launch(mem_mb=4, block=[path])


# --- O_DIRECT, as the 2007 Launcher opened every image ------------------------------------

def _o_direct_or_skip(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError:
        pytest.skip("this file system does not support O_DIRECT")
    os.close(fd)


def test_4_5_o_direct_image_reads_and_writes_through_the_driver(tmp_path):
    path = tmp_path / "direct.img"
    data = bytes(range(256)) * 256                      # 64 KiB
    path.write_bytes(data)
    _o_direct_or_skip(path)
    guest = lguest.Host().launch(mem_mb=16, block=[path], o_direct=True)
    f = guest.open("/dev/lgba", "r+b", buffering=0)
    assert f.read(65536) == data
    f.seek(4096)
    f.write(b"\xaa" * 8192)
    assert path.read_bytes() == data[:4096] + b"\xaa" * 8192 + data[12288:]


def test_4_5_o_direct_opens_the_image_with_the_flag(image):
    import fcntl
    _o_direct_or_skip(image)
    for direct in (False, True):
        d = Disk(image, o_direct=direct)
        fd = d.g.launcher.disks[0].fd
        assert bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT) is direct


def test_4_5_o_direct_part_sector_write_fails_and_so_is_a_write_past_end(image):
    """A Guest that asks for part of a sector: the kernel refuses (EINVAL), and 2007's unsigned
    length makes that -1 a write past the end: the Launcher stops, the image is unchanged."""
    _o_direct_or_skip(image)
    before = digest(image)
    d = Disk(image, o_direct=True)
    data = d.g.alloc(4096, align=4096)
    d.g.memory.write(data, b"W" * 4096)
    d.request(1, 2, 100, [(data, 100)])
    assert d.g.dead == "Launcher exited: Write past end 1024+4294967295"
    assert digest(image) == before


def test_4_5_o_direct_part_sector_read_gets_result_2_and_used_len_minus_1(image):
    _o_direct_or_skip(image)
    d = Disk(image, o_direct=True)
    assert d.request(0, 2, 100, reply_len=100) == 2
    assert d.g.memory.u32(d.reply) == 0xFFFFFFFF and d.g.dead is None


def test_4_5_guest_ram_is_page_aligned_so_the_kernel_copies_fast(tmp_path):
    guest = lguest.Host().launch(mem_mb=4, drivers=())
    assert guest.memory.ram.buf.ctypes.data % 4096 == 0
