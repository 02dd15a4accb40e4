"""``python -m lguest``: boot one Guest whose console is this terminal.

    python -m lguest [--block=FILE | --sharenet=NAME | --tunnet=IP | --tunnet=pcap:FILE]... [--o-direct] MEM_MB

Devices take descriptor slots (and irqs) in the order given; the console comes last.

On a terminal, stdin goes into raw mode (restored on exit) and every keystroke is sent
to the Guest's console as the real Launcher did. Wall time between keystrokes passes on
the Host's clock, so the Launcher's own three-^C-in-a-second exit works as in 2007 (status
2). With stdin piped, each line is typed in turn and the program exits at the end.
"""
from __future__ import annotations

import argparse
import os
import select
import sys
import termios
import time
import tty

from .errors import LguestError
from .machine import Host

class DeviceOption(argparse.Action):
    """--block, --sharenet and --tunnet, kept in the order given: devices take descriptor slots
    in command-line order, as getopt_long() handed them to the 2007 Launcher."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.devices = [*(getattr(namespace, "devices", None) or []), (self.dest, value)]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m lguest",
                                     description="Boot one lguest Guest whose console is this terminal.")
    parser.set_defaults(devices=[])
    parser.add_argument("--block", action=DeviceOption, metavar="FILE", help="a disk image (repeatable)")
    parser.add_argument("--o-direct", action="store_true", help="open the --block images with O_DIRECT, as in 2007")
    parser.add_argument("--sharenet", action=DeviceOption, metavar="NAME", help="join a shared LAN (repeatable)")
    parser.add_argument("--tunnet", action=DeviceOption, metavar="IP|pcap:FILE",
                        help="the Host as peer 0 at IP (answering ARP and ping), or at 10.0.0.254 "
                             "with every frame captured to FILE (repeatable)")
    parser.add_argument("mem_mb", type=int, metavar="MEM_MB", help="Guest RAM in MiB (1..1024)")
    return parser.parse_args(argv)


class Terminal:
    """Copies the Guest's console output to a file descriptor as it grows."""

    def __init__(self, guest, out_fd: int):
        self.guest, self.out_fd, self.sent = guest, out_fd, 0

    def flush(self) -> None:
        raw = self.guest.console.raw
        if len(raw) > self.sent:
            os.write(self.out_fd, bytes(raw[self.sent:]))
            self.sent = len(raw)

    def type(self, data: bytes) -> None:
        self.guest.console.type(data)
        self.guest.host.run()
        self.flush()


def run_piped(term: Terminal, stdin) -> int:
    for line in stdin:
        term.type(line.rstrip(b"\r\n") + b"\r")
    os.write(term.out_fd, b"\r\n")
    return 0


def run_tty(term: Terminal, fd: int) -> int:
    """One read() at a time, like the Launcher's console input (reference §4.3). Returns the
    Launcher's exit status once it has exited (2 after three ^C), or 0 at the end of input."""
    host, launcher = term.guest.host, term.guest.launcher
    last = time.monotonic()
    while not launcher.exited:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        data = os.read(fd, 256)
        if not data:
            return 0
        now = time.monotonic()
        host.idle(int((now - last) * 1000))       # the clock the Launcher's gettimeofday() reads
        last = now
        term.type(data)
    os.write(term.out_fd, b"\r\n")
    return launcher.status


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved is not None:
        tty.setraw(fd)                       # as the Launcher's setup_console() did, before the Guest runs
    try:
        return boot_and_serve(args, fd, interactive=saved is not None)
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def boot_and_serve(args, fd: int, interactive: bool) -> int:
    try:
        guest = Host().launch(mem_mb=args.mem_mb, devices=[f"--{kind}={value}" for kind, value in args.devices],
                              o_direct=args.o_direct)
    except (LguestError, ValueError, TypeError, OSError) as e:
        os.write(sys.stderr.fileno(), f"lguest: {e}\r\n".encode())
        return 2
    term = Terminal(guest, sys.stdout.fileno())
    guest.host.run()
    term.flush()
    if interactive:
        return run_tty(term, fd)
    return run_piped(term, sys.stdin.buffer)
