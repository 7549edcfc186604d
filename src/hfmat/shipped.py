"""The small default models that ship inside the package (``hfmat/checkpoints/``).

In a clone of the repository ``checkpoints/`` is a link to the same folder, so the README's
``checkpoints/NAME`` paths and the bare names below both work; after ``pip install hfmat`` only the
names do (and work from any directory).
"""

from __future__ import annotations

from pathlib import Path

#: The shipped models by name: the CIF language models (Perov-5, its GRPO fine-tune, Carbon-24, general
#: chemistry, Perov-5 after rejection-sampling fine-tuning) and the
#: diffusion pipelines (Perov-5 structure prediction, de novo generation and de novo generation
#: conditioned on properties, Carbon-24 de novo generation conditioned on energy_per_atom, Carbon-24
#: structure prediction, general-chemistry structure prediction).
LM = "cif-gpt2-perov5"
LM_CARBON24 = "cif-gpt2-carbon24"
LM_GENERAL = "cif-gpt2-general"  # MP-20 subset train + Perov-5 val + Carbon-24 val
LM_RL = "cif-gpt2-perov5-rl"  # LM fine-tuned with GRPO (validity, composition, CHGNet energy)
LM_RFT = "cif-gpt2-perov5-rft"  # LM after rounds of rejection-sampling fine-tuning on its valid samples
DIFFUSION_CSP = "crystal-diffusion-perov5"
DIFFUSION_GEN = "crystal-diffusion-perov5-gen"
DIFFUSION_CARBON24 = "crystal-diffusion-carbon24"
DIFFUSION_GEN_CONDITIONED = "crystal-diffusion-perov5-gen-conditioned"  # heat_ref, dir_gap
DIFFUSION_CARBON24_GEN_CONDITIONED = "crystal-diffusion-carbon24-gen-conditioned"  # energy_per_atom
DIFFUSION_GENERAL = "crystal-diffusion-general"  # MP-20 subset train + Perov-5 val + Carbon-24 val
NAMES = (
    LM,
    DIFFUSION_CSP,
    DIFFUSION_GEN,
    DIFFUSION_CARBON24,
    DIFFUSION_GEN_CONDITIONED,
    DIFFUSION_CARBON24_GEN_CONDITIONED,
    LM_CARBON24,
    LM_GENERAL,
    LM_RL,
    DIFFUSION_GENERAL,
    LM_RFT,
)

#: The shipped text models (docs/text_guidance.md): Crystal CLIP (both towers), and its text side as two
#: repositories of their own, the text encoder (a BertModel with its tokenizer) and the prose tokenizer.
#: They generate nothing, so they are not among :data:`NAMES` (the models the app and demo offer).
CLIP = "crystal-clip-perov5"
TEXT_ENCODER = "crystal-text-encoder-perov5"
PROSE_TOKENIZER = "prose-tokenizer-perov5"
TEXT_NAMES = (CLIP, TEXT_ENCODER, PROSE_TOKENIZER)
#: The text-conditioned de novo pipeline (``pipe(prompt=...)``, ``hfmat diffuse --prompt``; its folder
#: also holds the text encoder and tokenizer). It needs a prompt, so it is not among NAMES; the app
#: serves it beside them (a description box for it).
DIFFUSION_TEXT = "crystal-diffusion-perov5-text"
#: The same trained on Perov-5 and Carbon-24 together (cells of 5-24 atoms).
DIFFUSION_TEXT_JOINT = "crystal-diffusion-perov5-carbon24-text"
TEXT_PIPELINES = (DIFFUSION_TEXT, DIFFUSION_TEXT_JOINT)
#: Every shipped folder, by the name :func:`shipped_model` and ``hfmat.hub.resolve`` take.
ALL_NAMES = NAMES + TEXT_NAMES + TEXT_PIPELINES


def shipped_root() -> Path:
    """The folder that holds the shipped models."""
    return Path(__file__).resolve().parent / "checkpoints"


def shipped_model(name: str) -> Path:
    """The folder of the shipped model ``name`` (one of :data:`ALL_NAMES`)."""
    if name not in ALL_NAMES:
        raise FileNotFoundError(f"no shipped model {name!r}; the shipped ones are {', '.join(ALL_NAMES)}")
    path = shipped_root() / name
    if not (path / "README.md").is_file():
        raise FileNotFoundError(
            f"the shipped model {name} is missing from {path.parent}: this installation of hfmat "
            "was built without its package data; reinstall hfmat"
        )
    return path
