"""`lucidwidget lab`: copy the notebooks into a working folder and open JupyterLab on the quickstart."""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import sys
from pathlib import Path

from lucidwidget.cli import common

WORK_DIR = "lucidwidget-notebooks"
"""Folder (in the current directory) that `lucidwidget lab` copies the notebooks into and opens."""

QUICKSTART = "quickstart.ipynb"

_PACKAGE = Path(__file__).resolve().parents[1]

OFFLINE_LAB_OPTIONS = [
    "--LabApp.news_url=None",
    "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
]
"""JupyterLab options that keep it from asking the network for news and updates."""


def shipped_notebooks() -> Path:
    """The notebooks folder: shipped in the wheel as `lucidwidget/notebooks/`, else the repository's."""
    shipped = _PACKAGE / "notebooks"
    return shipped if shipped.is_dir() else _PACKAGE.parent / "notebooks"


def copy_notebooks(source, folder) -> list[Path]:
    """Copies the `.ipynb` files of `source` into `folder` (created if needed), never over an existing file.

    Returns:
        The files copied.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    copied = []
    for notebook in sorted(Path(source).glob("*.ipynb")):
        target = folder / notebook.name
        if not target.exists():
            shutil.copyfile(notebook, target)
            copied.append(target)
    return copied


def lab_command(notebook, port=None, browser=True, extra=(), as_root=None) -> list[str]:
    """The argv that starts JupyterLab with this Python, serving the notebook's folder and opening it.

    Args:
        notebook: the notebook to open; its folder becomes the server's root (and the kernel's directory).
        port: port for the server. Defaults to None (Jupyter's choice).
        browser: open a browser. Defaults to True.
        extra: further Jupyter arguments, passed last so they override these.
        as_root: add `--allow-root` (Jupyter refuses root without it). Defaults to None: when this
            process runs as root.
    """
    notebook = Path(notebook).resolve()
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebook.parent}",
            f"--LabApp.default_url=/lab/tree/{notebook.name}", *OFFLINE_LAB_OPTIONS]
    if port is not None:
        argv.append(f"--port={port}")
    if not browser:
        argv.append("--no-browser")
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if as_root and "--allow-root" not in extra:
        argv.append("--allow-root")
    return argv + list(extra)


def has_jupyterlab() -> bool:
    return importlib.util.find_spec("jupyterlab") is not None


def lab_notebook(args) -> Path:
    """The notebook `lab` opens: `--notebook` if it is a file, else that name (or the quickstart) among the
    notebooks copied into `--dir`."""
    if args.notebook is not None and Path(args.notebook).is_file():
        return Path(args.notebook)
    source = shipped_notebooks()
    copied = copy_notebooks(source, args.dir)
    if copied:
        print(f"copied {len(copied)} notebooks into {args.dir}")
    name = args.notebook or QUICKSTART
    notebook = Path(args.dir) / name
    if not notebook.is_file():
        names = sorted(path.name for path in Path(args.dir).glob("*.ipynb"))
        raise ValueError(f"No notebook {name!r} in {str(args.dir)!r}.{common.did_you_mean(name, names)} "
                         f"Expected a notebook file or one of {names}. Received: notebook={args.notebook!r}")
    return notebook


def run(args):
    """Replaces this process with JupyterLab on the chosen notebook."""
    if not has_jupyterlab():
        raise ValueError(f"JupyterLab is not installed for this Python; reinstall lucidwidget (pip install "
                         f"lucidwidget), which depends on it. Received: python={sys.executable!r}")
    notebook = lab_notebook(args)
    argv = lab_command(notebook, args.port, browser=not args.no_browser, extra=args.jupyter_args)
    if args.dry_run:
        print(shlex.join(argv))
        return
    sys.stdout.flush()
    os.execv(argv[0], argv)


def add_parser(commands):
    """Adds `lab` to the subcommands; arguments it does not know go to Jupyter (see `main`)."""
    lab = commands.add_parser(
        "lab", help="open JupyterLab on the quickstart notebook",
        allow_abbrev=False,
        description=(f"Copy the notebooks into a working folder (./{WORK_DIR} by default; files already "
                     f"there are kept) and open JupyterLab on {QUICKSTART} there. Arguments not listed "
                     "below go to Jupyter, e.g. --ServerApp.ip=0.0.0.0. As root, --allow-root is added."),
    )
    lab.add_argument("--notebook", default=None, metavar="NAME_OR_PATH",
                     help=f"open this notebook file, or this notebook of the working folder (default: {QUICKSTART})")
    lab.add_argument("--dir", default=WORK_DIR, metavar="FOLDER",
                     help="working folder the notebooks are copied into" + common.DEFAULT)
    lab.add_argument("--port", type=common.positive_int, default=None, help="port for the Jupyter server")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--dry-run", action="store_true", help="copy the notebooks and print the Jupyter command only")
    lab.set_defaults(run=run, passes_unknown=True)
