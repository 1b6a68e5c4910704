"""Run student code isolated with bubblewrap (bwrap) and resource limits.

A sandboxed process gets:

- no network: a new network namespace that contains only its own loopback interface;
- a read-only view of the system, with the home folder, /tmp, the repository, the course, the
  submissions and the grading output replaced by empty folders, and only the paths that the
  caller names bound back in (the Python installation, a working folder);
- write access to its working folder only;
- no capabilities, its own process-id namespace, and death when the grader dies;
- resource limits (prlimit): address space, CPU seconds, processes, file size and open files.

When the grader runs as root, bwrap sets up the sandbox as root and then setpriv switches to the
unprivileged user SANDBOX_UID, so that the process limit counts only sandboxed processes (Linux
does not apply RLIMIT_NPROC to root). Otherwise bwrap runs as the grader's user, in a user
namespace.

When bwrap is missing or cannot create namespaces, mode "auto" falls back to the resource limits
alone and says so in the log and the report; mode "require" raises SandboxUnavailable instead.
"""

from __future__ import annotations

import fcntl
import functools
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .course import REPO_ROOT

SANDBOX_UID = 65534  # the user "nobody" on Debian
MODES = ("auto", "require", "off")

INSTALL_HINT = "Install bubblewrap (Debian: apt-get install bubblewrap) to isolate student code."


class SandboxUnavailable(Exception):
    """The sandbox was required but bwrap cannot run here."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed process tree."""

    memory_bytes: int = 4 * 1024**3  # address space of each process (RLIMIT_AS)
    cpu_seconds: int = 900  # CPU time of each process (RLIMIT_CPU)
    processes: int = 256  # processes of the sandbox user at once (RLIMIT_NPROC)
    file_bytes: int = 256 * 1024**2  # size of any file written (RLIMIT_FSIZE)
    open_files: int = 512  # open file descriptors of each process (RLIMIT_NOFILE)


@dataclass
class Sandbox:
    """A policy for running one student's code: what it may read and write, and its limits."""

    workdir: Path
    readable: list[Path] = field(default_factory=list)
    writable: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    limits: Limits = Limits()
    environment: dict[str, str] = field(default_factory=dict)
    mode: str = "auto"
    uid: int = SANDBOX_UID  # the user and group that sandboxed code runs as, when the grader is root

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"invalid sandbox mode {self.mode!r}: use one of {', '.join(MODES)}")

    @property
    def isolated(self) -> bool:
        """Return whether bwrap isolates the process, rather than resource limits alone."""
        if self.mode == "off":
            return False
        problem = bwrap_problem()
        if problem and self.mode == "require":
            raise SandboxUnavailable(f"the sandbox is required but bubblewrap cannot run: {problem}. {INSTALL_HINT}")
        return not problem

    def prepare(self) -> None:
        """Create the working folder and let the sandbox user write to it.

        The working folder and its contents are handed to the sandbox user, the other writable
        folders alone. A shared folder such as /tmp or a home folder is rejected, because handing
        it to the sandbox user would lock the grader's other programs out of it.
        """
        for path in [self.workdir, *self.writable]:
            path.mkdir(parents=True, exist_ok=True)
            if not (self.isolated and _drops_to_sandbox_user()):
                continue
            _reject_shared_folder(path)
            if path == self.workdir:
                _chown_tree(path, self.uid)
            else:
                os.chown(path, self.uid, self.uid)

    def wrap(self, argv: list[str]) -> list[str]:
        """Return the command that runs argv in this sandbox."""
        if not self.isolated:
            return _prlimit(self.limits) + list(argv)
        return _prlimit(self.limits) + self._bwrap() + _switch_user(self.uid) + list(argv)

    def env(self) -> dict[str, str]:
        """Return the environment for subprocess calls of wrap(): bwrap sets its own, so this is for the fallback."""
        if self.isolated:
            return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return {**_base_environment(self.workdir), **self.environment}

    def _bwrap(self) -> list[str]:
        args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *_namespaces_and_capabilities(),
                "--die-with-parent", "--new-session"]
        hidden = _outermost(_existing([Path("/tmp"), Path("/var/tmp"), Path.home(), REPO_ROOT, *self.hidden]))
        for path in hidden:
            args += ["--tmpfs", str(path)]
        python_paths = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent]
        binds = [("--ro-bind", path, path) for path in _existing([*python_paths, *self.readable])]
        # A virtual environment reached through a symbolic link (such as .venv in a git worktree)
        # is also bound at the link's path, because Python finds the environment from that path.
        binds += [("--ro-bind", path.resolve(), path.absolute()) for path in python_paths
                  if path.exists() and path.absolute() != path.resolve()]
        binds += [("--bind", path, path) for path in _existing([self.workdir, *self.writable])]
        created: set[Path] = set()
        # Parents before children, so that a bind inside a bound folder is not hidden by it.
        for option, source, target in sorted(binds, key=lambda item: len(item[2].parts)):
            # bwrap would create the missing folders above a bind inside a hidden folder as
            # readable by root only, so create them readable by everyone first.
            for parent in reversed(target.parents):
                if parent not in created and any(root in parent.parents for root in hidden):
                    args += ["--perms", "0755", "--dir", str(parent)]
                    created.add(parent)
            args += [option, str(source), str(target)]
        args += ["--chdir", str(self.workdir), "--clearenv"]
        for name, value in {**_base_environment(self.workdir), **self.environment}.items():
            args += ["--setenv", name, value]
        return args + ["--"]


def _base_environment(workdir: Path) -> dict[str, str]:
    return {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "NBGRADER_EXECUTION": "autograde",
    }


def _prlimit(limits: Limits) -> list[str]:
    processes = limits.processes
    if not _drops_to_sandbox_user():
        # The limit counts every process of the user, so leave room for the ones already running.
        processes += _own_process_count()
    return ["prlimit", f"--as={limits.memory_bytes}", f"--cpu={limits.cpu_seconds}", f"--nproc={processes}",
            f"--fsize={limits.file_bytes}", f"--nofile={limits.open_files}", "--"]


def _namespaces_and_capabilities() -> list[str]:
    if _drops_to_sandbox_user():
        # Root needs no user namespace. It keeps only the right to switch to the sandbox user.
        return ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return ["--unshare-all", "--cap-drop", "ALL"]


def _switch_user(uid: int = SANDBOX_UID) -> list[str]:
    """Return the setpriv prefix that runs the rest as uid with no capabilities, when root."""
    if not _drops_to_sandbox_user():
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"]


MAX_SANDBOX_USERS = 256  # user ids tried below SANDBOX_UID when claiming them for workers


def claim_sandbox_uids(count: int) -> tuple[list[int], list[IO[str]]]:
    """Claim count sandbox user ids that no other grading run on this machine uses: 65534, 65533, ...

    Parallel workers, and grading runs side by side, run student code as different users, so that
    the process limit of one student's sandbox, which Linux counts per user, does not take
    processes from another's. An id is claimed by an exclusive lock on a file in the temporary
    folder, held until the returned files are closed or the process ends. Ids of existing accounts
    other than nobody are skipped. Raises ValueError when fewer than count ids are free.
    """
    uids: list[int] = []
    locks: list[IO[str]] = []
    for offset in range(MAX_SANDBOX_USERS):
        if len(uids) == count:
            break
        uid = SANDBOX_UID - offset
        if uid != SANDBOX_UID and _account_exists(uid):
            continue
        lock = open(Path(tempfile.gettempdir()) / f"autograder-sandbox-uid-{uid}.lock", "a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another grading run uses this id
            lock.close()
            continue
        uids.append(uid)
        locks.append(lock)
    if len(uids) < count:
        for lock in locks:
            lock.close()
        raise ValueError(f"only {len(uids)} of the {count} sandbox user ids that the workers need are free: other "
                         "grading runs use the rest. Grade with fewer workers, or after the other runs end.")
    return uids, locks


def _account_exists(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _drops_to_sandbox_user() -> bool:
    return os.geteuid() == 0


def _own_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                continue
    return count


def _existing(paths: list[Path]) -> list[Path]:
    unique = []
    for path in paths:
        resolved = Path(path).resolve()
        if resolved.exists() and resolved not in unique and resolved != Path("/"):
            unique.append(resolved)
    return unique


def _outermost(paths: list[Path]) -> list[Path]:
    """Drop the paths that lie inside another path of the list."""
    return [path for path in paths if not any(other != path and other in path.parents for other in paths)]


def _reject_shared_folder(path: Path) -> None:
    """Raise ValueError if path is a folder that other programs share, so it must keep its owner."""
    resolved = path.resolve()
    shared = {Path("/"), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path.home(), REPO_ROOT,
              Path(tempfile.gettempdir()).resolve(), *Path.home().parents, *REPO_ROOT.parents}
    if resolved in shared or len(resolved.parts) < 3:
        raise ValueError(f"the sandbox may not be given the shared folder {resolved}: "
                         "pass a folder made for this student")


def _chown_tree(path: Path, uid: int) -> None:
    os.chown(path, uid, uid)
    for root, directories, files in os.walk(path):
        for name in directories + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


@functools.cache
def bwrap_problem() -> str:
    """Return why bwrap cannot isolate a process here, or "" when it can."""
    if shutil.which("bwrap") is None:
        return "the command bwrap was not found"
    for tool in ("prlimit", "setpriv"):
        if shutil.which(tool) is None:
            return f"the command {tool} (util-linux) was not found"
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *_namespaces_and_capabilities(),
               "--die-with-parent", "--", *_switch_user(), "true"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap failed to start: {err}"
    if result.returncode != 0:
        return f"bwrap could not create a sandbox: {result.stderr.strip() or f'exit code {result.returncode}'}"
    return ""
