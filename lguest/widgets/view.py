"""What every view shares: text for nbval, SVG for the book, a live widget for JupyterLab.

A view holds a reference to the model and nothing else: each rendering reads the model
(and its trace) afresh. Displaying a view shows a *snapshot* (text/plain plus a static
SVG), so the rendered book shows each picture as it was when its cell ran. ``widget()``
gives a live ipywidgets form that redraws after every cell and on ``refresh()``.
"""
from __future__ import annotations

import weakref

import ipywidgets as w

from ..host.host import Host
from ..machine import Guest


def need_host(host, view: str) -> None:
    """A view of the whole Host refuses anything else, saying what it takes."""
    if not isinstance(host, Host):
        hint = "; a Guest's Host is guest.host" if isinstance(host, Guest) else ""
        raise TypeError(f"{view} takes the Host (lguest.Host()){hint}; got {host!r}")


class View:
    title = "view"

    def text(self) -> str:              # deterministic: strict nbval compares it
        raise NotImplementedError

    def svg(self) -> str:               # the static picture
        raise NotImplementedError

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text(), "text/html": f'<div class="lguest-view">{self.svg()}</div>'}

    def widget(self) -> "LiveView":
        """A live form of this view: it follows the model as cells run."""
        return LiveView(self)


class LiveView(w.VBox):
    """An ipywidgets box whose picture is redrawn from the model after every cell."""

    def __init__(self, view: View):
        self.view = view
        self.picture = w.HTML(value=view.svg())
        super().__init__(children=[self.picture])
        self.add_class("lguest-live")
        _after_each_cell(self)

    def refresh(self) -> None:
        svg = self.view.svg()
        if svg != self.picture.value:
            self.picture.value = svg

    def __repr__(self):
        return f"live {self.view.title}\n{self.view.text()}"


def _after_each_cell(live) -> None:
    """Redraw after each cell; the hook holds the widget weakly, so it can be collected."""
    try:
        from IPython import get_ipython
    except ImportError:                  # no IPython: refresh() by hand
        return
    ip = get_ipython()
    if ip is None:
        return
    ref = weakref.ref(live)

    def redraw(result=None):
        target = ref()
        if target is None:
            ip.events.unregister("post_run_cell", redraw)
        else:
            target.refresh()
    ip.events.register("post_run_cell", redraw)
