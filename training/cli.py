"""``python -m training``: train, compare, export, quickstart-model."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

DATA_HELP = (
    "dataset: 'synthetic' (generated stand-in, default difficulty), 'synthetic:easy' "
    "(the original, easy generator), 'synthetic:overlap=0.5,noise=40,clutter=2,label_noise=0.1' "
    "(any of these keys; the rest default), 'digits' (scikit-learn's handwritten digits, "
    "upsampled to 32x32), 'cifar10' (search ./data/, then ~/.keras/datasets/), or the path of "
    "a CIFAR-10 archive or cifar-10-batches-py folder (default: cifar10)"
)


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default=None, help=DATA_HELP)
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-samples", type=int, default=None, help="cap on training images")
    parser.add_argument(
        "--max-val-samples", type=int, default=None, help="cap on validation images"
    )
    parser.add_argument("--width", type=float, default=1.0, help="filter-count multiplier")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)


def _parser() -> argparse.ArgumentParser:
    from training.objectives import TOP_ACTIVATIONS

    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train one model")
    _add_training_flags(train)
    train.add_argument("--top-activation", choices=TOP_ACTIVATIONS, default="softmax")
    train.add_argument("--out", required=True, help="run folder, e.g. runs/NAME")

    compare = commands.add_parser("compare", help="train one model per top activation")
    _add_training_flags(compare)
    compare.add_argument("--activations", default="softmax,normalized_logits")
    compare.add_argument("--out", default="runs/compare")

    export = commands.add_parser("export", help="export a run to ONNX in the model repository")
    export.add_argument("--run", required=True)
    export.add_argument("--repository", default="models")
    export.add_argument("--name", default="cifar10")
    export.add_argument("--version", type=int, default=None, help="default: next free version")

    quick = commands.add_parser("quickstart-model", help="build the default model if missing")
    quick.add_argument("--repository", default="models")
    quick.add_argument("--name", default="cifar10")
    quick.add_argument(
        "--data",
        default=None,
        help=f"{DATA_HELP}; without it, the real CIFAR-10 when found, else 'synthetic'",
    )
    quick.add_argument("--out", default="runs/quickstart")
    quick.add_argument(
        "--run", default=None, help="export this finished run instead of training one"
    )
    return parser


def _train_config(args: argparse.Namespace, top_activation: str = "softmax") -> object:
    from training.model import ModelConfig
    from training.train import TrainConfig

    return TrainConfig(
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_samples=args.max_samples,
        max_val_samples=args.max_val_samples,
        top_activation=top_activation,
        learning_rate=args.learning_rate,
        seed=args.seed,
        model=ModelConfig(width=args.width),
    )


def _run(args: argparse.Namespace) -> None:
    from training.compare import compare
    from training.export import export_run
    from training.quickstart import quickstart_model
    from training.train import TrainConfig, train

    if args.command == "train":
        config = _train_config(args, args.top_activation)
        assert isinstance(config, TrainConfig)
        summary = train(config, args.out)
        print(
            f"best validation top-1 {summary['best_val_accuracy']:.4f} "
            f"(epoch {summary['best_epoch']}); run written to {args.out}"
        )
    elif args.command == "compare":
        config = _train_config(args)
        assert isinstance(config, TrainConfig)
        compare(args.activations.split(","), config, args.out)
        print(Path(args.out, "comparison.md").read_text())
        print(f"figure: {Path(args.out, 'comparison.png')}")
    elif args.command == "export":
        path, difference = export_run(args.run, args.repository, args.name, args.version)
        print(f"exported {path}; parity max |Δlogit| = {difference:.3g} (onnxruntime vs Keras)")
    else:
        run = Path(args.run) if args.run else None
        quickstart_model(
            Path(args.repository), args.name, data=args.data, out=Path(args.out), run=run
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = _parser().parse_args(argv)
    from training.data import DatasetError
    from training.export import ExportError

    try:
        _run(args)
    except (DatasetError, ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
