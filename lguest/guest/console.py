"""D:300–D:370: the Guest console driver (drivers/char/hvc_lguest.c).

Output is one SEND_DMA to key 0 per chunk; input is one 256-byte buffer bound at key 0,
which hvc drains 16 bytes at a time after each interrupt. Everything else is hvc's job.
One instance per Guest kernel holds what the C file keeps in static variables.
"""
from __future__ import annotations

from .. import abi
from ..structs import write_dma
from .bus import LguestDriver, lgdev_irq
from .linux.hvc import HvOps

INBUF_SIZE = 256
OUTBUF_SIZE = 256


class HvcLguest:
    def __init__(self, kernel):
        self.kernel = kernel
        memory = kernel.memory
        # D:340: the one input buffer and its DMA: addr[0] = inbuf, len[0] = 256, len[1] = 0.
        self.inbuf = kernel.kmalloc.alloc(INBUF_SIZE, align=INBUF_SIZE)
        self.cons_input = kernel.kmalloc.alloc(abi.DMA_SIZE, align=4)
        write_dma(memory, self.cons_input, [(self.inbuf, INBUF_SIZE)])
        self.cons_offset = 0                       # how much of inbuf get_chars() has handed on
        self.stack_dma = kernel.kmalloc.alloc(abi.DMA_SIZE, align=4)   # put_chars' local
        self.lguest_cons = HvOps(get_chars=self.get_chars, put_chars=self.put_chars)
        self.lguestcons_drv = LguestDriver("lguestcons", abi.LGUEST_DEVICE_T_CONSOLE, self.lguestcons_probe)

    # --- D:310 ----------------------------------------------------------------------------
    def put_chars(self, vtermno: int, buf: int, count: int) -> int:
        """D:310: one section, ``buf`` itself, sent to key 0; report all ``count`` written.

        FIXME (as in 2007): nothing stops ``buf`` from crossing a page boundary, which the
        DMA rules forbid. The Launcher path never checks that, so it "never seems to happen".
        """
        write_dma(self.kernel.memory, self.stack_dma, [(buf, count)])
        self.kernel.lguest_send_dma(abi.LGUEST_CONSOLE_DMA_KEY, self.stack_dma)
        return count

    # --- D:350 ----------------------------------------------------------------------------
    def get_chars(self, vtermno: int, count: int) -> bytes:
        """D:350: at most ``count`` bytes of input; hand the buffer back once it is drained.

        The arithmetic is the C's unsigned arithmetic: if the Launcher overwrote the buffer
        with something shorter than what was already read, used_len - cons_offset wraps to a
        huge number and stale bytes beyond the input come out (see the console chapter).
        """
        memory = self.kernel.memory
        used_len = memory.u32(self.cons_input)
        if not used_len:
            return b""
        if (used_len - self.cons_offset) & 0xFFFFFFFF < count:
            count = used_len - self.cons_offset
        data = memory.read(self.inbuf + self.cons_offset, count)
        self.cons_offset += count
        if self.cons_offset == used_len:           # drained: give the buffer back to the Host
            self.cons_offset = 0
            memory.set_u32(self.cons_input, 0)
        return data

    # --- D:320 ----------------------------------------------------------------------------
    def cons_init(self) -> int:
        """D:320: very early, on a Guest only: an output-only console for boot messages."""
        if self.kernel.paravirt_name != "lguest":
            return 0
        return self.kernel.hvc.hvc_instantiate(0, 0, self.lguest_cons)

    # --- D:370 ----------------------------------------------------------------------------
    def lguestcons_probe(self, lgdev) -> int:
        """D:370: make the interactive console, then bind the input buffer at key 0.

        hvc_alloc() only notes the irq: hvc asks for it when the console is first opened."""
        hp = self.kernel.hvc.hvc_alloc(0, lgdev_irq(lgdev), self.lguest_cons, OUTBUF_SIZE)
        lgdev.private = hp
        err = self.kernel.lguest_bind_dma(abi.LGUEST_CONSOLE_DMA_KEY, self.cons_input, 1, lgdev_irq(lgdev))
        if err:
            self.kernel.printk("lguest console: failed to bind buffer.")
        return err

    # --- D:360 ----------------------------------------------------------------------------
    def hvc_lguest_init(self) -> int:
        """D:360: the standard driver form: register, and the bus calls our probe."""
        return self.kernel.bus.register_lguest_driver(self.lguestcons_drv)
