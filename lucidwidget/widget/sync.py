"""`ThreadSafeWidget`: an anywidget whose trait syncs stay whole when several threads write its traits.

Three threads touch a live widget's state. The worker thread publishes progress; a cell sets traits from
code on the kernel's main thread; and the page's messages (`set_state`, buttons) run on the main thread,
or, where JupyterLab sends comm messages over kernel subshells (its default with ipykernel 7, the
"Kernel Comms over subshells" setting), on a subshell thread at the same time as a running cell.

ipywidgets keeps the sync bookkeeping per widget, not per thread: `hold_sync` collects the names to send
in one set and `set_state` marks the page's own values in one dict, and traitlets'
`hold_trait_notifications` swaps the instance's `notify_change`. Another thread writing a trait inside
one of those windows has its change merged into the other's message, or dropped: the page then shows a
value Python no longer has. So every sync here is one transaction under one re-entrant lock: a trait
write, a `hold_sync` block, the page's `set_state` (with its echo), and `send_state`.
"""

from __future__ import annotations

import contextlib
import threading

import anywidget


def deliver_where_sent(comm):
    """Makes the kernel handle the page's messages for `comm` on the subshell the page sent them to.

    ipykernel 7.4 routes a page's comm message to the subshell of the request that was current when the
    kernel last published on that comm (`BaseComm._reply_subshell_for`), so that a reply reaches a
    subshell waiting for it. For a widget that publishes from its own thread that request is whichever
    one the kernel handled last, possibly the subshell of a comm a reloaded page has since closed and
    deleted; every later message from the page is then refused ("Unknown subshell_id") and the controls
    go dead. This widget never waits for replies, so the page's own choice of subshell is the right
    one. Comms without that routing (other kernels, earlier ipykernels) are left as they are.
    """
    if callable(getattr(comm, "_reply_subshell_for", None)):
        comm._reply_subshell_for = lambda data, default: default


class ThreadSafeWidget(anywidget.AnyWidget):
    """An `anywidget.AnyWidget` whose trait syncs are serialised by one lock (see the module docstring),
    and whose comm delivers the page's messages where the page sent them (`deliver_where_sent`)."""

    def __init__(self, *args, **kwargs):
        self._sync_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def __setattr__(self, name, value):
        lock = self.__dict__.get("_sync_lock")
        if lock is None:
            super().__setattr__(name, value)
            return
        with lock:
            super().__setattr__(name, value)
        if name == "comm" and value is not None:
            deliver_where_sent(value)

    @contextlib.contextmanager
    def hold_sync(self):
        """Holds syncing until the block ends, as ipywidgets does, with no other thread's sync inside."""
        with self._sync_lock, super().hold_sync():
            yield

    def set_state(self, sync_data):
        """Applies values from the page (and echoes them back) as one transaction."""
        with self._sync_lock:
            super().set_state(sync_data)

    def send_state(self, key=None):
        with self._sync_lock:
            super().send_state(key)
