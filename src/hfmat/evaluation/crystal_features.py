"""Fixed-length structure + composition features of crystals, for the property predictor.

Computed in one pass over a batch with numpy and pymatgen's neighbour list (a C routine), so a
thousand small cells take seconds, not the minutes matminer's site fingerprints need. Per crystal:

- composition: the mean, standard deviation, minimum and maximum over the sites of 22 elemental
  properties (the properties of matminer's Magpie preset, taken from its ``MagpieData`` table);
- cell: atoms per cell, log volume per atom, density, packing fraction (covalent radii), the cell
  lengths over ``V^(1/3)`` sorted, the cosines of the cell angles sorted;
- radial distribution: every pair within ``CUTOFF`` smeared by Gaussians on a grid, per atom; the
  same with each pair weighted by the product and by the difference of five standardised elemental
  properties of its two atoms (which elements sit at which distance);
- local environment per site (nearest-neighbour distance, that distance over the sum of covalent
  radii, neighbours within 1.2x and 1.4x of it), as mean / std / min / max over the sites, and the
  products of two elemental properties with them averaged over the sites;
- bond angles: a histogram of the cosines of the angles between a site's first-shell neighbours
  (within 1.25x its nearest-neighbour distance), per atom.

The elemental table is an input (``[MAX_Z + 1, len(ELEMENT_PROPERTIES)]``): a trained predictor
stores the table it was trained with next to its weights, so predicting needs neither matminer nor
the version of its data it was trained with. :func:`element_table` builds it from matminer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure

from hfmat.extras import require

#: matminer Magpie-preset elemental properties, in its order.
ELEMENT_PROPERTIES = (
    "Number",
    "MendeleevNumber",
    "AtomicWeight",
    "MeltingT",
    "Column",
    "Row",
    "CovalentRadius",
    "Electronegativity",
    "NsValence",
    "NpValence",
    "NdValence",
    "NfValence",
    "NValence",
    "NsUnfilled",
    "NpUnfilled",
    "NdUnfilled",
    "NfUnfilled",
    "NUnfilled",
    "GSvolume_pa",
    "GSbandgap",
    "GSmagmom",
    "SpaceGroupNumber",
)
#: Elements 1..MAX_Z have a row in the table; a crystal with a heavier one gets no features.
MAX_Z = 100
#: Properties that weight the pair distributions and the local-environment products.
PAIR_PROPERTIES = ("Electronegativity", "CovalentRadius", "Row", "Column", "NValence")
CUTOFF = 6.0  # Angstrom
RDF_CENTERS = np.round(np.arange(0.8, CUTOFF + 1e-9, 0.2), 3)
RDF_WIDTH = 0.2
PAIR_CENTERS = np.round(np.arange(1.0, CUTOFF + 1e-9, 0.5), 3)
PAIR_WIDTH = 0.35
ANGLE_BINS = 12
#: A cell this crowded (expected pairs within CUTOFF) is not featurised: atoms on top of each other.
MAX_PAIRS = 200_000
#: Nor is a cell this large (no crystal: isolated atoms, and a neighbour search that would need
#: terabytes for a long, flat cell): volume per atom in A^3, cell length in A.
MAX_VOLUME_PER_ATOM = 1e4
MAX_LENGTH = 500.0
_STATS = ("mean", "std", "min", "max")
_SITE = ("nn_distance", "nn_over_radii", "cn_1.2", "cn_1.4")
_MIXED = (
    ("Electronegativity", "cn_1.2"),
    ("Electronegativity", "nn_distance"),
    ("CovalentRadius", "cn_1.2"),
    ("CovalentRadius", "nn_distance"),
)


def feature_names() -> list[str]:
    """The name of every feature column, in order."""
    names = [f"comp_{p}_{s}" for p in ELEMENT_PROPERTIES for s in _STATS]
    names += ["num_atoms", "log_volume_per_atom", "density", "packing_fraction"]
    names += [f"length_{i}" for i in range(3)] + [f"cos_angle_{i}" for i in range(3)]
    names += [f"rdf_{c:.1f}" for c in RDF_CENTERS]
    names += [
        f"prdf_{p}_{w}_{c:.1f}" for p in PAIR_PROPERTIES for w in ("prod", "diff") for c in PAIR_CENTERS
    ]
    names += [f"site_{q}_{s}" for q in _SITE for s in _STATS]
    names += [f"site_{p}_x_{q}" for p, q in _MIXED]
    names += [f"angle_cos_{i}" for i in range(ANGLE_BINS)]
    return names


def element_table() -> np.ndarray:
    """``[MAX_Z + 1, len(ELEMENT_PROPERTIES)]`` from matminer's Magpie data (row 0 unused). A value
    matminer lacks for an element is that property's mean over the elements that have it."""
    from pymatgen.core import Element

    data = require("matminer.utils.data").MagpieData()
    table = np.full((MAX_Z + 1, len(ELEMENT_PROPERTIES)), np.nan)
    for z in range(1, MAX_Z + 1):
        symbol = Element.from_Z(z).symbol
        for k, prop in enumerate(ELEMENT_PROPERTIES):
            value = data.all_elemental_props[prop].get(symbol)
            if value is not None:
                table[z, k] = float(value)
    means = np.nanmean(table[1:], axis=0)
    rows = np.arange(1, MAX_Z + 1)
    table[1:] = np.where(np.isnan(table[1:]), means, table[1:])
    table[0] = means
    assert np.isfinite(table[rows]).all()
    return table


def _smear(d: np.ndarray, centers: np.ndarray, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((d[:, None] - centers[None, :]) / width) ** 2)


def _stats(values: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """mean, std, min, max of ``values`` grouped by ``owner`` (0..n-1, every group non-empty)."""
    count = np.bincount(owner, minlength=n).astype(float)
    mean = np.bincount(owner, weights=values, minlength=n) / count
    var = np.bincount(owner, weights=(values - mean[owner]) ** 2, minlength=n) / count
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, owner, values)
    np.maximum.at(hi, owner, values)
    return np.stack([mean, np.sqrt(var), lo, hi], axis=1)


def _angle_histograms(vectors: np.ndarray, center: np.ndarray, site_owner: np.ndarray, m: int) -> np.ndarray:
    """``[m, ANGLE_BINS]``: per crystal, the histogram of the cosines between every two first-shell
    vectors of the same site (``center``: global site index of each vector)."""
    hist = np.zeros((m, ANGLE_BINS))
    order = np.argsort(center, kind="stable")
    vectors, center = vectors[order], center[order]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-8)
    bounds = np.searchsorted(center, np.arange(len(site_owner) + 1))
    for site, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        if b - a < 2:
            continue
        v = unit[a:b]
        cos = (v @ v.T)[np.triu_indices(b - a, k=1)]
        hist[site_owner[site]] += np.histogram(np.clip(cos, -1, 1), bins=ANGLE_BINS, range=(-1.0, 1.0))[0]
    return hist


def featurize(structures: Sequence[Structure | None], table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(features [n, len(feature_names())], ok [n])``: the features of each crystal, a row of NaN
    where a crystal has none (not a Structure, no sites, an element beyond ``MAX_Z``, a degenerate
    cell, atoms piled on each other, a cell beyond ``MAX_VOLUME_PER_ATOM`` or ``MAX_LENGTH``)."""
    table = np.asarray(table, dtype=float)
    if table.shape != (MAX_Z + 1, len(ELEMENT_PROPERTIES)):
        raise ValueError(
            f"element table has shape {table.shape}, expected {(MAX_Z + 1, len(ELEMENT_PROPERTIES))}"
        )
    n_features = len(feature_names())
    out = np.full((len(structures), n_features), np.nan)
    col = {p: k for k, p in enumerate(ELEMENT_PROPERTIES)}
    scale_mean, scale_std = table[1:].mean(axis=0), table[1:].std(axis=0).clip(1e-12)
    pair_cols = [col[p] for p in PAIR_PROPERTIES]

    # Gather sites and pairs of every crystal that can be featurised into flat arrays.
    kept, site_z, site_owner, cells = [], [], [], []
    pair_i, pair_j, pair_d, pair_vec = [], [], [], []
    offset = 0
    for k, s in enumerate(structures):
        if not isinstance(s, Structure) or len(s) == 0:
            continue
        z = np.asarray(s.atomic_numbers)
        if z.min() < 1 or z.max() > MAX_Z:
            continue
        try:
            lattice = s.lattice
            volume = float(lattice.volume)
            if not np.isfinite(volume) or volume <= 1e-6 or not np.isfinite(s.frac_coords).all():
                continue
            n = len(s)
            if n * n * 4.19 * CUTOFF**3 / volume > MAX_PAIRS:
                continue
            if volume / n > MAX_VOLUME_PER_ATOM or max(lattice.abc) > MAX_LENGTH:
                continue
            c, p, images, d = s.get_neighbor_list(CUTOFF)
        except Exception:  # noqa: BLE001 - a degenerate generated cell gets no features, not an error
            continue
        cart = s.cart_coords
        vec = cart[p] + images @ lattice.matrix - cart[c]
        cells.append((len(kept), n, volume, lattice.abc, lattice.angles))
        kept.append(k)
        site_z.append(z)
        site_owner.append(np.full(n, len(kept) - 1))
        pair_i.append(c + offset)
        pair_j.append(p + offset)
        pair_d.append(d)
        pair_vec.append(vec)
        offset += n
    if not kept:
        return out, np.zeros(len(structures), dtype=bool)

    m = len(kept)
    z = np.concatenate(site_z)
    owner = np.concatenate(site_owner)
    pi, pj = np.concatenate(pair_i).astype(int), np.concatenate(pair_j).astype(int)
    d, vec = np.concatenate(pair_d), np.concatenate(pair_vec)
    props = table[z]
    scaled = (props - scale_mean) / scale_std
    n_atoms = np.bincount(owner, minlength=m).astype(float)
    parts = []

    # composition
    comp = np.stack([_stats(props[:, k], owner, m) for k in range(props.shape[1])], axis=1)
    parts.append(comp.reshape(m, -1))

    # cell
    volume = np.array([c[2] for c in cells])
    abc = np.sort(np.array([c[3] for c in cells]), axis=1) / np.cbrt(volume)[:, None]
    cos = np.sort(np.cos(np.radians(np.array([c[4] for c in cells]))), axis=1)
    mass = np.bincount(owner, weights=props[:, col["AtomicWeight"]], minlength=m)
    radius = props[:, col["CovalentRadius"]] / 100.0  # pm -> Angstrom
    packing = np.bincount(owner, weights=4.0 / 3.0 * np.pi * radius**3, minlength=m) / volume
    parts.append(
        np.column_stack([n_atoms, np.log(volume / n_atoms), mass * 1.66053906660 / volume, packing, abc, cos])
    )

    # radial distribution functions
    pair_owner = owner[pi]
    rdf = np.zeros((m, len(RDF_CENTERS)))
    np.add.at(rdf, pair_owner, _smear(d, RDF_CENTERS, RDF_WIDTH))
    parts.append(rdf / n_atoms[:, None])
    g = _smear(d, PAIR_CENTERS, PAIR_WIDTH)
    for k in pair_cols:
        a, b = scaled[pi, k], scaled[pj, k]
        for w in (a * b, np.abs(a - b)):
            prdf = np.zeros((m, len(PAIR_CENTERS)))
            np.add.at(prdf, pair_owner, w[:, None] * g)
            parts.append(prdf / n_atoms[:, None])

    # local environments
    n_sites = len(z)
    nn = np.full(n_sites, CUTOFF)
    np.minimum.at(nn, pi, d)
    ratio = np.full(n_sites, CUTOFF / 0.5)
    np.minimum.at(ratio, pi, d / (radius[pi] + radius[pj]).clip(1e-3))
    cn12 = np.bincount(pi[d <= 1.2 * nn[pi]], minlength=n_sites).astype(float)
    cn14 = np.bincount(pi[d <= 1.4 * nn[pi]], minlength=n_sites).astype(float)
    site = {"nn_distance": nn, "nn_over_radii": ratio, "cn_1.2": cn12, "cn_1.4": cn14}
    parts.extend(_stats(site[q], owner, m) for q in _SITE)
    mixed = [scaled[:, col[p]] * site[q] for p, q in _MIXED]
    parts.append(np.column_stack([np.bincount(owner, weights=v, minlength=m) / n_atoms for v in mixed]))

    # bond angles in the first shell
    shell = d <= 1.25 * nn[pi]
    angles = _angle_histograms(vec[shell], pi[shell], owner, m)
    parts.append(angles / n_atoms[:, None])

    features = np.concatenate(parts, axis=1)
    assert features.shape[1] == n_features, (features.shape, n_features)
    good = np.isfinite(features).all(axis=1)
    rows = np.asarray(kept)
    out[rows[good]] = features[good]
    ok = np.zeros(len(structures), dtype=bool)
    ok[rows[good]] = True
    return out, ok
