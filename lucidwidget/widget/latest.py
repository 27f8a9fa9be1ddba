"""`LatestRequestThread`: a daemon thread that works on the newest request only, after a quiet time.

The widget's render and explain threads share this shape. The kernel's main thread posts requests and
never waits for the engine; each post replaces the request waiting and bumps a *generation*, so work
for an older request can see that it is out of date (`current`) and stop early; the thread takes the
newest request once none has arrived for `debounce` seconds, so a burst of slider moves becomes one.
"""

from __future__ import annotations

import threading
import time


class LatestRequestThread:
    """Base class: subclasses set `debounce` and `thread_name` and implement `handle(request, generation)`.

    `_wake` (a `threading.Condition`) guards the pending request and the generation; subclasses may hold
    it for state of their own that must change together with them.
    """

    debounce = 0.15
    thread_name = "lucidwidget"

    def __init__(self):
        self.generation = 0
        self._pending = None
        self._requested_at = 0.0
        self._closing = False
        self._wake = threading.Condition()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = None

    @property
    def thread(self):
        """The thread, or None before the first request and after `close`."""
        return self._thread

    @property
    def busy(self) -> bool:
        """True while a request runs or waits."""
        return not self._idle.is_set()

    def wait(self, timeout=None) -> bool:
        """Blocks until no request runs or waits; returns False if `timeout` seconds passed first."""
        return self._idle.wait(timeout)

    def current(self, generation) -> bool:
        """True while `generation` is the newest request's and the thread is not closing."""
        return self.generation == generation and not self._closing

    def handle(self, request, generation):
        raise NotImplementedError

    def _post(self, request):
        """Replaces any waiting request with `request` and wakes the thread (started on the first post)."""
        with self._wake:
            if self._closing:
                return
            self.generation += 1
            self._pending = request
            self._requested_at = time.monotonic()
            self._idle.clear()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"{self.thread_name}-{id(self):x}",
                                                daemon=True)
                self._thread.start()
            self._wake.notify_all()

    def _drop(self, closing=False):
        """Drops the waiting request and outdates the running one; `closing` ends the thread for good."""
        with self._wake:
            self._closing = self._closing or closing
            self.generation += 1
            self._pending = None
            self._wake.notify_all()

    def _join(self, timeout):
        """Waits up to `timeout` seconds for the thread to end (unless called from it) and forgets it."""
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def _take(self):
        """`(request, generation)` once a request has waited `debounce` seconds unreplaced; None once closing."""
        with self._wake:
            while True:
                if self._closing:
                    return None
                if self._pending is None:
                    self._idle.set()
                    self._wake.wait()
                    continue
                quiet = self._requested_at + self.debounce - time.monotonic()
                if quiet > 0:
                    self._wake.wait(quiet)
                    continue
                request, self._pending = self._pending, None
                return request, self.generation

    def _loop(self):
        while True:
            item = self._take()
            if item is None:
                self._idle.set()
                return
            self.handle(*item)
