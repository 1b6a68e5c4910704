"""Shared pytest helpers and fixtures.

Optional test dependencies (PyTorch as an oracle, Chromium for browser tests) may be missing on a
student's or instructor's machine, where the tests that need them skip with an install command.
CI must install them, so when the environment variable CI is "true" a missing dependency fails
the test instead.
"""

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

# The tests import the top-level packages (solutions, autograder) without installing them.
REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
if str(REPOSITORY_ROOT) not in sys.path:
    sys.path.insert(0, str(REPOSITORY_ROOT))


def running_in_ci() -> bool:
    """Return whether the environment variable CI is "true" (any letter case), as CI services set it."""
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail_missing(dependency: str, install_command: str, reason: str = "") -> None:
    """Skip the current test because a dependency is missing, or fail it when running in CI.

    The message names the dependency and the command that installs it. ``reason`` may add why the
    dependency is unusable, for example the import error.
    """
    message = f"{dependency} is not available, so this test cannot run. Install it with: {install_command}"
    if reason:
        message += f" ({reason})"

    if running_in_ci():
        pytest.fail(f"{message}. CI is 'true', where a missing test dependency is an error, not a skip.")
    pytest.skip(message)


def require_module(module_name: str, install_command: str) -> ModuleType:
    """Import and return a module, or skip the current test (fail it in CI) if it cannot be imported."""
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        skip_or_fail_missing(module_name, install_command, reason=f"{type(err).__name__}: {err}")
        raise  # Not reached, because skip and fail both raise. The raise keeps type checkers from expecting a return.


def require_torch() -> ModuleType:
    """Import and return PyTorch, or skip the current test (fail it in CI) with the install command."""
    return require_module("torch", "pip install torch==2.13.0")


@pytest.fixture(scope="session")
def torch_module() -> ModuleType:
    """The torch module, for tests that use PyTorch on the CPU as an independent oracle."""
    return require_torch()


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on 127.0.0.1 for this test session, from the machine's postgresql package."""
    from postgres_server import INSTALL_COMMAND, PostgresServer, find_bindir

    bindir = find_bindir()
    if bindir is None:
        skip_or_fail_missing("The PostgreSQL server (initdb and pg_ctl)", INSTALL_COMMAND)
    require_module("psycopg", "pip install -r requirements.txt")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
