"""``hfmat examples``: rebuild the example CIFs under examples/."""

from hfmat.cli.options import add_parser


def register(sub) -> None:
    p = add_parser(
        sub,
        "examples",
        help="write the example structures as CIFs",
        description=__doc__,
        examples="hfmat examples --out my-examples",
    )
    p.add_argument("--out", default="examples", help="output folder (default: examples)")
    p.set_defaults(func=run)


def run(args) -> int:
    from hfmat.examples import write_examples

    for path in write_examples(args.out):
        print(path)
    return 0
