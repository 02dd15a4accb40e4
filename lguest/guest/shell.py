"""The Guest's tiny userspace: a shell on the console, and the files it can read.

``guest.shell("cat /proc/interrupts")`` and a line typed at the console run the same
commands. Later chapters add commands for the block and network drivers.
"""
from __future__ import annotations

import shlex
import tarfile

from .inet import format_arp, ifconfig_command, ping_command

PROMPT = "# "           # 2007-DIFF(userspace): a real Guest ran init and a real shell


class Shell:
    def __init__(self, kernel):
        self.kernel = kernel
        self.commands = {"help": self.help, "dmesg": self.dmesg, "echo": self.echo, "ls": self.ls, "cat": self.cat,
                         "dd": self.dd, "tar": self.tar, "ifconfig": self.ifconfig, "ping": self.ping, "arp": self.arp}

    def run(self, line: str) -> str:
        """Run one command line and return what it printed."""
        try:
            words = shlex.split(line)
        except ValueError as e:
            return f"sh: {e}\n"
        if not words:
            return ""
        command = self.commands.get(words[0])
        if command is None:
            return f"sh: {words[0]}: command not found (try help)\n"
        return command(words[1:])

    def on_line(self, line: str | None) -> None:
        """A line typed at the console (None after ^C): run it, print the output, prompt again."""
        tty = self.kernel.tty
        if line:
            tty.write(self.run(line).replace("\n", "\r\n").encode())
        tty.write(PROMPT.encode())

    # --- the commands ---------------------------------------------------------------------
    def help(self, args) -> str:
        return "commands: " + " ".join(sorted(self.commands)) + "\n"

    def dmesg(self, args) -> str:
        return "".join(line + "\n" for line in self.kernel.dmesg)

    def echo(self, args) -> str:
        return " ".join(args) + "\n"

    def files(self) -> dict[str, str]:
        """Every readable file: /proc/interrupts and the lguest bus's sysfs."""
        return {"/proc/interrupts": self.kernel.proc_interrupts(), **self.kernel.bus.sysfs()}

    def ls(self, args) -> str:
        path = (args[0] if args else "/").rstrip("/") or "/"
        if path == "/dev":
            return "".join(f"{name}\n" for name in sorted(self.kernel.dev_nodes))
        prefix = "" if path == "/" else path
        names = sorted({f[len(prefix) + 1:].split("/")[0] for f in self.files() if f.startswith(prefix + "/")}
                       | ({"dev"} if path == "/" else set()))
        if not names:
            return f"ls: cannot access '{path}': No such file or directory\n"
        return "".join(f"{name}\n" for name in names)

    def cat(self, args) -> str:
        if not args:
            return "cat: give a file, e.g. cat /proc/interrupts\n"
        files = self.files()
        out = []
        for path in args:
            text = files.get(path)
            out.append(f"cat: {path}: No such file or directory\n" if text is None
                       else text if text.endswith("\n") else text + "\n")
        return "".join(out)

    def dd(self, args) -> str:
        """dd if=/dev/lgbX of=/dev/null bs=N count=M: read, and count requests and interrupts."""
        opts = dict(a.split("=", 1) for a in args if "=" in a)
        if "if" not in opts or opts.get("of", "/dev/null") != "/dev/null":
            return "dd: usage: dd if=/dev/lgbX of=/dev/null [bs=BYTES] [count=N]\n"
        try:
            bs, count = size(opts.get("bs", "512")), int(opts["count"]) if "count" in opts else None
            disk = self.kernel.open(opts["if"], "rb", buffering=0)   # unbuffered: each read is its own requests
        except (ValueError, FileNotFoundError) as e:
            return f"dd: {e}\n"
        irqs_before = self.kernel.irq_counts[disk.bd.irq]
        records = copied = 0
        while count is None or records < count:
            data = disk.read(bs)
            if not data:
                break
            records, copied = records + 1, copied + len(data)
        irqs = self.kernel.irq_counts[disk.bd.irq] - irqs_before
        disk.close()
        return (f"{records}+0 records in\n{records}+0 records out\n"
                f"{copied} bytes copied, {plural(disk.requests, 'request')}, {plural(irqs, 'interrupt')}\n")

    def tar(self, args) -> str:
        """tar tf /dev/lgbX: list an archive stored on a disk, read through the driver."""
        if len(args) != 2 or args[0] != "tf":
            return "tar: usage: tar tf /dev/lgbX\n"
        try:
            with self.kernel.open(args[1], "rb") as disk, tarfile.open(fileobj=disk) as archive:
                return "".join(name + "\n" for name in archive.getnames())
        except FileNotFoundError as e:
            return f"tar: {e}\n"
        except tarfile.ReadError:
            return f"tar: {args[1]}: this does not look like a tar archive\n"

    # --- network commands (D:500-D:580): the tools live beside the stack, in inet.py ---------
    def ifconfig(self, args) -> str:
        return ifconfig_command(self.kernel.inet, args)

    def ping(self, args) -> str:
        return ping_command(self.kernel.inet, args)

    def arp(self, args) -> str:
        return format_arp(self.kernel.inet)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def size(text: str) -> int:
    """dd's sizes: 512, 64k, 1M."""
    units = {"k": 1024, "K": 1024, "M": 1 << 20}
    number = int(text[:-1]) * units[text[-1]] if text[-1:] in units else int(text)
    if number <= 0:
        raise ValueError(f"bs must be a positive size such as 512, 64k or 1M, got {text!r}")
    return number
