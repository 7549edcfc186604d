"""``CrystalDiffusionPipeline``: crystal structure prediction and de novo generation on diffusers.

    pipe = CrystalDiffusionPipeline.from_pretrained("checkpoints/crystal-diffusion-perov5")
    out = pipe(compositions=["SrTiO3"], num_samples=4, num_inference_steps=100,
               generator=torch.Generator().manual_seed(0), output_type="cif")
    out.structures  # pymatgen Structures;  out.cifs  # standard P1 CIFs (hfmat.cif.export)

Components: ``denoiser`` (:class:`CrystalDenoiser`), ``lattice_scheduler`` (diffusers'
``DDPMScheduler``), ``coord_scheduler`` (:class:`WrappedNormalScheduler`) and, for de novo generation,
``type_scheduler`` (:class:`D3PMScheduler`, optional: structure-prediction pipelines have none).

The reverse process runs the three schedulers on the same timesteps. Each step optionally runs
``corrector_steps`` Langevin corrections of the coordinates (a model call each), then one
predictor step of lattice, coordinates and (de novo) atom types from a fresh model call.

Guidance: a denoiser trained with conditions (``denoiser.config.conditions``) samples toward given
property values, ``pipe(..., conditions={"heat_ref": -0.5}, guidance_scale=2.0)``, by classifier-free
guidance: every model call runs the batch twice in one call, with the conditions and with their null
embeddings, and combines ``uncond + s * (cond - uncond)`` for the lattice noise and the coordinate
score, and the same on the log-probabilities of the atom types. ``guidance_scale=1`` is plain
conditional sampling (no unconditional half), 0 is unconditional.

Text: a pipeline whose denoiser has a text condition and which holds a ``text_encoder`` (a plain
transformers ``BertModel``, Crystal CLIP's text tower) and its ``tokenizer`` samples from a
description, ``pipe(prompt="SrTiO3, a cubic crystal", num_samples=8, guidance_scale=2.0)``
(:mod:`hfmat.diffusion.text`); the unconditional half uses the text condition's null embedding.

A denoiser whose config lists ``elements`` (the training data's, recorded by train_diffusion.py)
draws de novo atom types among those elements only; without the field any element can be drawn.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from hfmat.diffusion.denoiser import MASK_TYPE, CrystalDenoiserOutput
from hfmat.diffusion.inputs import (
    PipelineInputError,
    as_list,
    check_condition_values,
    check_num_atoms,
    composition_atoms,
)

OUTPUT_TYPES = ("structure", "cif")


def check_weight(name: str, value) -> None:
    """A guidance weight must be a finite number >= 0; raises PipelineInputError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PipelineInputError(f"{name} must be a number, got {value!r}")
    if not np.isfinite(value) or value < 0:
        raise PipelineInputError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass
class CrystalPipelineOutput(BaseOutput):
    """``structures``: one pymatgen Structure per sample (sample j of request i at index
    ``i * num_samples + j``); ``cifs``: when ``output_type="cif"``, each as a standard P1 CIF with
    every site written (``hfmat.cif.export.structure_to_standard_cif``; pymatgen, ASE and gemmi read
    it whole), else None (hfmat's canonical text, the language model's format, is
    ``hfmat.cif.structure_to_cif(structure)``); ``formulas``: the cell formula of each sample."""

    structures: list
    cifs: list | None
    formulas: list


class CrystalDiffusionPipeline(DiffusionPipeline):
    model_cpu_offload_seq = "denoiser"
    _optional_components = ["type_scheduler", "text_encoder", "tokenizer", "element_head"]

    def __init__(
        self,
        denoiser,
        lattice_scheduler,
        coord_scheduler,
        type_scheduler=None,
        text_encoder=None,
        tokenizer=None,
        element_head=None,
    ):
        super().__init__()
        self.register_modules(
            denoiser=denoiser,
            lattice_scheduler=lattice_scheduler,
            coord_scheduler=coord_scheduler,
            type_scheduler=type_scheduler,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            element_head=element_head,
        )

    def save_pretrained(self, save_directory, *args, push_to_hub: bool = False, **kwargs):
        """diffusers' save, plus hfmat's card (model_cards/diffusion.md) when the folder has none, so
        the folder is a complete Hub repository; ``push_to_hub=True`` (with ``repo_id=``) uploads it
        as :meth:`push_to_hub` does."""
        from hfmat.diffusion.card import write_model_card
        from hfmat.hub.provenance import drop_load_paths

        hub = {k: kwargs.pop(k) for k in ("repo_id", "commit_message", "private", "token") if k in kwargs}
        super().save_pretrained(save_directory, *args, **kwargs)
        drop_load_paths(save_directory)  # no "_name_or_path" of a local folder in the saved configs
        if getattr(self, "tokenizer", None) is not None:  # the prose tokenizer's own saved form
            from hfmat.diffusion.text import save_tokenizer

            save_tokenizer(self.tokenizer, save_directory)
        if not (Path(save_directory) / "README.md").exists():
            write_model_card(save_directory, repo_id=hub.get("repo_id"))
        if push_to_hub:
            repo_id = hub.pop("repo_id", None) or Path(save_directory).name
            self._push_folder(save_directory, repo_id, **hub)

    def push_to_hub(self, repo_id: str, commit_message=None, private=None, token=None, **kwargs) -> str:
        """Save to a temporary folder (with hfmat's card, not diffusers' generic one), check it and
        upload it with :func:`hfmat.hub.push_folder`; returns the commit URL."""
        if kwargs.pop("create_pr", False) or kwargs.pop("subfolder", None):
            raise ValueError(
                "CrystalDiffusionPipeline.push_to_hub: create_pr and subfolder are not supported"
            )
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, repo_id=repo_id, **kwargs)
            return self._push_folder(
                tmp, repo_id, commit_message=commit_message, private=private, token=token
            )

    @staticmethod
    def _push_folder(folder, repo_id, commit_message=None, private=None, token=None) -> str:
        from hfmat.hub import push_folder

        result = push_folder(
            folder,
            repo_id,
            private=bool(private),
            commit_message=commit_message,
            token=token,
            kind="pipeline",
        )
        return result.commit_url

    @property
    def max_atoms(self) -> int:
        return int(self.denoiser.config.max_atoms)

    @property
    def can_generate_de_novo(self) -> bool:
        return self.type_scheduler is not None and bool(self.denoiser.config.predict_atom_types)

    # ------------------------------------------------------------------------------- inputs
    def _requests(self, compositions, num_atoms, num_samples, generator) -> list[list[int] | int]:
        """One entry per crystal to sample: its atomic numbers (CSP) or its atom count (de novo)."""
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or int(num_samples) < 1:
            raise PipelineInputError(f"num_samples must be a positive integer, got {num_samples!r}")
        if compositions is not None and num_atoms is not None:
            raise PipelineInputError(
                "give compositions (structure prediction) or num_atoms (de novo), not both"
            )
        if compositions is not None:
            comps = as_list(compositions)
            if not comps:
                raise PipelineInputError("compositions is an empty list")
            atoms = [composition_atoms(c, self.max_atoms, f"compositions[{i}]") for i, c in enumerate(comps)]
            return [a for a in atoms for _ in range(int(num_samples))]
        if not self.can_generate_de_novo:
            raise PipelineInputError(
                "this pipeline has no atom-type scheduler / type head: it predicts structures for given "
                "compositions only (pass compositions=...)"
            )
        if num_atoms is not None:
            counts = [
                check_num_atoms(n, self.max_atoms, f"num_atoms[{i}]")
                for i, n in enumerate(as_list(num_atoms))
            ]
            return [n for n in counts for _ in range(int(num_samples))]
        return self.sample_num_atoms(int(num_samples), generator)

    def sample_num_atoms(self, count: int, generator=None) -> list[int]:
        """Atom counts drawn from the training distribution stored in the denoiser's config."""
        dist = self.denoiser.config.num_atoms_distribution
        if dist is None:
            probs = torch.ones(self.max_atoms + 1)
            probs[0] = 0
        else:
            probs = torch.tensor(dist, dtype=torch.float64)
        draws = torch.multinomial(probs.float(), count, replacement=True, generator=generator)
        return [int(n) for n in draws]

    # ------------------------------------------------------------------------------- sampling
    @torch.no_grad()
    def __call__(
        self,
        compositions=None,
        num_atoms=None,
        num_samples: int = 1,
        num_inference_steps: int = 200,
        timesteps: list[int] | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "structure",
        corrector_steps: int | None = None,
        corrector_step_lr: float | None = None,
        batch_size: int | None = None,
        return_dict: bool = True,
        conditions: dict | None = None,
        guidance_scale: float | None = None,
        prompt: str | list[str] | None = None,
        element_guidance: float | None = None,
    ) -> CrystalPipelineOutput | tuple:
        """Sample crystals.

        Args:
            compositions: formula string(s) or Composition(s) for structure prediction; the formula
                is the cell content ("SrTiO3" = 5 atoms). ``None``: de novo generation.
            num_atoms: de novo only: atom count(s); ``None`` draws them from the training
                distribution (``num_samples`` crystals).
            num_samples: samples per composition / per atom count.
            num_inference_steps: reverse steps (1..num_train_timesteps), or explicit ``timesteps``.
            generator: a ``torch.Generator`` for reproducible samples.
            output_type: "structure" (pymatgen only) or "cif" (also each as a standard P1 CIF
                with every site, ``out.cifs``, for other programs).
            corrector_steps, corrector_step_lr: override the coordinate scheduler's Langevin
                corrector settings (0 steps: predictor only, one model call per step).
            batch_size: crystals per denoiser batch (default: all at once).
            conditions: a conditioned model only: condition name -> target value for every sample
                (a number for a scalar property, in its own units; a class index for a categorical
                one). Conditions not named use their null embeddings; ``None``: unconditional.
            guidance_scale: classifier-free guidance weight with ``conditions`` (default 1.0: plain
                conditional sampling; 0: unconditional; above 1: pushed further toward the target).
            prompt: a text-conditioned pipeline only (de novo): a description or a list of them,
                ``num_samples`` crystals each (sample j of prompt i at ``i * num_samples + j``);
                ``num_atoms`` may give one count for all or one per prompt, else counts are drawn.
                ``guidance_scale`` applies to it as to ``conditions``.
            element_guidance: with a prompt and a pipeline that has an ``element_head``
                (:mod:`hfmat.diffusion.element_head`): the weight w of the head's element
                probabilities in the atom-type draws, ``p(Z) ~ p_denoiser(Z) * p_head(Z in crystal)^w``.
                Default: 1.0 when the pipeline has the head and a prompt is given; 0 turns it off.
        """
        if output_type not in OUTPUT_TYPES:
            raise PipelineInputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if timesteps is not None:
            num_inference_steps = None
        try:  # validate the schedule before sampling; the same rule as set_timesteps below
            from hfmat.diffusion.schedulers.spacing import inference_timesteps

            schedule = inference_timesteps(self.coord_scheduler.config, num_inference_steps, timesteps)
        except ValueError as err:
            raise PipelineInputError(str(err)) from None
        corrector_steps = (
            self.coord_scheduler.config.corrector_steps if corrector_steps is None else corrector_steps
        )
        if (
            isinstance(corrector_steps, bool)
            or int(corrector_steps) != corrector_steps
            or corrector_steps < 0
        ):
            raise PipelineInputError(
                f"corrector_steps must be a non-negative integer, got {corrector_steps!r}"
            )
        if corrector_step_lr is not None and not corrector_step_lr >= 0:
            raise PipelineInputError(f"corrector_step_lr must be >= 0, got {corrector_step_lr!r}")
        prompts = self._prompts(prompt, compositions)
        guidance = self._guidance(conditions, guidance_scale, prompts is not None)
        if prompts is None:
            requests = self._requests(compositions, num_atoms, num_samples, generator)
        else:
            requests = self._prompt_requests(prompts, num_atoms, num_samples, generator)
        if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
            raise PipelineInputError(f"batch_size must be a positive integer, got {batch_size!r}")
        size = len(requests) if batch_size is None else int(batch_size)
        per_request = self._condition_tensors(guidance, prompts, len(requests), int(num_samples))
        type_prior = self._type_prior(element_guidance, prompts, per_request)

        structures = []
        starts = range(0, len(requests), size)
        with self.progress_bar(total=len(starts) * len(schedule)) as bar:
            for i in starts:
                types, coords, lattices, counts = self._sample_batch(
                    requests[i : i + size],
                    schedule.tolist(),
                    generator,
                    int(corrector_steps),
                    corrector_step_lr,
                    bar,
                    None
                    if guidance is None
                    else ({k: v[i : i + size] for k, v in per_request.items()}, guidance[1]),
                    None if type_prior is None else type_prior[i : i + size],
                )
                structures.extend(self._to_structures(types, coords, lattices, counts))
        cifs = None
        if output_type == "cif":
            from hfmat.cif.export import structure_to_standard_cif

            cifs = [structure_to_standard_cif(s) for s in structures]
        formulas = [s.composition.formula.replace(" ", "") for s in structures]
        self.maybe_free_model_hooks()
        if not return_dict:
            return (structures, cifs, formulas)
        return CrystalPipelineOutput(structures=structures, cifs=cifs, formulas=formulas)

    def _prompts(self, prompt, compositions) -> list[str] | None:
        """The checked prompts (:func:`hfmat.diffusion.text.check_prompts`), or None without one."""
        if prompt is None:
            return None
        from hfmat.diffusion.text import check_prompts, max_prompt_tokens, text_conditions

        if self.text_encoder is None or self.tokenizer is None:
            raise PipelineInputError(
                "this pipeline has no text encoder (text_encoder and tokenizer components), so it "
                "cannot read a prompt; use a text-conditioned pipeline (docs/text_guidance.md)"
            )
        if not text_conditions(self.denoiser):
            raise PipelineInputError(
                "this pipeline's denoiser has no text condition: it cannot take a prompt"
            )
        if compositions is not None:
            raise PipelineInputError(
                "prompt is for de novo generation: give prompt or compositions, not both"
            )
        return check_prompts(prompt, self.tokenizer, max_prompt_tokens(self.text_encoder, self.tokenizer))

    def _prompt_requests(self, prompts, num_atoms, num_samples, generator) -> list[int]:
        """Atom counts of the crystals to sample, ``num_samples`` per prompt: drawn from the
        training distribution, or ``num_atoms`` (one count, or one per prompt)."""
        if isinstance(num_samples, bool) or int(num_samples) != num_samples or int(num_samples) < 1:
            raise PipelineInputError(f"num_samples must be a positive integer, got {num_samples!r}")
        if not self.can_generate_de_novo:
            raise PipelineInputError("prompt needs a de novo pipeline (atom-type scheduler and type head)")
        total = len(prompts) * int(num_samples)
        if num_atoms is None:
            return self.sample_num_atoms(total, generator)
        counts = [
            check_num_atoms(n, self.max_atoms, f"num_atoms[{i}]") for i, n in enumerate(as_list(num_atoms))
        ]
        if len(counts) not in (1, len(prompts)):
            raise PipelineInputError(
                f"num_atoms: give one count or one per prompt ({len(prompts)}), got {len(counts)}"
            )
        counts = counts * len(prompts) if len(counts) == 1 else counts
        return [n for n in counts for _ in range(int(num_samples))]

    def _condition_tensors(self, guidance, prompts, num_requests: int, num_samples: int) -> dict:
        """Each condition's value for every crystal to sample: [R] for a scalar or categorical
        target, [R, dim] embeddings for the prompts (each repeated ``num_samples`` times)."""
        if guidance is None:
            return {}
        out = {k: torch.full((num_requests,), v) for k, v in guidance[0].items()}
        if prompts is not None:
            from hfmat.diffusion.text import embed_texts, text_conditions, text_pooling

            pooling = text_pooling(self.denoiser)
            embeddings = embed_texts(self.text_encoder, self.tokenizer, prompts, pooling=pooling).cpu()
            out[text_conditions(self.denoiser)[0]] = embeddings.repeat_interleave(num_samples, dim=0)
        return out

    def element_guidance_weight(self, element_guidance: float | None = None) -> float:
        """The element-head weight a prompted call uses: ``element_guidance`` as given, else 1 for a
        pipeline with an element head and 0 without one."""
        if element_guidance is not None:
            return float(element_guidance)
        return 1.0 if getattr(self, "element_head", None) is not None else 0.0

    def _type_prior(self, element_guidance, prompts, per_request: dict) -> torch.Tensor | None:
        """``w * log p_head(Z in crystal)`` [R, NUM_ATOM_TYPES] for every crystal to sample, from the
        element head and the prompts' embeddings, or None (no head, no prompt, or w = 0)."""
        head = getattr(self, "element_head", None)
        if element_guidance is not None:
            check_weight("element_guidance", element_guidance)
            if element_guidance > 0 and head is None:
                raise PipelineInputError(
                    "element_guidance needs a pipeline with an element_head (this one has none: "
                    "training/train_element_head.py adds one)"
                )
            if element_guidance > 0 and prompts is None:
                raise PipelineInputError(
                    "element_guidance needs a prompt: the head reads the prompt's elements"
                )
        weight = self.element_guidance_weight(element_guidance)
        if head is None or prompts is None or weight == 0:
            return None
        from hfmat.diffusion.text import text_conditions, text_pooling

        if head.config.pooling != text_pooling(self.denoiser):
            raise PipelineInputError(
                f"the element head reads {head.config.pooling}-pooled embeddings, the denoiser's text "
                f"condition {text_pooling(self.denoiser)}-pooled: retrain the head for this denoiser"
            )
        embeddings = per_request[text_conditions(self.denoiser)[0]]
        return weight * head.log_prior(embeddings.to(head.device)).cpu()

    def _guidance(self, conditions, guidance_scale, prompt: bool = False) -> tuple[dict, float] | None:
        """``(checked conditions, scale)``, or None for unconditional sampling; with a prompt the
        conditions may be empty (the prompt's embedding is added per crystal)."""
        specs = getattr(self.denoiser, "condition_specs", {})
        if guidance_scale is not None:
            check_weight("guidance_scale", guidance_scale)
            if not specs:
                raise PipelineInputError(
                    "guidance_scale needs a model trained with conditions; this pipeline's denoiser has none"
                )
            if not conditions and not prompt:
                raise PipelineInputError(
                    f"guidance_scale needs conditions (the property values to guide toward) or a "
                    f"prompt; this model's conditions: {', '.join(specs)}"
                )
        scale = 1.0 if guidance_scale is None else float(guidance_scale)
        if conditions is None:
            return ({}, scale) if prompt else None
        values = check_condition_values(conditions, specs)
        return (values, scale) if values or prompt else None

    def _predict(self, guidance, types, coords, lattices, t_batch, num_atoms):
        """One denoiser call; with guidance (each condition's values for the batch's crystals, and
        the scale), the conditional and the null halves in one batch and the classifier-free
        combination of their outputs (in float32)."""
        if guidance is None:
            return self.denoiser(types, coords, lattices, t_batch, num_atoms)
        values, scale = guidance
        b, n = len(num_atoms), len(types)
        values = {  # a tensor per crystal, or one value for all
            k: v.to(lattices.device) if torch.is_tensor(v) else torch.full((b,), v, device=lattices.device)
            for k, v in values.items()
        }
        if scale == 1.0:  # plain conditional sampling: no unconditional half
            return self.denoiser(types, coords, lattices, t_batch, num_atoms, conditions=values)
        conds = {k: torch.cat([v, v]) for k, v in values.items()}
        present = torch.arange(2 * b, device=lattices.device) < b  # first half conditional
        out = self.denoiser(
            torch.cat([types, types]),
            torch.cat([coords, coords]),
            torch.cat([lattices, lattices]),
            torch.cat([t_batch, t_batch]),
            torch.cat([num_atoms, num_atoms]),
            conditions=conds,
            condition_mask={k: present for k in values},
        )

        def combine(x, size):
            cond, uncond = x.float()[:size], x.float()[size:]
            return uncond + scale * (cond - uncond)

        logits = out.type_logits
        if logits is not None:  # on log-probabilities; the type scheduler renormalises them
            logits = combine(torch.log_softmax(logits.float(), dim=-1), n)
        return CrystalDenoiserOutput(
            lattice_noise=combine(out.lattice_noise, b),
            coord_score=combine(out.coord_score, n),
            type_logits=logits,
        )

    def _sample_batch(
        self,
        requests,
        schedule,
        generator,
        corrector_steps,
        corrector_step_lr,
        bar,
        guidance=None,
        type_prior=None,
    ):
        device = self._execution_device
        # the diffusion state and the scheduler math stay in float32 whatever the denoiser's dtype
        # (bfloat16 weights: the denoiser casts its inputs, its outputs come back as float32)
        dtype = torch.float32
        if self.denoiser.dtype == torch.float16:
            raise PipelineInputError(
                "float16 weights overflow in this denoiser: at high noise the sampled lattice takes "
                "large values (entries above 100 in a 20-step run), its Gram-matrix features exceed "
                "float16's largest value (65504) and every sample becomes NaN. Load it with "
                "dtype=torch.bfloat16 (float32's range) or float32."
            )
        de_novo = isinstance(requests[0], int)
        counts = [r if de_novo else len(r) for r in requests]
        num_atoms = torch.tensor(counts, dtype=torch.long, device=device)
        total = int(num_atoms.sum())
        if de_novo:
            types = self.type_scheduler.sample_masked(total, device=device)
        else:
            types = torch.tensor([z for r in requests for z in r], dtype=torch.long, device=device)
        lattices = randn_tensor((len(requests), 3, 3), generator=generator, device=device, dtype=dtype)
        gen_device = generator.device if generator is not None else device
        coords = torch.rand((total, 3), generator=generator, device=gen_device).to(device=device, dtype=dtype)

        self.lattice_scheduler.set_timesteps(timesteps=schedule, device=device)
        self.coord_scheduler.set_timesteps(timesteps=schedule, device=device)
        if de_novo:
            self.type_scheduler.set_timesteps(timesteps=schedule, device=device)
        allowed = self.denoiser.allowed_atom_types() if de_novo else None
        if allowed is not None:
            allowed = allowed.to(device)
        if type_prior is not None:  # each crystal's element log-prior, on each of its atoms
            type_prior = type_prior.to(device).repeat_interleave(num_atoms, dim=0)

        for t in schedule:
            t_batch = torch.full((len(requests),), t, dtype=torch.long, device=device)
            for _ in range(corrector_steps):
                out = self._predict(guidance, types, coords, lattices, t_batch, num_atoms)
                coords = self.coord_scheduler.step_correct(
                    out.coord_score.float(), t, coords, generator=generator, step_lr=corrector_step_lr
                ).prev_sample
            out = self._predict(guidance, types, coords, lattices, t_batch, num_atoms)
            coords = self.coord_scheduler.step(
                out.coord_score.float(), t, coords, generator=generator
            ).prev_sample
            lattices = self.lattice_scheduler.step(
                out.lattice_noise.float(), t, lattices, generator=generator
            ).prev_sample
            if de_novo:
                logits = out.type_logits.float()
                if type_prior is not None:
                    logits = logits + type_prior
                if allowed is not None:  # only the training data's elements (config.elements)
                    logits = logits.masked_fill(~allowed, -float("inf"))
                types = self.type_scheduler.step(logits, t, types, generator=generator).prev_sample
            bar.update()
        if de_novo and (types == MASK_TYPE).any():  # cannot happen: the last step reveals every token
            raise RuntimeError("atom types still masked after the last step")
        lattices = self.denoiser.denormalize_lattice(lattices.float(), num_atoms)
        return types, coords.float(), lattices, counts

    @staticmethod
    def _to_structures(types, coords, lattices, counts):
        from hfmat.data import graph_to_structure

        out = []
        offsets = np.cumsum([0, *counts])
        for i, n in enumerate(counts):
            lattice = lattices[i].cpu().numpy().astype(np.float64)
            frac = coords[offsets[i] : offsets[i] + n].cpu().numpy().astype(np.float64)
            if np.linalg.det(lattice) < 0:  # the same crystal in a right-handed basis: L -> -L, f -> -f
                lattice, frac = -lattice, -frac
            out.append(graph_to_structure(types[offsets[i] : offsets[i] + n], frac, lattice))
        return out
