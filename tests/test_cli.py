"""python -m lguest: a real pseudo-terminal (raw mode, three ^C), piped stdin, bad options."""
import os
import subprocess
import sys
import termios
import time

import pexpect
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMD = [sys.executable, "-m", "lguest"]


def spawn(*args):
    child = pexpect.spawn(CMD[0], CMD[1:] + list(args), cwd=ROOT, timeout=20, encoding="utf-8")
    child.expect_exact("# ")                  # the shell's first prompt: the Guest has booted
    return child


def press_ctrl_c(child, times: int) -> None:
    """Each ^C as its own 1-byte read, as a person types them (the Launcher counts reads)."""
    for _ in range(times):
        child.sendcontrol("c")
        time.sleep(0.05)


def test_pty_cat_proc_interrupts_shows_the_console_line():
    child = spawn("16")
    child.send("cat /proc/interrupts\r")      # raw mode: the Guest's tty turns CR into a line
    child.expect(r"\s+1:\s+(\d+)\s+lguest\s+hvc_console")
    assert int(child.match.group(1)) >= 1     # at least the interrupt that carried this line
    child.expect_exact("# ")
    press_ctrl_c(child, 3)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_pty_three_ctrl_c_exit_2_and_restore_the_terminal():
    """The Launcher puts the terminal in raw mode and gives it back as it was."""
    import pty
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen(CMD + ["16"], cwd=ROOT, stdin=slave, stdout=slave, stderr=slave)
    out = b""
    deadline = time.monotonic() + 20
    while b"# " not in out and time.monotonic() < deadline:
        out += os.read(master, 4096)
    during = termios.tcgetattr(slave)
    assert not during[3] & termios.ECHO and not during[3] & termios.ICANON   # raw while running
    for _ in range(3):
        os.write(master, b"\x03")
        time.sleep(0.05)                      # each ^C arrives as its own 1-byte read
    assert proc.wait(timeout=20) == 2
    assert termios.tcgetattr(slave) == before
    os.close(master), os.close(slave)


def still_alive_then_three_ctrl_c_exit_2(child) -> None:
    assert child.isalive()
    child.send("echo still here\r")
    child.expect_exact("still here")
    press_ctrl_c(child, 3)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2


def test_pty_two_ctrl_c_then_a_key_does_not_exit():
    child = spawn("16")
    press_ctrl_c(child, 2)
    still_alive_then_three_ctrl_c_exit_2(child)


def test_pty_a_third_ctrl_c_two_seconds_late_starts_the_count_again():
    """Wall time reaches the Host's clock. The late third sets the count to 0, as 2007's did,
    so two more ^C are only two (a sliding window would have counted three)."""
    child = spawn("16")
    press_ctrl_c(child, 2)
    time.sleep(2.1)
    press_ctrl_c(child, 3)
    child.expect_exact("^C")
    still_alive_then_three_ctrl_c_exit_2(child)


def test_piped_stdin_runs_the_lines_and_exits_0():
    out = subprocess.run(CMD + ["16"], cwd=ROOT, input=b"echo one\nls /dev\nfrob\n",
                         capture_output=True, timeout=60)
    text = out.stdout.decode()
    assert out.returncode == 0, out.stderr
    assert "# echo one\r\none\r\n" in text
    assert "hvc0" in text
    assert "sh: frob: command not found" in text


@pytest.mark.parametrize("args", [["--bogus", "16"], [], ["sixteen"]])
def test_bad_command_line_prints_usage_and_exits_2(args):
    out = subprocess.run(CMD + args, cwd=ROOT, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "usage: python -m lguest" in out.stderr.decode()


def test_bad_memory_size_says_what_is_allowed():
    out = subprocess.run(CMD + ["0"], cwd=ROOT, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert "mem_mb must be a whole number of MiB, 1..1024, got 0" in out.stderr.decode()


def test_devices_take_slots_in_command_line_order(tmp_path):
    """--block before --sharenet: the disk is index 0 (irq 1), the net index 1 (irq 2), the console last."""
    disk = tmp_path / "a.img"
    disk.write_bytes(bytes(4096))
    out = subprocess.run(CMD + [f"--block={disk}", "--sharenet=lan0", "16"], cwd=ROOT, capture_output=True,
                         input=b"cat /proc/interrupts\n", timeout=60)
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line.split()[-1] for line in out.stdout.decode().splitlines()
             if line.strip()[:1].isdigit()}
    assert lines == {"1:": "lgba", "2:": "lguestnet", "3:": "hvc_console"}
