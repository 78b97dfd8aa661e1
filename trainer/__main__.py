"""``python -m trainer``: data -> MLPClassifier.fit -> evaluation -> artifact (see ``trainer.cli`` for options)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from contracts import ArtifactError, EpochMetrics
from trainer.cli import DEFAULTS, build_parser
from trainer.data import Dataset, load_splits
from trainer.errors import DataError
from trainer.estimator import MLPClassifier
from trainer.presets import ARCHITECTURE_KEYS, preset

EXIT_BAD_INPUT = 2


class UsageError(ValueError):
    """Options that parse but do not fit together."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (UsageError, DataError, ArtifactError, ValueError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FloatingPointError as e:
        print(f"{parser.prog}: training diverged: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; nothing was written", file=sys.stderr)
        return 130


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise UsageError(f"{out} already exists (pass --overwrite to replace it, or choose another --out)")
    clf = build_classifier(args)
    train, test = load_splits(args.data)
    if args.limit:
        train = train.subset(args.limit)
    clf.fit(train, resume=args.resume is not None, callbacks=(_epoch_line(clf),) if args.quiet else ())
    evaluation, name = (test, "test") if test is not None else (_validation_of(clf, train), "validation")
    metrics = clf.evaluate(evaluation.x, evaluation.y) if evaluation is not None else {}
    clf.save(out, overwrite=args.overwrite, test_metrics=metrics if test is not None else None,
             num_test=len(test) if test is not None else 0, extra_files=_plots(clf, evaluation, name))  # fmt: skip
    if metrics and evaluation is not None:
        print(f"{name} accuracy: {metrics['accuracy']:.2%} ({len(evaluation)} images, loss {metrics['loss']:.4f})")
    print(f"artifact: {out}")
    return 0


def build_classifier(args: argparse.Namespace) -> MLPClassifier:
    """Defaults < preset < explicit options; with --resume the artifact's settings replace the defaults."""
    explicit = {k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None}
    if args.resume is not None:
        clashing = sorted(k for k in ARCHITECTURE_KEYS if k in explicit) + (["preset"] if args.preset else [])
        if clashing:
            raise UsageError(f"--resume takes the architecture from the artifact; drop {_flags(clashing)}")
        clf = MLPClassifier.load(args.resume)
        settings: dict[str, Any] = {"epochs": DEFAULTS["epochs"], **explicit}
    else:
        clf = MLPClassifier()
        settings = {**DEFAULTS, **(preset(args.preset) if args.preset else {})}
        if args.preset:
            clashing = sorted(k for k in ARCHITECTURE_KEYS if k in explicit and explicit[k] != settings[k])
            if clashing:
                raise UsageError(f"--preset {args.preset} fixes {_flags(clashing)}; drop them or the preset")
        settings |= explicit
    if args.patience is not None:
        settings["patience"] = args.patience
    if args.threads is not None:
        settings["threads"] = args.threads
    settings["verbose"] = not args.quiet
    for key, value in settings.items():
        setattr(clf, key, value)
    return clf


def _flags(keys: list[str]) -> str:
    return ", ".join("--" + k.replace("_", "-") for k in keys)


def _epoch_line(clf: MLPClassifier) -> Any:
    def report(m: EpochMetrics) -> None:
        val = f"  val_loss {m.val_loss:.4f}  val_acc {m.val_accuracy:.4f}" if m.val_loss is not None else ""
        print(f"epoch {m.epoch}: loss {m.train_loss:.4f}  acc {m.train_accuracy:.4f}{val}  ({m.seconds:.1f}s)",
              flush=True)  # fmt: skip

    return report


def _validation_of(clf: MLPClassifier, train: Dataset) -> Dataset | None:
    from trainer.train import split_validation

    return split_validation(train, clf.val_split, clf.seed)[1]


def _plots(clf: MLPClassifier, evaluation: Dataset | None, name: str) -> dict[str, bytes]:
    from trainer import plots  # matplotlib is slow to import: only when an artifact is written

    files = {"curves.png": plots.curves_png(clf.history_)}
    if evaluation is not None:
        files["confusion.png"] = plots.confusion_png(evaluation.y, clf.predict(evaluation.x), clf.spec_.labels, name)
    return files


if __name__ == "__main__":
    sys.exit(main())
