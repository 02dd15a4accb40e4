"""Small stand-ins for the parts of Linux the lguest drivers call: hvc_console and a tty."""
