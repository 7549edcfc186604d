"""``hfmat diffuse``: sample crystals with a CrystalDiffusionPipeline (structure prediction or de novo).

hfmat diffuse checkpoints/crystal-diffusion-perov5 --composition SrTiO3 --num-samples 4 --out samples/
hfmat diffuse hfmat/crystal-diffusion-mp20 --num-samples 8 --steps 200 --seed 1
"""

from __future__ import annotations

DEFAULT_PIPELINE = "checkpoints/crystal-diffusion-perov5"


def register(sub) -> None:
    p = sub.add_parser("diffuse", help="sample crystals with a crystal diffusion pipeline")
    p.add_argument(
        "pipeline",
        nargs="?",
        default=DEFAULT_PIPELINE,
        help=f"folder or repo id (default: {DEFAULT_PIPELINE})",
    )
    p.add_argument(
        "--composition",
        "-c",
        action="append",
        default=None,
        help="cell composition for structure prediction, e.g. SrTiO3 (repeatable); none: de novo",
    )
    p.add_argument(
        "--num-atoms", type=int, action="append", default=None, help="de novo: atoms per cell (repeatable)"
    )
    p.add_argument("--num-samples", "-n", type=int, default=1, help="samples per composition (default 1)")
    p.add_argument(
        "--steps", type=int, default=None, help="reverse diffusion steps (default: the pipeline's)"
    )
    p.add_argument("--corrector-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the CIF files (default: print them)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)  # fmt: skip


def run(args) -> int:
    from pathlib import Path

    import torch

    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.hub import load

    pipe = load(CrystalDiffusionPipeline, args.pipeline).to(args.device)
    kwargs = {} if args.steps is None else {"num_inference_steps": args.steps}
    out = pipe(
        compositions=args.composition,
        num_atoms=args.num_atoms,
        num_samples=args.num_samples,
        generator=torch.Generator().manual_seed(args.seed),
        corrector_steps=args.corrector_steps,
        output_type="cif",
        **kwargs,
    )
    if args.out:
        folder = Path(args.out)
        folder.mkdir(parents=True, exist_ok=True)
        for i, (formula, cif) in enumerate(zip(out.formulas, out.cifs)):
            path = folder / f"{i:04d}_{formula}.cif"
            path.write_text(cif)
            print(path)
    else:
        for cif in out.cifs:
            print(cif)
    return 0
