"""CrystalDenoiser invariances and the crystal schedulers' math (hfmat.diffusion)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import DDPMScheduler

from hfmat.diffusion import CrystalDenoiser, D3PMScheduler, WrappedNormalScheduler, lattice_scheduler
from hfmat.diffusion.denoiser import fully_connected_edges
from hfmat.diffusion.schedulers.wrapped_normal import wrapped_normal_score


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CrystalDenoiser(hidden_dim=32, num_layers=2, num_frequencies=4, time_embed_dim=16).double().eval()


@pytest.fixture(scope="module")
def inputs():
    g = torch.Generator().manual_seed(1)
    num_atoms = torch.tensor([3, 4, 1])
    n = int(num_atoms.sum())
    return {
        "atom_types": torch.randint(1, 90, (n,), generator=g),
        "frac_coords": torch.rand(n, 3, generator=g, dtype=torch.float64),
        "lattices": 3 * torch.eye(3, dtype=torch.float64)
        + torch.randn(3, 3, 3, generator=g, dtype=torch.float64),
        "timesteps": torch.tensor([10, 500, 999]),
        "num_atoms": num_atoms,
    }


def test_edges_are_all_pairs_within_each_crystal():
    src, dst = fully_connected_edges(torch.tensor([2, 3]))
    pairs = set(zip(src.tolist(), dst.tolist()))
    expected = {(i, j) for i in range(2) for j in range(2)} | {
        (i, j) for i in range(2, 5) for j in range(2, 5)
    }
    assert pairs == expected and len(src) == 13


def test_outputs_have_the_documented_shapes(model, inputs):
    out = model(**inputs)
    assert out.lattice_noise.shape == (3, 3, 3)
    assert out.coord_score.shape == (8, 3)
    assert out.type_logits.shape == (8, 119)


def test_permuting_atoms_permutes_outputs(model, inputs):
    out = model(**inputs)
    perm = torch.tensor([2, 0, 1, 6, 4, 3, 5, 7])  # within each crystal
    moved = model(
        **{**inputs, "atom_types": inputs["atom_types"][perm], "frac_coords": inputs["frac_coords"][perm]}
    )
    torch.testing.assert_close(moved.coord_score, out.coord_score[perm])
    torch.testing.assert_close(moved.type_logits, out.type_logits[perm])
    torch.testing.assert_close(moved.lattice_noise, out.lattice_noise)


def test_periodic_translation_leaves_outputs_unchanged(model, inputs):
    out = model(**inputs)
    shift = torch.tensor([0.37, 0.91, 0.5], dtype=torch.float64)
    moved = model(**{**inputs, "frac_coords": (inputs["frac_coords"] + shift) % 1.0})
    torch.testing.assert_close(moved.coord_score, out.coord_score, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(moved.lattice_noise, out.lattice_noise, atol=1e-7, rtol=1e-6)
    torch.testing.assert_close(moved.type_logits, out.type_logits, atol=1e-7, rtol=1e-6)


def test_rotation_leaves_invariants_unchanged_and_rotates_lattice_noise(model, inputs):
    out = model(**inputs)
    rot = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64))[
        0
    ]
    rotated = inputs["lattices"] @ rot.T  # rows are lattice vectors: Cartesian vectors rotate as v R^T
    moved = model(**{**inputs, "lattices": rotated})
    torch.testing.assert_close(moved.coord_score, out.coord_score)
    torch.testing.assert_close(moved.type_logits, out.type_logits)
    # DiffCSP form: invariant matrix times the lattice, so the predicted noise rotates with L
    torch.testing.assert_close(moved.lattice_noise, out.lattice_noise @ rot.T)


def test_csp_model_has_no_type_head():
    m = CrystalDenoiser(
        hidden_dim=16, num_layers=1, num_frequencies=2, time_embed_dim=8, predict_atom_types=False
    )
    out = m(torch.tensor([8]), torch.zeros(1, 3), torch.eye(3)[None], torch.tensor([5]), torch.tensor([1]))
    assert out.type_logits is None and not hasattr(m.type_head, "weight")


def test_num_atoms_distribution_length_is_checked():
    with pytest.raises(ValueError, match="max_atoms"):
        CrystalDenoiser(max_atoms=4, num_atoms_distribution=[0.5, 0.5])


# ------------------------------------------------------------------------------- torus scheduler


@pytest.fixture(scope="module")
def coord_scheduler():
    return WrappedNormalScheduler()


def test_wrapped_normal_score_is_the_gradient_of_the_log_density():
    sigma = torch.tensor([0.05, 0.3, 0.5, 0.5], dtype=torch.float64)
    x = torch.tensor([0.02, -0.4, 0.45, 1.3], dtype=torch.float64, requires_grad=True)
    k = torch.arange(-10, 11, dtype=torch.float64)
    logp = torch.logsumexp(-((x[:, None] + k) ** 2) / (2 * sigma[:, None] ** 2), dim=-1)
    (grad,) = torch.autograd.grad(logp.sum(), x)
    torch.testing.assert_close(wrapped_normal_score(x.detach(), sigma), grad)


def test_score_targets_have_unit_variance(coord_scheduler):
    g = torch.Generator().manual_seed(0)
    for t in (0, 600, 999):
        noise = torch.randn(200_000, 1, generator=g)
        target = coord_scheduler.get_score_target(noise, torch.full((200_000,), t))
        assert abs(float(target.pow(2).mean()) - 1.0) < 0.02, t
    # near sigma_max the wrapped normal is almost uniform: the raw score is far below 1/sigma^2
    assert float(coord_scheduler.score_norms[-1]) < 0.01 / 0.5**2


def test_add_noise_wraps_onto_the_torus(coord_scheduler):
    x0 = torch.rand(1000, 3)
    xt = coord_scheduler.add_noise(x0, torch.randn(1000, 3) * 5, torch.full((1000,), 999))
    assert float(xt.min()) >= 0.0 and float(xt.max()) < 1.0


@pytest.mark.parametrize("steps", [1000, 200, 50, 7])
def test_inference_timesteps_match_the_lattice_ddpm(coord_scheduler, steps):
    ddpm = lattice_scheduler()
    ddpm.set_timesteps(steps)
    coord_scheduler.set_timesteps(steps)
    assert coord_scheduler.timesteps.tolist() == ddpm.timesteps.tolist()
    assert isinstance(ddpm, DDPMScheduler) and ddpm.config.clip_sample is False


@pytest.mark.parametrize("bad", [0, 1001, 2.5, True])
def test_impossible_step_counts_are_refused(coord_scheduler, bad):
    with pytest.raises(ValueError, match="num_inference_steps"):
        coord_scheduler.set_timesteps(bad)


@pytest.mark.parametrize("cls", [WrappedNormalScheduler, D3PMScheduler])
def test_crystal_schedulers_share_one_inference_schedule(cls, tmp_path):
    sched = cls(num_train_timesteps=100)
    assert sched.num_inference_steps is None and sched.timesteps.tolist() == list(range(99, -1, -1))
    with pytest.raises(ValueError, match="before step"):
        sched.step(torch.zeros(2, 119), 99, torch.zeros(2, dtype=torch.long))
    ddpm = lattice_scheduler(num_train_timesteps=100)
    ddpm.set_timesteps(7)
    sched.set_timesteps(7)
    steps = sched.timesteps.tolist()
    assert steps == ddpm.timesteps.tolist() and sched.num_inference_steps == 7
    assert [sched.previous_timestep(t) for t in steps] == steps[1:] + [-1]
    sched.set_timesteps(timesteps=[90, 40, 3])
    assert [sched.previous_timestep(t) for t in (90, 40, 3)] == [40, 3, -1]
    with pytest.raises(ValueError, match="strictly decreasing"):
        sched.set_timesteps(timesteps=[3, 40])
    sched.save_pretrained(tmp_path)  # saved checkpoints name the class: it must not change
    assert json.loads((tmp_path / "scheduler_config.json").read_text())["_class_name"] == cls.__name__


@pytest.mark.parametrize("predictor,corrector", [("reverse_diffusion", 1), ("ancestral", 0)])
def test_sampling_with_the_exact_score_recovers_a_point_mass(predictor, corrector):
    """With the true score of p_t = wrapped N(x0, sigma_t^2) the sampler must end at x0 (mod 1)."""
    sched = WrappedNormalScheduler(predictor=predictor, corrector_steps=corrector, corrector_step_lr=1e-5)
    sched.set_timesteps(50)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[0.02, 0.5, 0.97]]).repeat(64, 1)
    x = torch.rand(x0.shape, generator=g)

    def model_output(x, t):  # the normalised score, as the network is trained to give it
        sigma = sched.sigmas[t].expand_as(x)
        return wrapped_normal_score(x - x0, sigma) / sched.score_norms[t].sqrt()

    for t in sched.timesteps.tolist():
        for _ in range(corrector):
            x = sched.step_correct(model_output(x, t), t, x, generator=g).prev_sample
        x = sched.step(model_output(x, t), t, x, generator=g).prev_sample
    err = (x - x0 + 0.5) % 1.0 - 0.5
    assert float(err.abs().max()) < 0.03
    assert float(x.min()) >= 0 and float(x.max()) < 1


# ------------------------------------------------------------------------------- absorbing D3PM


def test_d3pm_forward_masks_the_scheduled_fraction():
    sched = D3PMScheduler(num_train_timesteps=100)
    tokens = torch.randint(1, 119, (20_000,))
    u = torch.rand(20_000, generator=torch.Generator().manual_seed(0))
    for t in (0, 49, 99):
        noisy = sched.add_noise(tokens, u, torch.full((20_000,), t))
        frac = float((noisy == 0).float().mean())
        assert abs(frac - (t + 1) / 100) < 0.015
        kept = noisy != 0
        assert torch.equal(noisy[kept], tokens[kept])


def test_d3pm_reverse_with_a_perfect_model_reveals_the_true_tokens():
    sched = D3PMScheduler(num_train_timesteps=1000, mask_schedule="cosine")
    sched.set_timesteps(10)
    truth = torch.randint(1, 119, (500,), generator=torch.Generator().manual_seed(1))
    logits = torch.full((500, 119), -30.0)
    logits[torch.arange(500), truth] = 30.0
    logits[:, 0] = 50.0  # the mask token is never sampled, whatever the model says
    x = sched.sample_masked(500)
    g = torch.Generator().manual_seed(2)
    masked = []
    for t in sched.timesteps.tolist():
        x = sched.step(logits, t, x, generator=g).prev_sample
        masked.append(float((x == 0).float().mean()))
    assert torch.equal(x, truth)
    # half way the expected masked fraction is m(s) of the next timestep
    s = sched.timesteps.tolist()[5]
    assert abs(masked[4] - float(sched.mask_probs[s])) < 0.08
    assert masked == sorted(masked, reverse=True)


def test_scheduler_config_round_trip(tmp_path):
    sched = WrappedNormalScheduler(sigma_max=0.4, corrector_steps=2, predictor="ancestral")
    sched.save_pretrained(tmp_path / "coord")
    again = WrappedNormalScheduler.from_pretrained(tmp_path / "coord")
    assert again.config.sigma_max == 0.4 and again.config.corrector_steps == 2
    torch.testing.assert_close(again.sigmas, sched.sigmas)
    assert math.isclose(float(again.sigmas[0]), 0.005, rel_tol=1e-6)


@pytest.mark.parametrize("predictor", ["reverse_diffusion", "ancestral"])
def test_predictor_noise_variance(predictor):
    """ "reverse_diffusion" adds variance sigma_t^2 - sigma_s^2 (diffusers' ScoreSdeVeScheduler.step_pred);
    "ancestral" adds sigma_s^2 (sigma_t^2 - sigma_s^2) / sigma_t^2, DiffCSP's sampler's variance."""
    sched = WrappedNormalScheduler(predictor=predictor)
    sched.set_timesteps(timesteps=[300, 200])
    sigma_t, sigma_s = float(sched.sigmas[300]), float(sched.sigmas[200])
    x = torch.full((40_000, 3), 0.5)
    out = sched.step(torch.zeros_like(x), 300, x, generator=torch.Generator().manual_seed(0))
    expected = sigma_t**2 - sigma_s**2
    if predictor == "ancestral":
        expected *= sigma_s**2 / sigma_t**2
    assert torch.equal(out.prev_sample_mean, x)  # a zero score moves nothing
    assert abs(float((out.prev_sample - 0.5).var()) / expected - 1) < 0.02
