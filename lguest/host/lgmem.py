"""L:305 on the Host side: reading and writing a Guest's memory (core.c's lgread/lgwrite).

The Host never trusts an address a Guest gives it: each one is checked against the
Guest's page-frame limit (lguest_address_ok(), GuestMemory.in_range). A bad one kills
the Guest with 2007's message, and the caller carries on as core.c's did: a failed read
gives zeros, a failed write writes nothing.
"""
from __future__ import annotations

from ..abi import DMA_SIZE, LGUEST_DMA_STRUCT
from .lg import Lg

DMA_ZEROS = (0,) * len(LGUEST_DMA_STRUCT.unpack(bytes(DMA_SIZE)))   # a failed read of a lguest_dma


def lgread(host, lg: Lg, addr: int, nbytes: int) -> bytes:
    """``nbytes`` of the Guest's memory; a bad address kills it and reads as zeros."""
    if not lg.memory.in_range(addr, nbytes):
        host.kill_guest(lg, f"bad read address {addr:#x} len {nbytes}")
        return bytes(nbytes)
    return lg.memory.read(addr, nbytes)


def lgread_dma(host, lg: Lg, addr: int) -> tuple:
    """One struct lguest_dma, unpacked (used_len, addr[16], len[16]); lgread()'s rules."""
    if not lg.memory.in_range(addr, DMA_SIZE):
        host.kill_guest(lg, f"bad read address {addr:#x} len {DMA_SIZE}")
        return DMA_ZEROS
    return lg.memory.unpack(LGUEST_DMA_STRUCT, addr)


def lgwrite_u32(host, lg: Lg, addr: int, value: int, trace: bool = True) -> None:
    """Write one u32 (a used_len) into the Guest; a bad address kills it."""
    if not lg.memory.in_range(addr, 4):
        host.kill_guest(lg, f"bad write address {addr:#x}")
        return
    lg.memory.set_u32(addr, value)
    if trace:
        host.emit(lg, "used_len", addr=addr, value=value)
