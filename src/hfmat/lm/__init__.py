"""The CIF language model: prompts, constrained decoding and generation (plain GPT-2 checkpoints)."""

from hfmat.lm.constraints import CifConstraint, CifLogitsProcessor, ConstraintError
from hfmat.lm.generation import GeneratedCif, check_fits_context, generate_cifs
from hfmat.lm.grammar import CifGrammar
from hfmat.lm.prompts import PromptError, cell_composition, composition_prompt, unconditional_prompt

__all__ = [
    "CifConstraint",
    "CifGrammar",
    "CifLogitsProcessor",
    "ConstraintError",
    "GeneratedCif",
    "PromptError",
    "cell_composition",
    "check_fits_context",
    "composition_prompt",
    "generate_cifs",
    "unconditional_prompt",
]
