"""The joint training objective: lattice noise (MSE), torus score (MSE), atom types (cross-entropy)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hfmat.diffusion.denoiser import normalize_lattice


def diffusion_loss(
    model,
    batch: dict[str, torch.Tensor],
    lattice_scheduler,
    coord_scheduler,
    type_scheduler=None,
    lattice_scale: float = 1.0,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    generator: torch.Generator | None = None,
    conditions: tuple[str, ...] = (),
    condition_drop_prob: float = 0.0,
) -> dict[str, torch.Tensor]:
    """One Monte Carlo draw of the loss on a :class:`hfmat.data.GraphCollator` batch.

    ``model`` is the :class:`CrystalDenoiser` (or its DDP wrapper). One timestep per crystal is shared
    by the lattice, the coordinates and (when ``type_scheduler`` is given, for de novo generation)
    the atom types; without a type scheduler the types are the clean conditioning input (CSP).
    Returns ``loss`` and its parts ``lattice``, ``coord``, ``type``.

    ``conditions`` names the batch's property columns (FloatTensor[B], NaN = unknown) that a
    conditioned denoiser takes; each is dropped per crystal with probability
    ``condition_drop_prob`` (trained as absent: classifier-free guidance). The drop draws come after
    every other draw, and without conditions there are none: an unconditional run is unchanged.
    """
    num_atoms = batch["num_atoms"]
    device = batch["frac_coords"].device
    num_crystals = len(num_atoms)
    per_atom = torch.repeat_interleave(torch.arange(num_crystals, device=device), num_atoms)
    T = lattice_scheduler.config.num_train_timesteps
    gen_device = generator.device if generator is not None else device
    t = torch.randint(0, T, (num_crystals,), generator=generator, device=gen_device).to(device)

    lattices = normalize_lattice(batch["lattices"], num_atoms, lattice_scale)
    eps_lattice = torch.randn(lattices.shape, generator=generator, device=gen_device).to(device)
    noisy_lattices = lattice_scheduler.add_noise(lattices, eps_lattice, t)

    eps_coord = torch.randn(batch["frac_coords"].shape, generator=generator, device=gen_device).to(device)
    noisy_coords = coord_scheduler.add_noise(batch["frac_coords"], eps_coord, t[per_atom])
    coord_target = coord_scheduler.get_score_target(eps_coord, t[per_atom])

    types = batch["atom_types"]
    if type_scheduler is not None:
        u = torch.rand(types.shape, generator=generator, device=gen_device).to(device)
        noisy_types = type_scheduler.add_noise(types, u, t[per_atom])
    else:
        noisy_types = types

    if conditions:
        values = {name: batch[name].to(device) for name in conditions}
        keep = {
            name: torch.rand((num_crystals,), generator=generator, device=gen_device).to(device)
            >= condition_drop_prob
            for name in conditions
        }
        out = model(
            noisy_types, noisy_coords, noisy_lattices, t, num_atoms, conditions=values, condition_mask=keep
        )
    else:
        out = model(noisy_types, noisy_coords, noisy_lattices, t, num_atoms)
    loss_lattice = F.mse_loss(out.lattice_noise, eps_lattice)
    loss_coord = F.mse_loss(out.coord_score, coord_target)
    if type_scheduler is not None:
        masked = noisy_types == type_scheduler.config.mask_token_id
        if masked.any():
            loss_type = F.cross_entropy(out.type_logits[masked], types[masked])
        else:
            loss_type = out.type_logits.sum() * 0.0
    else:
        loss_type = torch.zeros((), device=device)
    w_l, w_c, w_t = weights
    total = w_l * loss_lattice + w_c * loss_coord + w_t * loss_type
    return {
        "loss": total,
        "lattice": loss_lattice.detach(),
        "coord": loss_coord.detach(),
        "type": loss_type.detach(),
    }
