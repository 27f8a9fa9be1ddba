"""Objective expressions: `"block4_conv3:42 - 0.5*block5_conv1:7"` -> `Objective`.

A small tokenizer and recursive-descent parser; user text is never evaluated as Python. Grammar:

```
expression := term (("+" | "-") term)*
term       := unary (("*" | "/") unary)*
unary      := ("-" | "+") unary | atom
atom       := NUMBER | "(" expression ")" | call | target
target     := LAYER [":" INT ["@" INT "," INT]]
call       := NAME "(" [argument ("," argument)*] ")"
argument   := [NAME "="] (["-"] NUMBER | LAYER)
```

- `layer:n` is `channel(layer, n)`; `layer:n@x,y` is `neuron(layer, n, x, y)` (x the column, y the row);
  a bare `layer` is `deepdream(layer)`.
- Numbers: `42`, `0.5`, `.5`, `1e-3`. They scale objectives (`0.5*a:1`, `a:1/2`); `obj * obj` is a
  `TypeError` from the objective algebra.
- Layer names hold letters, digits, `_` and `.`, and `/` between parts (`inner/inner_conv`): a `/`
  followed by a letter or `_` continues a name, any other `/` divides. When the model's layer names
  are known (`parse(text, layers=...)`, as the Renderer, the widget and the command line do), a known
  name is read whole wherever it starts, so `fc6-3:1` or `conv 1:3` name layers `fc6-3` and `conv 1`;
  spaces around an operator split it (`fc6 - 3*x:1`). Quoting always works: `'fc6-3':1`.
- Function names are case-insensitive: `neuron(block4_conv3, 42, x=3, y=4)`, `tv()`, `diversity(l)`,
  `class_logit(predictions, 20)`, `style() + 10*content(block4_conv2)`. See `FUNCTIONS`.

Every number ends up a knob, so texts that differ only in numbers give objectives with equal
signatures: editing a channel or a weight in the widget's expression box never retraces.
"""

from __future__ import annotations

import difflib
import inspect
import re

from lucidwidget.optvis.objectives import library, penalties, reference
from lucidwidget.optvis.objectives.base import Objective


def _caller_image(function):
    """`function` without its `image` argument: in an expression it compares with the caller's image.

    Text never names a file, so `caricature(block4_conv3)` stays unbound until whoever supplies the
    image binds it (`Objective.with_images`); an unbound one raises one sentence when rendered.
    """
    signature = inspect.signature(function)
    visible = signature.replace(parameters=[p for p in signature.parameters.values() if p.name != "image"])

    def call(*args, **kwargs):
        bound = visible.bind(*args, **kwargs)
        return function(*bound.args, **bound.kwargs)

    call.__name__ = function.__name__
    call.__signature__ = visible
    return call


FUNCTIONS = {
    "alignment": library.alignment,
    "alpha_penalty": penalties.alpha_penalty,
    "blur_input_each_step": penalties.blur_input_each_step,
    "caricature": _caller_image(reference.caricature),
    "channel": library.channel,
    "channel_interpolate": library.channel_interpolate,
    "class_logit": library.class_logit,
    "content": _caller_image(reference.content),
    "deepdream": library.deepdream,
    "diversity": library.diversity,
    "l1": penalties.L1,
    "l2": penalties.L2,
    "layer": library.layer,
    "lp": penalties.Lp,
    "neuron": library.neuron,
    "random_direction": library.random_direction,
    "style": _caller_image(reference.style),
    "total_variation": penalties.total_variation,
    "tv": penalties.total_variation,
}
"""Library functions an expression may call, by lower-case name. Objectives taking arrays (`direction`,
`feature_mask`) need Python. `caricature(layer)`, `content(layer)` and `style()` (or `style(layer, ...)`)
compare with the caller's image (slot "image") and style image (slot "style"), which the caller binds
with `Objective.with_images`."""

_NAME = r"[A-Za-z_][\w.]*(?:/[A-Za-z_][\w.]*)*"
"""A name the tokenizer reads without help: letters, digits, `_`, `.`, and `/` between parts."""
_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    rf"|(?P<name>{_NAME})"
    r"|(?P<string>'[^']*'|\"[^\"]*\")"
    r"|(?P<op>[-+*/():@,=])"
)
END = "end"
_NAME_CHAR = re.compile(r"[\w.]")


class _Token:
    __slots__ = ("kind", "text", "pos")

    def __init__(self, kind, text, pos):
        self.kind, self.text, self.pos = kind, text, pos

    def shown(self):
        return "end of expression" if self.kind == END else repr(self.text)


def _error(kind, message, text, pos, detail=""):
    """`kind` exception: the message, the column (1-based), any detail, and the text with a caret."""
    return kind(f"{message} at column {pos + 1} in {text!r}{detail}\n  {text}\n  {' ' * pos}^")


def _known_layer(text, pos, layers):
    """The longest known layer name that starts at `pos` and ends where a name cannot go on."""
    for name in layers:
        end = pos + len(name)
        if text.startswith(name, pos) and not (end < len(text) and _NAME_CHAR.match(text[end])):
            return name
    return None


def tokenize(text, layers=()) -> list:
    """Splits `text` into number, name, layer, string and operator tokens, ending with an end token.

    `layers`: known layer names; one that the plain name rule would cut short (`fc6-3`, `conv 1`) is
    read whole as a layer token.
    """
    unusual = sorted((name for name in layers if not re.fullmatch(_NAME, name)), key=len, reverse=True)
    tokens, pos = [], 0
    while pos < len(text):
        known = _known_layer(text, pos, unusual) if unusual and not text[pos].isspace() else None
        if known is not None:
            tokens.append(_Token("layer", known, pos))
            pos += len(known)
            continue
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(ValueError, f"Unexpected character {text[pos]!r}", text, pos)
        if match.lastgroup != "space":
            tokens.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    tokens.append(_Token(END, "", len(text)))
    return tokens


def _number(token):
    return int(token.text) if token.text.isdigit() else float(token.text)


class _Parser:
    def __init__(self, text, layers=()):
        self.text = text
        self.tokens = tokenize(text, layers)
        self.index = 0

    @property
    def token(self):
        return self.tokens[self.index]

    def advance(self):
        token = self.token
        self.index += 1
        return token

    def accept(self, op):
        if self.token.kind == "op" and self.token.text == op:
            return self.advance()
        return None

    def expect(self, op, what):
        token = self.accept(op)
        if token is None:
            raise self.unexpected(f"; expected {what}")
        return token

    def unexpected(self, hint=""):
        return _error(ValueError, f"Unexpected {self.token.shown()}{hint}", self.text, self.token.pos)

    def parse(self):
        if self.token.kind == END:
            raise _error(ValueError, "Expected an objective such as 'block4_conv3:42'", self.text, 0)
        value = self.expression()
        if self.token.kind != END:
            raise self.unexpected()
        if not isinstance(value, Objective):
            raise _error(ValueError, "Expected an objective, not just a number", self.text, 0)
        return value

    def expression(self):
        value = self.term()
        while self.token.kind == "op" and self.token.text in "+-":
            op = self.advance()
            value = self.combine(op, value, self.term())
        return value

    def term(self):
        value = self.unary()
        while self.token.kind == "op" and self.token.text in "*/":
            op = self.advance()
            value = self.combine(op, value, self.unary())
        return value

    def unary(self):
        sign = self.accept("-") or self.accept("+")
        if sign is None:
            return self.atom()
        value = self.unary()
        return -value if sign.text == "-" else value

    def combine(self, op, left, right):
        """Applies `op` through the objective algebra; its errors gain the operator's position."""
        try:
            if op.text == "+":
                return left + right
            if op.text == "-":
                return left - right
            if op.text == "*":
                return left * right
            return left / right
        except (TypeError, ZeroDivisionError) as err:
            raise _error(type(err), f"Invalid {op.text!r}", self.text, op.pos, f": {err}{self.name_hint(op)}") from None

    def name_hint(self, op):
        """For `fc7-3`: a '-' written inside what may be a layer name the model does not know."""
        index = self.tokens.index(op)
        before, after = self.tokens[index - 1], self.tokens[index + 1]
        if op.text != "-" or before.kind != "name" or before.pos + len(before.text) != op.pos or after.pos != op.pos + 1:
            return ""
        glued = re.match(r"[^\s:]*", self.text[before.pos:]).group()
        return f". If {glued!r} is a layer name, check its spelling or quote it: '{glued}'"

    def atom(self):
        token = self.token
        if token.kind == "number":
            return _number(self.advance())
        if self.accept("("):
            value = self.expression()
            self.expect(")", "')'")
            return value
        if token.kind == "name" and self.tokens[self.index + 1].text == "(":
            return self.call()
        if token.kind in ("name", "string", "layer"):
            return self.target()
        raise self.unexpected("; expected a number, a layer, a function call or '('")

    def layer_name(self):
        token = self.advance()
        return token.text[1:-1] if token.kind == "string" else token.text

    def whole(self, what):
        if self.token.kind != "number" or not self.token.text.isdigit():
            raise self.unexpected(f"; expected {what} (a whole number)")
        return int(self.advance().text)

    def target(self):
        start = self.token.pos
        layer = self.layer_name()
        if not self.accept(":"):
            return library.deepdream(layer)
        channel = self.whole("a channel")
        if not self.accept("@"):
            return self.build(library.channel, (layer, channel), {}, start)
        x = self.whole("x")
        self.expect(",", "',' between x and y")
        y = self.whole("y")
        return self.build(library.neuron, (layer, channel, x, y), {}, start)

    def call(self):
        name_token = self.advance()
        function = FUNCTIONS.get(name_token.text.lower())
        if function is None:
            close = difflib.get_close_matches(name_token.text.lower(), list(FUNCTIONS), n=3)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            detail = f".{hint} Known functions: {', '.join(sorted(FUNCTIONS))}."
            raise _error(ValueError, f"Unknown function {name_token.text!r}", self.text, name_token.pos, detail)
        self.advance()
        args, kwargs = [], {}
        while not self.accept(")"):
            if args or kwargs:
                self.expect(",", "',' or ')'")
            keyword = None
            if self.token.kind == "name" and self.tokens[self.index + 1].text == "=":
                keyword = self.advance().text
                self.advance()
            elif kwargs:
                raise self.unexpected("; positional arguments must come before keyword arguments")
            value = self.argument()
            if keyword is None:
                args.append(value)
            else:
                kwargs[keyword] = value
        return self.build(function, args, kwargs, name_token.pos)

    def argument(self):
        sign = -1 if self.accept("-") else 1
        if self.token.kind == "number":
            return sign * _number(self.advance())
        if sign == 1 and self.token.kind in ("name", "string", "layer"):
            return self.layer_name()
        raise self.unexpected("; expected a number or a layer name")

    def build(self, function, args, kwargs, pos):
        """Calls a library function; bad arguments become a `ValueError` pointing at the call."""
        try:
            inspect.signature(function).bind(*args, **kwargs)
            return function(*args, **kwargs)
        except (TypeError, ValueError) as err:
            raise _error(ValueError, f"Invalid call of {function.__name__}", self.text, pos, f": {err}") from None


def parse(text, layers=()) -> Objective:
    """Parses an objective expression (see the module docstring for the grammar).

    Args:
        text: e.g. `"block4_conv3:42 - 0.5*block5_conv1:7"` or `"neuron(block4_conv3, 42) - 1e-3*tv()"`.
        layers: the model's layer names, so names with `-`, spaces or other characters need no quotes.
            Defaults to none known.

    Raises:
        ValueError: for a syntax error or an invalid call, pointing at the column with a caret.
        TypeError: for combinations the algebra rejects, such as `a:1 * b:2`.
    """
    if not isinstance(text, str):
        raise TypeError(f"Expected an expression string. Received: text={text!r}")
    return _Parser(text, layers).parse()


def as_objective(spec, layers=()) -> Objective:
    """Turns a user's objective specification into an `Objective`.

    Args:
        spec: an `Objective` (returned as is), `"layer:channel"` (a `channel` objective), or any
            expression `parse` accepts, e.g. `"block4_conv3:42 - 0.5*block5_conv1:7"`.
        layers: the model's layer names, so that names with `-`, spaces or other characters need
            no quotes in `spec`. Defaults to none known.
    """
    if isinstance(spec, Objective):
        return spec
    if isinstance(spec, str):
        return parse(spec, layers)
    raise TypeError(
        "Expected an Objective, a 'layer:channel' string or an objective expression such as "
        f"'block4_conv3:42 - 0.5*block5_conv1:7'. Received: spec={spec!r}"
    )
