"""<linux/interrupt.h>: what an irq handler returns, and the flags of request_irq()."""
IRQ_NONE, IRQ_HANDLED = 0, 1          # "not mine" (e.g. "No work!") / "dealt with"
IRQF_DISABLED = 0x20                  # run the handler with interrupts off (hvc_console asks for it)
IRQF_SHARED = 0x80                    # other handlers may share the line
IRQF_SAMPLE_RANDOM = 0x40             # the irq's timing feeds the entropy pool
