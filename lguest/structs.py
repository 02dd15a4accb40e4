"""Writing the shared structs into Guest memory, as a Guest's C code fills them in."""
from __future__ import annotations

from . import abi


def write_dma(memory, addr: int, sections=(), used_len: int = 0) -> None:
    """Fill the ``lguest_dma`` at addr: the sections, then a 0 length if fewer than 16."""
    sections = list(sections)
    if len(sections) > abi.LGUEST_MAX_DMA_SECTIONS:
        raise ValueError(f"an lguest_dma holds at most {abi.LGUEST_MAX_DMA_SECTIONS} sections, got {len(sections)}")
    for _, length in sections:
        if not 0 <= length <= 0xFFFF:
            raise ValueError(f"a section length is a u16 (0..65535), got {length}")
    pad = [0] * (abi.LGUEST_MAX_DMA_SECTIONS - len(sections))
    addrs = [int(a) & 0xFFFFFFFF for a, _ in sections] + pad
    lens = [int(n) for _, n in sections] + pad
    memory.pack(abi.LGUEST_DMA_STRUCT, addr, used_len & 0xFFFFFFFF, *addrs, *lens)
