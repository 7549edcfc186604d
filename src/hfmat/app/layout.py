"""The Gradio Blocks page: three tabs (structure prediction, de novo generation, check a CIF), each
result shown as a table row, a 3D view of the cell, its validity checks and a CIF to download.
Callbacks turn bad input into a message on the page (``gr.Error``), never a traceback, and the
app keeps serving after any error."""

from __future__ import annotations

import functools
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hfmat.app import require_gradio, sampling
from hfmat.app.models import DIFFUSION, LM, Models
from hfmat.app.physics import physics_available
from hfmat.app.results import (
    CHECK_COLUMNS,
    COLUMNS,
    PHYSICS_COLUMNS,
    Result,
    check_rows,
    summary_row,
    write_cif,
)
from hfmat.app.viewer import cell_figure

logger = logging.getLogger("hfmat.app")

NONE = "none"
INTRO = """# hfmat: generative models for crystals
Predict the structure of a composition with a CIF language model and a crystal diffusion pipeline
side by side, generate crystals de novo, or check a CIF of your own. Each result: a 3D view of the
unit cell (drag to rotate), its space group, lattice, density, the validity checks one by one and
its CIF. The same samples come from the `hfmat` command shown under each run (same seed)."""


def answer_errors(fn):
    """Run a callback; bad input (ValueError, FileNotFoundError: the library's and the CLI's clear
    messages) becomes ``gr.Error(message)`` on the page; anything else is logged with its traceback
    and shown as one line. The server keeps running either way."""
    gr = require_gradio()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err), duration=None, title="Input error", print_exception=False) from None
        except Exception as err:  # noqa: BLE001 - the page gets one line, the log the traceback
            logger.exception("hfmat app: %s failed", fn.__name__)
            raise gr.Error(
                f"internal error: {type(err).__name__}: {err}", title="Error", print_exception=False
            ) from None

    return wrapper


@dataclass
class Panel:
    """The components that show one list of results."""

    box: object
    table: object
    pick: object
    view: object
    checks: object
    cif: object

    def outputs(self) -> list:
        return [self.box, self.table, self.pick, self.view, self.checks, self.cif]


def _panel(gr, key: str, title: str, visible: bool = True) -> Panel:
    with gr.Column(visible=visible, elem_id=f"{key}-panel") as box:
        gr.Markdown(f"### {title}")
        table = gr.Dataframe(
            headers=COLUMNS, interactive=False, wrap=True, label="samples", elem_id=f"{key}-table"
        )
        pick = gr.Dropdown(choices=[], label="show sample", interactive=True, elem_id=f"{key}-pick")
        view = gr.Plot(label="unit cell (drag to rotate)", elem_id=f"{key}-view")
        checks = gr.Dataframe(
            headers=CHECK_COLUMNS,
            interactive=False,
            wrap=True,
            label="validity checks",
            elem_id=f"{key}-checks",
        )
        cif = gr.File(label="CIF of this sample", interactive=False, elem_id=f"{key}-cif")
    return Panel(box, table, pick, view, checks, cif)


def _frame(rows: list, physics: bool):
    import pandas as pd

    return pd.DataFrame(rows, columns=COLUMNS + (PHYSICS_COLUMNS if physics else []))


def detail(result: Result | None, folder: Path) -> tuple:
    """(3D figure, checks table, CIF file) of one result; empty ones when there is none."""
    import pandas as pd

    if result is None:
        return None, pd.DataFrame([], columns=CHECK_COLUMNS), None
    figure = None if result.structure is None else cell_figure(result.structure)
    path = write_cif(result, folder)
    return (
        figure,
        pd.DataFrame(check_rows(result.report), columns=CHECK_COLUMNS),
        None if path is None else str(path),
    )


def panel_values(gr, results: list[Result] | None, physics: bool, folder: Path) -> list:
    """The values of a :class:`Panel`'s outputs for ``results`` (hidden when None)."""
    if results is None:
        return [gr.update(visible=False), None, gr.update(choices=[], value=None), None, None, None]
    rows = [summary_row(r, physics) for r in results]
    choices = [(r.label, i) for i, r in enumerate(results)]
    first = results[0] if results else None
    return [
        gr.update(visible=True),
        _frame(rows, physics),
        gr.update(choices=choices, value=0 if choices else None),
        *detail(first, folder),
    ]


def run_values(gr, run: sampling.Run, physics: bool, folder: Path, panels: tuple[str, ...]) -> list:
    """The outputs of one run's tab: the equivalent commands, notes, the zip, the state, then the
    values of the result panels named in ``panels`` (keys of ``run.results``)."""
    values = [
        "\n".join(run.commands),
        "\n".join(f"- {w}" for w in run.warnings),
        None if run.zip_path is None else str(run.zip_path),
        {**run.results, "physics": physics},
    ]
    for key in panels:
        values += panel_values(gr, run.results.get(key), physics, folder)
    return values


def build_app(models: Models | None = None):
    """The Gradio ``Blocks`` app serving ``models`` (default: the shipped models)."""
    gr = require_gradio()
    models = models or Models.from_names()
    workdir = Path(tempfile.mkdtemp(prefix="hfmat-app-"))
    lms = models.names(LM)
    pipes = models.names(DIFFUSION)
    de_novo = models.names(DIFFUSION, de_novo=True)
    csp_pipes = [n for n in pipes if n not in de_novo] + de_novo  # structure prediction models first
    show_physics = physics_available()

    tracked = gr.Progress(
        track_tqdm=True
    )  # the default of each callback's progress: Gradio makes one per call

    def new_folder() -> Path:
        return Path(tempfile.mkdtemp(dir=workdir))

    with gr.Blocks(title="hfmat", analytics_enabled=False) as demo:
        gr.Markdown(INTRO)
        gr.Markdown("Models: " + ", ".join(f"`{e.name}` ({e.kind})" for e in models.entries.values()))
        with gr.Tab("Structure prediction"):
            with gr.Row():
                composition = gr.Textbox(
                    label="cell composition",
                    value="SrTiO3",
                    placeholder="e.g. SrTiO3 (5 atoms) or Sr2Ti2O6",
                    elem_id="composition",
                )
                spacegroup = gr.Textbox(
                    label="space group (optional; language model only)",
                    placeholder="e.g. Pm-3m or 221",
                    elem_id="spacegroup",
                )
            with gr.Row():
                lm_choice = gr.Dropdown(
                    choices=[*lms, NONE], value=lms[0] if lms else NONE, label="language model"
                )
                diff_choice = gr.Dropdown(
                    choices=[*csp_pipes, NONE],
                    value=csp_pipes[0] if csp_pipes else NONE,
                    label="diffusion pipeline",
                )
            with gr.Row():
                n_csp = gr.Number(
                    label="samples per model",
                    value=2,
                    precision=0,
                    minimum=1,
                    maximum=sampling.MAX_SAMPLES,
                    elem_id="csp-samples",
                )
                seed_csp = gr.Number(label="seed", value=0, precision=0, minimum=0, elem_id="csp-seed")
                steps_csp = gr.Number(
                    label="diffusion steps (0: the pipeline's default)",
                    value=0,
                    precision=0,
                    minimum=0,
                    maximum=sampling.MAX_STEPS,
                    elem_id="csp-steps",
                )
                physics_csp = gr.Checkbox(
                    label="CHGNet energy and E_hull (slow)", value=False, visible=show_physics
                )
            run_csp = gr.Button("Predict structures", variant="primary", elem_id="predict")
            command_csp = gr.Code(
                label="the same with the CLI",
                language="shell",
                interactive=False,
                lines=2,
                elem_id="csp-command",
            )
            notes_csp = gr.Markdown(elem_id="csp-notes")
            zip_csp = gr.File(label="all structures (zip of CIFs)", interactive=False, elem_id="csp-zip")
            state_csp = gr.State({})
            with gr.Row(equal_height=False):
                lm_panel = _panel(gr, "lm", "Language model", visible=False)
                diff_panel = _panel(gr, "diffusion", "Diffusion", visible=False)

        with gr.Tab("De novo generation"):
            with gr.Row():
                gen_model = gr.Dropdown(
                    choices=de_novo,
                    value=de_novo[0] if de_novo else None,
                    label="diffusion pipeline (de novo)",
                )
                n_gen = gr.Number(
                    label="samples", value=2, precision=0, minimum=1, maximum=sampling.MAX_SAMPLES
                )
                atoms_gen = gr.Number(
                    label="atoms per cell (0: drawn from the training data)", value=0, precision=0, minimum=0
                )
            with gr.Row():
                seed_gen = gr.Number(label="seed", value=0, precision=0, minimum=0)
                steps_gen = gr.Number(
                    label="diffusion steps (0: the pipeline's default)",
                    value=0,
                    precision=0,
                    minimum=0,
                    maximum=sampling.MAX_STEPS,
                )
                physics_gen = gr.Checkbox(
                    label="CHGNet energy and E_hull (slow)", value=False, visible=show_physics
                )
            first = models.entries[de_novo[0]] if de_novo else None
            with gr.Group(visible=bool(first and first.conditions), elem_id="guidance") as guidance:
                guidance_about = gr.Markdown(_conditions_text(first))
                targets = gr.Textbox(
                    label="property targets (NAME=VALUE, comma separated)",
                    placeholder="heat_ref=-0.5",
                    visible=bool(first and first.properties),
                )
                prompt = gr.Textbox(
                    label="description (text prompt; empty: unconditional)",
                    placeholder="SrTiO3, a cubic crystal",
                    visible=bool(first and first.takes_prompt),
                    elem_id="prompt",
                )
                scale = gr.Number(label="guidance scale (1: plain conditional)", value=1.0)
            run_gen = gr.Button("Generate", variant="primary", elem_id="generate")
            command_gen = gr.Code(label="the same with the CLI", language="shell", interactive=False, lines=1)
            notes_gen = gr.Markdown()
            zip_gen = gr.File(label="all structures (zip of CIFs)", interactive=False)
            state_gen = gr.State({})
            gen_panel = _panel(gr, "denovo", "Samples", visible=False)

        with gr.Tab("Check a CIF"):
            upload = gr.File(label="a CIF file", type="filepath", elem_id="upload")
            physics_cif = gr.Checkbox(
                label="CHGNet energy and E_hull (slow)", value=False, visible=show_physics
            )
            with gr.Row(equal_height=False):
                with gr.Column():
                    cif_table = gr.Dataframe(headers=COLUMNS, interactive=False, wrap=True, label="structure")
                    cif_view = gr.Plot(label="unit cell (drag to rotate)", elem_id="cif-view")
                with gr.Column():
                    cif_checks = gr.Dataframe(
                        headers=CHECK_COLUMNS, interactive=False, wrap=True, label="validity checks"
                    )
                    cif_canonical = gr.Code(label="canonical CIF (the language model's format)", lines=12)
                    cif_file = gr.File(label="standard CIF (P1, every site)", interactive=False)

        # ---- callbacks ----
        @answer_errors
        def predict(comp, sg, n, lm, diff, seed, steps, physics, progress=tracked):
            folder = new_folder()
            run = sampling.predict_structures(
                models,
                composition=comp,
                spacegroup=sg,
                num_samples=n,
                lm=None if lm in (None, NONE) else lm,
                diffusion=None if diff in (None, NONE) else diff,
                seed=seed,
                steps=steps,
                physics=physics,
                folder=folder,
                progress=progress,
            )
            return run_values(gr, run, physics, folder, ("lm", "diffusion"))

        run_csp.click(
            predict,
            inputs=[composition, spacegroup, n_csp, lm_choice, diff_choice, seed_csp, steps_csp, physics_csp],
            outputs=[command_csp, notes_csp, zip_csp, state_csp, *lm_panel.outputs(), *diff_panel.outputs()],
            api_name="predict",
        )

        @answer_errors
        def generate(
            model,
            n,
            atoms,
            seed,
            steps,
            target_text,
            guidance_scale,
            physics,
            prompt_text,
            progress=tracked,
        ):
            folder = new_folder()
            run = sampling.generate_de_novo(
                models,
                model=model,
                num_samples=n,
                num_atoms=atoms,
                seed=seed,
                steps=steps,
                conditions=target_text,
                guidance_scale=guidance_scale,
                physics=physics,
                folder=folder,
                progress=progress,
                prompt=prompt_text,
            )
            return run_values(gr, run, physics, folder, ("diffusion",))

        run_gen.click(
            generate,
            inputs=[gen_model, n_gen, atoms_gen, seed_gen, steps_gen, targets, scale, physics_gen, prompt],
            outputs=[command_gen, notes_gen, zip_gen, state_gen, *gen_panel.outputs()],
            api_name="generate",
        )

        def show_guidance(model):
            entry = models.entries.get(model)
            return (
                gr.update(visible=bool(entry and entry.conditions)),
                _conditions_text(entry),
                gr.update(visible=bool(entry and entry.properties)),
                gr.update(visible=bool(entry and entry.takes_prompt)),
            )

        gen_model.change(
            show_guidance,
            inputs=[gen_model],
            outputs=[guidance, guidance_about, targets, prompt],
            api_name=False,
        )

        def selector(key: str, panel: Panel, state):
            @answer_errors
            def pick(index, results):
                chosen = (results or {}).get(key) or []
                if index is None or not 0 <= int(index) < len(chosen):
                    return detail(None, workdir)
                return detail(chosen[int(index)], new_folder())

            panel.pick.input(
                pick,
                inputs=[panel.pick, state],
                outputs=[panel.view, panel.checks, panel.cif],
                api_name=False,
            )

        selector("lm", lm_panel, state_csp)
        selector("diffusion", diff_panel, state_csp)
        selector("diffusion", gen_panel, state_gen)

        @answer_errors
        def check_cif(path, physics, progress=tracked):
            if not path:
                raise sampling.AppInputError("upload a CIF file")
            result, canonical = sampling.read_upload(path, physics=physics)
            figure, checks, cif_path = detail(result, new_folder())
            return _frame([summary_row(result, physics)], physics), figure, checks, canonical, cif_path

        upload.upload(
            check_cif,
            inputs=[upload, physics_cif],
            outputs=[cif_table, cif_view, cif_checks, cif_canonical, cif_file],
            api_name="check_cif",
        )
    return demo


def _conditions_text(entry) -> str:
    if entry is None or not entry.conditions:
        return ""
    parts = []
    if entry.properties:
        parts.append(
            f"**{entry.name}** samples toward property targets (classifier-free guidance, docs/guidance.md). "
            f"Its conditions: {entry.describe_conditions()}. Leave the targets empty to sample unconditionally."
        )
    if entry.takes_prompt:
        parts.append(
            f"**{entry.name}** samples from a description (docs/text_guidance.md), written like its "
            "training texts, e.g. `SrTiO3, a cubic crystal`. Leave it empty to sample unconditionally."
        )
    return " ".join(parts)
