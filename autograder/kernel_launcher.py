"""Start an IPython kernel for nbgrader inside the sandbox of autograder.sandbox.

The grading pipeline installs a kernel spec whose command is
``python -m autograder.kernel_launcher {connection_file}``, and sets the environment variable
KERNEL_SANDBOX_VARIABLE to the sandbox policy as JSON. This launcher runs outside the sandbox:
it copies the connection file to a copy that the sandbox user can read, then replaces itself with
the sandboxed kernel.

The kernel talks to nbgrader over Unix sockets next to the connection file (transport "ipc"),
because the sandbox has its own network namespace, where nbgrader's loopback ports are not
reachable. The folder of the connection file is bound into the sandbox for that.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .sandbox import SANDBOX_UID, Limits, Sandbox

KERNEL_SANDBOX_VARIABLE = "AUTOGRADER_KERNEL_SANDBOX"
KERNEL_NAME = "python3"
RUNTIME_DIR_PREFIX = "autograder-kernel-"  # folders made by the pipeline for one student's kernels


def kernel_spec(python: str) -> dict:
    """Return the kernel.json that starts kernels through this launcher."""
    return {
        "argv": [python, "-m", "autograder.kernel_launcher", "{connection_file}"],
        "display_name": "Python 3 (sandboxed for grading)",
        "language": "python",
        # An interrupt travels as a message: a signal to the launcher's process would not reach
        # the kernel, which runs in its own process-id namespace.
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }


def install_kernel_spec(jupyter_data_dir: Path) -> None:
    """Write the sandboxed kernel spec under ``jupyter_data_dir/kernels/python3``."""
    folder = jupyter_data_dir / "kernels" / KERNEL_NAME
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(kernel_spec(sys.executable), indent=1))


def policy_json(mode: str, readable: list[Path], hidden: list[Path], environment: dict[str, str],
                limits: Limits, uid: int = SANDBOX_UID) -> str:
    """Return the value of KERNEL_SANDBOX_VARIABLE for a grading run."""
    return json.dumps({
        "mode": mode,
        "uid": uid,
        "readable": [str(path) for path in readable],
        "hidden": [str(path) for path in hidden],
        "environment": environment,
        "limits": limits.__dict__,
    })


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: python -m autograder.kernel_launcher CONNECTION_FILE [KERNEL_OPTION ...]")
    policy_text = os.environ.get(KERNEL_SANDBOX_VARIABLE)
    if not policy_text:
        sys.exit(f"{KERNEL_SANDBOX_VARIABLE} is not set, so the sandbox policy is missing. "
                 "This launcher is for grading runs of `python -m autograder grade` only.")
    policy = json.loads(policy_text)

    connection_file = Path(argv[0]).resolve()
    runtime_dir = connection_file.parent
    # jupyter_client writes the connection file with tempfile.mkstemp, so into TMPDIR. The pipeline
    # points TMPDIR at a folder of its own for each student. Anything else (such as /tmp itself)
    # must not be handed to the sandbox user.
    if not runtime_dir.name.startswith(RUNTIME_DIR_PREFIX):
        sys.exit(f"the connection file {connection_file} is not in a folder named {RUNTIME_DIR_PREFIX}*: "
                 "set TMPDIR to such a folder made for this kernel, as autograder/pipeline.py does")
    shared_copy = runtime_dir / f"sandbox-{connection_file.name}"
    shared_copy.write_text(connection_file.read_text())
    shared_copy.chmod(0o644)

    sandbox = Sandbox(
        workdir=Path.cwd(),
        readable=[Path(path) for path in policy["readable"]],
        writable=[],
        hidden=[Path(path) for path in policy["hidden"]],
        limits=Limits(**policy["limits"]),
        environment=policy["environment"],
        mode=policy["mode"],
        uid=policy.get("uid", SANDBOX_UID),
    )
    sandbox.prepare()
    # The kernel creates its sockets in runtime_dir, as the sandbox user: bind it, and hand over
    # that one folder only (not its contents). It is TMPDIR, so prepare() would reject it as shared.
    sandbox.writable.append(runtime_dir)
    if sandbox.isolated and os.geteuid() == 0:
        os.chown(runtime_dir, sandbox.uid, sandbox.uid)
    # nbclient adds options for the kernel, such as --HistoryManager.hist_file=:memory:.
    command = sandbox.wrap([sys.executable, "-m", "ipykernel_launcher", "-f", str(shared_copy), *argv[1:]])
    env = {**os.environ, **sandbox.env()} if not sandbox.isolated else sandbox.env()
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main(sys.argv[1:])
