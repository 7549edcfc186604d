"""Fuzz the CIF reader and the validity check with mutated CIFs; print how many went wrong.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_cif.py -n 10000 --seed 0

Mutants are made from the CIFs in examples/ (as given and as canonical text) and the first rows
of the CDVAE CSVs in ../shared/data (when present): deleted, duplicated and cut lines, flipped
characters, truncation, huge numbers, NaN/inf, non-positive cell lengths, degenerate angles,
occupancies above 1 or not positive, unknown elements, very long atom loops, binary junk,
non-UTF-8 bytes, changed space groups and added operations, cells thinner than an atom,
out-of-range coordinates and long runs of blank lines (one to three mutations each, seeded). Each mutant's bytes are decoded as the CLI
and the loader decode a file (UTF-8, bad bytes replaced) and given to ``cif_to_structure`` and
``check_validity`` in a harness process that the benchmark watches.

The four counts (the target is 0 in each):

- crash: the harness process died, or ``cif_to_structure`` raised anything but CifError, or
  ``check_validity`` raised at all.
- hang: a mutant's two calls did not return within ``2 * limit + grace`` seconds (the reader's
  own time limit, HFMAT_CIF_TIME_LIMIT=``limit``, failed to stop it).
- accepted-invalid: ``cif_to_structure`` returned a Structure for a mutant that the oracle
  below calls invalid.
- wrongly-valid: ``check_validity`` called such a mutant valid.

The oracle is independent of hfmat: it reads the text with its own regular expressions and calls
a mutant invalid when any ``_cell_length_*`` is not a number, not finite or not positive; any
``_cell_angle_*`` is not a number or outside (0, 180) degrees; the cell's metric tensor is not
positive definite (volume / (a b c) below 1e-6) or its volume is not finite; a row of the
atom-site loop has an occupancy that is not a number, not finite, not positive or above 1
(pymatgen's default tolerance; ``?`` and ``.`` are unknown values and pass), a fractional
coordinate that is not finite, or a type symbol that is no element (the symbol with its trailing
charge or digits removed, against the periodic table). A mutant the oracle passes may still be
refused (a deleted tag, junk syntax): refusing is never counted as an error.

Also printed: how many calls the time limit stopped, how many the reader refused, how many
workers died (a crash contained by the worker), and the wall time.

``--overhead`` instead times the time limit's cost on the well-formed sources: each call with the
limit on (the worker process) and off (``time_limit=0``, in this process), median per call, and
the worker's start-up once.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fuzz_cif.py --overhead
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import queue
import random
import re
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
KINDS = (
    "delete_line",
    "duplicate_line",
    "flip_char",
    "truncate",
    "huge_number",
    "nan_inf",
    "nonpositive_length",
    "degenerate_angles",
    "occupancy",
    "unknown_element",
    "long_atom_loop",
    "binary_junk",
    "non_utf8",
    "space_group",
    "tiny_cell",
    "coordinate",
    "whitespace_run",
)
_ELEMENTS = (
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se "
    "Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb "
    "Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm "
    "Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og"
).split()
ELEMENTS = frozenset(_ELEMENTS)
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


# ------------------------------------------------------------------------------------------------
# sources and mutants


def source_texts(shared_rows: int = 15) -> list[str]:
    """The CIFs of examples/ as given and as canonical text, and the first ``shared_rows`` rows of
    each CSV under ../shared/data (as given and canonical)."""
    from pymatgen.core import Structure

    from hfmat.cif import structure_to_cif

    texts = []
    raw = [p.read_text() for p in sorted((REPO / "examples").glob("*.cif"))]
    if SHARED.is_dir():
        csv.field_size_limit(10**9)
        for path in sorted(SHARED.glob("*/*.csv")):
            with open(path, newline="") as f:
                raw += [row["cif"] for _, row in zip(range(shared_rows), csv.DictReader(f))]
    for text in raw:
        texts.append(text)
        texts.append(structure_to_cif(Structure.from_str(text, fmt="cif")))
    return texts


def _replace_number(text: str, rng: random.Random, new: str, near: str | None = None) -> str:
    if near is not None:
        tags = list(re.finditer(rf"^([ \t]*{near}\S*[ \t]+)(\S+)", text, re.M))
        if tags:
            m = rng.choice(tags)
            return text[: m.start(2)] + new + text[m.end(2) :]
    numbers = list(_NUMBER.finditer(text))
    if not numbers:
        return text
    m = rng.choice(numbers)
    return text[: m.start()] + new + text[m.end() :]


def atom_loops(text: str) -> list[tuple[list[str], list[tuple[int, int, list[str]]]]]:
    """``(header tags, rows)`` of every loop whose first tag is an ``_atom_site_`` one; a row is
    ``(start, end, words)`` of one line (rows here are one line each)."""
    loops, pos, state = [], 0, None
    header: list[str] = []
    rows: list = []
    for line in text.split("\n"):
        s = line.strip()
        if s.lower() == "loop_":
            state, header, rows = "header", [], []
            loops.append((header, rows))
        elif state == "header" and s.startswith("_"):
            header.append(s.split()[0].lower())
        elif state in ("header", "rows") and s and not s.startswith(("_", "data_", "#", "loop_")):
            state = "rows"
            rows.append((pos, pos + len(line), s.split()))
        else:
            state = None
        pos += len(line) + 1
    return [(h, r) for h, r in loops if h and h[0].startswith("_atom_site_")]


def _loop_rows(text: str) -> list[tuple[int, int]]:
    return [(start, end) for _, rows in atom_loops(text) for start, end, _ in rows]


def mutate(text: str, kind: str, rng: random.Random) -> bytes:
    """One mutation of ``kind`` (``KINDS``) on ``text``, as bytes."""
    lines = text.split("\n")
    if kind == "delete_line":
        del lines[rng.randrange(len(lines))]
        return "\n".join(lines).encode()
    if kind == "duplicate_line":
        i = rng.randrange(len(lines))
        lines.insert(i, lines[i])
        return "\n".join(lines).encode()
    if kind == "flip_char":
        i = rng.randrange(max(1, len(text)))
        pool = "0123456789.-+eE_ ;'\"#\n\tabcxyzXYZ()[]?é\u00a0\u2212\u00b0"
        return (text[:i] + rng.choice(pool) + text[i + 1 :]).encode()
    if kind == "truncate":
        return text[: rng.randrange(len(text) + 1)].encode()
    if kind == "huge_number":
        new = rng.choice(["1e308", "1e309", "-1e308", "99999999999999999999", "1e30", "4e-320", "1" * 400])
        return _replace_number(text, rng, new).encode()
    if kind == "nan_inf":
        new = rng.choice(["nan", "NaN", "inf", "-inf", "Infinity", "-nan"])
        return _replace_number(text, rng, new, near=rng.choice(["_cell_", None])).encode()
    if kind == "nonpositive_length":
        new = rng.choice(["0", "-0.0", "-3.9", "-1e-9", "0.0000", "1e-300"])
        return _replace_number(text, rng, new, near="_cell_length_").encode()
    if kind == "degenerate_angles":
        choice = rng.choice(["zero", "straight", "sum360", "nearly_flat", "one"])
        values = {
            "zero": ["0", None, None],
            "straight": ["180", None, None],
            "sum360": ["120", "120", "120"],
            "nearly_flat": ["119.9999", "120.0000", "120.0001"],
            "one": [rng.choice(["-90", "360", "270", "1e-12", "179.99999"]), None, None],
        }[choice]
        for tag, value in zip(rng.sample(["alpha", "beta", "gamma"], 3), values):
            if value is not None:
                text = _replace_number(text, rng, value, near=f"_cell_angle_{tag}")
        return text.encode()
    if kind == "occupancy":
        spans = _loop_rows(text)
        if not spans:
            return text.encode()
        start, end = rng.choice(spans)
        row = text[start:end].split()
        new = rng.choice(["1.5", "2", "1.01", "1.0001", "0", "-0.5", "nan", "1e9"])
        if len(row) >= 5:
            row[-1] = new
        return (text[:start] + "  ".join(row) + text[end:]).encode()
    if kind == "unknown_element":
        spans = _loop_rows(text)
        if not spans:
            return text.encode()
        start, end = rng.choice(spans)
        row = text[start:end].split()
        row[0] = rng.choice(["Xx", "Qq", "Zz", "J", "Ab", "Tx3+", "ZZ"])
        return (text[:start] + "  ".join(row) + text[end:]).encode()
    if kind == "long_atom_loop":
        spans = _loop_rows(text)
        if not spans:
            return text.encode()
        start, end = spans[-1]
        row = text[start:end].split()
        n = rng.choice([200, 999, 1001, 3000, 20000])
        extra = []
        for i in range(n):
            r = list(row)
            if len(r) >= 6:
                r[1] = f"{r[0]}{i}"
                for j in (-4, -3, -2):
                    if _NUMBER.fullmatch(r[j]):
                        r[j] = f"{rng.random():.4f}"
            extra.append("  ".join(r))
        return (text[:end] + "\n" + "\n".join(extra) + text[end:]).encode()
    if kind == "space_group":
        number = str(rng.randrange(-1, 240))
        text = _replace_number(text, rng, number, near="_symmetry_Int_Tables_number")
        if rng.random() < 0.5:
            symbol = rng.choice(["'F d -3 m'", "Fm-3m", "P6_3/mmc", "Ia-3d", "'P 1 21/n 1'", "Qz9", "P-1"])
            m = re.search(r"^(_symmetry_space_group_name_H-M\s+)(.*)$", text, re.M)
            if m:
                text = text[: m.start(2)] + symbol + text[m.end(2) :]
        if rng.random() < 0.3:
            ops = rng.choice(["'-x, -y, -z'", "'x+1e308, y, z'", "'y, x, z'", "'x, y, z+1/2'", "'z, x, y'"])
            text = re.sub(r"(\d+\s+'x, y, z'\n)", lambda m: m.group(1) + f"  2  {ops}\n", text, count=1)
        return text.encode()
    if kind == "tiny_cell":
        value = rng.choice(["1e-3", "0.01", "0.05", "0.3", "1e-6"])
        for key in rng.sample("abc", rng.randint(1, 3)):
            text = _replace_number(text, rng, value, near=f"_cell_length_{key}")
        return text.encode()
    if kind == "coordinate":
        spans = _loop_rows(text)
        if not spans:
            return text.encode()
        start, end = rng.choice(spans)
        row = text[start:end].split()
        if len(row) >= 6:
            row[rng.choice([-4, -3, -2])] = rng.choice(
                ["1e15", "999.999", "-1e3", "0.50001", "nan", "1e-320", "2/3"]
            )
        return (text[:start] + "  ".join(row) + text[end:]).encode()
    if kind == "whitespace_run":
        i = rng.randrange(len(lines) + 1)
        unit = rng.choice(["", " ", "\t", "\xa0", "\x0b", "\r"])
        lines[i:i] = [unit] * rng.choice([100, 10_000, 200_000])
        return "\n".join(lines).encode()
    data = text.encode()
    if kind == "binary_junk":
        i = rng.randrange(len(data) + 1)
        junk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 8, 64, 512])))
        return data[:i] + junk + data[i:]
    if kind == "non_utf8":
        i = rng.randrange(len(data) + 1)
        return data[:i] + rng.choice([b"\xff", b"\xfe\xff", b"\x80\x81", b"\xc3", b"\xed\xa0\x80"]) + data[i:]
    raise ValueError(f"unknown mutation {kind!r}")


def make_mutants(sources: list[str], n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``n`` mutants ``(kinds, bytes)``, each one to three mutations of a source, seeded."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = sources[rng.randrange(len(sources))]
        kinds = [KINDS[i % len(KINDS)]] + [rng.choice(KINDS) for _ in range(rng.choice([0, 0, 1, 2]))]
        data = text.encode()
        for kind in kinds:
            data = mutate(data.decode("utf-8", errors="replace"), kind, rng)
        out.append(("+".join(kinds), data))
    return out


def decode(data: bytes) -> str:
    """A file's bytes as the CLI and the loader read them."""
    return data.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------
# oracle


def _number(value: str) -> float | None:
    """The value of a CIF number (a standard uncertainty ``(2)`` removed); None if not a number."""
    try:
        return float(re.sub(r"\(\d+\)$", "", value.strip("'\"")))
    except ValueError:
        return None


def _values(text: str, tag: str) -> list[str]:
    return re.findall(rf"^[ \t]*{re.escape(tag)}[ \t]+(\S+)", text, re.M | re.I)


def _atom_rows(text: str) -> list[dict[str, str]]:
    """Rows of the atom-site loops that have as many words as their loop has tags."""
    return [
        dict(zip(header, words))
        for header, rows in atom_loops(text)
        for _, _, words in rows
        if len(words) == len(header)
    ]


def oracle(text: str) -> str | None:
    """Why ``text`` is invalid (see the module docstring), or None when the oracle finds nothing."""
    cell = {}
    for key in ("a", "b", "c"):
        for value in _values(text, f"_cell_length_{key}"):
            x = _number(value)
            if x is None or not math.isfinite(x) or x <= 0:
                return f"_cell_length_{key} {value}"
            cell[key] = x
    for key in ("alpha", "beta", "gamma"):
        for value in _values(text, f"_cell_angle_{key}"):
            x = _number(value)
            if x is None or not math.isfinite(x) or not 0 < x < 180:
                return f"_cell_angle_{key} {value}"
            cell[key] = x
    if len(cell) == 6:
        ca, cb, cg = (math.cos(math.radians(cell[k])) for k in ("alpha", "beta", "gamma"))
        det = 1 - ca * ca - cb * cb - cg * cg + 2 * ca * cb * cg
        if det <= 1e-12:
            return f"metric tensor not positive definite (angles {cell['alpha']}, {cell['beta']}, {cell['gamma']})"
        volume = cell["a"] * cell["b"] * cell["c"] * math.sqrt(det)
        if not math.isfinite(volume):
            return "cell volume not finite"
    for row in _atom_rows(text):
        occ = row.get("_atom_site_occupancy")
        if occ is not None and occ not in ("?", "."):
            x = _number(occ)
            if x is None or not math.isfinite(x) or not 0 < x <= 1 + 1e-9:
                return f"occupancy {occ}"
        for k in "xyz":
            value = row.get(f"_atom_site_fract_{k}")
            if value is not None and value not in ("?", "."):
                x = _number(value)
                if x is not None and not math.isfinite(x):
                    return f"fract_{k} {value}"
        symbol = row.get("_atom_site_type_symbol")
        if symbol is not None and re.sub(r"[0-9+\-]+$", "", symbol) not in ELEMENTS:
            return f"unknown element {symbol}"
    return None


# ------------------------------------------------------------------------------------------------
# one mutant (in the harness process)


def run_one(text: str) -> dict:
    """What the reader and the validity check do with ``text``."""
    from hfmat.cif import CifError, check_validity, cif_to_structure

    out: dict = {}
    start = time.perf_counter()
    try:
        cif_to_structure(text)
        out["reader"] = "accepted"
    except CifError as err:
        out["reader"] = "timeout" if "took longer than" in str(err) else "refused"
        out["worker_died"] = "worker died" in str(err)
        out["reader_error"] = str(err)[:200]
    except Exception as err:  # noqa: BLE001 - counted as a crash
        out["reader"] = f"raised {type(err).__name__}: {err}"[:300]
    out["t_reader"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        report = check_validity(text)
        out["validity"] = "valid" if report.valid else "invalid"
        reason = report.checks[0].reason if report.checks else ""
        if "took longer than" in reason:
            out["validity"] = "timeout"
        out["worker_died"] = out.get("worker_died") or any("worker died" in c.reason for c in report.checks)
    except Exception as err:  # noqa: BLE001 - counted as a crash
        out["validity"] = f"raised {type(err).__name__}: {err}"[:300]
    out["t_validity"] = time.perf_counter() - start
    return out


def judge(text: str, outcome: dict) -> list[str]:
    """The counts (of ``crash``, ``accepted-invalid``, ``wrongly-valid``) this outcome adds."""
    bad = []
    if outcome["reader"].startswith("raised") or outcome["validity"].startswith("raised"):
        bad.append("crash")
    why = oracle(text)
    if why is not None and outcome["reader"] == "accepted":
        bad.append("accepted-invalid")
    if why is not None and outcome["validity"] == "valid":
        bad.append("wrongly-valid")
    return bad


def _serve() -> None:
    """Harness loop: a JSON string per line in, a JSON outcome per line out."""
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        print(json.dumps(run_one(json.loads(line))), flush=True)


# ------------------------------------------------------------------------------------------------
# the watched harness


class Harness:
    """A ``fuzz_cif.py --serve`` process; ``run(text, deadline)`` -> outcome, "hang" or "crash"."""

    def __init__(self, limit: float):
        self.proc = None
        self.limit = limit

    def _start(self):
        env = dict(
            os.environ,
            OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
            HFMAT_CIF_TIME_LIMIT=str(self.limit),
        )
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self._read(300)

    def _read(self, timeout: float):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return "hang"
        line = self.proc.stdout.readline()
        return json.loads(line) if line else "crash"

    def run(self, text: str, deadline: float):
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(json.dumps(text) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            result = "crash"
        else:
            result = self._read(deadline)
        if not isinstance(result, dict):
            self.close()
        return result

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


def fuzz(mutants, limit: float, grace: float, jobs: int, log=None) -> tuple[Counter, list[dict]]:
    """Run every mutant through ``jobs`` harness processes; the counts and the bad cases."""
    todo: queue.Queue = queue.Queue()
    for item in enumerate(mutants):
        todo.put(item)
    counts: Counter = Counter()
    bad: list[dict] = []
    stopped: list[str] = []  # mutation kinds of the mutants the time limit stopped
    lock = threading.Lock()

    def work():
        harness = Harness(limit)
        while True:
            try:
                i, (kinds, data) = todo.get_nowait()
            except queue.Empty:
                break
            text = decode(data)
            outcome = harness.run(text, 2 * limit + grace)
            with lock:
                counts["mutants"] += 1
                if outcome in ("hang", "crash"):
                    found = [outcome]
                else:
                    found = judge(text, outcome)
                    counts["reader " + outcome["reader"]] += outcome["reader"] in (
                        "accepted",
                        "refused",
                        "timeout",
                    )
                    counts["validity " + outcome["validity"]] += outcome["validity"] in (
                        "valid",
                        "invalid",
                        "timeout",
                    )
                    counts["worker died (contained)"] += bool(outcome.get("worker_died"))
                    counts["oracle invalid"] += oracle(text) is not None
                    if "timeout" in (outcome["reader"], outcome["validity"]):
                        stopped.append(kinds)
                for name in found:
                    counts[name] += 1
                    bad.append(
                        {"index": i, "kinds": kinds, "problem": name, "outcome": outcome, "text": text}
                    )
                if log and counts["mutants"] % 500 == 0:
                    print(f"  {counts['mutants']} mutants ...", file=log, flush=True)
        harness.close()

    threads = [threading.Thread(target=work) for _ in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if stopped:
        counts["stopped by the time limit, mutations: " + ", ".join(sorted(set(stopped)))] += len(stopped)
    return counts, bad


def overhead(sources: list[str]) -> None:
    """Print the median time per call with the limit (worker) and without (in process)."""
    import statistics

    from pymatgen.core import Structure
    from pymatgen.io.cif import CifWriter

    from hfmat.cif import check_validity, cif_to_structure

    start = time.perf_counter()
    check_validity(sources[0], time_limit=60)  # starts the worker
    print(f"worker start-up (first call): {time.perf_counter() - start:.2f} s")
    with_ops = []  # the same crystals written with their symmetry operations: pymatgen's route
    for text in sources[::2]:
        with_ops.append(str(CifWriter(Structure.from_str(text, fmt="cif"), symprec=0.1)))
    for name, fn, texts, repeats in (
        ("cif_to_structure (P1 and canonical: read in process)", cif_to_structure, sources, 3),
        ("cif_to_structure (symmetry operations: pymatgen, worker)", cif_to_structure, with_ops, 3),
        ("check_validity (all)", check_validity, sources, 1),
    ):
        times: dict[str, list[float]] = {"limit on": [], "limit off": []}
        for _ in range(repeats):
            for text in texts:
                for label, limit in (("limit on", 60), ("limit off", 0)):
                    t0 = time.perf_counter()
                    fn(text, time_limit=limit)
                    times[label].append(time.perf_counter() - t0)
        on, off = (statistics.median(times[k]) * 1000 for k in ("limit on", "limit off"))
        print(
            f"{name}: {len(texts)} well-formed CIFs x {repeats}:\n    median {on:.2f} ms per call with the "
            f"limit, {off:.2f} ms without (+{on - off:.2f} ms, {100 * (on - off) / off:+.0f} %); "
            f"total {sum(times['limit on']):.1f} s vs {sum(times['limit off']):.1f} s"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="mutants (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--limit", type=float, default=10.0, help="HFMAT_CIF_TIME_LIMIT in seconds (default 10)"
    )
    parser.add_argument(
        "--grace", type=float, default=20.0, help="seconds past 2*limit before a hang (default 20)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="harness processes (default 1)")
    parser.add_argument("--bad-out", type=Path, help="write the bad cases as JSON lines here")
    parser.add_argument("--overhead", action="store_true", help="time the limit's cost on well-formed CIFs")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return 0
    if args.overhead:
        overhead(source_texts())
        return 0
    start = time.perf_counter()
    mutants = make_mutants(source_texts(), args.n, args.seed)
    counts, bad = fuzz(mutants, args.limit, args.grace, args.jobs, log=sys.stderr)
    wall = time.perf_counter() - start
    print(
        f"{counts['mutants']} mutants (seed {args.seed}, time limit {args.limit:g} s, {args.jobs} job(s)), wall {wall:.0f} s"
    )
    for name in ("crash", "hang", "accepted-invalid", "wrongly-valid"):
        print(f"  {name}: {counts[name]}")
    for name in sorted(
        k for k in counts if k.startswith(("reader ", "validity ", "worker", "oracle", "stopped"))
    ):
        print(f"  ({name}: {counts[name]})")
    if args.bad_out:
        with open(args.bad_out, "w") as f:
            for case in bad:
                f.write(json.dumps(case) + "\n")
    for case in bad[:10]:
        print(f"  #{case['index']} {case['problem']} ({case['kinds']}): {json.dumps(case['outcome'])[:300]}")
    return 1 if any(counts[k] for k in ("crash", "hang", "accepted-invalid", "wrongly-valid")) else 0


if __name__ == "__main__":
    sys.exit(main())
