"""The 3D view of a unit cell: a plotly figure (atoms coloured by element in Jmol's colours, sized
by atomic radius, the twelve cell edges drawn), which Gradio's ``gr.Plot`` shows as a rotatable,
zoomable WebGL scene with no network access (plotly.js ships inside Gradio)."""

from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np

#: The twelve edges of a cell as pairs of corners, each corner a 0/1 triple of lattice vectors.
_CORNERS = list(itertools.product((0, 1), repeat=3))
EDGES = [(a, b) for a, b in itertools.combinations(_CORNERS, 2) if sum(x != y for x, y in zip(a, b)) == 1]


@lru_cache(maxsize=1)
def _jmol_colors() -> dict[str, tuple[int, int, int]]:
    """Jmol's element colours, from the table pymatgen ships (pymatgen/vis/ElementColorSchemes.yaml)."""
    from importlib.resources import files

    import yaml

    text = (files("pymatgen.vis") / "ElementColorSchemes.yaml").read_text()
    return {el: tuple(rgb) for el, rgb in yaml.safe_load(text)["Jmol"].items()}


def element_color(symbol: str) -> str:
    """The CSS colour of an element (Jmol's scheme; grey for one it does not list)."""
    r, g, b = _jmol_colors().get(symbol, (128, 128, 128))
    return f"rgb({r},{g},{b})"


def _radius(symbol: str) -> float:
    from pymatgen.core import Element

    try:
        radius = Element(symbol).atomic_radius
    except ValueError:
        radius = None
    return float(radius) if radius else 1.0


def cell_edges(lattice_matrix) -> np.ndarray:
    """Cartesian coordinates of the cell edges as one polyline with NaN breaks (plotly's way of
    drawing separate segments in one trace): shape (3 * len(EDGES), 3)."""
    matrix = np.asarray(lattice_matrix, dtype=float)
    points = []
    for a, b in EDGES:
        points += [np.array(a) @ matrix, np.array(b) @ matrix, [np.nan] * 3]
    return np.array(points)


def cell_figure(structure, title: str | None = None):
    """A plotly ``Figure`` of ``structure``'s unit cell: one 3D scatter trace per element (so the
    legend names them) and one line trace for the cell edges, with equal axis scales."""
    import plotly.graph_objects as go

    fig = go.Figure()
    edges = cell_edges(structure.lattice.matrix)
    fig.add_trace(
        go.Scatter3d(
            x=edges[:, 0],
            y=edges[:, 1],
            z=edges[:, 2],
            mode="lines",
            line={"color": "black", "width": 3},
            name="cell",
            hoverinfo="skip",
        )
    )
    by_element: dict[str, list[int]] = {}
    for i, site in enumerate(structure):
        symbol = getattr(site.specie, "symbol", str(site.specie))
        by_element.setdefault(symbol, []).append(i)
    for symbol, indices in sorted(by_element.items()):
        xyz = np.array([structure[i].coords for i in indices])
        frac = np.array([structure[i].frac_coords for i in indices])
        fig.add_trace(
            go.Scatter3d(
                x=xyz[:, 0],
                y=xyz[:, 1],
                z=xyz[:, 2],
                mode="markers",
                name=symbol,
                marker={
                    "size": 10 + 8 * _radius(symbol),
                    "color": element_color(symbol),
                    "line": {"color": "black", "width": 1},
                    "opacity": 1.0,
                },
                text=[
                    f"{symbol} {i}: frac ({f[0]:.3f}, {f[1]:.3f}, {f[2]:.3f})" for i, f in zip(indices, frac)
                ],
                hoverinfo="text",
            )
        )
    axis = {
        "showbackground": False,
        "showgrid": False,
        "zeroline": False,
        "showticklabels": False,
        "title": "",
    }
    fig.update_layout(
        title=title,
        scene={"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "data"},
        margin={"l": 0, "r": 0, "t": 30 if title else 0, "b": 0},
        legend={"itemsizing": "constant"},
        height=420,
    )
    return fig
