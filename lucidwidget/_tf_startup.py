"""Imports TensorFlow without its start-up log lines, unless they say something is wrong.

TensorFlow 2.2x prints a few lines while it loads, before its C++ logging reads `TF_CPP_MIN_LOG_LEVEL`
(absl writes everything to stderr until it is initialised): the oneDNN notice, "Could not find cuda
drivers" (twice), and on a machine without a GPU driver an `E0000 ... failed call to cuInit` error when
the devices are listed. They reach a notebook as a pink stderr block and every CLI command's output.

`import_backend` does this when TensorFlow is Keras' backend (JAX and PyTorch need nothing), before
Keras itself would import it. `import_tensorflow` imports TensorFlow and lists its devices with file descriptor 2 redirected to a
temporary file, then writes back every captured line that `TF_CPP_MIN_LOG_LEVEL` would have hidden had
it been read in time, except the cuInit error when TensorFlow also found no driver (the expected result on
a CPU-only machine). Anything else, an error included, still prints. `lucidwidget/__init__.py` sets the
level to 2 (errors only) unless the user chose one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile

LOG_LINE = re.compile(r"^([IWEF])\d{4} ")
"""absl's line prefix: severity letter, then the month and day."""

SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
"""absl severities in the numbering of TF_CPP_MIN_LOG_LEVEL."""

ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"

DEFAULT_KERAS_BACKEND = "tensorflow"
"""The backend Keras uses when neither `KERAS_BACKEND` nor its `keras.json` names one."""

NO_DRIVER = "Could not find cuda drivers"
NO_DRIVER_CUINIT = "failed call to cuInit"
"""With no driver the cuInit call must fail; TensorFlow logs that as an error and runs on the CPU."""


def log_level() -> int:
    """The level in `TF_CPP_MIN_LOG_LEVEL` (0 shows everything, 2 errors only); 0 when unset or unreadable."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def kept_lines(text, level) -> list[str]:
    """The lines of captured start-up output that a user should see at `level`."""
    lines = text.splitlines(keepends=True)
    no_driver = any(NO_DRIVER in line for line in lines)
    kept = []
    for line in lines:
        match = LOG_LINE.match(line)
        if match and SEVERITY[match.group(1)] < level:
            continue
        if level >= SEVERITY["W"] and line.strip() == ABSL_NOTICE:
            continue
        if level >= SEVERITY["W"] and no_driver and NO_DRIVER_CUINIT in line:
            continue
        kept.append(line)
    return kept


@contextlib.contextmanager
def _filtered_stderr(level):
    """Redirects file descriptor 2 to a temporary file; on exit writes back `kept_lines` to sys.stderr."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (e.g. a windowed process): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        _flush(sys.stderr)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush(sys.stderr)
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = kept_lines(capture.read().decode(errors="replace"), level)
            if kept and sys.stderr is not None:
                sys.stderr.write("".join(kept))
                _flush(sys.stderr)


def _flush(stream):
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.flush()


def import_tensorflow():
    """Imports TensorFlow (and lists its devices) once, showing only the start-up lines that matter."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    level = log_level()
    if level < SEVERITY["W"]:
        import tensorflow

        return tensorflow
    with _filtered_stderr(level):
        import tensorflow

        tensorflow.config.list_physical_devices()
    return tensorflow


def keras_backend() -> str:
    """The backend Keras runs on, read the way Keras reads it but without importing Keras (which would
    import TensorFlow): `KERAS_BACKEND`, else the `backend` of `$KERAS_HOME/keras.json` (by default
    `~/.keras`, or `/tmp/.keras` when the home directory is not writable), else TensorFlow."""
    if "keras" in sys.modules:
        return sys.modules["keras"].backend.backend()
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    home = os.path.expanduser("~")
    keras_dir = os.environ.get("KERAS_HOME") or os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(os.path.expanduser(keras_dir), "keras.json")) as file:
            return json.load(file).get("backend", DEFAULT_KERAS_BACKEND)
    except (OSError, ValueError, AttributeError):
        return DEFAULT_KERAS_BACKEND


def import_backend():
    """Imports TensorFlow with `import_tensorflow` when it is Keras' backend; other backends need nothing."""
    if keras_backend() == "tensorflow":
        import_tensorflow()
