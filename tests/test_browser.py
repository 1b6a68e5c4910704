"""The released notebooks run in JupyterLab 4, and their explorers respond to a student's controls in Chromium.

A module fixture copies course/release/cnn_rnn with the model answers filled in, starts JupyterLab
on it, opens both notebooks in Chromium and runs all their cells through Run > Run All Cells (both
at once, because the training cells take most of the time). The tests then move sliders, type in
the text box and pick from drop-downs, and check that the figure (the <img> of the explorer)
changes, that the status label shows the new output-size formula or the message for an invalid
sequence, and that no widget failed to render. They save a screenshot of each explorer in
docs/img/ when UPDATE_SCREENSHOTS=1 is set (`make screenshots`).

The tests need /usr/bin/chromium (Debian package chromium) and the Python package playwright. They
skip without them, except in CI, where they fail. tests/browser.py is the harness.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import nbformat
import pytest

import browser
from conftest import REPOSITORY_ROOT, require_module, skip_or_fail_missing

# The README shows these screenshots. A normal run writes them to a temporary folder, so that `make test`
# leaves the checkout clean; `make screenshots` (UPDATE_SCREENSHOTS=1) rewrites the committed ones.
if os.environ.get("UPDATE_SCREENSHOTS") == "1":
    SCREENSHOT_DIR = REPOSITORY_ROOT / "docs" / "img"
else:
    SCREENSHOT_DIR = Path(tempfile.gettempdir()) / "cnnrnn-screenshots"
NOTEBOOKS = ("conv_pool.ipynb", "rnn_lstm.ipynb")

FEATURE_MAPS = "cnnrnn-feature-maps"
RECEPTIVE_FIELD = "cnnrnn-receptive-field"
GATES = "cnnrnn-gates"

# The whole module took 80 to 110 s on a 2-core machine, most of it in the training cell of
# conv_pool.ipynb. The limit stops a hung browser or kernel, and it covers the fixture's setup.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def playwright_api() -> ModuleType:
    """playwright.sync_api, or a skip (a failure in CI) with the install command when it or Chromium is missing."""
    api = require_module("playwright.sync_api", browser.INSTALL_COMMAND)
    if not browser.CHROMIUM_EXECUTABLE.is_file():
        skip_or_fail_missing("Chromium", browser.INSTALL_COMMAND, reason=f"{browser.CHROMIUM_EXECUTABLE} not found")
    return api


@pytest.fixture(scope="module")
def expect(playwright_api: ModuleType) -> Any:
    """Playwright's expect, whose assertions wait for their condition up to a timeout."""
    playwright_api.expect.set_options(timeout=browser.WIDGET_UPDATE_TIMEOUT_MS)
    return playwright_api.expect


@pytest.fixture(scope="module")
def pages(playwright_api: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Pages of both notebooks after Run All Cells, in one JupyterLab and one Chromium, by notebook name."""
    root = browser.prepare_release_copy(tmp_path_factory.mktemp("lab") / "cnn_rnn")
    without_widgets = sorted(set(NOTEBOOKS) - set(browser.notebooks_with_widgets(root)))
    assert not without_widgets, (
        f"the release notebooks {without_widgets} display no explorer from coursekit.widgets. "
        "Add the widget cells to course/source/cnn_rnn/ and run `make release`."
    )

    with browser.lab_server(root) as server, browser.chromium() as context:
        opened = {}
        for name in NOTEBOOKS:
            page = context.new_page()
            browser.open_notebook(page, server, name)
            browser.start_run_all(page)
            opened[name] = page
        for page in opened.values():
            browser.wait_for_run_all(page)
        yield opened


def front_page(pages: dict[str, Any], notebook: str) -> Any:
    """Return a notebook's page brought to the front.

    Chromium paints a page that is not in front only now and then: an element screenshot of one
    took 5 s instead of 0.2 s.
    """
    page = pages[notebook]
    page.bring_to_front()
    return page


def save_screenshot(explorer: Any, file_name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    explorer.screenshot(path=str(SCREENSHOT_DIR / file_name))


def check_no_widget_errors(page: Any) -> None:
    errors = browser.widget_errors(page)
    assert errors == [], "widgets failed to display:\n" + "\n\n".join(errors)


def check_changes_figure(expect: Any, explorer: Any, figure_class: str, old_source: str) -> str:
    """Wait until the figure's src differs from old_source and return the new one."""
    image = browser.figure(explorer, figure_class)
    expect(image).not_to_have_attribute("src", old_source)
    return image.get_attribute("src")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_release_copy_has_model_answers(tmp_path: Path, notebook: str) -> None:
    root = browser.prepare_release_copy(tmp_path / "cnn_rnn")
    answers = browser.model_answers(browser.SOURCE_ASSIGNMENT / notebook)
    copy = nbformat.read(root / notebook, as_version=4)
    filled = {browser.grade_id(cell): cell.source for cell in copy.cells if browser.is_code_answer(cell)}

    assert answers, f"the source {notebook} has no answer cells"
    assert filled == answers
    for grade_id, source in filled.items():
        assert "### BEGIN SOLUTION" not in source, grade_id
        assert "### END SOLUTION" not in source, grade_id
        compile(source, f"{notebook}:{grade_id}", "exec")


def test_release_copy_rejects_stale_release(tmp_path: Path) -> None:
    release_copy = tmp_path / "conv_pool.ipynb"
    notebook = nbformat.read(browser.RELEASE_ASSIGNMENT / "conv_pool.ipynb", as_version=4)
    notebook.cells = [cell for cell in notebook.cells if browser.grade_id(cell) != "maxpool2d_answer"]
    nbformat.write(notebook, release_copy)

    with pytest.raises(ValueError, match=r"make release"):
        browser.fill_answers(release_copy, browser.SOURCE_ASSIGNMENT / "conv_pool.ipynb")


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_notebook_runs_without_errors(pages: dict[str, Any], notebook: str) -> None:
    page = pages[notebook]

    stderr = browser.stderr_outputs(page)
    assert stderr == [], f"{notebook} wrote to stderr while its cells ran:\n" + "\n\n".join(stderr)
    check_no_widget_errors(page)


def test_feature_maps_follow_stride_and_kernel(pages: dict[str, Any], expect: Any) -> None:
    page = front_page(pages, "conv_pool.ipynb")
    check_no_widget_errors(page)
    explorer = browser.explorer(page, FEATURE_MAPS)
    expect(explorer).to_have_count(1)
    status = explorer.locator(".cnnrnn-status")
    expect(status).to_contain_text("H_out = (H + 2P - k) // s + 1 = (64 + 2*1 - 3) // 1 + 1 = 64")
    source = browser.figure(explorer, FEATURE_MAPS).get_attribute("src")

    # Stride 1 to 2: the 64 x 64 photograph gives a 32 x 32 feature map and a 16 x 16 pooled map.
    browser.move_slider(explorer, "stride", 1)
    source = check_changes_figure(expect, explorer, FEATURE_MAPS, source)
    expect(explorer.locator(".cnnrnn-control-stride .widget-readout")).to_have_text("2")
    expect(status).to_contain_text("H_out = (H + 2P - k) // s + 1 = (64 + 2*1 - 3) // 2 + 1 = 32")
    expect(status).to_contain_text("pooled: H_out = (H - k) // s + 1 = (32 - 2) // 2 + 1 = 16")

    # A 5 x 5 kernel at stride 2 and padding 1: (64 + 2 - 5) // 2 + 1 = 31.
    explorer.locator(".cnnrnn-control-kernel select").select_option("blur (Gaussian 5x5)")
    check_changes_figure(expect, explorer, FEATURE_MAPS, source)
    expect(status).to_contain_text("(64 + 2*1 - 5) // 2 + 1 = 31")
    expect(status).to_contain_text("pooled: H_out = (H - k) // s + 1 = (31 - 2) // 2 + 1 = 15")
    expect(explorer.locator(".cnnrnn-message")).to_have_count(0)

    check_no_widget_errors(page)
    save_screenshot(explorer, "feature_maps.png")


def test_receptive_field_follows_output_position(pages: dict[str, Any], expect: Any) -> None:
    page = front_page(pages, "conv_pool.ipynb")
    check_no_widget_errors(page)
    explorer = browser.explorer(page, RECEPTIVE_FIELD)
    expect(explorer).to_have_count(1)
    status = explorer.locator(".cnnrnn-status")
    expect(status).to_contain_text("(16 + 2*1 - 3) // 1 + 1 = 16")
    source = browser.figure(explorer, RECEPTIVE_FIELD).get_attribute("src")

    # Output row 0 to 2 moves the receptive field, not the output size.
    browser.move_slider(explorer, "row", 2)
    expect(explorer.locator(".cnnrnn-control-row .widget-readout")).to_have_text("2")
    source = check_changes_figure(expect, explorer, RECEPTIVE_FIELD, source)
    expect(status).to_contain_text("(16 + 2*1 - 3) // 1 + 1 = 16")

    # Stride 2 halves the output, so the row and column sliders end at 7.
    browser.move_slider(explorer, "stride", 1)
    check_changes_figure(expect, explorer, RECEPTIVE_FIELD, source)
    expect(status).to_contain_text("(16 + 2*1 - 3) // 2 + 1 = 8")
    for control in ("row", "column"):
        expect(browser.slider_handle(explorer, control)).to_have_attribute("aria-valuemax", re.compile(r"^7(\.0)?$"))

    check_no_widget_errors(page)
    save_screenshot(explorer, "receptive_field.png")


def test_gates_follow_typed_sequence(pages: dict[str, Any], expect: Any) -> None:
    page = front_page(pages, "rnn_lstm.ipynb")
    check_no_widget_errors(page)
    explorer = browser.explorer(page, GATES)
    expect(explorer).to_have_count(1)
    status = explorer.locator(".cnnrnn-status")
    sequence_box = explorer.locator(".cnnrnn-control-sequence input")
    source = browser.figure(explorer, GATES).get_attribute("src")

    # A typed sequence replaces the example: the label is its first symbol, one coloured span per symbol.
    sequence_box.fill("HABCDEFGAB")
    sequence_box.press("Enter")
    source = check_changes_figure(expect, explorer, GATES, source)
    expect(explorer.locator(".cnnrnn-predictions")).to_contain_text("First symbol, the label: H.")
    expect(explorer.locator(".cnnrnn-sequence .cnnrnn-symbol")).to_have_text(list("HABCDEFGAB"))
    expect(browser.slider_handle(explorer, "time")).to_have_attribute("aria-valuemax", re.compile(r"^10(\.0)?$"))

    # The time cursor moves on every heatmap, so the figure changes.
    browser.move_slider(explorer, "time", 3)
    source = check_changes_figure(expect, explorer, GATES, source)
    expect(explorer.locator(".cnnrnn-predictions")).to_contain_text("t = 4 (input C)")

    # An invalid letter gives a message in the status label, not a traceback.
    sequence_box.fill("HAXB")
    sequence_box.press("Enter")
    expect(status).to_contain_text("Invalid character 'X' at position 3")
    source = browser.figure(explorer, GATES).get_attribute("src")

    # Picking an example replaces the text and clears the message.
    example = explorer.locator(".cnnrnn-control-example select")
    example.select_option(index=1)
    check_changes_figure(expect, explorer, GATES, source)
    example_sequence = example.locator("option").nth(1).inner_text().split(":")[1].strip()
    expect(sequence_box).to_have_value(example_sequence)
    expect(explorer.locator(".cnnrnn-message")).to_have_count(0)

    check_no_widget_errors(page)
    assert browser.stderr_outputs(page) == []
    save_screenshot(explorer, "gates.png")
