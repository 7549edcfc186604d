"""CIF text -> pymatgen Structure.

Canonical texts (docs/cif_format.md: a symmetry loop cut to the identity plus a space group) are
expanded here from the operations of that group; any other CIF goes to pymatgen's CifParser.
Every failure is a CifError naming the field or line; the work per text is bounded. The numbers
pymatgen would take silently (a cell that is no cell, an occupancy above 1, a type symbol that is
no element, a coordinate that is not finite) are checked before pymatgen sees them, and pymatgen's
reader runs in a worker process under a time limit (hfmat.cif.timelimit): canonical texts are
read here, by hfmat's own bounded code.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.cif import CifFile, CifParser

from hfmat.chemistry import space_group_number
from hfmat.cif.errors import CifError
from hfmat.cif.sanity import MAX_LENGTH as MAX_LENGTH  # re-exported: the reader's limits
from hfmat.cif.sanity import MAX_SITES, OCCUPANCY_SLACK, check_cell, check_structure
from hfmat.cif.symmetry import group_order, orbit

MAX_CHARS = 1_000_000  #: longest text read
MAX_ROWS = 1000  #: most atom-site rows

_IDENTITY = {"x,y,z", "+x,+y,+z"}


@dataclass(frozen=True)
class AtomSite:
    element: str
    label: str
    multiplicity: int | None
    frac: tuple[float, float, float]
    line: int


@dataclass(frozen=True)
class ParsedCif:
    """The fields of a canonical CIF text, checked for type and range."""

    data_name: str
    lengths: tuple[float, float, float]
    angles: tuple[float, float, float]
    space_group_number: int
    space_group_symbol: str | None
    formula_structural: str | None
    formula_sum: str | None
    volume: float | None
    z: int | None
    sites: tuple[AtomSite, ...]


def _line_of(text: str, needle: str) -> int:
    pos = text.find(needle)
    return text.count("\n", 0, pos) + 1 if pos >= 0 else 0


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _to_float(value: str, field: str) -> float:
    v = re.sub(r"\(\d+\)$", "", str(value).strip())  # standard uncertainty, e.g. 4.594(2)
    try:
        x = float(v)
    except ValueError:
        raise CifError(f"{field}: {value!r} is not a number") from None
    if not math.isfinite(x):
        raise CifError(f"{field}: {value!r} is not a finite number")
    return x


_TOKEN = re.compile(r"""([^'"\s][\S]*)|'(.*?)'(?!\S)|"(.*?)"(?!\S)""")  # pymatgen's CIF tokens


def _check_ascii(text: str) -> None:
    """CifError for a non-ASCII character in an unquoted word outside comments and text fields:
    pymatgen drops such characters, which would turn ``5.4\ufffd3`` (an undecodable byte) into
    5.43 and ``Ti\u00e9`` into Ti. Non-ASCII text in comments and quoted text is fine."""
    if text.isascii():
        return
    in_field = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(";"):
            in_field = not in_field
            continue
        if in_field or line.isascii():
            continue
        line = re.sub(r"(\s|^)#.*$", "", line)
        for word, *_ in _TOKEN.findall(line):
            if word and not word.isascii():
                raise CifError(
                    f"line {number}: {word[:40]!r} holds a non-ASCII character outside a comment or "
                    "quoted text (an undecodable byte?)"
                )


_BLANK_LINES = re.compile(r"\n(?:[^\S\n]*\n)+")  # lines of whitespace (as re's \s has it)


def _blocks(text: str):
    if not isinstance(text, str):
        raise CifError(f"CIF text must be a str, got {type(text).__name__}")
    text = text.lstrip("\ufeff")  # a UTF-8 byte-order mark decoded as text
    if len(text) > MAX_CHARS:
        raise CifError(f"CIF text has {len(text)} characters, more than the {MAX_CHARS} read")
    if "\x00" in text:
        raise CifError(f"CIF text contains a NUL byte at line {_line_of(text, chr(0))}")
    if "data_" not in text:
        raise CifError("no data_ line: not a CIF")
    _check_ascii(text)
    # pymatgen drops blank lines anyway; a long run of them makes its block split (^\s*data_)
    # quadratic: 160,000 newlines took 94 s in this process
    text = _BLANK_LINES.sub("\n", text)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cif = CifFile.from_str(text)
    except Exception as err:
        raise CifError(_one_line(f"CIF syntax could not be read: {type(err).__name__}: {err}")) from None
    if not cif.data:
        raise CifError("no data block")
    return list(cif.data.items())


def _has_sites(block) -> bool:
    return "_atom_site_type_symbol" in block.data or "_atom_site_label" in block.data


def _block(text: str):
    """``(name, block)``: the first data block that holds an atom-site loop (a CIF may open with
    a block of publication data), or the first block when none does."""
    return _pick(_blocks(text))


def _pick(blocks):
    return next(((n, b) for n, b in blocks if _has_sites(b)), blocks[0])


def structure_blocks(text: str) -> list[tuple[str, str]]:
    """``(data_ name, text of that block)`` for every block of ``text`` that holds an atom-site
    loop (what a loader reads as one row each). Raises CifError when the text is not a CIF."""
    return [(name, str(block) + "\n") for name, block in _blocks(text) if _has_sites(block)]


def _field(block, tag: str, required: bool = True):
    value = block.data.get(tag)
    if value is None:
        if required:
            raise CifError(f"missing field {tag}")
        return None
    if isinstance(value, list):
        raise CifError(f"{tag} is a loop column, expected a single value")
    return str(value).strip()


def _column(block, tag: str, n: int | None) -> list[str] | None:
    value = block.data.get(tag)
    if value is None:
        return None
    if not isinstance(value, list):
        value = [value]
    if n is not None and len(value) != n:
        raise CifError(f"loop column {tag} has {len(value)} values, expected {n}")
    return [str(v).strip() for v in value]


def _is_canonical(block) -> bool:
    if "_atom_site_type_symbol" not in block.data and "_atom_site_label" in block.data:
        return False  # sites named by label alone (a molecular CIF): pymatgen reads the element
    ops = block.data.get("_symmetry_equiv_pos_as_xyz", block.data.get("_space_group_symop_operation_xyz"))
    if ops is not None:
        ops = ops if isinstance(ops, list) else [ops]
        if [re.sub(r"\s+", "", str(o)).strip("'\"").lower() for o in ops] not in ([o] for o in _IDENTITY):
            return False
    symbol = block.data.get("_symmetry_space_group_name_H-M")
    if symbol is not None:
        # a symbol outside the standard short ones (another setting, e.g. 'P 1 21/n 1') is left
        # to pymatgen, which knows the settings
        try:
            space_group_number(str(symbol).strip("'\" ").replace(" ", ""))
        except ValueError:
            return False
        return True
    return "_symmetry_Int_Tables_number" in block.data


def _space_group(block) -> tuple[int, str | None]:
    number_text = _field(block, "_symmetry_Int_Tables_number", required=False)
    symbol = _field(block, "_symmetry_space_group_name_H-M", required=False)
    number = None
    if number_text is not None:
        try:
            number = int(number_text)
        except ValueError:
            raise CifError(f"_symmetry_Int_Tables_number: {number_text!r} is not an integer") from None
        if not 1 <= number <= 230:
            raise CifError(f"_symmetry_Int_Tables_number: {number} is outside 1..230")
    if symbol is not None:
        symbol = symbol.strip("'\"")
        try:
            from_symbol = space_group_number(symbol.replace(" ", ""))
        except ValueError:
            if number is None:
                raise CifError(f"_symmetry_space_group_name_H-M: unknown symbol {symbol!r}") from None
            from_symbol = None
        if number is not None and from_symbol is not None and from_symbol != number:
            raise CifError(
                f"_symmetry_space_group_name_H-M {symbol!r} is group {from_symbol}, "
                f"but _symmetry_Int_Tables_number is {number}"
            )
        number = number if number is not None else from_symbol
    return number, symbol


def _element(value: str, line: str) -> str:
    symbol = re.sub(r"[0-9+\-]+$", "", value.strip())
    try:
        Element(symbol)
    except Exception:
        raise CifError(f"_atom_site_type_symbol: unknown element {value!r} in {line}") from None
    return symbol


def _cell(block) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The stated cell lengths and angles, checked (hfmat.cif.sanity.check_cell)."""
    lengths = tuple(_to_float(_field(block, f"_cell_length_{k}"), f"_cell_length_{k}") for k in "abc")
    angles = tuple(
        _to_float(_field(block, f"_cell_angle_{k}"), f"_cell_angle_{k}") for k in ("alpha", "beta", "gamma")
    )
    check_cell(lengths, angles)
    return lengths, angles


def parse_canonical(text: str) -> ParsedCif:
    """Read and check the fields of a canonical CIF text (no expansion)."""
    name, block = _block(text)
    if not _is_canonical(block):
        raise CifError("not a canonical CIF: the symmetry loop holds more than the identity")
    lengths, angles = _cell(block)
    number, symbol = _space_group(block)
    volume_text = _field(block, "_cell_volume", required=False)
    z_text = _field(block, "_cell_formula_units_Z", required=False)
    z = None
    if z_text is not None:
        try:
            z = int(z_text)
        except ValueError:
            raise CifError(f"_cell_formula_units_Z: {z_text!r} is not an integer") from None

    elements = _column(block, "_atom_site_type_symbol", None)
    if elements is None:
        raise CifError("missing atom-site loop (_atom_site_type_symbol)")
    n = len(elements)
    if n == 0:
        raise CifError("atom-site loop has no rows")
    if n > MAX_ROWS:
        raise CifError(f"atom-site loop has {n} rows, more than {MAX_ROWS}")
    xyz = []
    for k in "xyz":
        col = _column(block, f"_atom_site_fract_{k}", n)
        if col is None:
            raise CifError(f"missing loop column _atom_site_fract_{k}")
        xyz.append(col)
    labels = _column(block, "_atom_site_label", n) or [f"{e}{i}" for i, e in enumerate(elements)]
    mults = _column(block, "_atom_site_symmetry_multiplicity", n)
    occus = _column(block, "_atom_site_occupancy", n)
    sites = []
    for i in range(n):
        where = f"atom-site row {i + 1} ({labels[i]!r})"
        element = _element(elements[i], where)
        frac = tuple(_to_float(xyz[j][i], f"_atom_site_fract_{'xyz'[j]} of {where}") for j in range(3))
        if any(abs(f) > 1e3 for f in frac):
            raise CifError(f"fractional coordinate out of range in {where}: {frac}")
        mult = None
        if mults is not None:
            try:
                mult = int(mults[i])
            except ValueError:
                raise CifError(
                    f"_atom_site_symmetry_multiplicity of {where}: {mults[i]!r} is not an integer"
                ) from None
            if not 1 <= mult <= 192:
                raise CifError(f"_atom_site_symmetry_multiplicity of {where}: {mult} is outside 1..192")
        if occus is not None:
            occ = _to_float(occus[i], f"_atom_site_occupancy of {where}")
            if abs(occ - 1.0) > 1e-6:
                raise CifError(f"_atom_site_occupancy of {where}: {occ} (only ordered sites are read)")
        sites.append(AtomSite(element, labels[i], mult, frac, _line_of(text, labels[i])))
    stated = sum(s.multiplicity or 1 for s in sites)
    if stated > MAX_SITES:
        raise CifError(f"atom-site multiplicities sum to {stated}, more than the {MAX_SITES} sites read")
    return ParsedCif(
        data_name=name,
        lengths=lengths,
        angles=angles,
        space_group_number=number,
        space_group_symbol=symbol,
        formula_structural=_field(block, "_chemical_formula_structural", required=False),
        formula_sum=_field(block, "_chemical_formula_sum", required=False),
        volume=None if volume_text is None else _to_float(volume_text, "_cell_volume"),
        z=z,
        sites=tuple(sites),
    )


def _lattice(parsed: ParsedCif) -> Lattice:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lattice = Lattice.from_parameters(*parsed.lengths, *parsed.angles)
            volume = float(lattice.volume)
    except Exception as err:
        raise CifError(
            f"cell lengths {parsed.lengths} and angles {parsed.angles} make no lattice: {err}"
        ) from None
    if not (np.all(np.isfinite(lattice.matrix)) and math.isfinite(volume) and volume > 1e-6):
        raise CifError(f"cell angles {parsed.angles} make no lattice (volume {volume:.3g} A^3)")
    return lattice


def expand(parsed: ParsedCif) -> tuple[Structure, list[int]]:
    """The full cell of a parsed canonical CIF, and the orbit size found for each atom-site row."""
    lattice = _lattice(parsed)
    order = group_order(parsed.space_group_number)
    if len(parsed.sites) * order > 50 * MAX_SITES:
        raise CifError(
            f"{len(parsed.sites)} atom-site rows in a group of order {order} could expand past {MAX_SITES} sites"
        )
    species, coords, sizes = [], [], []
    for site in parsed.sites:
        images = orbit(np.array(site.frac), parsed.space_group_number)
        sizes.append(len(images))
        species += [site.element] * len(images)
        coords.append(images)
        if len(species) > MAX_SITES:
            raise CifError(f"expanding the atom sites gives more than {MAX_SITES} sites (at {site.label!r})")
    structure = Structure(lattice, species, np.concatenate(coords))
    return structure, sizes


def _disordered(block) -> bool:
    occupancies = _column(block, "_atom_site_occupancy", None) or []
    try:
        return any(abs(float(re.sub(r"\(\d+\)$", "", o)) - 1.0) > 1e-6 for o in occupancies)
    except ValueError:
        return False  # the canonical reader names the bad value


def cif_to_structure(text: str, disorder: bool = False, *, time_limit: float | None = None) -> Structure:
    """The full structure of a CIF text: a canonical one (expanded from its space group) or any
    CIF pymatgen reads. Partial occupancies are refused unless ``disorder`` (a dataset loader
    keeps such rows; pymatgen reads them). Every structure passes hfmat.cif.sanity.check_structure
    before it is returned. Raises CifError, and only CifError, on bad input.

    A canonical text is read in this process; any other CIF is checked here and then read by
    pymatgen in a worker process that is stopped after ``time_limit`` seconds (default: the
    environment variable HFMAT_CIF_TIME_LIMIT, else 30; 0 for no limit, in this process):
    ``CifError("reading the CIF took longer than N s ...")``."""
    try:
        blocks = _blocks(text)
        block = _pick(blocks)[1]
        if _is_canonical(block) and not (disorder and _disordered(block)):
            return _read(blocks, text, disorder)
        _precheck(block)  # refused here, before a worker is asked
    except CifError:
        raise
    except Exception as err:  # a last guard: nothing but CifError leaves the reader
        raise CifError(_one_line(f"CIF could not be read: {type(err).__name__}: {err}")) from None
    from hfmat.cif.timelimit import run_limited

    return run_limited("cif_to_structure", "reading the CIF", text, disorder, time_limit_s=time_limit)


def read_structure(text: str, disorder: bool = False) -> Structure:
    """cif_to_structure in this process, with no time limit (what the worker runs)."""
    try:
        return _read(_blocks(text), text, disorder)
    except CifError:
        raise
    except Exception as err:  # a last guard: nothing but CifError leaves the reader
        raise CifError(_one_line(f"CIF could not be read: {type(err).__name__}: {err}")) from None


def _read(blocks, text: str, disorder: bool) -> Structure:
    name, block = _pick(blocks)
    text = _BLANK_LINES.sub("\n", text.lstrip("\ufeff"))  # as _blocks read it
    if len(blocks) > 1:  # read that block alone
        text = str(block) + "\n"
    if _is_canonical(block) and not (disorder and _disordered(block)):
        structure = expand(parse_canonical(text))[0]
    else:
        structure = _read_with_pymatgen(text, block)
    if len(blocks) > 1:  # say which block was read
        structure.properties["cif_block"] = (
            f"data_{name} (block {[n for n, _ in blocks].index(name) + 1} of {len(blocks)})"
        )
    return check_structure(structure)


def _coordinate(value: str, field: str) -> float:
    if re.fullmatch(r"-?\d+/\d+", value.strip()):  # 1/3, as pymatgen reads it
        top, bottom = value.strip().split("/")
        if int(bottom) == 0:
            raise CifError(f"{field}: {value!r} divides by zero")
        return int(top) / int(bottom)
    return _to_float(value, field)


def _check_numbers(block) -> None:
    """The values pymatgen would take silently, checked before it reads the block: the cell
    (hfmat.cif.sanity.check_cell), each type symbol an element, each occupancy in (0, 1], each
    coordinate finite. ``?`` and ``.`` (unknown, inapplicable) are left to pymatgen."""
    _cell(block)
    labels = _column(block, "_atom_site_label", None)
    symbols = _column(block, "_atom_site_type_symbol", None)
    rows = len(symbols or labels or [])
    if rows > 10 * MAX_SITES:  # even with ten species sharing each site: more than MAX_SITES sites
        raise CifError(f"atom-site loop has {rows} rows, more than {10 * MAX_SITES}")

    def where(i: int) -> str:
        return f"atom-site row {i + 1}" + (f" ({labels[i]!r})" if labels and i < len(labels) else "")

    for i, symbol in enumerate(symbols or []):
        if symbol not in ("?", "."):
            _element(symbol, where(i))
    for i, value in enumerate(_column(block, "_atom_site_occupancy", None) or []):
        if value not in ("?", "."):
            occupancy = _to_float(value, f"_atom_site_occupancy of {where(i)}")
            if not 0 < occupancy <= 1 + OCCUPANCY_SLACK:
                raise CifError(f"_atom_site_occupancy of {where(i)}: {occupancy:g} is outside (0, 1]")
    for tag in ("_atom_site_fract_", "_atom_site_Cartn_"):
        for k in "xyz":
            for i, value in enumerate(_column(block, f"{tag}{k}", None) or []):
                if value not in ("?", "."):
                    x = _coordinate(value, f"{tag}{k} of {where(i)}")
                    if tag == "_atom_site_fract_" and abs(x) > 1e3:
                        raise CifError(f"{tag}{k} of {where(i)}: {x:g} is out of range (|x| > 1000)")


def _precheck(block) -> None:
    """What must hold before pymatgen reads ``block``: atom sites, the numbers (_check_numbers),
    a bounded expansion."""
    elements = _column(block, "_atom_site_type_symbol", None) or _column(block, "_atom_site_label", None)
    if not elements:
        raise CifError("missing atom-site loop (_atom_site_type_symbol / _atom_site_label)")
    _check_numbers(block)  # pymatgen would turn a NaN or negative cell into a structure that crashes spglib
    ops = _column(block, "_symmetry_equiv_pos_as_xyz", None) or _column(
        block, "_space_group_symop_operation_xyz", None
    )
    bound = len(elements) * (len(ops) if ops else 192)
    if bound > 50 * MAX_SITES:
        raise CifError(f"{len(elements)} atom-site rows could expand past {MAX_SITES} sites")


def _read_with_pymatgen(text: str, block) -> Structure:
    _precheck(block)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structures = CifParser(io.StringIO(text)).parse_structures(primitive=False, on_error="raise")
        except Exception as err:
            raise CifError(
                _one_line(f"pymatgen could not read the CIF: {type(err).__name__}: {err}")
            ) from None
    if not structures:
        raise CifError("pymatgen found no structure in the CIF")
    return structures[0]
