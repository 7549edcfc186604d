"""Write a text-conditioned pipeline's model card from bench_text_guidance.py reports.

    python benchmarks/text_guidance_card.py src/hfmat/checkpoints/crystal-diffusion-perov5-text \
        runs/bench_text_guidance_v2/text_guidance.json runs/bench_text_guidance_v2_scales/text_guidance.json \
        --train-command "accelerate launch training/train_diffusion.py --config ... --init-from ..."

The first report is the main table (every prompt style); each further one is a guidance-scale (or
other setting) table under it. The card is hfmat's diffusion card (``hfmat.diffusion.card.
write_model_card``: architecture and training from the folder's configs and training_summary.json);
this script supplies its evaluation text (protocol, tables, the issue's targets, the commands that
made every figure) and its limitations. No figure is typed in: all come from the reports.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_text_guidance import check_targets, markdown_table  # noqa: E402

PROTOCOL = (
    "Prompts are held-out descriptions of {dataset} **{split}** crystals (never trained on), in the three\n"
    "template styles the model was trained on (`hfmat.data.descriptions`): the composition alone\n"
    '("SrTiO3"), composition and crystal system ("SrTiO3, a cubic crystal"), and the sentence with the\n'
    "space group, structure type and properties. {n} crystals drawn with seed {seed}, {k} samples per\n"
    "prompt, {steps} reverse steps with the pipeline's corrector, guidance scale {scales}. Each figure is\n"
    "the mean over prompts of the fraction of structurally valid samples that have the prompt's reduced\n"
    "composition (element set: the same elements in any proportion), crystal system or space-group\n"
    "number (pymatgen's `SpacegroupAnalyzer`, symprec 0.1, as the descriptions were made); beside it,\n"
    "the same fraction for {pool} unconditional samples of this pipeline (no prompt: the null\n"
    "embedding), scored against every prompt."
)

LIMITATIONS = (
    "Prompts must be in the template styles above: the text tower (Crystal CLIP's, trained on\n"
    "these templates only) embeds other phrasing away from the crystal it names. Perov-5 only (every\n"
    "cell has 5 atoms; Carbon-24 was not added: the base model's largest cell is 20 atoms). Trained on a\n"
    "small CPU budget; samples are not relaxed."
)


#: How the cards name the benchmark datasets.
DATASET_NAMES = {"perov_5": "Perov-5", "carbon_24": "Carbon-24", "mp_20": "MP-20"}


def _dataset(report: dict) -> str:
    return DATASET_NAMES.get(report["dataset"], report["dataset"])


JOINT_LIMITATIONS = (
    "Prompts must be in the template styles above: the text tower (Crystal CLIP's, trained on\n"
    "these templates only) embeds other phrasing away from the crystal it names. Trained on the\n"
    "Perov-5 and Carbon-24 validation splits only (their elements, cells of 5-24 atoms). A sample's\n"
    "atom count is drawn from the joint training distribution unless `num_atoms` is given, so a Perov-5\n"
    "prompt sometimes gets a Carbon-24 cell size that no 5-atom formula fits: pass `num_atoms` (5 for a\n"
    "perovskite; the tables above say which they used). All Carbon-24 texts name the same composition,\n"
    "C, so a carbon prompt could steer only by its crystal system, space group and energy words, and it\n"
    "does not: its crystal-system and space-group matches are those of unconditional samples of the same\n"
    "cell sizes (the Carbon-24 table). Trained on a small CPU budget; samples are not relaxed."
)
#: The limitations ``--limitations`` names, by training data.
LIMITATIONS_BY_DATA = {"perov_5": LIMITATIONS, "perov_5+carbon_24": JOINT_LIMITATIONS}


def _table(report: dict) -> str:
    return markdown_table(report["rows"], report["unconditional_validity"]).split("\n\nUnconditional")[0]


def _command(report: dict, name: str | None) -> str:
    if not name:
        return report["command"]
    return report["command"].replace(f"--pipeline {report['pipeline']}", f"--pipeline {name}")


#: What a report's ``num_atoms`` (bench_text_guidance.py --num-atoms) means, for the captions.
ATOMS = {
    "target": "each sample with its prompt's crystal's atom count",
    "drawn": "atom counts drawn from the training distribution",
}


def _atoms(report: dict) -> str:
    return f", {ATOMS[report['num_atoms']]}" if report.get("num_atoms") in ATOMS else ""


def _caption(report: dict, main: dict | None = None) -> str:
    styles = sorted({r["style"].removeprefix("text_") for r in report["rows"]})
    other = main is not None and (report["dataset"], report["split"]) != (main["dataset"], main["split"])
    where = f" ({_dataset(report)} {report['split']})" if other else ""
    return (
        f"{', '.join(styles).capitalize()} prompts of {report['num_prompts']} crystals{where}, {report['samples_per_prompt']} "
        f"samples each, {report['steps']} steps{_atoms(report)}"
        + (
            f", {report['corrector_steps']} corrector steps"
            if report.get("corrector_steps") is not None
            else ""
        )
        + _element_guidance(report, main)
        + ", otherwise the same protocol:"
    )


def _element_guidance(report: dict, main: dict | None = None) -> str:
    """ ", element guidance w" when a report's element-head weight differs from the main report's."""
    weight = report.get("element_guidance", 0.0)
    if main is not None and weight == main.get("element_guidance", 0.0):
        return ""
    return ", without element guidance" if weight == 0 else f", element guidance {weight:g}"


def evaluation_text(
    reports: list[dict],
    train_command: str | list[str] | None = None,
    name: str | None = None,
    tower: str = "crystal-clip-perov5",
) -> str:
    """The card's evaluation section: protocol, the main table, further tables (a report on another
    dataset says which), the targets (on the main report's dataset), commands (with ``name`` in place
    of the pipeline folder each report was measured on) and the text tower ``tower``."""
    main = reports[0]
    scales = sorted({r["scale"] for r in main["rows"]})
    parts = [
        PROTOCOL.format(
            dataset=_dataset(main),
            split=main["split"],
            n=main["num_prompts"],
            seed=main["seed"],
            k=main["samples_per_prompt"],
            steps=main["steps"],
            pool=main["num_prompts"] * main["samples_per_prompt"],
            scales=", ".join(f"{s:g}" for s in scales),
        ),
        _table(main),
    ]
    if main.get("num_atoms") in ATOMS:
        parts[0] += f" Cell sizes: {ATOMS[main['num_atoms']]}."
    if main.get("element_guidance"):
        parts[0] += (
            f" Element guidance {main['element_guidance']:g}: the atom types are drawn with the pipeline's "
            "element head (the Conditions section above)."
        )
    for report in reports[1:]:
        parts += [_caption(report, main), _table(report)]
    rows = [r for report in reports if report["dataset"] == main["dataset"] for r in report["rows"]]
    met = all(": MET (" in line for line in check_targets(rows))
    parts.append(
        f"The issue's targets are {'met' if met else '**not met**'}: "
        + "; ".join(line.removeprefix("target: ") for line in check_targets(rows))
        + "."
    )
    commands = "\n".join(f"OMP_NUM_THREADS=1 {_command(r, name)}" for r in reports)
    walls = ", ".join(f"{r['timings_s']['total_s'] / 60:.1f}" for r in reports)
    parts.append(
        f"Reproduce (wall time here, one shared CPU thread: {walls} minutes):\n\n```bash\n{commands}\n```"
    )
    if train_command:
        lines = [train_command] if isinstance(train_command, str) else list(train_command)
        commands = "\n".join(f"OMP_NUM_THREADS=1 {line}" for line in lines)
        parts.append(
            f"Trained with (one CPU thread; the text tower is Crystal CLIP's, `{tower}`):\n\n"
            f"```bash\n{commands}\n```"
        )
    return "\n\n".join(parts)


def main(argv=None) -> Path:
    from hfmat.diffusion.card import write_model_card

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="the text-conditioned pipeline folder whose README.md is written")
    p.add_argument("reports", nargs="+", help="text_guidance.json files of bench_text_guidance.py")
    p.add_argument(
        "--train-command",
        action="append",
        default=None,
        help="a command that trained the pipeline, as it is run (repeat it for each stage, in order)",
    )
    p.add_argument(
        "--name",
        default=None,
        help="the name the commands give the pipeline (the shipped name of a folder measured under runs/)",
    )
    p.add_argument("--tower", default="crystal-clip-perov5", help="the Crystal CLIP whose text tower it uses")
    p.add_argument(
        "--limitations",
        default="perov_5",
        choices=list(LIMITATIONS_BY_DATA),
        help="the card's limitations, by the data the pipeline was trained on",
    )
    args = p.parse_args(argv)
    reports = [json.loads(Path(r).read_text()) for r in args.reports]
    text = evaluation_text(reports, args.train_command, args.name, args.tower)
    path = write_model_card(
        args.folder, evaluation={"text": text, "limitations": LIMITATIONS_BY_DATA[args.limitations]}
    )
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
