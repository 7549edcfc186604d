"""``hfmat diffuse``: sample crystals with a CrystalDiffusionPipeline: structure prediction for given
compositions (``--composition``, or ``--reference DATASET:SPLIT --limit N``: predictions.jsonl then
pairs with ``hfmat evaluate --task csp``) or de novo generation (neither), from a description with a
text-conditioned pipeline (``--prompt``), optionally the best ``-n`` of ``--candidates`` by Crystal CLIP
(``--rerank``)."""

from __future__ import annotations

from hfmat import shipped
from hfmat.cli import options
from hfmat.cli.relax_option import add_relax_option, relax_potential, relax_written

EXAMPLES = """\
hfmat diffuse --composition SrTiO3 -n 4 --out diff-srtio3
hfmat diffuse --reference perov_5:test --limit 20 -n 20 --out runs/diffusion_csp
hfmat diffuse -n 8 --out runs/denovo            # de novo, with the shipped de novo model
hfmat diffuse --model crystal-diffusion-perov5-gen --num-atoms 5 -n 4 --steps 100 --format extxyz --out d5
hfmat diffuse --model PIPELINE --prompt "SrTiO3, a cubic crystal" --guidance-scale 2 -n 8 --out srtio3
hfmat diffuse --model crystal-diffusion-perov5-text --prompt "SrTiO3, a cubic crystal" --guidance-scale 2 \
    -n 2 --rerank crystal-clip-perov5 --candidates 10 --out srtio3-best   # best 2 of 10 by Crystal CLIP"""

#: library argument -> CLI flag, for error messages
FLAGS = {
    "compositions": "--composition",
    "num_atoms": "--num-atoms",
    "num_samples": "-n",
    "batch_size": "--batch-size",
    "num_inference_steps": "--steps",
    "corrector_steps": "--corrector-steps",
    "guidance_scale": "--guidance-scale",
    "prompt": "--prompt",
    "element_guidance": "--element-guidance",
}


def register(sub) -> None:
    p = options.add_parser(
        sub,
        "diffuse",
        help="sample crystals with a crystal diffusion pipeline",
        description=__doc__,
        examples=EXAMPLES,
    )
    p.add_argument("pipeline", nargs="?", default=None, help="the same as --model (kept for older scripts)")
    options.add_model_options(
        p,
        default_model=f"default: the shipped {shipped.DIFFUSION_TEXT} with --prompt, "
        f"{shipped.DIFFUSION_CSP} with --composition/--reference, {shipped.DIFFUSION_GEN} otherwise",
        batch_default=None,
        batch_help="crystals denoised together (default: all at once)",
    )
    p.add_argument(
        "--composition",
        "-c",
        action="append",
        default=None,
        help="cell composition for structure prediction, e.g. SrTiO3 = 5 atoms (repeatable)",
    )
    options.add_reference_options(p)
    p.add_argument(
        "--num-atoms", type=int, action="append", default=None, help="de novo: atoms per cell (repeatable)"
    )
    p.add_argument("--num-samples", "-n", type=int, default=1, help="samples per composition (default 1)")
    p.add_argument(
        "--steps", type=int, default=None, help="reverse diffusion steps (default: the pipeline's)"
    )
    p.add_argument(
        "--corrector-steps",
        type=int,
        default=None,
        help="Langevin corrector steps per step (default: the pipeline's)",
    )
    p.add_argument(
        "--condition",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a conditioned pipeline: sample toward this property value, e.g. heat_ref=-0.5 (a class "
        "index for a categorical condition; repeatable; docs/guidance.md)",
    )
    p.add_argument(
        "--prompt",
        action="append",
        default=None,
        metavar="TEXT",
        help='a text-conditioned pipeline: sample from this description, e.g. "SrTiO3, a cubic crystal" '
        "(repeatable: -n samples each; docs/text_guidance.md)",
    )
    p.add_argument(
        "--guidance-scale",
        type=float,
        default=None,
        help="classifier-free guidance weight with --condition or --prompt (default 1: plain conditional; "
        "0: unconditional)",
    )
    p.add_argument(
        "--element-guidance",
        type=float,
        default=None,
        help="with --prompt and a pipeline that has an element head: its weight in the atom-type draws "
        "(default 1; 0: off; docs/text_guidance.md)",
    )
    p.add_argument(
        "--rerank",
        default=None,
        metavar="CLIP",
        help="with --prompt: draw --candidates samples per prompt and keep the -n most similar to it by this "
        "Crystal CLIP, e.g. crystal-clip-perov5 (docs/text_guidance.md)",
    )
    p.add_argument(
        "--candidates", type=int, default=None, help="with --rerank: samples drawn per prompt (default 10)"
    )
    options.add_output_options(p, out_required=False)
    add_relax_option(p)
    p.set_defaults(func=run)


def _model_name(args) -> str:
    if args.pipeline and args.model and args.pipeline != args.model:
        raise ValueError(f"two models given: {args.pipeline} and --model {args.model}; give one")
    name = args.model or args.pipeline
    if name:
        return name
    if args.prompt:
        return shipped.DIFFUSION_TEXT
    return shipped.DIFFUSION_CSP if (args.composition or args.reference) else shipped.DIFFUSION_GEN


def _reranker(args):
    """(the Crystal CLIP of --rerank, samples to draw per prompt); (None, -n) without --rerank."""
    if args.rerank is None:
        if args.candidates is not None:
            raise ValueError("--candidates needs --rerank (the Crystal CLIP that chooses among them)")
        return None, args.num_samples
    if not args.prompt:
        raise ValueError("--rerank needs --prompt: Crystal CLIP ranks samples by their similarity to it")
    candidates = 10 if args.candidates is None else args.candidates
    if candidates < args.num_samples:
        raise ValueError(
            f"--candidates {candidates} is fewer than -n {args.num_samples}: the best -n are kept"
        )
    from hfmat.text import CrystalCLIP

    try:
        return CrystalCLIP.from_pretrained(args.rerank), candidates
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(f"--rerank {args.rerank}: {err}") from None


def run(args) -> int:
    from pathlib import Path

    import torch

    from hfmat.cif import structural_validity
    from hfmat.cli.outputs import RunWriter, check_out
    from hfmat.cli.reference import prompts_from_args
    from hfmat.cli.scope import warn_out_of_scope
    from hfmat.diffusion import CrystalDiffusionPipeline, PipelineInputError
    from hfmat.diffusion.inputs import read_conditions
    from hfmat.hub import load, resolve

    options.check_counts(args, "-n", "--batch-size", "--limit", "--threads", "--steps", "--candidates")
    comps, ids = prompts_from_args(args)
    conditions = read_conditions(args.condition or [])  # before loading anything
    device = options.torch_device(args.device)
    out = Path(args.out) if args.out else None
    replace = check_out(out, "diffuse", args.overwrite) if out else []
    if args.relax and out is None:
        raise ValueError("--relax needs --out (the folder the relaxed structures go to)")
    potential = relax_potential(args.relax)
    options.set_threads(args.threads)
    clip, per_prompt = _reranker(args)  # before sampling
    model_name = _model_name(args)
    folder = resolve(model_name)
    if comps and not args.reference:
        warn_out_of_scope("diffuse", folder, comps)
    pipe = load(CrystalDiffusionPipeline, folder).to(device)
    kwargs = {} if args.steps is None else {"num_inference_steps": args.steps}
    try:
        result = pipe(
            compositions=comps,
            num_atoms=args.num_atoms,
            num_samples=per_prompt,
            generator=torch.Generator().manual_seed(args.seed),
            corrector_steps=args.corrector_steps,
            batch_size=args.batch_size,
            conditions=conditions,
            guidance_scale=args.guidance_scale,
            prompt=args.prompt[0] if args.prompt and len(args.prompt) == 1 else args.prompt,
            element_guidance=args.element_guidance,
            **kwargs,
        )
    except PipelineInputError as err:
        raise ValueError(options.reword(str(err), FLAGS)) from None
    writer = RunWriter.for_run(args, "diffuse", model_name, out, replace)
    if conditions or args.prompt:  # they decide the samples too
        writer.meta.update(conditions=conditions, prompts=args.prompt, guidance_scale=args.guidance_scale)
        if args.prompt and getattr(pipe, "element_head", None) is not None:
            writer.meta.update(element_guidance=pipe.element_guidance_weight(args.element_guidance))
    n = args.num_samples
    chosen, ranked = list(range(len(result.structures))), {}
    if clip is not None:
        from hfmat.text import clip_similarity, keep_top, rerank

        texts = [p for p in args.prompt for _ in range(per_prompt)]
        similarity = clip_similarity(clip.to(device), texts, result.structures)
        chosen = keep_top(chosen, rerank(similarity, per_prompt), per_prompt, n)
        writer.meta.update(rerank=args.rerank, candidates=per_prompt)
        for i, j in enumerate(chosen):
            ranked[j] = {
                "candidate": j % per_prompt,
                "clip_rank": i % n + 1,
                "clip_similarity": round(float(similarity[j]), 4),
            }
    for i, j in enumerate(chosen):
        structure = result.structures[j]
        ok, reason = structural_validity(structure)
        formula = structure.composition.formula.replace(" ", "")
        entry = {
            "prompt": comps[i // n]
            if comps
            else args.prompt[i // n]
            if args.prompt
            else f"de novo, {len(structure)} atoms",
            "material_id": ids[i // n] if comps else None,
            "sample": i % n if comps or args.prompt else i,
            "valid": bool(ok),
            "reason": reason,
            "formula": structure.composition.reduced_formula,
            **ranked.get(j, {}),
        }
        name = writer.add(f"{i:04d}_{formula}", structure, entry)
        clip_note = f"  CLIP {entry['clip_similarity']:.3f}" if clip is not None else ""
        writer.table(f"{i:4d}  {name:28s}  {'valid' if ok else 'invalid: ' + reason}{clip_note}")
    if potential is not None:
        relax_written(writer, potential)
    writer.finish()
    if out is not None:
        n_valid = sum(e["valid"] for e in writer.entries)
        print(
            f"{n_valid}/{len(writer.entries)} structurally valid; files, summary.json, predictions.jsonl in {out}"
        )
    return 0
