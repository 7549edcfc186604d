"""``hfmat tokenizer``: build the shipped tokenizer folder, or show how text is tokenized."""

from __future__ import annotations

from hfmat.cli.options import add_parser

EXAMPLES = """\
hfmat tokenizer encode "ZnO is a wide bandgap semiconductor"
hfmat tokenizer encode --file examples/TiO2_rutile.cif --ids
hfmat tokenizer build --out tokenizer"""


def register(sub) -> None:
    p = add_parser(
        sub,
        "tokenizer",
        help="build the CIF tokenizer or show how text is tokenized",
        description=__doc__,
        examples=EXAMPLES,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    b = actions.add_parser("build", help="write the tokenizer folder (deterministic)")
    b.add_argument("--out", default="tokenizer", help="output folder (default: tokenizer)")
    b.add_argument(
        "--repo-id", default=None, help="repo id the card's snippet names (default: hfmat/cif-tokenizer)"
    )
    b.set_defaults(func=run_build)

    e = actions.add_parser("encode", help="print the tokens of a text or file")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("text", nargs="?", help="text to encode")
    src.add_argument("--file", help="read the text from this file")
    e.add_argument("--tokenizer", default=None, help="tokenizer folder or repo id (default: built-in)")
    e.add_argument("--ids", action="store_true", help="print token ids next to the tokens")
    e.set_defaults(func=run_encode)


def run_build(args) -> int:
    from hfmat.tokenization import save_tokenizer, vocabulary

    for path in save_tokenizer(args.out, repo_id=args.repo_id):
        print(path)
    print(f"vocabulary size {len(vocabulary())}")
    return 0


def run_encode(args) -> int:
    from pathlib import Path

    from hfmat.tokenization import load_tokenizer

    text = Path(args.file).read_text() if args.file else args.text
    tok = load_tokenizer(args.tokenizer)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    tokens = tok.convert_ids_to_tokens(ids)
    if args.ids:
        for i, t in zip(ids, tokens):
            print(f"{i}\t{t!r}")
    else:
        print(" ".join(repr(t) for t in tokens))
    print(
        f"{len(ids)} tokens, {len(text)} characters, round trip {'exact' if tok.decode(ids) == text else 'NOT exact'}"
    )
    return 0
