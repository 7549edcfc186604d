"""Work on untrusted CIF text under a time limit, in a worker process that can be killed.

pymatgen's CIF reader, spglib and CrystalNN cannot be interrupted from Python (a loop in C, or a
Python loop that runs for minutes on a nearly flat cell), and a C extension can end the process
outright. So the calls that hand untrusted text to them run in one long-lived worker process per
calling process (started on first use, about 2 s; later calls pay only the pickling, see
benchmarks/fuzz_cif.py --overhead). A call that takes longer than its limit kills the worker
and raises ``CifError("<what> took longer than N s")``; a worker that dies raises
``CifError("<what>: the worker died (signal 11) ...")``. The next call starts a fresh worker.

The limit: ``time_limit=`` of the call, else the environment variable ``HFMAT_CIF_TIME_LIMIT``
(seconds), else ``DEFAULT_TIME_LIMIT``. ``0`` (or ``none``) runs the work in this process with no
limit (and no protection from a crash).
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from hfmat.cif.errors import CifError

DEFAULT_TIME_LIMIT = 30.0  #: seconds per parse or check
ENV = "HFMAT_CIF_TIME_LIMIT"
_START_LIMIT = 300.0  #: seconds for a worker to import pymatgen (not counted in the limit)
_HEADER = struct.Struct("<Q")


def time_limit(value: float | None = None) -> float | None:
    """The limit in seconds that applies (``value``, else $HFMAT_CIF_TIME_LIMIT, else the
    default); None for no limit. ValueError for a negative or unreadable value."""
    source = "time_limit"
    if value is None:
        text = os.environ.get(ENV, "").strip()
        if not text:
            return DEFAULT_TIME_LIMIT
        if text.lower() in ("none", "off"):
            return None
        source = ENV
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{ENV}={text!r} is not a number of seconds") from None
    value = float(value)
    if value != value or value < 0:
        raise ValueError(f"{source}: {value} is not a number of seconds >= 0")
    return None if value == 0 else value


def _jobs():
    from hfmat.cif import reader, validity

    return {
        "cif_to_structure": reader.read_structure,
        "check_validity": validity.validity_report,
        "canonicalize": canonical_text,
    }


def canonical_text(text: str, symprec: float, decimals: int, atom_props: bool) -> str:
    """The canonical text of a CIF text (read, then written by hfmat.cif.writer)."""
    from hfmat.cif.reader import read_structure
    from hfmat.cif.writer import structure_to_cif

    return structure_to_cif(read_structure(text), symprec, decimals, atom_props)


def _send(stream, obj) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, got = [], 0
    while got < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float | None) -> object:
    """One message from ``fd``; TimeoutError past ``deadline`` (time.monotonic), EOFError when
    the other end closed."""
    (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
    return pickle.loads(_read_exact(fd, size, deadline))


class _Worker:
    """The worker process of this process (one at a time; calls are serialised)."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None
        self.pid = os.getpid()
        self.lock = threading.Lock()

    def _start(self) -> None:
        env = dict(os.environ, HFMAT_CIF_WORKER="1", PYTHONWARNINGS="ignore")
        env.setdefault("OMP_NUM_THREADS", "1")
        package_root = str(Path(__file__).resolve().parents[2])  # hfmat importable as it is here
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hfmat.cif.timelimit"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the caller is the caller's to handle
        )
        try:
            ready = _receive(self.proc.stdout.fileno(), time.monotonic() + _START_LIMIT)
        except (TimeoutError, EOFError):
            ready = None
        if ready != "ready":
            code = self._stop()
            raise CifError(f"the CIF worker process did not start (exit status {code})")

    def _stop(self) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        return code

    def forget(self) -> None:
        """In a forked child: the worker and the lock belong to the parent."""
        self.proc, self.pid, self.lock = None, os.getpid(), threading.Lock()

    def call(self, job: str, what: str, limit: float, args: tuple, kwargs: dict):
        with self.lock:
            if self.pid != os.getpid():  # forked without the hook (it is registered below)
                self.proc, self.pid = None, os.getpid()
            if self.proc is None or self.proc.poll() is not None:
                self._stop()
                self._start()
            try:
                _send(self.proc.stdin, (job, args, kwargs))
                status, value = _receive(self.proc.stdout.fileno(), time.monotonic() + limit)
            except TimeoutError:
                self._stop()
                raise CifError(f"{what} took longer than {limit:g} s (stopped; time limit: {ENV})") from None
            except (EOFError, BrokenPipeError, OSError, pickle.UnpicklingError):
                code = self._stop()
                how = f"signal {-code}" if code is not None and code < 0 else f"exit status {code}"
                if code is not None and code < 0:
                    try:
                        how = f"{signal.Signals(-code).name}"
                    except ValueError:
                        pass
                raise CifError(f"{what}: the worker died ({how}) on this input") from None
            except BaseException:  # e.g. KeyboardInterrupt: its answer must not reach the next call
                self._stop()
                raise
        if status == "ok":
            return value
        if status == "cif_error":
            raise CifError(value)
        raise CifError(f"{what} failed: {value}")


_WORKER = _Worker()
atexit.register(_WORKER._stop)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKER.forget)


def run_limited(job: str, what: str, *args, time_limit_s: float | None = None, **kwargs):
    """``job`` (``cif_to_structure``, ``check_validity`` or ``canonicalize``) on ``args`` in the
    worker under the limit (see the module docstring); in this process when the limit is off or
    this is the worker. CifError for a timeout, a dead worker or bad input."""
    limit = time_limit(time_limit_s)
    if limit is None or os.environ.get("HFMAT_CIF_WORKER") == "1" or os.name != "posix":
        return _jobs()[job](*args, **kwargs)
    return _WORKER.call(job, what, limit, args, kwargs)


def _warm_up() -> None:
    """One check of a small crystal before the worker says it is ready: the lazy imports and data
    files of spglib, CrystalNN and the writer are then not charged to a caller's time limit."""
    from pymatgen.core import Lattice, Structure

    from hfmat.cif.validity import validity_report
    from hfmat.cif.writer import structure_to_cif

    nacl = Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    validity_report(structure_to_cif(nacl))


def _serve() -> None:
    """The worker's loop: (job, args, kwargs) in, (status, value) out, until stdin closes."""
    import warnings

    warnings.simplefilter("ignore")
    parent = os.getppid()

    def watch_parent() -> None:  # a worker whose caller died (SIGKILL) does not run on
        while os.getppid() == parent:
            time.sleep(2)
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()
    jobs = _jobs()
    _warm_up()
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # stray prints must not corrupt the channel
    _send(out, "ready")
    fd = sys.stdin.fileno()
    while True:
        try:
            job, args, kwargs = _receive(fd, None)
        except EOFError:
            return
        try:
            reply = ("ok", jobs[job](*args, **kwargs))
        except CifError as err:
            reply = ("cif_error", str(err))
        except Exception as err:  # noqa: BLE001 - reported to the caller as a CifError
            reply = ("error", f"{type(err).__name__}: {err}")
        try:
            _send(out, reply)
        except (pickle.PicklingError, TypeError, AttributeError) as err:
            _send(out, ("error", f"result could not be sent back: {err}"))


if __name__ == "__main__":
    _serve()
