"""The Host: hypercalls, keys, bindings, the checks, the copy, interrupts and kill_guest."""
from .host import Host

__all__ = ["Host"]
