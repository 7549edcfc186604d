"""``hfmat demo``: the main job on the embedded defaults (what ``make demo`` runs).

1. canonicalize and tokenize the example structures (examples/);
2. predict structures for a few perovskite compositions with the shipped diffusion pipeline;
3. write CIFs for the same compositions with the shipped CIF language model (constrained decoding);
each prediction is checked (structural validity, CIF validity checks) and written under --out.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DEFAULT_COMPOSITIONS = ["SrTiO3", "BaZrO3", "KNbO3"]


def register(sub) -> None:
    p = sub.add_parser("demo", help="run hfmat's main job on the shipped defaults")
    p.add_argument("--checkpoints", default=str(REPO / "checkpoints"), help="folder of the shipped models")
    p.add_argument(
        "--composition", action="append", default=None, help="(repeatable) default: SrTiO3 BaZrO3 KNbO3"
    )
    p.add_argument("-n", "--num-samples", type=int, default=4, help="samples per composition and model")
    p.add_argument("--out", default="outputs/demo", help="folder for the generated CIFs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="diffusion steps (default: the pipeline's)")
    p.set_defaults(func=run)


def _canonicalize_examples() -> None:
    from hfmat.cif import structure_to_cif
    from hfmat.examples import example_structures
    from hfmat.tokenization import load_tokenizer

    tokenizer = load_tokenizer()
    print("1. Example structures -> canonical CIF -> tokens")
    print(f"   {'example':20s} {'formula':9s} {'sites':>5s} {'space group':12s} {'tokens':>6s} round trip")
    for name, structure in example_structures().items():
        text = structure_to_cif(structure)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        sg = text.split("\n")[1].split(" ", 1)[1]
        exact = tokenizer.decode(ids) == text
        print(
            f"   {name:20s} {structure.composition.reduced_formula:9s} {len(structure):5d} {sg:12s} {len(ids):6d} {exact}"
        )


def _describe(structure) -> tuple[str, str]:
    from hfmat.cif import structural_validity

    if structure is None:
        return "-", "does not parse"
    try:
        sg = structure.get_space_group_info(symprec=0.1)[0]
    except Exception:  # noqa: BLE001 - spglib can fail on a bad cell: report, don't stop
        sg = "?"
    ok, reason = structural_validity(structure)
    return sg, ("valid" if ok else "invalid") + f" ({reason})"


def _diffusion(folder: Path, compositions, n: int, seed: int, out: Path, steps: int | None) -> None:
    import torch

    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.hub import load

    print(f"\n2. Structure prediction with the diffusion pipeline {folder.name}")
    pipe = load(CrystalDiffusionPipeline, folder)
    result = pipe(
        compositions=compositions,
        num_samples=n,
        generator=torch.Generator().manual_seed(seed),
        output_type="cif",
        **({} if steps is None else {"num_inference_steps": steps}),
    )
    out.mkdir(parents=True, exist_ok=True)
    for i, (structure, cif) in enumerate(zip(result.structures, result.cifs)):
        comp = compositions[i // n]
        (out / f"{comp}_{i % n}.cif").write_text(cif)
        sg, verdict = _describe(structure)
        print(f"   {comp:8s} #{i % n}  {structure.lattice.abc[0]:6.3f} A  {sg:10s} {verdict}")


def _language_model(folder: Path, compositions, n: int, seed: int, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import load
    from hfmat.lm import generate_cifs

    print(f"\n3. CIF generation with the language model {folder.name} (constrained decoding)")
    model = load(AutoModelForCausalLM, folder)
    tokenizer = load(AutoTokenizer, folder)
    samples = generate_cifs(model, tokenizer, compositions=compositions, num_samples=n, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    for s in samples:
        comp = s.composition or "?"
        (out / f"{comp}_{s.index}.cif").write_text(s.text)
        failed = [c.name for c in s.validity.checks if not c.passed]
        verdict = "valid CIF" if s.valid else "invalid: " + ", ".join(failed)
        sg, _ = _describe(s.structure)
        print(f"   {comp:8s} #{s.index}  {sg:10s} {verdict}")


def run(args) -> int:
    checkpoints = Path(args.checkpoints)
    compositions = args.composition or DEFAULT_COMPOSITIONS
    out = Path(args.out)
    _canonicalize_examples()
    n, seed = args.num_samples, args.seed
    _diffusion(checkpoints / "crystal-diffusion-perov5", compositions, n, seed, out / "diffusion", args.steps)
    _language_model(checkpoints / "cif-gpt2-perov5", compositions, n, seed, out / "lm")
    print(f"\nCIFs written under {out}/")
    return 0
