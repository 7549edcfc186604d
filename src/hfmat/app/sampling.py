"""What the app's buttons do, without Gradio: structure prediction with a language model and/or a
diffusion pipeline, de novo generation, and reading an uploaded CIF. Every input is checked before
any sampling, and bad input raises a ValueError whose message the page shows (the library's own
messages, the ones the CLI prints)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hfmat.app import commands
from hfmat.app.models import Models
from hfmat.app.results import Result, validity_of, write_zip

#: Most samples one request may ask for (the app answers while you wait; use the CLI for more).
MAX_SAMPLES = 16
#: Most reverse-diffusion steps one request may ask for.
MAX_STEPS = 1000
#: Largest uploaded file read (bytes).
MAX_UPLOAD_BYTES = 2_000_000


class AppInputError(ValueError):
    """Input the app refuses; the message says which field and why."""


@dataclass
class Run:
    """What one request produced: results per panel (``"lm"``, ``"diffusion"``), the equivalent CLI
    commands, a zip of every structure, and warnings to show beside them."""

    results: dict[str, list[Result]] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    zip_path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def all_results(self) -> list[Result]:
        return [r for panel in self.results.values() for r in panel]


def count(name: str, value, low: int, high: int) -> int:
    """``value`` (a number from a form field) as an int in ``low..high``, or AppInputError naming ``name``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        raise AppInputError(f"{name}: give a whole number from {low} to {high}")
    if isinstance(value, bool) or float(value) != int(value):
        raise AppInputError(f"{name}: must be a whole number, got {value!r}")
    if not low <= int(value) <= high:
        raise AppInputError(f"{name}: must be from {low} to {high}, got {int(value)}")
    return int(value)


def optional_steps(value) -> int | None:
    """Reverse-diffusion steps from the form: empty or 0 means the pipeline's default."""
    if value in (None, "", 0):
        return None
    return count("diffusion steps", value, 1, MAX_STEPS)


def parse_conditions(text: str | None) -> dict | None:
    """``"heat_ref=-0.5, crystal_system=3"`` (commas or new lines) -> ``{"heat_ref": -0.5,
    "crystal_system": 3}``, each NAME=VALUE read as ``hfmat diffuse --condition`` reads it."""
    from hfmat.diffusion.inputs import read_conditions

    items = [p.strip() for p in (text or "").replace("\n", ",").split(",") if p.strip()]
    try:
        return read_conditions(items, where="property targets: ")
    except ValueError as err:
        raise AppInputError(str(err)) from None


def _step(progress: Callable | None, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(fraction, desc=desc)


def predict_structures(
    models: Models,
    *,
    composition: str,
    spacegroup: str | None,
    num_samples,
    lm: str | None,
    diffusion: str | None,
    seed,
    steps=None,
    physics: bool = False,
    folder: Path,
    progress: Callable | None = None,
) -> Run:
    """Structure prediction for one cell composition with the language model ``lm`` and/or the
    pipeline ``diffusion`` (None: not used); both are checked before either samples."""
    import torch

    from hfmat.composition import read_composition
    from hfmat.diffusion.inputs import composition_atoms
    from hfmat.lm.generation import check_fits_context, generate_cifs
    from hfmat.lm.prompts import composition_prompt

    composition = (composition or "").strip()
    spacegroup = (spacegroup or "").strip() or None
    if not lm and not diffusion:
        raise AppInputError("models: choose a language model, a diffusion pipeline or both")
    n = count("samples", num_samples, 1, MAX_SAMPLES)
    seed = count("seed", seed, 0, 2**31 - 1)
    steps = optional_steps(steps)
    read_composition(composition)  # empty, unknown element, fractional count: the library's message
    run = Run()
    for name in (lm, diffusion):
        why = name and _outside_training(models.entry(name).folder, composition)
        if why:
            run.warnings.append(f"{name}: {why}")
    device = models.device
    if lm:
        model, tokenizer = models.language_model(lm)
        prompt = composition_prompt(composition, spacegroup)
        context = int(getattr(model.config, "n_positions", None) or model.config.max_position_embeddings)
        check_fits_context(prompt, tokenizer, context)
        run.commands.append(commands.generate_command(lm, composition, spacegroup, n, seed, device))
    if diffusion:
        entry = models.entry(diffusion)
        composition_atoms(composition, entry.max_atoms or 10**9)
        pipe = models.pipeline(diffusion)
        run.commands.append(
            commands.diffuse_command(
                diffusion, composition=composition, num_samples=n, seed=seed, steps=steps, device=device
            )
        )
        if spacegroup:
            run.warnings.append(
                f"{diffusion} does not take a space group: its samples are not steered toward {spacegroup}"
            )
    if lm:
        _step(progress, 0.0, f"{lm}: sampling")
        samples = generate_cifs(
            model,
            tokenizer,
            compositions=[composition],
            spacegroup=spacegroup,
            num_samples=n,
            seed=seed,
            batch_size=commands.LM_BATCH_SIZE,
            progress=True,
        )
        run.results["lm"] = [Result(lm, s.index, s.structure, s.validity, text=s.text) for s in samples]
    if diffusion:
        _step(progress, 0.5 if lm else 0.0, f"{diffusion}: denoising")
        kwargs = {} if steps is None else {"num_inference_steps": steps}
        out = pipe(
            compositions=[composition],
            num_samples=n,
            generator=torch.Generator().manual_seed(seed),
            **kwargs,
        )
        run.results["diffusion"] = [
            Result(diffusion, i, s, validity_of(s)) for i, s in enumerate(out.structures)
        ]
    _finish(run, physics, folder, progress)
    return run


def _outside_training(folder: Path, composition: str) -> str | None:
    """Why ``composition`` is outside what the model in ``folder`` was trained on (the warning
    ``hfmat generate``/``diffuse`` print), or None."""
    from hfmat.scope import out_of_scope, training_scope

    scope = training_scope(folder)
    return out_of_scope(scope, composition) if scope else None


def generate_de_novo(
    models: Models,
    *,
    model: str,
    num_samples,
    num_atoms,
    seed,
    steps=None,
    conditions: str | None = None,
    guidance_scale=None,
    physics: bool = False,
    folder: Path,
    progress: Callable | None = None,
    prompt: str | None = None,
) -> Run:
    """De novo generation with the pipeline ``model``: ``num_samples`` crystals of ``num_atoms``
    atoms (0 or empty: drawn from the training distribution), toward ``conditions`` (NAME=VALUE
    text) when the pipeline has property conditions and from ``prompt`` when it takes a text prompt
    (empty: unconditional)."""
    import torch

    from hfmat.diffusion.inputs import check_num_atoms

    if not model:
        raise AppInputError("model: choose a diffusion pipeline")
    entry = models.entry(model)
    if not entry.de_novo:
        raise AppInputError(
            f"model: {model} predicts structures for given compositions only (it does not sample atom "
            "types); choose a de novo pipeline"
        )
    n = count("samples", num_samples, 1, MAX_SAMPLES)
    seed = count("seed", seed, 0, 2**31 - 1)
    steps = optional_steps(steps)
    atoms = None if num_atoms in (None, "", 0) else count("atoms per cell", num_atoms, 1, 10**6)
    if atoms is not None:
        check_num_atoms(atoms, entry.max_atoms or 10**9, "atoms per cell")
    targets = parse_conditions(conditions)
    prompt = (prompt or "").strip() or None
    if prompt is not None and not entry.takes_prompt:
        raise AppInputError(f"prompt: {model} has no text condition; choose a text-conditioned pipeline")
    scale = None
    if guidance_scale not in (None, ""):
        scale = float(guidance_scale)
        if not (targets or prompt) or scale == 1.0:
            scale = None  # 1 is the plain conditional default; without targets there is nothing to guide
    pipe = models.pipeline(model)
    run = Run()
    run.commands.append(
        commands.diffuse_command(
            model,
            num_atoms=atoms,
            num_samples=n,
            seed=seed,
            steps=steps,
            conditions=targets,
            prompt=prompt,
            guidance_scale=scale,
            device=models.device,
        )
    )
    _step(progress, 0.0, f"{model}: denoising")
    kwargs = {} if steps is None else {"num_inference_steps": steps}
    if prompt is not None:
        kwargs["prompt"] = prompt
    out = pipe(
        num_atoms=None if atoms is None else [atoms],
        num_samples=n,
        generator=torch.Generator().manual_seed(seed),
        conditions=targets,
        guidance_scale=scale,
        **kwargs,
    )
    run.results["diffusion"] = [Result(model, i, s, validity_of(s)) for i, s in enumerate(out.structures)]
    _finish(run, physics, folder, progress)
    return run


def _finish(run: Run, physics: bool, folder: Path, progress: Callable | None) -> None:
    if physics:
        from hfmat.app.physics import add_physics

        _step(progress, 0.9, "energies")
        run.warnings += add_physics(run.all_results())
    folder.mkdir(parents=True, exist_ok=True)
    run.zip_path = write_zip(run.all_results(), folder / "structures.zip")


def read_upload(path: str | Path, physics: bool = False) -> tuple[Result, str]:
    """An uploaded file read as a CIF: (its result, with the validity report check by check, and its
    canonical CIF text). A file that is not a CIF pymatgen reads raises AppInputError naming it."""
    from hfmat.cif import CifError, check_validity, structure_to_cif

    path = Path(path)
    name = path.name
    if path.stat().st_size > MAX_UPLOAD_BYTES:
        raise AppInputError(f"{name}: {path.stat().st_size} bytes, more than the {MAX_UPLOAD_BYTES} read")
    raw = path.read_bytes()
    if b"\0" in raw[:4096]:
        raise AppInputError(f"{name}: not a CIF (a binary file)")
    text = raw.decode("utf-8", errors="replace")
    report = check_validity(text)
    if report.structure is None:
        reason = report.checks[0].reason if report.checks else "unreadable"
        raise AppInputError(f"{name}: not a CIF hfmat can read: {reason}")
    result = Result(path.stem, 0, report.structure, report, text=text)
    try:
        canonical = structure_to_cif(report.structure)
    except (CifError, ValueError) as err:
        canonical = f"# no canonical CIF for this structure: {err}\n"
    if physics:
        from hfmat.app.physics import add_physics

        add_physics([result])
    return result, canonical
