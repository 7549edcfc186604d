"""``hfmat push PATH --repo-id ORG/NAME``: check an artifact folder and upload it to the Hub."""

from __future__ import annotations

from hfmat.cli.options import add_parser

EXAMPLES = """\
hfmat push checkpoints/cif-gpt2-perov5 --repo-id ORG/NAME --dry-run
hfmat push runs/my_model_final --repo-id ORG/NAME --private"""


def register(sub) -> None:
    p = add_parser(
        sub,
        "push",
        help="check a saved tokenizer / language model / diffusion pipeline / text encoder / Crystal CLIP / "
        "dataset folder and upload it",
        examples=EXAMPLES,
        description=(
            "Checks that PATH is a complete Hub repository (its kind is detected: tokenizer, language model, "
            "diffusion pipeline, text encoder, Crystal CLIP or dataset; every required file present; README.md renders as a card with "
            "YAML metadata; weights are whole safetensors files), then creates the repo (if needed) and "
            "uploads the folder with huggingface_hub. Log in first with `hf auth login` or set HF_TOKEN."
        ),
    )
    p.add_argument("path", help="folder to upload (as written by save_pretrained / the training scripts)")
    p.add_argument("--repo-id", required=True, help="target repository, ORG/NAME")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--revision", default=None, help="branch to push to (created if needed; default main)")
    p.add_argument(
        "--commit-message", default=None, help="commit message (default: 'Upload <kind> with hfmat')"
    )
    p.add_argument(
        "--kind",
        choices=["pipeline", "language-model", "tokenizer", "dataset", "text-encoder", "crystal-clip"],
        default=None,
        help="artifact kind (default: detected from the files)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="check the folder and list the files, upload nothing"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    from hfmat.hub import push_folder

    result = push_folder(
        args.path,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        kind=args.kind,
        dry_run=args.dry_run,
    )
    artifact = result.artifact
    print(f"{artifact.folder}: complete {artifact.kind} repository, {len(artifact.files)} files")
    for name in artifact.files:
        print(f"  {name}")
    if result.card_retargeted_from:
        print(
            f"README.md names {result.card_retargeted_from}: "
            f"{'would be' if args.dry_run else 'was'} uploaded naming {args.repo_id} instead"
        )
    if args.dry_run:
        print(f"dry run: nothing uploaded to {args.repo_id}")
    else:
        print(f"pushed to {result.repo_url} ({result.commit_url})")
    return 0
