"""`lucidwidget lab`: copy the notebooks into a working folder and open JupyterLab on the quickstart.

The copies are signed as trusted (what `jupyter trust` does: they are this package's own notebooks), and
JupyterLab gets two defaults of its settings from `LAB_CONFIG`: no prompt about Jupyter news, and comm
messages on the kernel's main shell rather than on subshells. Defaults only: what the user picks in
JupyterLab's Settings editor still wins, and nothing is written into their settings.
"""

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

LAB_CONFIG = _PACKAGE / "cli" / "jupyter_config"
"""A Jupyter config directory whose `labconfig/default_setting_overrides.json` changes two defaults of
JupyterLab's settings (JupyterLab reads that file in every directory of the Jupyter config path):
- "Fetch official Jupyter news": Never, instead of a toast asking about it on first start;
- "Kernel Comms over subshells": Disabled. With it, comm handlers of every widget run on a subshell
  thread while a cell runs, and ipykernel 7.4 can send a reloaded page's messages to a subshell that no
  longer exists (`lucidwidget.widget.sync`). LucidWidget works either way; it renders on its own thread,
  so it gains nothing from subshells, and the notebooks' other widgets keep the kernel's usual model."""

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


def lab_environment(environ=None) -> dict:
    """The environment JupyterLab runs in: `environ` (default: this process's) with `LAB_CONFIG` added
    last to `JUPYTER_CONFIG_PATH`, so the user's own entries there keep precedence."""
    environ = dict(os.environ if environ is None else environ)
    paths = [path for path in environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if path]
    environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join([*paths, str(LAB_CONFIG)])
    return environ


def trust(notebooks):
    """Signs notebooks as trusted in the user's Jupyter data directory, as `jupyter trust` does, so that
    JupyterLab shows their outputs without asking and logs no "is not trusted"."""
    import nbformat
    from jupyter_core.paths import jupyter_data_dir
    from nbformat.sign import NotebookNotary

    # The data dir is given so that the notary does not start a JupyterApp (and its logging) to find it.
    data_dir = Path(jupyter_data_dir())
    data_dir.mkdir(parents=True, exist_ok=True)
    with NotebookNotary(data_dir=str(data_dir)) as notary:
        for path in notebooks:
            notary.sign(nbformat.read(path, as_version=nbformat.NO_CONVERT))


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
        trust(copied)
        print(f"copied {len(copied)} notebooks into {args.dir}")
    name = args.notebook or QUICKSTART
    notebook = Path(args.dir) / name
    if not notebook.is_file():
        names = sorted(path.name for path in Path(args.dir).glob("*.ipynb"))
        raise ValueError(f"No notebook {name!r} in {str(args.dir)!r}.{common.did_you_mean(name, names)} "
                         f"Expected a notebook file or one of {names}. Received: notebook={args.notebook!r}")
    return notebook


def run(args):
    """Replaces this process with JupyterLab on the chosen notebook (in `lab_environment()`)."""
    if not has_jupyterlab():
        raise ValueError(f"JupyterLab is not installed for this Python; reinstall lucidwidget (pip install "
                         f"lucidwidget), which depends on it. Received: python={sys.executable!r}")
    notebook = lab_notebook(args)
    argv = lab_command(notebook, args.port, browser=not args.no_browser, extra=args.jupyter_args)
    environ = lab_environment()
    if args.dry_run:
        print(f"JUPYTER_CONFIG_PATH={shlex.quote(environ['JUPYTER_CONFIG_PATH'])} {shlex.join(argv)}")
        return
    sys.stdout.flush()
    os.execve(argv[0], argv, environ)


def add_parser(commands):
    """Adds `lab` to the subcommands; arguments it does not know go to Jupyter (see `main`)."""
    lab = commands.add_parser(
        "lab", help="open JupyterLab on the quickstart notebook",
        allow_abbrev=False,
        description=(f"Copy the notebooks into a working folder (./{WORK_DIR} by default; files already "
                     f"there are kept; copies are marked trusted) and open JupyterLab on {QUICKSTART} there, "
                     "without the news prompt and with widget messages on the kernel's main shell (defaults "
                     "that JupyterLab's Settings editor can change). Arguments not listed below go to "
                     "Jupyter, e.g. --ServerApp.ip=0.0.0.0. As root, --allow-root is added."),
    )
    lab.add_argument("--notebook", default=None, metavar="NAME_OR_PATH",
                     help=f"open this notebook file, or this notebook of the working folder (default: {QUICKSTART})")
    lab.add_argument("--dir", default=WORK_DIR, metavar="FOLDER",
                     help="working folder the notebooks are copied into" + common.DEFAULT)
    lab.add_argument("--port", type=common.positive_int, default=None, help="port for the Jupyter server")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--dry-run", action="store_true", help="copy the notebooks and print the Jupyter command only")
    lab.set_defaults(run=run, passes_unknown=True)
