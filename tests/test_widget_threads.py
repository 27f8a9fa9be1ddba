"""LucidWidget's thread model: trait syncs stay whole when the page's messages are handled on another
thread (a kernel subshell) while a cell runs on the main thread and the worker thread publishes.

With JupyterLab's "Kernel Comms over subshells" (its default with ipykernel 7), `set_state` and the
buttons' messages run on a subshell thread. The page must end up with every value Python ends with;
nothing may raise on any thread. The messages the widget sends are recorded from its comm, and the
page's view is rebuilt from them.
"""

import sys
import threading

import pytest

from lucidwidget import LucidWidget

ROUNDS = 300
"""Writes per thread: enough for the threads to interleave thousands of times at a tiny switch interval."""

SWITCH_INTERVAL = 1e-6
"""Seconds between the interpreter's thread switches during the test (Python's default is 5 ms): tiny,
so that the threads interleave inside `hold_sync` and `set_state` rather than between them."""


@pytest.fixture
def fast_switching():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL)
    yield
    sys.setswitchinterval(previous)


def page_view(messages, initial):
    """The state a page holds after `initial` and the widget's update and echo messages, in order."""
    state = dict(initial)
    for data in messages:
        if data.get("method") in ("update", "echo_update"):
            state.update(data["state"])
    return state


def run_threads(*bodies):
    """Runs each body on its own thread, all at once; returns what they raised."""
    errors = []
    start = threading.Barrier(len(bodies))

    def guarded(body):
        start.wait()
        try:
            body()
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_page_writes_worker_publishes_and_cell_writes_all_reach_the_page(seq_model, fast_switching):
    widget = LucidWidget(seq_model, layer="conv3", channel=11, size=32, live=False, autostart=False)
    messages = []
    widget.comm.publish_msg = lambda msg_type, data=None, metadata=None, buffers=None, **keys: messages.append(data)
    initial = widget.get_state()

    def page():                                   # a subshell thread handling the page's writes
        for index in range(ROUNDS):
            widget.set_state({"layer": "conv1"})  # 8 channels: Python clamps the channel to 7
            widget.set_state({"layer": "conv3", "channel": 11, "steps": 16 + index})

    def worker():                                 # the render thread publishing progress
        for index in range(ROUNDS * 4):
            widget._publish(step=index + 1, status=f"step {index}", losses=[float(index)], steps_per_sec=index / 2)

    def cell():                                   # a cell setting traits from code
        for index in range(ROUNDS * 2):
            widget.learning_rate = 0.01 + index * 1e-4
            widget.notice = f"cell {index}"

    try:
        errors = run_threads(page, worker, cell)
        assert errors == []
        updates = [data["state"] for data in messages if data.get("method") == "update"]
        sent = lambda name: [state[name] for state in updates if name in state]   # noqa: E731
        assert sent("step") == list(range(1, ROUNDS * 4 + 1))                       # every worker publish
        assert sent("learning_rate") == [0.01 + index * 1e-4 for index in range(ROUNDS * 2)]   # every cell write
        assert sent("notice") == [f"cell {index}" for index in range(ROUNDS * 2)]
        assert sent("channel") == [7] * ROUNDS                                # every clamp made on the page's thread
        view, python = page_view(messages, initial), widget.get_state()
        assert (widget.layer, widget.channel, widget.steps) == ("conv3", 11, 16 + ROUNDS - 1)
        assert {name: view.get(name) for name in python} == python
    finally:
        widget.close()
