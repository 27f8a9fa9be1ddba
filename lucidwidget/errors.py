"""Error text for people: the sentence that says what went wrong, without a traceback's scaffolding.

TensorFlow wraps errors raised while it compiles a step in an "in user code:" listing of file paths,
and Keras wraps errors raised inside a layer in "Exception encountered when calling ..." with ANSI
bold codes and the call's arguments. The widget and the command line show `user_message(error)`; the
full exception stays available for debugging (the widget's `last_exception`).
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_RAISED = re.compile(r"^\s*(?:[A-Za-z_][\w.]*\.)?([A-Za-z_]\w*(?:Error|Exception|Warning)): ", re.M)
_KERAS_CALL = re.compile(r"^Exception encountered when calling [^\n]*\n+")
_KERAS_ARGUMENTS = re.compile(r"\n+Arguments received by .*", re.S)
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+.*$')


def user_message(error: BaseException) -> str:
    """The readable part of `error`'s message; types other than ValueError/TypeError are named."""
    text = _ANSI.sub("", str(error))
    kind = type(error).__name__
    if "in user code:" in text:
        raised = list(_RAISED.finditer(text))
        if raised:
            kind, text = raised[-1].group(1), text[raised[-1].end():]
    text = _KERAS_ARGUMENTS.sub("", _KERAS_CALL.sub("", text.strip()))
    lines, skip_code = [], False
    for line in text.splitlines():
        if _FRAME.match(line):
            skip_code = True
            continue
        if skip_code and line.startswith("        "):
            continue
        skip_code = False
        lines.append(line.rstrip())
    text = "\n".join(lines).strip() or kind
    return text if kind in ("ValueError", "TypeError") else f"{kind}: {text}"
