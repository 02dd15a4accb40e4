"""Views of keys, interrupts and buffers: static SVG for the book, live widgets for JupyterLab.

Every view reads the model (and its trace) each time it draws and keeps no state of its
own. Displaying one gives a snapshot; ``.widget()`` gives a form that follows the model.
"""
from .buffermap import BufferMap
from .interrupts import InterruptPanel
from .keytable import KeyTable
from .lanpage import LanPage
from .player import TracePlayer

__all__ = ["KeyTable", "InterruptPanel", "BufferMap", "TracePlayer", "LanPage"]
