"""Describe the machine and the numerical libraries that a benchmark ran on."""

import ctypes
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

# Functions that return the thread count of the BLAS library that numpy loaded. numpy's wheels ship
# OpenBLAS with a "scipy_" prefix and a "64_" suffix on its symbols, for 64-bit integers. Other
# builds use the plain OpenBLAS names or MKL.
_THREAD_COUNT_FUNCTIONS = {
    "openblas": ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"),
    "mkl_rt": ("MKL_Get_Max_Threads",),
}


def cpu_model() -> str:
    """Return the first "model name" of /proc/cpuinfo, or platform.processor() where that file is missing."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cores() -> int:
    """Return the number of cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def blas_description() -> str:
    """Return the name and version of the BLAS library numpy was built with, from numpy.show_config."""
    config = np.show_config(mode="dicts")
    blas = config.get("Build Dependencies", {}).get("blas", {})
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


def _loaded_libraries() -> list[str]:
    """Return the paths of the shared libraries mapped into this process (Linux only, else empty)."""
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if line.rstrip().endswith(".so") or ".so." in line}
    except OSError:
        return []
    return sorted(path for path in paths if path.startswith("/"))


def blas_thread_count() -> tuple[int | None, str]:
    """Return the number of threads of numpy's BLAS library and the function that reported it.

    Returns (None, reason) when no loaded library exports one of the known functions, for example
    on a system without /proc/self/maps.
    """
    for path in _loaded_libraries():
        file_name = Path(path).name
        for library_kind, symbols in _THREAD_COUNT_FUNCTIONS.items():
            if library_kind not in file_name.lower():
                continue
            library = ctypes.CDLL(path)
            for symbol in symbols:
                function = getattr(library, symbol, None)
                if function is not None:
                    function.restype = ctypes.c_int
                    return int(function()), f"{symbol}() in {file_name}"
    return None, "no loaded OpenBLAS or MKL library reports its thread count"


def describe(torch: Any) -> dict[str, Any]:
    """Collect the CPU, core count, library versions and BLAS of this process into a dictionary."""
    return {
        "cpu": cpu_model(),
        "usable_cores": usable_cores(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "blas": blas_description(),
        "torch": torch.__version__,
        "torch_mkldnn": bool(torch.backends.mkldnn.is_available()),
        "load_average_1_5_15_min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
