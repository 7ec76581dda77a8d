"""`tfbnn demo`: the concrete demo, or with `--methods` every inference method on a gap.

The demos themselves, and the text of their help, are in `tfbnn.demo`.
"""

from __future__ import annotations

from pathlib import Path

from tfbnn import demo
from tfbnn.cli.choices import INFERENCE_METHODS
from tfbnn.cli.options import UsageError, add_command, check_out_folder, positive_int


def add_demo_parser(subparsers) -> None:
    """`tfbnn demo [--out DIR] [--epochs N] [--quick] [--methods [METHOD ...]]`."""
    p = add_command(
        subparsers, "demo", summary="train on the bundled concrete data and check the "
                                    "uncertainty",
        paragraphs=[demo.SUMMARY, demo.CONCRETE_DEMO, demo.METHODS_DEMO, demo.IMAGES_DEMO],
        example="tfbnn demo --out demo_output\n  tfbnn demo --methods vi ensemble hmc\n  "
                "tfbnn demo --images",
        run=run_demo)
    p.add_argument("--out", type=Path, default=Path(demo.DEFAULT_OUT_DIR), metavar="DIR",
                   help="folder for the plot and the model (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="training epochs (default: the estimator's 'auto'; with --methods, "
                        f"{demo.METHODS_EPOCHS} for every method but hmc)")
    p.add_argument("--quick", action="store_true",
                   help=f"train for {demo.QUICK_EPOCHS} epochs only (with --methods, "
                        f"{demo.QUICK_METHODS_EPOCHS}, and short sampling runs), to check "
                        f"the setup")
    p.add_argument("--methods", nargs="*", choices=INFERENCE_METHODS, default=None,
                   metavar="METHOD",
                   help="instead, compare inference methods on 1-D data with a gap and write "
                        f"{demo.METHODS_PLOT_FILE}: all of them, or those named (of "
                        f"{', '.join(INFERENCE_METHODS)})")
    p.add_argument("--images", action="store_true",
                   help="instead, a Bayesian conv net on scikit-learn's digits: accuracy, "
                        f"calibration and unseen digits; writes {demo.IMAGES_PLOT_FILE}")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="with --images: average the scores over N random splits (default 1)")


def run_demo(args) -> int:
    """Runs `tfbnn.demo.run_demo` with a progress bar and printed results, or with
    `--methods` `tfbnn.demo.run_methods_demo` and its table of gap ratios."""
    if args.seeds is not None and not args.images:
        raise UsageError("--seeds applies to --images only")
    if args.images:
        if args.methods is not None or args.epochs is not None:
            raise UsageError("--images takes neither --methods nor --epochs")
        if args.seeds is not None and args.seeds < 1:
            raise UsageError(f"--seeds must be at least 1, got {args.seeds}")
        from tfbnn.image_demo import SEED, run_images_demo  # imports TensorFlow

        seeds = range(SEED, SEED + (args.seeds or 1))
        run_images_demo(args.out, quick=args.quick, verbose=1, seeds=seeds)
        return 0
    if args.methods is not None:
        if args.methods:  # none named: every method
            try:
                demo.check_methods(args.methods, name="--methods")
            except ValueError as err:
                raise UsageError(str(err)) from None
        demo.run_methods_demo(args.out, methods=args.methods or None, quick=args.quick,
                              epochs=args.epochs, verbose=1)
        return 0
    check_out_folder(args.out / demo.MODEL_DIR)
    demo.run_demo(args.out, epochs=args.epochs, quick=args.quick, verbose=1)
    return 0
