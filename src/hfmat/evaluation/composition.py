"""Compositional validity with SMACT, as CDVAE / DiffCSP compute it.

A composition is valid when some assignment of oxidation states from the ``smact14`` set (the set
SMACT's ``Element.oxidation_states`` meant when CDVAE was written) is charge neutral at the
composition's smallest integer ratio and passes the Pauling electronegativity test (cations less
electronegative than anions). A single element and an all-metal alloy are valid. SMACT 4 ships this
logic as ``smact.screening.smact_validity``; it is called with the settings that reproduce CDVAE.
"""

from __future__ import annotations

import warnings

from pymatgen.core import Composition

from hfmat.extras import require

OXIDATION_STATES_SET = "smact14"


def smact_valid(composition: Composition | str) -> bool:
    """SMACT charge-neutrality + Pauling test; single elements and all-metal alloys are valid.

    A composition with an element SMACT has no data for (Rf and heavier, Z >= 104) is invalid: no
    oxidation state of it is known, so no charge-neutral assignment exists (SMACT itself raises)."""
    smact = require("smact")
    smact_validity = require("smact.screening").smact_validity

    comp = Composition(composition) if isinstance(composition, str) else composition
    if len(comp) == 0:
        raise ValueError("empty composition")
    for el in comp.elements:
        try:
            smact.Element(el.symbol)
        except KeyError:
            return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(
            smact_validity(
                comp.element_composition,
                use_pauling_test=True,
                include_alloys=True,
                oxidation_states_set=OXIDATION_STATES_SET,
            )
        )
