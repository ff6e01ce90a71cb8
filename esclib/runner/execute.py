"""One papermill run of a chapter notebook into its executed copy (``esc run``).

The source ``notebooks/NN_name.ipynb`` runs with papermill in a kernel of the Python running ``esc``, with the
repository root as working directory, into ``book/chapters/NN_name.ipynb``. Parameters are checked against the
notebook's ``parameters`` cell and the chapter's spec before the kernel starts. A run that fails never lands in the
book: its copy is moved to ``failed/`` beside the executed copies and the failing cell is reported. A successful
copy is post-processed: papermill's injected-parameters cell is tagged ``hide-input`` and a note with the command,
commit, date and wall time is inserted near the top (papermill copies no metadata from the parameters cell, and writes a copy even when a cell fails).
"""

from __future__ import annotations

import ast
import os
import shlex
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import nbformat
import yaml
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from traitlets import default

from esclib.results.environment import git_commit, now
from esclib.results.store import RESULTS_FORCE_ENV, RESULTS_LOG_ENV
from esclib.runner.spec import check_names, check_profile, resolve
from esclib.runner.specs import get_spec

#: tag of the markdown cell this module inserts into every executed copy
RUN_INFO_TAG = "esc-run-info"

#: where executed copies go, relative to the repository root
CHAPTERS_DIR = Path("book") / "chapters"

#: seconds one cell may run before the run fails (``0``: no limit); unset, :data:`CELL_TIMEOUTS` applies
CELL_TIMEOUT_ENV = "ESC_CELL_TIMEOUT"
#: the default limit per cell: a smoke run's cells take seconds to minutes and a quick chapter's longest cell (the
#: mini-AudioSet pre-training) 6-15 minutes on 2 cores, so a cell that runs far longer has hung; paper cells
#: train for hours, so they have none
CELL_TIMEOUTS: dict[str, int | None] = {"smoke": 900, "quick": 2400, "paper": None}


#: glibc's allocator settings for the kernel (unless ``$GLIBC_TUNABLES`` is set already): by default glibc maps every
#: block over 32 MB afresh from the system and unmaps it when freed, so a CPU training step that allocates large
#: activations pays page faults for them at every step (half of a smoke run's time was system time). Keeping freed
#: memory for reuse halved a Cnn14 step on 5-s clips (2.2 -> 1.0 s, batch 4) and took a quarter off the quick mini
#: PANN's (0.23 -> 0.17 s, batch 32) on 2 cores; the peak memory is unchanged (benchmarks/bench_allocator.py).
#: Other C libraries ignore the variable.
KERNEL_TUNABLES = ("glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=68719476736:"
                   "glibc.malloc.top_pad=1073741824")


class ThisPythonKernelManager(AsyncKernelManager):
    """Starts ipykernel from the interpreter running ``esc``, whatever kernelspecs the user has installed.

    Only ipykernel's built-in ``python3`` spec is visible (its argv is ``sys.executable``), so a ``python3``
    kernelspec of another environment in ``~/.local/share/jupyter`` cannot take over (papermill fails with "No such kernel" otherwise).
    Transport encryption is used where the kernel supports it (jupyter_client >= 8.10).
    """

    @default("transport_encryption")
    def _default_transport_encryption(self) -> str:
        return "auto"

    @default("kernel_spec_manager")
    def _default_kernel_spec_manager(self) -> KernelSpecManager:
        return KernelSpecManager(parent=self, kernel_dirs=[])


def literal(text: str) -> Any:
    """A command-line value as Python: a Python literal (``1e-4``, ``[1, 2]``, ``None``), else YAML (``true``,
    ``null``), else the text itself (``1-3``, ``/data/ESC-50``, and a comma-separated list such as ``64,128``, which
    Python would read as a tuple that no notebook parameter takes: the parameter's own parser reads the text). The
    empty text stays ``""`` (an empty list where a list is expected), never ``None`` (the default)."""
    if not text.strip():
        return ""
    try:
        value = ast.literal_eval(text)
        return text if isinstance(value, tuple) else value
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (bool, int, float, type(None), list, dict)) else text


def find_root(start: Path | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` (default: the current one) holding
    ``_config.yml``, else ``start`` itself."""
    start = (start or Path.cwd()).resolve()
    return next((d for d in (start, *start.parents) if (d / "_config.yml").is_file()), start)


def find_notebook(name: str, root: Path) -> Path:
    """The source notebook named ``name``: a path to an .ipynb, or a stem / file name in ``<root>/notebooks``."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    candidate = root / "notebooks" / f"{path.stem}.ipynb"
    if candidate.is_file():
        return candidate
    available = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
    raise ValueError(f"no notebook {name!r}: neither a file nor {candidate}; notebooks: {', '.join(available) or 'none'}")


def notebook_parameters(source: Path) -> list[str]:
    """Names defined by the notebook's ``parameters`` cell (a ValueError if it has none)."""
    nb = nbformat.read(source, as_version=4)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        raise ValueError(f"{source} has no cell tagged 'parameters'; every chapter needs one")
    import papermill

    return list(papermill.inspect_notebook(str(source)))


def check_request(source: Path, profile: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Check a run request before any kernel starts; return the parameters resolved by the chapter's spec
    (``{}`` for a notebook without a spec).

    Every name must be in the notebook's parameters cell and in its spec; every value must pass the spec's checks.
    A parameters cell and a spec that disagree on names is reported as the chapter's own error.
    """
    check_profile(profile)
    declared = notebook_parameters(source)
    check_names(parameters, declared, f"notebook {source.name} (its parameters cell)")
    spec = get_spec(source.stem)
    if spec is None:
        return {}
    stray = [name for name in declared if name not in spec.names]
    if stray:
        raise ValueError(f"{source.name}'s parameters cell defines {stray}, which its spec "
                         f"esclib/runner/specs/ch{source.stem}.py does not; spec parameters: {', '.join(spec.names)}")
    return resolve(spec, profile, **parameters)


def command_line(stem: str, profile: str, parameters: Mapping[str, Any], smoke: bool = False) -> str:
    """The ``esc run`` command that reproduces a run."""
    args = ["esc", "run", stem, "--profile", profile, *(["--smoke"] if smoke else [])]
    for name, value in parameters.items():
        args += ["-p", name, value if isinstance(value, str) else repr(value)]
    return shlex.join(args)


def executed_ok(path: Path) -> bool:
    """Whether ``path`` is a finished executed copy: it exists and papermill recorded no exception."""
    if not path.is_file():
        return False
    nb = nbformat.read(path, as_version=4)
    papermill = nb.metadata.get("papermill", {})
    return "duration" in papermill and not papermill.get("exception")


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


@dataclass
class Execution:
    """The outcome of one notebook run."""

    source: Path
    output: Path
    parameters: dict[str, Any]
    ok: bool
    seconds: float
    error: str = ""
    results: list[str] = field(default_factory=list)


@contextmanager
def smoke_environment(smoke: bool) -> Iterator[None]:
    """``$ESC_SMOKE`` set for the block when ``smoke`` (:mod:`esclib.smoke`), as it was otherwise."""
    from esclib.smoke import SMOKE_ENV

    saved = os.environ.get(SMOKE_ENV)
    os.environ[SMOKE_ENV] = "1" if smoke else "0"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(SMOKE_ENV, None)
        else:
            os.environ[SMOKE_ENV] = saved


@contextmanager
def kernel_environment(commit: str, results_log: Path, force: bool) -> Iterator[None]:
    """Environment variables the kernel inherits: the commit, the results log, whether finished results are
    re-computed, and the allocator's settings (:data:`KERNEL_TUNABLES`)."""
    values = {"ESC_COMMIT": commit, RESULTS_LOG_ENV: str(results_log), RESULTS_FORCE_ENV: "1" if force else "0",
              "PYDEVD_DISABLE_FILE_VALIDATION": "1", "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", KERNEL_TUNABLES)}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cell_timeout(profile: str, smoke: bool = False) -> int | None:
    """Seconds one cell of a run may take (None: no limit): ``$ESC_CELL_TIMEOUT`` when set, else
    :data:`CELL_TIMEOUTS` of the smoke run or of ``profile``."""
    given = os.environ.get(CELL_TIMEOUT_ENV, "").strip()
    if not given:
        return CELL_TIMEOUTS["smoke" if smoke else profile]
    try:
        seconds = int(given)
    except ValueError:
        seconds = -1
    if seconds < 0:
        raise ValueError(f"${CELL_TIMEOUT_ENV} must be a whole number of seconds >= 0 (0: no limit), got {given!r}")
    return seconds or None


def describe_failure(err: BaseException) -> str:
    """The failing cell and its error, as plain text."""
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError, strip_color

    if isinstance(err, CellTimeoutError):
        return (f"{type(err).__name__}: {err}\n(the per-cell limit: set ${CELL_TIMEOUT_ENV} to more seconds, or 0 "
                "for none, when a cell is meant to run this long)")
    if isinstance(err, PapermillExecutionError):
        return (f"cell {err.cell_index} (In [{err.exec_count}]) failed:\n{err.source}\n\n"
                f"{strip_color(chr(10).join(err.traceback))}")
    return f"{type(err).__name__}: {err}"


def _run_info_cell(command: str, seconds: float, commit: str, smoke: bool = False) -> nbformat.NotebookNode:
    text = (f"```{{note}}\nThis page was executed by `{command}` on {now()} from commit `{commit}`; "
            f"wall time {seconds:.1f} s. The run-metadata table below lists the device, seed and package "
            "versions.\n```")
    if smoke:
        text = ("```{warning}\nSMOKE RUN: the paper code path on synthetic data in the real layout and random-weight "
                "checkpoints, a couple of optimiser steps per run. Its numbers mean nothing.\n```\n\n" + text)
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [RUN_INFO_TAG]})


def postprocess(nb: nbformat.NotebookNode, command: str, commit: str, results: list[str],
                smoke: bool = False) -> nbformat.NotebookNode:
    """Tag papermill's injected-parameters cell ``hide-input``; insert (or refresh) the run note after the title
    cell; record the command, commit, wall time (papermill's duration) and results written in ``metadata.esc``."""
    seconds = float(nb.metadata.get("papermill", {}).get("duration") or 0.0)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "hide-input" not in tags:
            tags.append("hide-input")
    nb.cells = [c for c in nb.cells if RUN_INFO_TAG not in c.metadata.get("tags", [])]
    first = nb.cells[0] if nb.cells else None
    at = 1 if first is not None and first.cell_type == "markdown" and first.source.lstrip().startswith("#") else 0
    nb.cells.insert(at, _run_info_cell(command, seconds, commit, smoke))
    nb.metadata["esc"] = {"command": command, "seconds": seconds, "commit": commit, "date": now(),
                          "results": results, "smoke": smoke}
    return nb


def execute(source: Path, output: Path, parameters: Mapping[str, Any], *, profile: str = "quick",
            root: Path | None = None, progress: bool = True, force: bool = False, smoke: bool = False) -> Execution:
    """Run ``source`` with ``parameters`` (plus ``profile``) into ``output``; with ``force`` the notebook's runs
    re-compute their finished results instead of reusing them.

    On success the post-processed copy replaces ``output`` atomically. On failure papermill's copy goes to
    ``<output dir>/failed/<name>`` (an earlier successful ``output`` is left as it was) and the Execution carries
    the failing cell and its error. The kernel runs in ``root`` (default: the repository root); ``smoke`` makes it a
    smoke run (:mod:`esclib.smoke`; the copy is marked as one). While it runs the
    executed copy is locked: a second ``esc run`` of the same copy (from another shell in the same checkout) is
    refused at once, naming the process that holds it, and touches nothing.
    """
    from esclib.locks import LockedError, file_lock

    root = (root or find_root()).resolve()
    lock = output.parent / ".locks" / f"{output.name}.lock"
    try:
        with file_lock(lock, what=f"the executed copy {_relative(output, root)}", wait=False), \
                smoke_environment(smoke):
            return _execute(source, output, parameters, profile=profile, root=root, progress=progress, force=force,
                            smoke=smoke)
    except LockedError as err:
        return Execution(source, output, dict(parameters), False, 0.0, f"not run: {err}")


def _execute(source: Path, output: Path, parameters: Mapping[str, Any], *, profile: str, root: Path,
             progress: bool, force: bool, smoke: bool) -> Execution:
    import papermill

    parameters = {"profile": profile, **{k: v for k, v in parameters.items() if k != "profile"}}
    running = output.parent / ".running" / output.name
    failed = output.parent / "failed" / output.name
    running.parent.mkdir(parents=True, exist_ok=True)
    handle, log_name = tempfile.mkstemp(prefix="esc-results-", suffix=".log")
    os.close(handle)
    log, commit = Path(log_name), git_commit(root)
    start = time.monotonic()
    try:
        timeout = cell_timeout(profile, smoke)
        with kernel_environment(commit, log, force):
            papermill.execute_notebook(
                str(source), str(running), parameters=parameters, kernel_name="python3", cwd=str(root),
                progress_bar=progress, kernel_manager_class=ThisPythonKernelManager, shutdown_kernel="immediate",
                execution_timeout=timeout,
            )
    except Exception as err:  # noqa: BLE001 - any failure (cell error, dead kernel) keeps the copy out of the book
        failed.parent.mkdir(parents=True, exist_ok=True)
        if running.exists():
            os.replace(running, failed)
        return Execution(source, failed, parameters, False, time.monotonic() - start, describe_failure(err))
    finally:
        written = log.read_text().splitlines() if log.exists() else []
        results = [_relative(Path(p), root) for p in dict.fromkeys(written)]
        log.unlink(missing_ok=True)
    given = {k: v for k, v in parameters.items() if k != "profile"}
    nb = postprocess(nbformat.read(running, as_version=4), command_line(source.stem, profile, given, smoke), commit,
                     results, smoke)
    nbformat.write(nb, running)
    os.replace(running, output)
    failed.unlink(missing_ok=True)
    return Execution(source, output, parameters, True, time.monotonic() - start, results=results)
