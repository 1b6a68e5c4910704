"""Run the student notebooks in a real JupyterLab and drive them with Chromium through Playwright.

The browser tests and `bench/widgets.py` share this harness:

- `prepare_release_copy` copies course/release/cnn_rnn into a folder and fills every answer cell
  with the model answer of the source notebook, so that all cells run as in a finished notebook;
- `lab_server` starts JupyterLab on 127.0.0.1 with a random token and isolated settings, and
  stops it and its kernels by process id at the end;
- `chromium` starts /usr/bin/chromium (Debian's `chromium` package) through Playwright, because
  `playwright install` cannot download browsers on the course machines;
- `open_notebook`, `run_all_cells` and the widget helpers do what a student does in the page.

Nothing here imports Playwright at module level, so a caller can report a missing Playwright with
the install command (`missing_browser_dependency`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import psutil

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
SOURCE_ASSIGNMENT = REPOSITORY_ROOT / "course" / "source" / "cnn_rnn"
RELEASE_ASSIGNMENT = REPOSITORY_ROOT / "course" / "release" / "cnn_rnn"

CHROMIUM_EXECUTABLE = Path("/usr/bin/chromium")
INSTALL_COMMAND = "apt-get install chromium; pip install playwright==1.65.2"

# headless=True makes Playwright add --headless. Playwright rejects --user-data-dir in args, so the
# fresh profile folder is the first argument of launch_persistent_context instead. The last three
# switches stop Chromium's own connections to Google services (component updates, sync and other
# background requests), which only fail on a machine without internet access.
CHROMIUM_ARGUMENTS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}

SERVER_START_TIMEOUT_SECONDS = 60
SERVER_STOP_TIMEOUT_SECONDS = 20
# Opening a notebook and starting its kernel took 4 to 6 s on a 2-core machine (Intel Xeon, shared
# with other jobs). Run All Cells of conv_pool.ipynb took 70 to 95 s there, most of it in the
# training cell. The limits leave room for a slower CI runner.
NOTEBOOK_OPEN_TIMEOUT_MS = 60_000
RUN_ALL_TIMEOUT_MS = 300_000
WIDGET_UPDATE_TIMEOUT_MS = 15_000

SOLUTION_MARKER_LINE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
# ipywidgets 8 shows this text for an output whose widget model is missing, and puts an element of
# this class in place of a view that raised while it rendered, such as one child of an explorer.
MISSING_MODEL_TEXT = "Error displaying widget"
ERROR_VIEW_CLASS = "jupyter-widgets-error-widget"


def missing_browser_dependency() -> str | None:
    """Return why the browser tests cannot run here (Chromium or Playwright missing), or None."""
    if not CHROMIUM_EXECUTABLE.is_file():
        return f"Chromium is not installed at {CHROMIUM_EXECUTABLE}"
    try:
        import playwright.sync_api  # noqa: F401, PLC0415
    except ImportError as err:
        return f"the Python package playwright cannot be imported ({type(err).__name__}: {err})"
    return None


# Notebooks with model answers


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_code_answer(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and bool(cell.metadata.get("nbgrader", {}).get("solution"))


def model_answers(source_notebook: Path) -> dict[str, str]:
    """Return the code answer cells of a source notebook by grade id, without the solution marker lines."""
    notebook = nbformat.read(os.fspath(source_notebook), as_version=4)
    answer_cells = [cell for cell in notebook.cells if is_code_answer(cell)]
    return {grade_id(cell): SOLUTION_MARKER_LINE.sub("", cell.source) for cell in answer_cells}


def fill_answers(release_notebook: Path, source_notebook: Path) -> None:
    """Replace the stub of every code answer cell of a release notebook with the source's model answer.

    Raises ValueError when the two notebooks do not have the same code answer cells, which means that
    the release is out of date (`make release` regenerates it).
    """
    answers = model_answers(source_notebook)
    notebook = nbformat.read(os.fspath(release_notebook), as_version=4)

    answer_cells = [cell for cell in notebook.cells if is_code_answer(cell)]
    release_ids = {grade_id(cell) for cell in answer_cells}
    if release_ids != set(answers):
        raise ValueError(
            f"{release_notebook.name}: the release has answer cells {sorted(release_ids)} but the source has "
            f"{sorted(answers)}. Run `make release` to regenerate course/release/."
        )

    for cell in answer_cells:
        cell.source = answers[grade_id(cell)]
    nbformat.write(notebook, os.fspath(release_notebook))


def prepare_release_copy(target: Path) -> Path:
    """Copy the release of cnn_rnn to `target` and fill its notebooks' answer cells; return `target`."""
    shutil.copytree(RELEASE_ASSIGNMENT, target)
    for notebook_path in sorted(target.glob("*.ipynb")):
        fill_answers(notebook_path, SOURCE_ASSIGNMENT / notebook_path.name)
    return target


def notebooks_with_widgets(folder: Path) -> list[str]:
    """Return the names of the notebooks in `folder` that import coursekit.widgets, sorted."""
    notebooks = sorted(folder.glob("*.ipynb"))
    return [path.name for path in notebooks if "coursekit.widgets" in path.read_text(encoding="utf-8")]


# JupyterLab server


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: its base URL (http://127.0.0.1:port/), token and process."""

    base_url: str
    token: str
    process: subprocess.Popen
    root_dir: Path
    log_path: Path

    def notebook_url(self, notebook_name: str) -> str:
        return f"{self.base_url}lab/tree/{notebook_name}?token={self.token}"

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that no process listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _lab_settings(settings_dir: Path) -> None:
    """Write JupyterLab user settings that keep the run quiet and every cell in the page.

    Windowing "none" keeps the output of every cell in the DOM, so the widgets at the end of a long
    notebook can be found without scrolling first. The news and update checks are off, so the page
    contacts nothing but this server.
    """
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
    }
    for relative_path, values in settings.items():
        path = settings_dir / relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")


def _wait_until_responding(server: LabServer, timeout_seconds: float) -> None:
    """Poll the server's /api/status until it responds with 200, the process exits, or the time is up."""
    status_url = f"{server.base_url}api/status"
    request = urllib.request.Request(status_url, headers={"Authorization": f"token {server.token}"})
    deadline = time.monotonic() + timeout_seconds

    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {server.process.returncode} before it responded. Its log ends with:\n"
                f"{server.log_tail()}"
            )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)

    raise TimeoutError(
        f"JupyterLab did not respond at {status_url} within {timeout_seconds} s. "
        f"Its log ends with:\n{server.log_tail()}"
    )


def _stop_process_tree(process: subprocess.Popen) -> None:
    """Stop a server by its process id, then any of its child processes (kernels) that outlive it."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []

    # SIGTERM lets jupyter_server shut its kernels down itself.
    process.terminate()
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()

    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(children, timeout=5)
    for child in alive:
        child.kill()


@contextmanager
def lab_server(root_dir: Path) -> Iterator[LabServer]:
    """Start JupyterLab on `root_dir` on a free port of 127.0.0.1 and yield it once it responds.

    The Jupyter configuration, data, runtime and settings folders are temporary, so the user's
    own settings, kernels and extensions' state do not change the run.
    """
    with tempfile.TemporaryDirectory(prefix="cnnrnn-lab-") as scratch:
        scratch_path = Path(scratch)
        settings_dir = scratch_path / "lab-settings"
        _lab_settings(settings_dir)
        environment = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(scratch_path / "config"),
            "JUPYTER_DATA_DIR": str(scratch_path / "data"),
            "JUPYTER_RUNTIME_DIR": str(scratch_path / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
            "JUPYTERLAB_WORKSPACES_DIR": str(scratch_path / "workspaces"),
        }
        # The widget cells of the notebooks only run outside nbgrader.
        environment.pop("NBGRADER_EXECUTION", None)

        port = free_loopback_port()
        token = secrets.token_hex(24)
        command = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root_dir}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ]  # fmt: skip
        if os.geteuid() == 0:
            command.append("--allow-root")

        log_path = scratch_path / "jupyterlab.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, cwd=root_dir)
        server = LabServer(f"http://127.0.0.1:{port}/", token, process, root_dir, log_path)
        try:
            _wait_until_responding(server, SERVER_START_TIMEOUT_SECONDS)
            yield server
        finally:
            _stop_process_tree(process)


# Chromium


@contextmanager
def chromium() -> Iterator[Any]:
    """Yield a Playwright BrowserContext of a headless /usr/bin/chromium with a fresh profile folder.

    Open pages with context.new_page(). Chromium paints a page that is not in front only now and
    then, so call page.bring_to_front() before screenshots and timed interactions.
    """
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="cnnrnn-chromium-") as profile_dir, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile_dir,
            executable_path=str(CHROMIUM_EXECUTABLE),
            headless=True,
            args=CHROMIUM_ARGUMENTS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


# What a student does in the page


def open_notebook(page: Any, server: LabServer, notebook_name: str) -> None:
    """Open a notebook in JupyterLab and wait until its kernel has started and is idle."""
    page.goto(server.notebook_url(notebook_name))
    wait_for_idle_kernel(page, NOTEBOOK_OPEN_TIMEOUT_MS)


def wait_for_idle_kernel(page: Any, timeout_ms: float) -> None:
    """Wait until the notebook toolbar names a kernel and its execution indicator shows idle.

    The indicator also shows idle for a moment before the session exists, while the toolbar still
    shows "No Kernel". Cells run in that moment go to a kernel that is replaced right after.
    """
    page.wait_for_function(
        """() => {
            const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
            const kernelName = panel && panel.querySelector('.jp-Toolbar-kernelName');
            const indicator = panel && panel.querySelector('.jp-Notebook-ExecutionIndicator');
            return kernelName !== null && indicator !== null
                && kernelName.textContent.trim() !== '' && kernelName.textContent.trim() !== 'No Kernel'
                && indicator.dataset.status === 'idle';
        }""",
        timeout=timeout_ms,
    )


def start_run_all(page: Any) -> None:
    """Click Run > Run All Cells in the menu bar."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator("#jp-mainmenu-run .lm-Menu-item", has_text=re.compile(r"^Run All Cells")).click()


def wait_for_run_all(page: Any, timeout_ms: float = RUN_ALL_TIMEOUT_MS) -> None:
    """Wait until Run All Cells has finished or stopped at an error, and the kernel is idle.

    A queued or running cell shows "[*]" in its prompt. After a run the last code cell shows a
    number, unless a cell raised an error. JupyterLab then clears the prompts of the cells after
    that one, and the error is an output on stderr.
    """
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
            const stderr = document.querySelector(
                ".jp-Notebook .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']");
            return prompts.length > 0
                && prompts.every(prompt => !prompt.textContent.includes('*'))
                && (/\\[\\d+\\]/.test(prompts[prompts.length - 1].textContent) || stderr !== null);
        }""",
        timeout=timeout_ms,
    )
    wait_for_idle_kernel(page, timeout_ms)


def run_all_cells(page: Any, timeout_ms: float = RUN_ALL_TIMEOUT_MS) -> None:
    """Run every cell through the menu Run > Run All Cells and wait until all have run."""
    start_run_all(page)
    wait_for_run_all(page, timeout_ms)


def explorer(page: Any, figure_class: str) -> Any:
    """Return the locator of the explorer (class cnnrnn-explorer) whose figure <img> has figure_class."""
    return page.locator(f".cnnrnn-explorer:has(img.{figure_class})")


def figure(explorer_locator: Any, figure_class: str) -> Any:
    """Return the locator of an explorer's figure, the <img> of its ipywidgets Image."""
    return explorer_locator.locator(f"img.{figure_class}")


def slider_handle(explorer_locator: Any, control: str) -> Any:
    """Return the handle of the slider whose control name is `control` (CSS class cnnrnn-control-<control>)."""
    return explorer_locator.locator(f".cnnrnn-control-{control} .noUi-handle")


def move_slider(explorer_locator: Any, control: str, steps: int) -> None:
    """Move a slider by `steps` (negative: to the left) with the arrow keys, as a keyboard user does.

    Each key press changes the value by the slider's step and sends one change to the kernel,
    because the explorers' sliders use continuous_update=False.
    """
    handle = slider_handle(explorer_locator, control)
    handle.focus()
    key = "ArrowRight" if steps > 0 else "ArrowLeft"
    for _ in range(abs(steps)):
        handle.press(key)


def widget_errors(page: Any) -> list[str]:
    """Return one description per widget that failed to display, or an empty list.

    A view that raised while it rendered becomes an ipywidgets error view, which shows an icon
    until a click reveals the error and its stack. The first two lines, which name the view and
    the JavaScript error, are returned.
    """
    missing_models = page.get_by_text(MISSING_MODEL_TEXT).all_inner_texts()
    failed_views = []
    for error_view in page.locator(f".{ERROR_VIEW_CLASS}").element_handles():
        if "icon-error" in (error_view.get_attribute("class") or ""):
            error_view.click()
        lines = [line for line in error_view.inner_text().splitlines() if not line.startswith("[Open Browser Console")]
        failed_views.append("\n".join(lines[:2]))
    return missing_models + failed_views


def stderr_outputs(page: Any) -> list[str]:
    """Return the text of every output on stderr, which includes tracebacks, in the notebook."""
    return page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
