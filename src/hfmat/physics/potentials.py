"""Universal ML potentials behind one small interface: energy, forces and stress of many cells.

- ``chgnet``: CHGNet 0.3.0 (the weights inside the ``chgnet`` wheel). :meth:`CHGNetPotential.predict`
  evaluates a whole list of cells as one batched graph, with the forces and stress taken as plain
  first derivatives (CHGNet's own ``predict_graph`` builds a second-order autograd graph for
  training, which costs several times more on a CPU).
- ``sevennet`` (alias ``7net-0``): SevenNet-0 (11 Jul 2024) through sevenn's ASE calculator, one cell
  at a time; the second opinion for cross-checks. Its energies get the MP2020 corrections CHGNet's
  training energies already carry (:mod:`hfmat.physics.corrections`), so the two share one scale.

``predict`` never raises for one bad cell: each item is a :class:`Prediction` or a message saying
why the potential could not evaluate that cell (an element outside its training data, a cell it
cannot build a graph for, a non-finite result).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress
from pymatgen.core import Structure

from hfmat.chemistry import element_symbol
from hfmat.extras import require
from hfmat.physics.corrections import mp2020_correction


@dataclass
class Prediction:
    """One cell: total energy (eV), forces (n x 3, eV/Å), stress (Voigt 6, eV/Å³, ASE's sign)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray


class Potential:
    """Base class: ``predict(list of Atoms) -> list of Prediction | error message``."""

    name = "potential"
    #: Largest atomic number with training data (elements above it are refused per cell).
    max_z = 118
    description = ""

    def predict(self, atoms_list: list[Atoms]) -> list[Prediction | str]:
        return [self._safe_one(atoms) for atoms in atoms_list]

    def _predict_one(self, atoms: Atoms) -> Prediction:
        raise NotImplementedError

    def _safe_one(self, atoms: Atoms) -> Prediction | str:
        problem = self.check(atoms)
        if problem:
            return problem
        try:
            return _finite(self._predict_one(atoms), self.name)
        except Exception as err:  # noqa: BLE001 - one bad cell fails alone, with the reason
            return f"{self.name} could not evaluate this cell: {type(err).__name__}: {err}"

    def check(self, atoms: Atoms) -> str | None:
        """A message if the potential cannot take ``atoms`` at all (elements, empty or flat cell)."""
        if len(atoms) == 0:
            return "the cell has no atoms"
        too_heavy = sorted({int(z) for z in atoms.numbers if z > self.max_z or z < 1})
        if too_heavy:
            names = ", ".join(element_symbol(z) if 1 <= z <= 118 else str(z) for z in too_heavy)
            return (
                f"{self.name} has no training data for element(s) {names} "
                f"(it covers Z = 1..{self.max_z}, up to {element_symbol(self.max_z)})"
            )
        volume = abs(float(np.linalg.det(atoms.cell.array)))
        if not volume > 1e-3:
            return f"the cell has no volume ({volume:.3g} Å³)"
        return None


def _finite(prediction: Prediction, name: str) -> Prediction | str:
    values = (prediction.energy, prediction.forces, prediction.stress)
    if all(np.isfinite(v).all() for v in values):
        return prediction
    return f"{name} gave a non-finite energy, force or stress for this cell"


def _structure(atoms: Atoms) -> Structure:
    return Structure(atoms.cell.array, atoms.numbers, atoms.positions, coords_are_cartesian=True)


class CHGNetPotential(Potential):
    """CHGNet (``model_name`` one of the versions in the wheel: 0.3.0, 0.2.0, r2scan), batched."""

    name = "chgnet"

    def __init__(self, model_name: str = "0.3.0", device: str = "cpu"):
        chgnet = require("chgnet")
        model_module = require("chgnet.model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model = model_module.CHGNet.load(model_name=model_name, use_device=device, verbose=False)
        if not self.model.is_intensive:
            raise ValueError(f"CHGNet {model_name} is not an energy-per-atom model; hfmat expects one")
        self.model.eval()
        self.model.requires_grad_(False)  # forces need d/d(positions) only: 20 % less work per call
        self.model.graph_converter.set_isolated_atom_response("error")
        self.device = device
        self.max_z = int(self.model.atom_embedding.embedding.num_embeddings)
        self.description = f"CHGNet {model_name} (chgnet {chgnet.__version__})"

    def predict(self, atoms_list: list[Atoms]) -> list[Prediction | str]:
        out: list[Prediction | str] = [""] * len(atoms_list)
        graphs, where = [], []
        for i, atoms in enumerate(atoms_list):
            problem = self.check(atoms)
            if problem:
                out[i] = problem
                continue
            try:
                graphs.append(self.model.graph_converter(_structure(atoms), graph_id=str(i)))
                where.append(i)
            except Exception as err:  # noqa: BLE001 - e.g. isolated atoms: this cell fails alone
                out[i] = f"CHGNet cannot build a graph of this cell: {err}"
        if graphs:
            try:
                results = self._forward(graphs)
            except Exception:  # noqa: BLE001 - find the culprit: evaluate the cells one by one
                results = [self._forward_or_message(g) for g in graphs]
            for i, result in zip(where, results):
                out[i] = result if isinstance(result, str) else _finite(result, self.name)
        return out

    def _forward_or_message(self, graph) -> Prediction | str:
        try:
            return self._forward([graph])[0]
        except Exception as err:  # noqa: BLE001
            return f"CHGNet could not evaluate this cell: {type(err).__name__}: {err}"

    def _forward(self, graphs) -> list[Prediction]:
        import torch
        from chgnet.model.model import BatchedGraph

        model = self.model
        graphs = [g.to(self.device) for g in graphs]
        batch = BatchedGraph.from_graphs(
            graphs,
            bond_basis_expansion=model.bond_basis_expansion,
            angle_basis_expansion=model.angle_basis_expansion,
            compute_stress=True,
        )
        with torch.enable_grad():
            result = model._compute(batch)
            n_atoms = result["atoms_per_graph"]
            # forces and stress as first derivatives only (no graph kept for a second one)
            grads = torch.autograd.grad(
                (result["e"] * n_atoms).sum(), [*batch.atom_positions, *batch.strains]
            )
        per_atom = result["e"].detach()
        if model.composition_model is not None:
            with torch.no_grad():
                per_atom = per_atom + model.composition_model(graphs)
        k = len(graphs)
        energies = (per_atom * n_atoms).cpu().numpy().astype(float)
        volumes = batch.volumes.detach().cpu().numpy().astype(float)
        return [
            Prediction(
                energy=float(energies[j]),
                forces=-grads[j].detach().cpu().numpy().astype(float),
                stress=full_3x3_to_voigt_6_stress(
                    grads[k + j].detach().cpu().numpy().astype(float) / volumes[j]
                ),
            )
            for j in range(k)
        ]


class SevenNetPotential(Potential):
    """SevenNet-0 (``model`` any name sevenn's calculator knows), through its ASE calculator."""

    name = "sevennet"

    def __init__(self, model: str = "7net-0", device: str = "cpu", mp2020: bool = True):
        sevenn = require("sevenn")
        self.mp2020 = mp2020
        calculator = require("sevenn.calculator")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.calculator = calculator.SevenNetCalculator(model, device=device)
        self.allowed = {int(z) for z in self.calculator.type_map}
        self.max_z = max(self.allowed)
        corrected = " + MP2020 corrections" if mp2020 else ""
        self.description = f"SevenNet {model} (sevenn {sevenn.__version__}){corrected}"

    def check(self, atoms: Atoms) -> str | None:
        missing = sorted({int(z) for z in atoms.numbers} - self.allowed)
        if missing:
            names = ", ".join(element_symbol(z) if 1 <= z <= 118 else str(z) for z in missing)
            return f"{self.name} has no training data for element(s) {names}"
        return super().check(atoms)

    def _predict_one(self, atoms: Atoms) -> Prediction:
        atoms = atoms.copy()
        atoms.calc = self.calculator
        energy = float(atoms.get_potential_energy())
        if self.mp2020:
            energy += mp2020_correction(_structure(atoms), energy)
        return Prediction(
            energy=energy,
            forces=np.asarray(atoms.get_forces(), dtype=float),
            stress=np.asarray(atoms.get_stress(voigt=True), dtype=float),
        )


#: Potential names (and aliases) -> class.
POTENTIALS = {"chgnet": CHGNetPotential, "sevennet": SevenNetPotential, "7net-0": SevenNetPotential}


@lru_cache(maxsize=4)
def _load(name: str) -> Potential:
    return POTENTIALS[name]()


def load_potential(potential: str | Potential = "chgnet") -> Potential:
    """A :class:`Potential` by name (loaded once per process), or ``potential`` itself."""
    if isinstance(potential, Potential):
        return potential
    key = str(potential).lower()
    if key not in POTENTIALS:
        raise ValueError(f"unknown potential {potential!r}; choose one of {', '.join(POTENTIALS)}")
    return _load(key)
