"""Train the crystal diffusion model (hfmat.diffusion) with Accelerate.

    accelerate launch training/train_diffusion.py --config training/configs/diffusion_tiny.yaml
    torchrun --nproc_per_node 2 training/train_diffusion.py --config training/configs/diffusion_tiny.yaml
    python training/train_diffusion.py --config ... --resume latest          # exact resume
    python training/train_diffusion.py --config ... --init-from checkpoints/crystal-diffusion-perov5

The run ends in a Hub-ready pipeline folder (``<output_dir>/final`` unless ``final_dir`` is set):
model_index.json, denoiser/ (safetensors, EMA weights when ``ema_decay`` is set), the schedulers,
training_summary.json and a model card (README.md from model_cards/diffusion.md).

``task: csp`` trains a structure-prediction model (atom types are the condition, no type head);
``task: gen`` also diffuses the atom types (absorbing-state D3PM) for de novo generation.

``conditions:`` trains a property-conditioned model for classifier-free guidance (docs/guidance.md):
a list of dataset columns, each ``{name: heat_ref, kind: scalar}`` (mean and std are computed on
the training split and stored in the denoiser's config) or ``{name: ..., kind: categorical,
num_classes: N}`` (values 0..N-1); each is dropped to its null embedding per crystal with
probability ``condition_drop_prob``. With ``--init-from`` an unconditional pipeline, the condition
embeddings are added zero-initialised, so the fine-tune starts from that model exactly.

``task: gen`` records the training split's elements in the denoiser's config (``elements``), and
de novo sampling draws atom types among them only; a de novo run ``--init-from`` any pipeline samples
its own data's cell sizes (the denoiser's ``max_atoms`` becomes the config's and its atom-count
distribution is recomputed from the training rows). ``--init-from`` a structure-prediction pipeline
with ``task: gen`` starts a de novo model from its weights (:meth:`CrystalDenoiser.for_generation`:
a new zero type head, the mask state embedded as the mean of the training elements; it prints which
weights were copied and which are new).

A condition ``{name: text, kind: text}`` trains a text-conditioned model (docs/text_guidance.md):
``text_encoder:`` names a Crystal CLIP folder (or a text-conditioned pipeline) whose frozen text
tower embeds every crystal's templated descriptions (hfmat.data.descriptions, the ``text_columns``
styles) once, before training, in batches; each step draws one style per crystal.
The text encoder and its tokenizer are saved in the final pipeline folder.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (training/common/: what both training scripts share)

#: Every key a diffusion config may set, with its default: the keys of every script
#: (common.DEFAULTS: data, optimisation, bookkeeping), this script's own keys, and its own values
#: for some of the shared ones.
DEFAULTS: dict = {
    **common.DEFAULTS,
    # task and model
    "task": "csp",  # "csp" (types given) or "gen" (types diffused too)
    "init_from": None,  # a pipeline folder (or repo id) whose denoiser weights start the run
    "hidden_dim": 256,
    "num_layers": 4,
    "num_frequencies": 32,
    "time_embed_dim": 128,
    "max_atoms": 20,
    # the lattice is diffused as L / (lattice_scale * N^(1/3)); lattice_scale is the data's mean
    # (|det L| / N)^(1/3) times this factor (0.25: DiffCSP's Angstrom-sized lattice signal, which
    # keeps noisy lattices from collapsing: docs/denovo_density.md); with --init-from, a factor that
    # gives another scale than the base's rescales it (fine-tune so the network learns it)
    "lattice_scale_factor": 1.0,
    # several sources in one run, instead of `dataset`/`train_split`: a list of
    # {dataset, split, data_dir, name, repeat} (hfmat.data.sources), as in train_cif_lm.py
    "datasets": None,
    # property conditions (classifier-free guidance): dataset columns, e.g. [{name: heat_ref, kind: scalar}]
    "conditions": None,
    "condition_drop_prob": 0.1,  # per crystal and condition: trained as absent (the null embedding)
    # add the condition embedding before every message-passing layer too, not only at the input
    # (zero-initialised maps; with --init-from a conditioned pipeline without them, they are added)
    "condition_every_layer": False,
    # a text condition ({name: text, kind: text}): the frozen text tower that embeds the descriptions
    "text_encoder": None,  # a Crystal CLIP or text-encoder folder, a shipped name or a repo id
    "text_columns": None,  # description styles drawn from (default: all of hfmat.data.descriptions)
    # diffusion
    "num_train_timesteps": 1000,
    "sigma_min": 0.005,
    "sigma_max": 0.5,
    "cost_lattice": 1.0,
    "cost_coord": 1.0,
    "cost_type": 1.0,
    # sampling defaults stored in the saved schedulers
    "predictor": "reverse_diffusion",
    "corrector_steps": 1,
    "corrector_step_lr": 1e-5,
    # optimisation: AdamW without weight decay, large batches, an EMA of the weights
    "weight_decay": 0.0,
    "betas": [0.9, 0.999],
    "per_device_batch_size": 64,
    "eval_batch_size": 128,
    "ema_decay": 0.999,  # None: no EMA weights
    "seed": 42,
    # bookkeeping
    "output_dir": "runs/diffusion",
    "model_name": "crystal-diffusion",
}


def parse_args(argv=None):
    p = common.training_arguments(
        __doc__,
        config_help="YAML or JSON config (training/configs/diffusion_*.yaml)",
        init_from_help="pipeline folder or repo id whose denoiser starts the run",
    )
    p.add_argument(
        "--export-only",
        action="store_true",
        help="with --resume: write the pipeline folder from that checkpoint (EMA weights) without training",
    )
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------- data


def _graph_columns(batch: dict[str, list]) -> dict[str, list]:
    from pymatgen.core import Structure

    from hfmat.data import structure_to_graph

    out: dict[str, list] = {"atom_types": [], "frac_coords": [], "lattice": [], "num_atoms": []}
    for text in batch["cif"]:
        graph = structure_to_graph(Structure.from_str(text, fmt="cif"))
        for key in out:
            out[key].append(graph[key])
    return out


def to_graphs(dataset, keep: tuple[str, ...] = ()):
    """Niggli graphs (hfmat.data.structure_to_graph) of a dataset's ``cif`` column, and the columns
    named in ``keep`` (property conditions) as they are."""
    missing = [c for c in keep if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"condition column(s) {missing} not in the dataset; its columns: {dataset.column_names}"
        )
    drop = [c for c in dataset.column_names if c not in keep]
    return dataset.map(_graph_columns, batched=True, remove_columns=drop, desc="structure_to_graph")


def build_datasets(cfg: dict):
    from hfmat.data import load_crystal_dataset

    if cfg["datasets"]:  # several sources, each counted in scope["sources"]
        train, evalset, scope = common.split_sources(cfg, keep_columns=True)  # properties: conditions, texts
    else:
        kwargs = {"data_dir": cfg["data_dir"]} if cfg["data_dir"] else {}
        wanted = [cfg["train_split"]] + ([cfg["eval_split"]] if cfg["eval_split"] else [])
        ds = load_crystal_dataset(cfg["dataset"], splits=wanted, **kwargs)
        if cfg["train_split"] not in ds:
            raise ValueError(f"dataset {cfg['dataset']!r} has no split {cfg['train_split']!r}: {list(ds)}")
        if cfg["eval_split"] and cfg["eval_split"] not in ds:
            raise ValueError(f"dataset {cfg['dataset']!r} has no split {cfg['eval_split']!r}: {list(ds)}")
        evalset = ds[cfg["eval_split"]] if cfg["eval_split"] else None
        train, evalset = common.holdout_and_limit(ds[cfg["train_split"]], evalset, cfg)
        scope = common.data_scope(train)
    too_big = [n for n in train["num_atoms"] if n > int(cfg["max_atoms"])]
    if too_big:
        raise ValueError(
            f"{len(too_big)} training crystals have more than max_atoms={cfg['max_atoms']} atoms"
        )
    keep = tuple(c["name"] for c in condition_entries(cfg))
    texts = [c["name"] for c in condition_entries(cfg) if c.get("kind") == "text"]
    if texts:
        tower = text_tower(texts[0], cfg)  # loaded and fingerprinted once for both splits
        train, evalset = (add_text_embeddings(d, texts[0], cfg, tower) for d in (train, evalset))
    return to_graphs(train, keep), to_graphs(evalset, keep), scope


def text_columns_for(cfg: dict) -> list[str]:
    from hfmat.data.descriptions import TEXT_COLUMNS

    columns = list(cfg.get("text_columns") or TEXT_COLUMNS)
    unknown = [c for c in columns if c not in TEXT_COLUMNS]
    if unknown:
        raise ValueError(
            f"text_columns: {unknown} are not description columns; choose from {list(TEXT_COLUMNS)}"
        )
    return columns


def text_tower(name: str, cfg: dict) -> tuple:
    """``(text_encoder, tokenizer, digest)`` of ``cfg["text_encoder"]`` for the text condition
    ``name``; ``digest`` fingerprints the encoder's weights."""
    import hashlib

    from hfmat.diffusion.text import load_text_tower

    if not cfg.get("text_encoder"):
        raise ValueError(
            f"condition {name!r} is a text condition: set text_encoder: to a Crystal CLIP folder or "
            "a text-encoder repository (e.g. crystal-clip-perov5)"
        )
    encoder, tokenizer = load_text_tower(cfg["text_encoder"])
    digest = hashlib.sha256()
    for key, tensor in sorted(encoder.state_dict().items()):
        digest.update(key.encode() + tensor.detach().cpu().float().numpy().tobytes())
    return encoder, tokenizer, digest.hexdigest()[:16]


def add_text_embeddings(dataset, name: str, cfg: dict, tower: tuple):
    """``dataset`` with a column ``name``: for each crystal, the text encoder's embedding of each of
    its descriptions in ``text_columns`` ([styles, dim] floats). The descriptions come from
    :func:`hfmat.data.descriptions.add_descriptions`; the embedding map's fingerprint is made of
    its input's, the text encoder's weights (``tower``, from :func:`text_tower`) and the styles, so
    datasets' cache never mixes two encoders."""
    import hashlib

    from hfmat.data.descriptions import add_descriptions
    from hfmat.diffusion.text import embed_texts

    encoder, tokenizer, digest = tower
    columns = text_columns_for(cfg)
    described = add_descriptions(dataset, num_proc=cfg.get("num_proc"))

    pooling = next(
        (e.get("pooling", "pooler") for e in condition_entries(cfg) if e.get("name") == name), "pooler"
    )

    def embed(batch):
        parts = [embed_texts(encoder, tokenizer, batch[c], pooling=pooling) for c in columns]
        return {name: torch.stack(parts, dim=1).tolist()}

    key = f"{described._fingerprint} {digest} {columns} {name}" + (
        f" {pooling}" if pooling != "pooler" else ""
    )
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]
    return described.map(embed, batched=True, batch_size=512, new_fingerprint=fingerprint, desc="embed texts")


def data_statistics(train, max_atoms: int) -> tuple[float, list[float]]:
    """lattice_scale (mean (|det L| / N)^(1/3), Angstrom) and the atom-count distribution 0..max_atoms."""
    import numpy as np

    lattices = np.asarray(train["lattice"], dtype=np.float64)
    counts = np.asarray(train["num_atoms"], dtype=np.int64)
    scale = float(np.mean(np.cbrt(np.abs(np.linalg.det(lattices)) / counts)))
    hist = np.bincount(counts, minlength=max_atoms + 1)[: max_atoms + 1].astype(np.float64)
    return scale, (hist / hist.sum()).round(6).tolist()


def condition_entries(cfg: dict) -> list[dict]:
    """The config's ``conditions`` as dicts (a bare column name is a scalar condition)."""
    entries = cfg.get("conditions") or []
    if not isinstance(entries, list):
        raise ValueError(f"conditions must be a list of {{name, kind}} entries, got {entries!r}")
    out = [{"name": e, "kind": "scalar"} if isinstance(e, str) else dict(e) for e in entries]
    drop = cfg.get("condition_drop_prob", 0.0)
    if out and not (isinstance(drop, (int, float)) and 0.0 <= drop < 1.0):
        raise ValueError(f"condition_drop_prob must be a number in [0, 1), got {drop!r}")
    return out


def condition_statistics(cfg: dict, train) -> list[dict]:
    """The denoiser's ``conditions`` config: each scalar with the mean and std of its finite values
    on the training split (unless the config gives them), each categorical checked against its
    ``num_classes``."""
    import numpy as np

    from hfmat.diffusion.denoiser import check_conditions

    out = []
    for entry in condition_entries(cfg):
        if entry.get("kind") == "text":  # its width: the text encoder's (the embedded column's)
            entry["dim"] = len(train[0][entry["name"]][0])
            out.append(entry)
            continue
        values = np.asarray(
            [np.nan if v is None else float(v) for v in train[entry["name"]]], dtype=np.float64
        )
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            raise ValueError(f"condition {entry['name']!r}: no finite value in the training split")
        if entry.get("kind") == "scalar":
            entry.setdefault("mean", round(float(finite.mean()), 6))
            entry.setdefault("std", round(float(finite.std()), 6) or 1.0)
        elif entry.get("kind") == "categorical" and isinstance(entry.get("num_classes"), int):
            bad = finite[(finite != np.round(finite)) | (finite < 0) | (finite >= entry["num_classes"])]
            if len(bad):
                raise ValueError(
                    f"condition {entry['name']!r}: values must be class indices 0..{entry['num_classes'] - 1}, "
                    f"found {sorted(set(bad.tolist()))[:5]}"
                )
        out.append(entry)
    return check_conditions(out)


# ------------------------------------------------------------------------------------ model


def _atomic_number(symbol: str) -> int:
    from pymatgen.core.periodic_table import Element

    return Element(symbol).Z


def training_elements(train) -> list[str]:
    """The element symbols in the training graphs' ``atom_types``, by atomic number."""
    from pymatgen.core.periodic_table import Element

    numbers = sorted({int(z) for types in train["atom_types"] for z in types})
    return [Element.from_Z(z).symbol for z in numbers]


def build_components(cfg: dict, train) -> dict:
    """The pipeline's components. The denoiser is fresh (its data statistics from ``train``) or the
    one of the pipeline ``init_from`` (a folder or a repo id, loaded through ``hfmat.hub.load``: a repo
    id that is not cached offline, a truncated weights file or a folder saved by incompatible
    versions is a one-line ``hfmat.hub.HubError``)."""
    from hfmat.diffusion import CrystalDenoiser, D3PMScheduler, WrappedNormalScheduler, lattice_scheduler
    from hfmat.hub import load

    if cfg["task"] not in ("csp", "gen"):
        raise ValueError(f"task must be 'csp' or 'gen', got {cfg['task']!r}")
    conditions = condition_statistics(cfg, train) if cfg.get("conditions") else []
    elements = training_elements(train) if cfg["task"] == "gen" else None
    scale, dist = data_statistics(train, int(cfg["max_atoms"]))
    scale *= float(cfg["lattice_scale_factor"])
    if cfg["init_from"]:
        denoiser = load(CrystalDenoiser, cfg["init_from"], subfolder="denoiser")
        if cfg["task"] == "gen" and not denoiser.config.predict_atom_types:  # CSP -> de novo
            denoiser, new = CrystalDenoiser.for_generation(denoiser, elements, conditions)
            copied = [k for k in denoiser.state_dict() if k not in new]
            print(
                f"--init-from {cfg['init_from']} (structure prediction) for task gen: copied "
                f"{len(copied)} tensors ({', '.join(copied)}); new: {', '.join(new)}"
            )
        if denoiser.config.predict_atom_types != (cfg["task"] == "gen"):
            raise ValueError(
                f"--init-from {cfg['init_from']}: its denoiser does not fit task {cfg['task']!r}"
            )
        if elements is not None:  # a de novo base keeps its elements and gains the data's
            known = set(denoiser.config.elements or [])
            if not set(elements) <= known:
                denoiser.record_elements(sorted(known | set(elements), key=_atomic_number))
        if float(cfg["lattice_scale_factor"]) != 1.0:  # else the base's scale, as trained
            if abs(scale - denoiser.config.lattice_scale) > 1e-6 * scale:
                print(
                    f"--init-from {cfg['init_from']}: lattice_scale {denoiser.config.lattice_scale:.4f} -> "
                    f"{scale:.4f} (the data's x lattice_scale_factor {cfg['lattice_scale_factor']})"
                )
                denoiser.register_to_config(lattice_scale=scale)
        if cfg["task"] == "gen":  # de novo: sample this run's cell sizes, up to the config's max_atoms
            was = denoiser.config.max_atoms
            if (was, denoiser.config.num_atoms_distribution) != (int(cfg["max_atoms"]), dist):
                denoiser.register_to_config(max_atoms=int(cfg["max_atoms"]), num_atoms_distribution=dist)
                print(
                    f"--init-from {cfg['init_from']}: max_atoms {was} -> {cfg['max_atoms']}, atom-count "
                    "distribution recomputed from the training data"
                )
        has = [(c["name"], c["kind"]) for c in denoiser.config.conditions or []]
        if conditions and not has:  # the adapter: zero-initialised condition embeddings
            denoiser = CrystalDenoiser.with_conditions(denoiser, conditions)
        elif has != [(c["name"], c["kind"]) for c in conditions]:
            raise ValueError(
                f"--init-from {cfg['init_from']}: its denoiser's conditions are {has or 'none'}; "
                f"list the same under conditions: (with their kinds) to continue it, got "
                f"{[(c['name'], c['kind']) for c in conditions] or 'none'}"
            )
        if conditions:
            adopt_text_pooling(denoiser, conditions, cfg["init_from"])
        if cfg["condition_every_layer"] and not denoiser.config.condition_every_layer:
            denoiser = CrystalDenoiser.with_layer_conditions(denoiser)
            print(f"--init-from {cfg['init_from']}: per-layer condition maps added (zero at the start)")
    else:
        denoiser = CrystalDenoiser(
            hidden_dim=int(cfg["hidden_dim"]),
            num_layers=int(cfg["num_layers"]),
            num_frequencies=int(cfg["num_frequencies"]),
            time_embed_dim=int(cfg["time_embed_dim"]),
            max_atoms=int(cfg["max_atoms"]),
            lattice_scale=scale,
            num_atoms_distribution=dist,
            predict_atom_types=cfg["task"] == "gen",
            conditions=conditions or None,
            elements=elements,
            condition_every_layer=bool(cfg["condition_every_layer"]),
        )
    if conditions:  # as the model uses them (for the training summary)
        cfg["conditions"] = list(denoiser.config.conditions)
    T = int(cfg["num_train_timesteps"])
    coord = WrappedNormalScheduler(
        num_train_timesteps=T,
        sigma_min=float(cfg["sigma_min"]),
        sigma_max=float(cfg["sigma_max"]),
        predictor=cfg["predictor"],
        corrector_steps=int(cfg["corrector_steps"]),
        corrector_step_lr=float(cfg["corrector_step_lr"]),
    )
    types = D3PMScheduler(num_train_timesteps=T) if cfg["task"] == "gen" else None
    components = {
        "denoiser": denoiser,
        "lattice_scheduler": lattice_scheduler(T),
        "coord_scheduler": coord,
        "type_scheduler": types,
    }
    if any(c["kind"] == "text" for c in conditions):  # saved with the pipeline, never trained
        from hfmat.diffusion.text import load_text_tower

        components["text_encoder"], components["tokenizer"] = load_text_tower(cfg["text_encoder"])
    return components


def adopt_text_pooling(denoiser, conditions: list[dict], init_from: str) -> None:
    """A continued denoiser takes the config's text pooling (its condition MLP then learns the new
    embeddings), so the saved config says how the training texts were embedded and the pipeline
    embeds prompts the same way."""
    from hfmat.diffusion.denoiser import check_conditions

    wanted = {c["name"]: c.get("pooling", "pooler") for c in conditions if c["kind"] == "text"}
    specs = [dict(c) for c in denoiser.config.conditions]
    for spec in specs:
        was = spec.pop("pooling", "pooler")
        if spec["name"] in wanted:
            if wanted[spec["name"]] != was:
                print(f"--init-from {init_from}: text pooling {was} -> {wanted[spec['name']]}")
            spec["pooling"] = wanted[spec["name"]]
    specs = check_conditions(specs)
    if specs != denoiser.config.conditions:
        denoiser.register_to_config(conditions=specs)
        denoiser.condition_specs = {spec["name"]: spec for spec in specs}


class NoiseGenerator:
    """The generator of the diffusion noise (timesteps, Gaussian and mask draws), one per process.

    Its state goes into every checkpoint, so a resumed run draws exactly the noise the
    uninterrupted run would have drawn (the global RNG is also consumed by DataLoader iterators,
    which a resume creates at a different moment)."""

    def __init__(self, seed: int, device):
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def state_dict(self) -> dict:
        return {"state": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["state"])


class TextEmbeddingCollator:
    """:class:`hfmat.data.GraphCollator` (scalar conditions as FloatTensor[B]) plus each text
    condition's column stacked as FloatTensor[B, styles, dim]."""

    def __init__(self, properties, texts):
        from hfmat.data import GraphCollator

        self.graphs, self.texts = GraphCollator(properties=properties), tuple(texts)

    def __call__(self, rows):
        batch = self.graphs(rows)
        for name in self.texts:
            batch[name] = torch.tensor([row[name] for row in rows], dtype=torch.float32)
        return batch


def draw_text_styles(batch, components, generator=None) -> dict:
    """The batch with each text condition's [B, styles, dim] cut to one style per crystal, drawn
    from ``generator`` (the checkpointed noise generator: a resumed run draws the same)."""
    from hfmat.diffusion.text import text_conditions

    names = text_conditions(components["denoiser"])
    if not names:
        return batch
    batch = dict(batch)
    for name in names:
        styles = batch[name]
        gen_device = generator.device if generator is not None else styles.device
        pick = torch.randint(styles.shape[1], (styles.shape[0],), generator=generator, device=gen_device)
        batch[name] = styles[torch.arange(styles.shape[0], device=styles.device), pick.to(styles.device)]
    return batch


def loss_fn(model, batch, components, cfg, generator=None):
    from hfmat.diffusion.loss import diffusion_loss

    batch = draw_text_styles(batch, components, generator)
    return diffusion_loss(
        model,
        batch,
        components["lattice_scheduler"],
        components["coord_scheduler"],
        components["type_scheduler"],
        lattice_scale=components["denoiser"].config.lattice_scale,
        weights=(float(cfg["cost_lattice"]), float(cfg["cost_coord"]), float(cfg["cost_type"])),
        generator=generator,
        conditions=tuple(components["denoiser"].condition_specs),
        condition_drop_prob=float(cfg["condition_drop_prob"]),
    )


@torch.no_grad()
def evaluate(model, loader, components, cfg, accelerator) -> dict[str, float]:
    """Mean loss parts over ``loader`` with a fixed noise draw (comparable between evaluations)."""
    model.eval()
    gen = torch.Generator(device=accelerator.device).manual_seed(int(cfg["seed"]) + accelerator.process_index)
    keys = ("loss", "lattice", "coord", "type")
    acc = torch.zeros(len(keys) + 1, device=accelerator.device)  # weighted sums, then the crystal count
    for batch in loader:
        parts = loss_fn(model, batch, components, cfg, generator=gen)
        n = float(len(batch["num_atoms"]))
        acc += torch.stack([parts[k].detach().float() * n for k in keys] + [acc.new_tensor(n)])
    model.train()
    total = accelerator.reduce(acc, reduction="sum")
    count = total[-1].clamp(min=1)
    return {k: float(total[i] / count) for i, k in enumerate(keys)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = common.config_from_args(args, DEFAULTS)
    common.set_threads(cfg["num_threads"])
    if cfg["datasets"]:  # several sources: `dataset` names them all (the record, the card, hfmat.scope)
        cfg["dataset"] = common.sources_label(cfg)

    from diffusers.training_utils import EMAModel

    from hfmat.data import GraphCollator

    accelerator = common.accelerator_for(cfg)
    with accelerator.main_process_first():
        train_ds, eval_ds, scope = build_datasets(cfg)
    components = build_components(cfg, train_ds)
    model = components["denoiser"]

    from hfmat.diffusion.text import text_conditions

    texts = text_conditions(model)
    scalars = [n for n in model.condition_specs if n not in texts]
    # conditions' columns, as FloatTensor[B] (text: [B, styles, dim])
    collator = TextEmbeddingCollator(scalars, texts) if texts else GraphCollator(properties=scalars)
    train_loader, eval_loader = common.dataloaders(train_ds, eval_ds, collator, cfg)
    batches_per_epoch = math.ceil(len(train_loader) / accelerator.num_processes)
    total_steps = common.total_steps_for(cfg, batches_per_epoch)
    optimizer, scheduler = common.optimizer_and_scheduler_for(
        model, cfg, total_steps, accelerator.num_processes
    )
    ema = EMAModel(model.parameters(), decay=float(cfg["ema_decay"])) if cfg["ema_decay"] else None
    model, optimizer, train_loader, eval_loader, scheduler = accelerator.prepare(
        model, optimizer, train_loader, eval_loader, scheduler
    )
    if ema is not None:
        ema.to(accelerator.device)
    noise = NoiseGenerator(int(cfg["seed"]) * 1000 + accelerator.process_index, accelerator.device)
    state = [ema, noise] if ema is not None else [noise]  # checkpointed after the progress, in order
    progress, resumed = common.start_or_resume(accelerator, args.resume, cfg["output_dir"], *state)
    data = f"{len(train_ds)} train / {len(eval_ds)} eval crystals, task {cfg['task']}"
    n_params = common.start_trackers(
        accelerator, model, cfg, "diffusion", data, batches_per_epoch, total_steps
    )

    loop = common.TrainingLoop(
        accelerator, cfg, model, optimizer, scheduler, train_loader, progress, total_steps, batches_per_epoch
    )

    def log(means: dict) -> dict:
        metrics = {f"train/{k}": v for k, v in means.items()}
        metrics.update(
            {
                "train/lr": scheduler.get_last_lr()[0],
                "train/crystals_per_s": loop.timer.rate,
                "train/steps_per_s": loop.steps_per_s,
                "train/epoch": loop.epochs,
            }
        )
        accelerator.log(metrics, step=progress.step)
        return {
            "loss": f"{metrics['train/loss']:.3f}",
            "lat": f"{metrics['train/lattice']:.3f}",
            "coord": f"{metrics['train/coord']:.3f}",
            "it_s": f"{loop.steps_per_s:.2f}",
        }

    def evaluate_and_report() -> dict:
        parts = evaluate(model, eval_loader, components, cfg, accelerator)
        accelerator.log({f"eval/{k}": v for k, v in parts.items()}, step=progress.step)
        accelerator.print(
            f"step {progress.step}: eval loss {parts['loss']:.4f} "
            f"(lattice {parts['lattice']:.4f}, coord {parts['coord']:.4f}, type {parts['type']:.4f})"
        )
        return parts

    if args.export_only:
        if not resumed:
            raise ValueError(
                "--export-only needs --resume CHECKPOINT (or 'latest' with a checkpoint present)"
            )
        stop_reason = "exported"
    else:
        stop_reason = loop.run(
            loss=lambda batch: loss_fn(model, batch, components, cfg, generator=noise.generator),
            count=lambda batch: batch["num_atoms"].new_tensor(len(batch["num_atoms"])),  # crystals
            evaluate=evaluate_and_report,
            log=log,
            after_step=(lambda: ema.step(accelerator.unwrap_model(model).parameters()))
            if ema is not None
            else None,
            stop_after_steps=args.stop_after_steps,
        )

    summary = {
        **loop.summary(),  # step, total_steps, epochs, train_loss
        "eval": loop.last_eval,
        "crystals_seen": progress.tokens,
        "steps_per_s": loop.steps_per_s,
        "crystals_per_s": loop.timer.rate,
        "wall_s": loop.timer.elapsed,
        "n_params": n_params,
        "num_processes": accelerator.num_processes,
        "stop_reason": stop_reason,
        "train_crystals": len(train_ds),
        "eval_crystals": len(eval_ds),
    }
    if stop_reason == "stopped":  # a checkpoint to resume from, no final folder
        return common.finish(accelerator, summary)
    if loop.needs_final_eval:
        summary["eval"] = evaluate(model, eval_loader, components, cfg, accelerator)
    final_dir = common.final_dir_for(cfg)

    def write():
        denoiser = accelerator.unwrap_model(model)
        if ema is not None:
            ema.copy_to(denoiser.parameters())
        write_final({**components, "denoiser": denoiser}, cfg, summary, final_dir, data=scope)
        accelerator.print(f"final pipeline written to {final_dir}")

    return common.finish(accelerator, summary, write)


def write_final(
    components: dict, cfg: dict, summary: dict, final_dir: Path, data: dict | None = None
) -> None:
    """The Hub-ready pipeline folder: model_index.json, denoiser/, schedulers, summary (with ``data``,
    the elements and cell sizes trained on: ``common.data_scope``), README.md."""
    from hfmat.diffusion import CrystalDiffusionPipeline
    from hfmat.diffusion.card import write_model_card

    pipe = CrystalDiffusionPipeline(**components)
    final_dir.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(final_dir, safe_serialization=True)
    common.write_training_summary(final_dir, cfg, summary, **({"data": data} if data else {}))
    write_model_card(final_dir)


if __name__ == "__main__":
    common.run_main(main)
