"""The front end's ES modules as the one module text anywidget serves.

anywidget hands `_esm` to the page as the text of a single module, so a module in `js/` cannot import
its siblings when the page runs it. The front end keeps one concern per file all the same, as plain ES
modules that take what they use from a sibling with one line each, `import { a, b } from "./name.js";`.
`compose` inlines them into the entry module: every module once, each before the first module that
imports it (depth first), without its import lines and, except for the entry, with `export` dropped from
its declarations (`export default` belongs to the entry alone). Names are kept as written, so top-level
names must be unique across the files; `compose` raises if two files declare the same one.
"""

from __future__ import annotations

import pathlib
import re

IMPORT = re.compile(r'^import \{[^}]*\} from "\./([\w-]+\.js)";\n', re.M)
"""A sibling import, the only kind of import the front end's modules use."""

ANY_IMPORT = re.compile(r"^import\b.*$", re.M)
EXPORT = re.compile(r"^export (?=(?:async )?function|const |let |class )", re.M)
TOP_LEVEL = re.compile(r"^(?:export )?(?:async )?(?:function\*? *|const |let |class )([A-Za-z_$][\w$]*)", re.M)


def compose(entry) -> str:
    """The entry module with its sibling imports inlined (see the module docstring).

    Args:
        entry: path of the entry module, e.g. `js/widget.js`; siblings are looked up in its folder.

    Raises:
        ValueError: an import of another form, an `export default` outside the entry, or a top-level
            name declared in two files.
    """
    entry = pathlib.Path(entry)
    order, seen = [], set()

    def visit(path):
        if path.name in seen:
            return
        seen.add(path.name)
        text = path.read_text(encoding="utf-8")
        for name in IMPORT.findall(text):
            visit(path.parent / name)
        order.append((path, IMPORT.sub("", text)))

    visit(entry)
    declared = {}
    parts = []
    for path, text in order:
        stray = ANY_IMPORT.search(text)
        if stray:
            raise ValueError(f"Expected only `import {{ ... }} from \"./sibling.js\";` lines in {path.name}. "
                             f"Received: {stray.group(0)!r}")
        if path != entry:
            if "export default" in text:
                raise ValueError(f"Only the entry module may have `export default`. Received: {path.name}")
            text = EXPORT.sub("", text)
        for name in TOP_LEVEL.findall(text):
            if name in declared:
                raise ValueError(f"Top-level name {name!r} is declared in both {declared[name]} and {path.name}; "
                                 f"composed modules share one scope. Received: {path.name}")
            declared[name] = path.name
        parts.append(f"// ---- {path.name} ----\n{text}")
    return "\n".join(parts)
