"""The Launcher: the user program that lays out a Guest's memory and serves its devices."""
