"""Run a student's notebook cells and serve the grader's requests about the objects they define.

autograder.trusted starts this script inside the sandbox as ``python trusted_runner.py CELLS_JSON``.
It imports only the standard library, numpy and IPython, because the packages autograder and
solutions are not readable in the sandbox. CELLS_JSON is a JSON object {"cells": [{"label": str,
"source": str}, ...], "cell_timeout": seconds} with the code cells to run, in order, and the
time after which a running cell is interrupted (no limit when it is missing or null).

Student code never writes to the protocol stream: the script keeps private duplicates of file
descriptors 0 and 1 for the protocol and points descriptors 0, 1 and 2 at /dev/null before it
imports anything else. Student code can still find the duplicates and write to them, so the
grader treats every reply as untrusted.

Protocol. Each message is an 8-byte big-endian length followed by that many bytes of UTF-8 JSON.
The runner first sends {"ready": true} (or {"ready": false, "message": ...}), then answers each
request with one reply, until its input ends. Requests:

- {"op": "run", "until": k}: run the cells with index below k that have not run yet, each in the
  IPython shell (so magics work). An error in a cell is recorded and the next cell still runs.
- {"op": "lookup", "name": n}: the object bound to n in the notebook's namespace.
- {"op": "getattr", "handle": h, "name": n} and {"op": "setattr", "handle": h, "name": n,
  "value": v}: read or write an attribute of a remote object.
- {"op": "call", "handle": h, "args": [v, ...], "kwargs": {name: v}}: call a remote object. The
  reply's "changed" maps the position of each array argument that the call modified in place to
  its new value.

A reply is {"ok": true, "value": v, ...}, {"ok": false, "error": {"type", "message",
"is_exception", "frame"}} when student code raised, or {"ok": false, "protocol_error": text} for
a request that the runner cannot serve. "frame" is {"function", "lineno", "text"} of the last
traceback frame inside the student's cells, or null.

Values v are {"t": kind, ...}: "none", "bool" (v), "int" (v, decimal text), "float" (v, float.hex
text), "scalar" and "array" (npy: base64 of np.save output written with allow_pickle=False; arrays
of a numeric or bool dtype only, ndarray subclasses sent as a copy of the base ndarray),
"other_array" (shape and dtype of an array of any other dtype, whose data are not sent), "tuple"
and "list" (items), "handle" (id, type, callable) for any other object, which later requests name
by its id. No value is ever pickled.
"""

import base64
import io
import json
import os
import signal
import struct
import sys
import traceback

LENGTH = struct.Struct(">Q")
MAX_REQUEST_BYTES = 256 * 1024**2
MAX_DEPTH = 20  # nesting of tuples and lists sent as values; deeper ones are sent as handles
MAX_ITEMS = 100_000  # items of all tuples and lists in one value; beyond it they are sent as handles
MAX_TEXT = 2000  # characters of an error message or a line of code


def take_protocol_streams():
    """Return private duplicates of stdin and stdout, and point fds 0, 1 and 2 at /dev/null."""
    reader = os.fdopen(os.dup(0), "rb", buffering=0)
    writer = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    return reader, writer


class ProtocolError(Exception):
    """A request that the runner cannot serve, such as an unknown handle."""


class Channel:
    """Length-prefixed JSON messages over the private protocol streams."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer

    def receive(self):
        """Return the next request, or None when the grader closed the stream."""
        header = self._read_exact(LENGTH.size)
        if header is None:
            return None
        (length,) = LENGTH.unpack(header)
        if length > MAX_REQUEST_BYTES:
            raise ProtocolError(f"request of {length} bytes is larger than {MAX_REQUEST_BYTES}")
        body = self._read_exact(length)
        if body is None:
            return None
        return json.loads(body.decode("utf-8"))

    def send(self, message):
        body = json.dumps(message, allow_nan=False).encode("utf-8")
        data = memoryview(LENGTH.pack(len(body)) + body)
        while data:
            data = data[self.writer.write(data):]

    def _read_exact(self, size):
        chunks = []
        while size > 0:
            chunk = self.reader.read(size)
            if not chunk:
                return None
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)


def clean_text(text, limit=MAX_TEXT):
    """Return text cut to limit characters, with unpaired surrogates escaped so that it encodes as UTF-8."""
    text = text if len(text) <= limit else text[:limit] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class Runner:
    """The student's namespace in an IPython shell, and the objects handed to the grader."""

    def __init__(self, cells, cell_timeout=None):
        import numpy as np
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        self.np = np
        config = Config()
        config.HistoryManager.enabled = False
        self.shell = InteractiveShell.instance(config=config)
        self.cells = cells
        self.cell_timeout = cell_timeout
        self.next_cell = 0
        self.objects = {}
        self.next_handle = 1
        # The random state as the last cell left it: requests between cells construct student
        # layers, which draw from np.random, and the next cells must not see those draws, just as
        # the checks restore np.random's state in the kernel.
        self.random_state = np.random.get_state()

    # Requests

    def handle(self, request):
        """Serve one request and return the reply.

        The request is parsed first, so that a malformed request gets a protocol error. Whatever
        the student's code raises while the request runs, SystemExit included, becomes an error reply.
        """
        try:
            operation = self.parse(request)
        except (ProtocolError, LookupError, TypeError, ValueError, AttributeError) as err:
            return {"ok": False, "protocol_error": clean_text(f"invalid request: {type(err).__name__}: {err}")}
        try:
            return operation()
        except BaseException as err:
            try:
                return {"ok": False, "error": self.describe_error(err)}
            except BaseException:
                return {"ok": False, "error": {"type": "Exception", "message": "(the error could not be described)",
                                               "is_exception": True, "frame": None}}

    def parse(self, request):
        """Check a request and return a function that performs it and returns the reply."""
        op = request["op"]
        if op == "run":
            until = int(request["until"])
            return lambda: {"ok": True, "value": {"t": "none"}, "cells": self.run(until)}
        if op == "lookup":
            name = str(request["name"])
            return lambda: {"ok": True, "value": self.encode(self.lookup(name))}
        if op == "getattr":
            owner, name = self.object(request["handle"]), str(request["name"])
            return lambda: {"ok": True, "value": self.encode(getattr(owner, name))}
        if op == "setattr":
            owner, name, value = self.object(request["handle"]), str(request["name"]), self.decode(request["value"])
            return lambda: self.set_attribute(owner, name, value)
        if op == "call":
            target = self.object(request["handle"])
            args = [self.decode(value) for value in request["args"]]
            kwargs = {str(name): self.decode(value) for name, value in request["kwargs"].items()}
            return lambda: self.call(target, args, kwargs)
        raise ProtocolError(f"unknown request {op!r}")

    def set_attribute(self, owner, name, value):
        setattr(owner, name, value)
        return {"ok": True, "value": {"t": "none"}}

    def run(self, until):
        """Run the cells up to index until (exclusive) and return each one's error or None."""
        np = self.np
        results = []
        np.random.set_state(self.random_state)
        while self.next_cell < min(until, len(self.cells)):
            index = self.next_cell
            self.next_cell += 1
            outcome = self.run_cell(self.cells[index]["source"])
            error = outcome.error_before_exec or outcome.error_in_exec
            results.append({"index": index, "error": None if error is None else self.describe_error(error)})
        self.random_state = np.random.get_state()
        return results

    def run_cell(self, source):
        """Run one cell, interrupted with KeyboardInterrupt after cell_timeout seconds as a kernel would be.

        A cell that catches the interrupt runs on until the grader's own deadline stops this process.
        """
        if not self.cell_timeout:
            return self.shell.run_cell(source, store_history=True)
        previous = signal.signal(signal.SIGALRM, _interrupt_cell)
        signal.setitimer(signal.ITIMER_REAL, self.cell_timeout)
        try:
            return self.shell.run_cell(source, store_history=True)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def lookup(self, name):
        namespace = self.shell.user_ns
        if name not in namespace:
            raise NameError(f"name {name!r} is not defined")
        return namespace[name]

    def call(self, target, args, kwargs):
        """Call target and return the reply, with the array arguments that it changed in place."""
        originals = {index: arg.copy() for index, arg in enumerate(args) if type(arg) is self.np.ndarray}

        result = target(*args, **kwargs)

        changed = {}
        for index, original in originals.items():
            current = args[index]
            same = (current.shape == original.shape and current.dtype == original.dtype
                    and current.tobytes() == original.tobytes())
            if not same:
                changed[str(index)] = self.encode(current)
        return {"ok": True, "value": self.encode(result), "changed": changed}

    def object(self, handle):
        try:
            return self.objects[int(handle)]
        except (KeyError, TypeError, ValueError):
            raise ProtocolError(f"no object with handle {handle!r}") from None

    # Values

    def encode(self, value):
        """Convert a value for the grader: data where the protocol allows it, else a handle."""
        self.items_left = MAX_ITEMS
        return self._encode(value, 0)

    def _encode(self, value, depth):
        np = self.np
        kind = type(value)  # type() rather than isinstance, which a __class__ property can fool
        if value is None:
            return {"t": "none"}
        if kind is bool:
            return {"t": "bool", "v": value}
        if issubclass(kind, np.ndarray):
            base = np.ndarray.view(value, np.ndarray)
            if base.dtype.kind in "biufc":
                return {"t": "array", "npy": _npy(np, np.ndarray.copy(base))}
            return {"t": "other_array", "shape": list(base.shape), "dtype": str(base.dtype)}
        if issubclass(kind, np.generic) and np.dtype(kind).kind in "biufc":
            return {"t": "scalar", "npy": _npy(np, np.asarray(value))}
        if issubclass(kind, int):
            return {"t": "int", "v": str(int.__int__(value))}
        if issubclass(kind, float):
            return {"t": "float", "v": float.hex(float.__float__(value))}
        if issubclass(kind, (tuple, list)) and depth < MAX_DEPTH:
            items = list(tuple.__iter__(value)) if issubclass(kind, tuple) else list(list.__iter__(value))
            self.items_left -= len(items)
            if self.items_left >= 0:
                return {"t": "tuple" if issubclass(kind, tuple) else "list",
                        "items": [self._encode(item, depth + 1) for item in items]}
        handle = self.next_handle
        self.next_handle += 1
        self.objects[handle] = value
        return {"t": "handle", "id": handle, "type": clean_text(str(kind.__name__), 100), "callable": callable(value)}

    def decode(self, value):
        """Convert a value from the grader. The grader is trusted, so this checks little."""
        np = self.np
        kind = value["t"]
        if kind == "none":
            return None
        if kind == "bool":
            return bool(value["v"])
        if kind == "int":
            return int(value["v"])
        if kind == "float":
            return float.fromhex(value["v"])
        if kind == "array":
            return np.array(np.load(io.BytesIO(base64.b64decode(value["npy"])), allow_pickle=False), copy=True)
        if kind == "scalar":
            return np.load(io.BytesIO(base64.b64decode(value["npy"])), allow_pickle=False)[()]
        if kind in ("tuple", "list"):
            items = [self.decode(item) for item in value["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "handle":
            return self.object(value["id"])
        raise ProtocolError(f"unknown value kind {kind!r}")

    # Errors

    def cell_filenames(self):
        return set(getattr(self.shell.compile, "_filename_map", {}))

    def describe_error(self, err):
        kind = type(err)
        try:
            message = str(err)
        except BaseException:  # a student's __str__ may raise anything
            message = "(the error message could not be converted to text)"
        try:
            name = str(kind.__name__)
        except BaseException:  # so may a metaclass's __name__
            name = "Exception"
        return {
            "type": clean_text(name, 100),
            "message": clean_text(message),
            "is_exception": issubclass(kind, Exception),
            "frame": self.student_frame(err),
        }

    def student_frame(self, err):
        """Describe the last traceback frame of err inside the student's cells, or return None."""
        filenames = self.cell_filenames()
        try:
            frames = traceback.extract_tb(err.__traceback__)
        except Exception:  # a traceback that student code replaced can be anything
            return None
        own = [frame for frame in frames if _in_cells(frame.filename, filenames)]
        if not own:
            return None
        frame = own[-1]
        return {"function": clean_text(frame.name, 200), "lineno": frame.lineno,
                "text": clean_text((frame.line or "").strip())}


def _in_cells(filename, cell_filenames):
    return filename in cell_filenames or filename.startswith("<ipython-input-")


def _interrupt_cell(signum, frame):
    raise KeyboardInterrupt("the cell ran longer than its time limit")


def _npy(np, array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def main(argv):
    reader, writer = take_protocol_streams()
    channel = Channel(reader, writer)
    try:
        if len(argv) != 2:
            raise ValueError("usage: trusted_runner.py CELLS_JSON")
        with open(argv[1], encoding="utf-8") as handle:
            plan = json.load(handle)
        cells = plan["cells"]
        # Student code imports from its working folder (coursekit), not from this script's folder.
        sys.path[0] = os.getcwd()
        runner = Runner(cells, plan.get("cell_timeout"))
    except Exception as err:
        channel.send({"ready": False, "message": clean_text(f"{type(err).__name__}: {err}")})
        return 1
    channel.send({"ready": True})

    while True:
        try:
            request = channel.receive()
        except (ProtocolError, ValueError) as err:
            channel.send({"ok": False, "protocol_error": clean_text(str(err))})
            return 1
        if request is None:
            return 0
        reply = runner.handle(request)
        try:
            channel.send(reply)
        except (TypeError, ValueError) as err:
            channel.send({"ok": False, "protocol_error": clean_text(f"the reply could not be encoded: {err}")})


if __name__ == "__main__":
    sys.exit(main(sys.argv))
