"""``hfmat demo``: the main job on the shipped models (what ``make demo`` runs), from any directory.

1. canonicalize and tokenize the example structures;
2. predict structures for a few perovskite compositions with the shipped diffusion pipeline;
3. write crystals for the same compositions with the shipped CIF language model (constrained
   decoding).
Each sample is checked and written under --out (diffusion/ and lm/, each with its summary.json);
a rerun replaces the files of the previous demo there and touches nothing else."""

from __future__ import annotations

from pathlib import Path

from hfmat import shipped
from hfmat.cli import options

DEFAULT_COMPOSITIONS = ["SrTiO3", "BaZrO3", "KNbO3"]
EXAMPLES = """\
hfmat demo
hfmat demo --composition CaTiO3 -n 2 --steps 50 --format poscar --out demo-catio3
hfmat demo --checkpoints path/to/folder   # a folder holding models named as the shipped ones"""


def register(sub) -> None:
    p = options.add_parser(
        sub, "demo", help="run hfmat's main job on the shipped models", description=__doc__, examples=EXAMPLES
    )
    p.add_argument(
        "--checkpoints",
        default=None,
        help=f"a folder holding {shipped.DIFFUSION_CSP}/ and {shipped.LM}/ to use instead of the shipped models",
    )
    p.add_argument(
        "--composition", action="append", default=None, help="(repeatable) default: SrTiO3 BaZrO3 KNbO3"
    )
    p.add_argument(
        "-n", "--num-samples", type=int, default=4, help="samples per composition and model (default 4)"
    )
    p.add_argument("--out", default="outputs/demo", help="folder for the outputs (default outputs/demo)")
    p.add_argument(
        "--format",
        choices=options.FORMAT_CHOICES,
        default="cif",
        help="file format of the structures (default cif: standard P1 CIF)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
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


def _space_group(structure) -> str:
    if structure is None:
        return "-"
    try:
        return structure.get_space_group_info(symprec=0.1)[0]
    except Exception:  # noqa: BLE001 - spglib can fail on a bad cell: report, don't stop
        return "?"


def _diffusion(model: Path, compositions, n: int, seed: int, writer, steps: int | None) -> None:
    import torch

    from hfmat.cif import structural_validity
    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.hub import load

    print(f"\n2. Structure prediction with the diffusion pipeline {model.name}")
    pipe = load(CrystalDiffusionPipeline, model)
    result = pipe(
        compositions=compositions,
        num_samples=n,
        generator=torch.Generator().manual_seed(seed),
        **({} if steps is None else {"num_inference_steps": steps}),
    )
    for i, structure in enumerate(result.structures):
        comp = compositions[i // n]
        ok, reason = structural_validity(structure)
        entry = {"prompt": comp, "sample": i % n, "valid": bool(ok), "reason": reason}
        writer.add(f"{comp}_{i % n}", structure, entry)
        verdict = ("valid" if ok else "invalid") + f" ({reason})"
        print(
            f"   {comp:8s} #{i % n}  {structure.lattice.abc[0]:6.3f} A  {_space_group(structure):10s} {verdict}"
        )
    writer.finish()


def _language_model(model: Path, compositions, n: int, seed: int, writer) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfmat.hub import load
    from hfmat.lm import generate_cifs

    print(f"\n3. CIF generation with the language model {model.name} (constrained decoding)")
    lm = load(AutoModelForCausalLM, model)
    tokenizer = load(AutoTokenizer, model)
    for s in generate_cifs(lm, tokenizer, compositions=compositions, num_samples=n, seed=seed):
        comp = s.composition or "?"
        failed = [c.name for c in s.validity.checks if not c.passed]
        entry = {"prompt": s.prompt, "sample": s.index, "valid": s.valid, "failed_checks": failed}
        writer.add(f"{comp}_{s.index}", s.structure, entry, raw_text=s.text)
        verdict = "valid CIF" if s.valid else "invalid: " + ", ".join(failed)
        print(f"   {comp:8s} #{s.index}  {_space_group(s.structure):10s} {verdict}")
    writer.finish()


def run(args) -> int:
    from hfmat.cli.outputs import RunWriter, check_out
    from hfmat.hub import resolve

    options.check_counts(args, "-n", "--steps")
    compositions = args.composition or DEFAULT_COMPOSITIONS
    out = Path(args.out)
    folders = {"diffusion": out / "diffusion", "lm": out / "lm"}
    replace = {key: check_out(folder, "demo", overwrite=True) for key, folder in folders.items()}
    base = Path(args.checkpoints) if args.checkpoints else None
    models = {
        key: base / name if base else resolve(name)
        for key, name in (("diffusion", shipped.DIFFUSION_CSP), ("lm", shipped.LM))
    }
    for path in models.values():
        if not path.is_dir():
            raise FileNotFoundError(f"--checkpoints {base}: no folder {path.name} in it")

    def writer(key):
        name = shipped.DIFFUSION_CSP if key == "diffusion" else shipped.LM
        meta = {"model": str(base / name) if base else name, "seed": args.seed}
        return RunWriter(folders[key], "demo", args.format, meta, replace[key])

    _canonicalize_examples()
    n, seed = args.num_samples, args.seed
    _diffusion(models["diffusion"], compositions, n, seed, writer("diffusion"), args.steps)
    _language_model(models["lm"], compositions, n, seed, writer("lm"))
    print(f"\nstructures and summary.json written under {out}/")
    return 0
