"""The Guest: the Linux kernel inside the virtual machine, its drivers and the bits of Linux they call."""
