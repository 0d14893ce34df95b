"""acnemodel command line: train, compare, predict, expand, models; user errors are one line."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

app = typer.Typer(
    help="Train, compare and predict Keras models from acnedata manifests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain click help: option names in full at any width (rich's boxes cut them short)
    rich_markup_mode=None,
)
MODEL_EXTRA_HINT = "install the model extra: pip install 'acnedata[model]'"
T = TypeVar("T")

# TensorFlow and Keras are imported inside the commands, so `acnemodel --help` stays fast.
ManifestArg = Annotated[Path, typer.Argument(help="manifest.json, or the folder holding it")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="run folder to write")]
ProtocolOpt = Annotated[
    str,
    typer.Option(
        help="honest: split first, augment train only. paper: expand the pool, then a random split"
    ),
]
EpochsOpt = Annotated[int, typer.Option(help="training epochs (the paper: 24)")]
BatchOpt = Annotated[int, typer.Option(help="batch size")]
SeedOpt = Annotated[int, typer.Option(help="seed for split, augmentation, initialisation")]
FractionOpt = Annotated[float, typer.Option(help="test share for items without a split field")]
SizeOpt = Annotated[
    int | None,
    typer.Option(help="square input size in pixels; default: the model's own (32, resnet 64)"),
]
InterpOpt = Annotated[str, typer.Option(help="resize filter: bilinear, or nearest (old Keras)")]
ExpandToOpt = Annotated[
    int | None,
    typer.Option(help="paper protocol: pool size after expansion (default 20793, the paper's)"),
]
PerClassOpt = Annotated[bool, typer.Option(help="expansion target counts per class")]
NoAugmentOpt = Annotated[bool, typer.Option("--no-augment", help="no on-the-fly augmentation")]
AllowLeaksOpt = Annotated[
    bool,
    typer.Option(
        "--allow-leaks",
        help="honest protocol: train even when a test item shares content with a train item",
    ),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="no per-epoch progress")]
RotationOpt = Annotated[float, typer.Option(help="rotation range, degrees")]
WShiftOpt = Annotated[float, typer.Option(help="width shift range, fraction")]
HShiftOpt = Annotated[float, typer.Option(help="height shift range, fraction")]
ShearOpt = Annotated[float, typer.Option(help="shear range, degrees")]
ZoomOpt = Annotated[float, typer.Option(help="zoom range: [1-z, 1+z]")]
HFlipOpt = Annotated[bool, typer.Option(help="random horizontal flips")]
VFlipOpt = Annotated[bool, typer.Option(help="random vertical flips")]
BrightOpt = Annotated[str | None, typer.Option(help="brightness range LOW,HIGH, e.g. 0.8,1.2")]
FillOpt = Annotated[str, typer.Option(help="fill mode: nearest, constant, reflect, wrap")]
ValFractionOpt = Annotated[
    float,
    typer.Option(help="honest: grouped share of train held out to choose the epoch (0.15)"),
]
LrOpt = Annotated[
    float | None,
    typer.Option(help="learning rate; default: the model's recipe (the paper's 0.001 under paper)"),
]
PatienceOpt = Annotated[
    int | None,
    typer.Option(help="stop after N epochs without a better validation score; default: recipe"),
]
BackboneOpt = Annotated[
    str | None,
    typer.Option(help="transfer learning: EfficientNetB0, MobileNetV3Small or ResNet50"),
]
WeightsOpt = Annotated[
    str,
    typer.Option(help="backbone weights: imagenet (downloaded on first use), none, or a file"),
]
PresenceOpt = Annotated[
    str | None,
    typer.Option(
        help="train on the classes each image shows, listed in this manifest field (extra.FIELD, "
        "e.g. types: 'pustular|papular'); the label is read off by severity, learnt from train"
    ),
]
FoldsOpt = Annotated[
    int | None,
    typer.Option(help="grouped, stratified K-fold cross-validation instead of one split"),
]
EngineOpt = Annotated[
    str,
    typer.Option(
        help="affine: one resampling per image (fast); layers: Keras's six Random* layers"
    ),
]


def _guard(fn: Callable[[], T]) -> T:
    """Run a command body; known errors become one line on stderr and exit status 1."""
    from acnedata.errors import AcnedataError

    try:
        return fn()
    except AcnedataError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # unwritable --out, full disk: the OS's reason, on one line
        typer.echo(
            f"error: {exc.filename or ''}: {exc.strerror or exc}".replace(": : ", ": "), err=True
        )
        raise typer.Exit(1) from None


AUGMENT_KNOBS = (
    "rotation_range",
    "width_shift_range",
    "height_shift_range",
    "shear_range",
    "zoom_range",
    "horizontal_flip",
    "vertical_flip",
    "brightness_range",
    "fill_mode",
)


def _knobs(options: dict[str, Any]) -> dict[str, Any]:
    """A command's augmentation options (its locals()) as AugmentConfig keyword arguments."""
    return {**{k: options[k] for k in AUGMENT_KNOBS}, "engine": options["augment_engine"]}


def _quiet_tf() -> None:
    # must be set before TensorFlow loads: hides its C++ info and warning lines
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _augment(no_augment: bool, **knobs: Any) -> Any:
    from acnemodel.augment import AugmentConfig
    from acnemodel.errors import ModelError

    if no_augment:
        return None
    text = knobs.pop("brightness_range")
    if text:
        try:
            low, high = (float(v) for v in text.split(","))
        except ValueError:
            raise ModelError(f"brightness range {text!r} is not LOW,HIGH") from None
        knobs["brightness_range"] = (low, high)
    return AugmentConfig(**knobs)


def _config(
    size: int | None, no_augment: bool, quiet: bool, knobs: dict[str, Any], **kwargs: Any
) -> Any:
    from acnemodel.train import TrainConfig

    return TrainConfig(
        image_size=(size, size) if size else None,
        augment=_augment(no_augment, **knobs),
        verbose=0 if quiet else 2,
        **kwargs,
    )


def _check_folds(folds: int | None, protocol: str) -> None:
    from acnemodel.errors import ModelError

    if folds is not None and protocol != "honest":
        raise ModelError("--folds needs --protocol honest (the paper's split has no groups)")
    if folds is not None and folds < 2:
        raise ModelError(f"--folds {folds}: cross-validation needs at least 2 folds")


def _check_name(model: str, config: Any) -> None:
    """An unknown model, backbone or weights file fails before TensorFlow loads."""
    from acnemodel.models import get_spec

    if config.backbone:
        from acnemodel.backbones import backbone_name, check_weights

        backbone_name(config.backbone)
        check_weights(config.weights)
    else:
        get_spec(model)


@app.command()
def train(
    manifest: ManifestArg,
    out: OutOpt = Path("run"),
    model: Annotated[str, typer.Option("--model", "-m", help="see `acnemodel models`")] = "paper",
    protocol: ProtocolOpt = "honest",
    epochs: EpochsOpt = 24,
    batch_size: BatchOpt = 32,
    seed: SeedOpt = 0,
    test_fraction: FractionOpt = 0.3,
    validation_fraction: ValFractionOpt = 0.15,
    learning_rate: LrOpt = None,
    patience: PatienceOpt = None,
    backbone: BackboneOpt = None,
    weights: WeightsOpt = "imagenet",
    presence: PresenceOpt = None,
    folds: FoldsOpt = None,
    image_size: SizeOpt = None,
    interpolation: InterpOpt = "bilinear",
    expand_to: ExpandToOpt = None,
    per_class: PerClassOpt = False,
    no_augment: NoAugmentOpt = False,
    rotation_range: RotationOpt = 20.0,
    width_shift_range: WShiftOpt = 0.1,
    height_shift_range: HShiftOpt = 0.1,
    shear_range: ShearOpt = 10.0,
    zoom_range: ZoomOpt = 0.1,
    horizontal_flip: HFlipOpt = True,
    vertical_flip: VFlipOpt = False,
    brightness_range: BrightOpt = None,
    fill_mode: FillOpt = "nearest",
    augment_engine: EngineOpt = "affine",
    allow_leaks: AllowLeaksOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train one model: OUT/model.keras, history.json, metrics.json, curves.png, confusion.png,
    predictions.md."""
    knobs = _knobs(locals())

    def run() -> None:
        from acnemodel.data import open_manifest

        config = _config(
            image_size,
            no_augment,
            quiet,
            knobs,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            protocol=protocol,
            test_fraction=test_fraction,
            validation_fraction=validation_fraction,
            learning_rate=learning_rate,
            recipe={"patience": patience},
            backbone=backbone,
            weights=weights,
            presence=presence,
            interpolation=interpolation,
            expand_to=expand_to,
            per_class=per_class,
            allow_leaks=allow_leaks,
        )
        _check_name(model, config)
        _check_folds(folds, protocol)
        open_manifest(manifest)  # missing files and empty classes fail before TF loads
        _quiet_tf()
        if folds is not None:
            from acnemodel.cv import cross_validate

            cross_validate(manifest, [model], folds, out, config, echo=typer.echo)
            typer.echo(f"table: {out / 'cv.md'}")
            return
        from acnemodel.train import summary_line
        from acnemodel.train import train as train_model

        typer.echo(summary_line(train_model(manifest, model, out, config)))

    _guard(run)


@app.command()
def compare(
    manifest: ManifestArg,
    out: OutOpt = Path("compare"),
    models: Annotated[str, typer.Option(help="comma-separated model names")] = "paper,kecnn,kevgg",
    protocol: ProtocolOpt = "honest",
    epochs: EpochsOpt = 24,
    batch_size: BatchOpt = 32,
    seed: SeedOpt = 0,
    test_fraction: FractionOpt = 0.3,
    validation_fraction: ValFractionOpt = 0.15,
    learning_rate: LrOpt = None,
    patience: PatienceOpt = None,
    presence: PresenceOpt = None,
    folds: FoldsOpt = None,
    image_size: SizeOpt = None,
    interpolation: InterpOpt = "bilinear",
    expand_to: ExpandToOpt = None,
    per_class: PerClassOpt = False,
    no_augment: NoAugmentOpt = False,
    rotation_range: RotationOpt = 20.0,
    width_shift_range: WShiftOpt = 0.1,
    height_shift_range: HShiftOpt = 0.1,
    shear_range: ShearOpt = 10.0,
    zoom_range: ZoomOpt = 0.1,
    horizontal_flip: HFlipOpt = True,
    vertical_flip: VFlipOpt = False,
    brightness_range: BrightOpt = None,
    fill_mode: FillOpt = "nearest",
    augment_engine: EngineOpt = "affine",
    allow_leaks: AllowLeaksOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Train several models on one split: OUT/table.md, table.json, curves.png, OUT/<model>/."""
    knobs = _knobs(locals())

    def run() -> None:
        from acnemodel.data import open_manifest
        from acnemodel.errors import ModelError
        from acnemodel.models import get_spec

        names = [m.strip() for m in models.split(",") if m.strip()]
        if not names:
            raise ModelError("--models is empty; give e.g. paper,kecnn,kevgg")
        for name in names:
            get_spec(name)
        config = _config(
            image_size,
            no_augment,
            quiet,
            knobs,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            protocol=protocol,
            test_fraction=test_fraction,
            validation_fraction=validation_fraction,
            learning_rate=learning_rate,
            recipe={"patience": patience},
            presence=presence,
            interpolation=interpolation,
            expand_to=expand_to,
            per_class=per_class,
            allow_leaks=allow_leaks,
        )
        _check_folds(folds, protocol)
        open_manifest(manifest)
        _quiet_tf()
        if folds is not None:
            from acnemodel.cv import cross_validate

            cross_validate(manifest, names, folds, out, config, echo=typer.echo)
            typer.echo(f"table: {out / 'cv.md'}")
            return
        from acnemodel.compare import compare as compare_models

        compare_models(manifest, names, out, config, echo=typer.echo)
        typer.echo(f"table: {out / 'table.md'}")

    _guard(run)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="a train --out folder")],
    images: Annotated[list[Path], typer.Argument(metavar="IMAGE...", help="image files")],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="print one JSON document (for `acnedata review --suggestions`)"
        ),
    ] = False,
    min_confidence: Annotated[
        float, typer.Option(help="flag predictions whose top probability is below this")
    ] = 0.6,
) -> None:
    """Top class and its probability per image, flagged when unsure; --json for all of them."""

    def run() -> int:
        import json

        from acnemodel.errors import ModelError
        from acnemodel.predict import read_run

        if not 0 <= min_confidence <= 1:
            raise ModelError(f"--min-confidence {min_confidence}: give a probability in [0, 1]")
        read_run(run_dir)  # a wrong RUN fails before TF loads
        _quiet_tf()
        from acnemodel.predict import predict_images, predictions_json

        found = predict_images(run_dir, images, min_confidence)
        failed = 0
        for p in found:
            if p.error:
                failed += 1
                typer.echo(f"error: {p.error}", err=True)
        if as_json:
            doc = predictions_json(run_dir, found, min_confidence)
            typer.echo(json.dumps(doc, indent=2))
            return failed
        for p in found:
            if p.error:
                continue
            flag = (
                f"  LOW CONFIDENCE (< {min_confidence:g}): check by eye" if p.low_confidence else ""
            )
            probs = ", ".join(f"{c} {v:.3f}" for c, v in (p.probabilities or {}).items())
            typer.echo(f"{p.path}: {p.label} {p.confidence:.3f}{flag}  ({probs})")
        return failed

    if _guard(run):
        raise typer.Exit(1)  # like cat: the readable ones were predicted, but not all were


@app.command()
def expand(
    manifest: ManifestArg,
    to: Annotated[int, typer.Option("--to", help="target item count (total or per class)")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="folder for the new manifest.json and augmented/ "
            "(default: <manifest folder>-expanded-N)",
        ),
    ] = None,
    per_class: PerClassOpt = False,
    seed: SeedOpt = 0,
    rotation_range: RotationOpt = 20.0,
    width_shift_range: WShiftOpt = 0.1,
    height_shift_range: HShiftOpt = 0.1,
    shear_range: ShearOpt = 10.0,
    zoom_range: ZoomOpt = 0.1,
    horizontal_flip: HFlipOpt = True,
    vertical_flip: VFlipOpt = False,
    brightness_range: BrightOpt = None,
    fill_mode: FillOpt = "nearest",
    augment_engine: EngineOpt = "affine",
) -> None:
    """Write augmented copies up to N items and a new manifest whose copies name their parent.

    Items whose licence forbids derivatives are never used as parents."""
    knobs = _knobs(locals())

    def run() -> None:
        from acnemodel.data import open_manifest

        config = _augment(False, **knobs)
        source = open_manifest(manifest)
        _quiet_tf()
        from acnemodel.expand import expand_manifest

        target = out or source.root.with_name(f"{source.root.name}-expanded-{to}")
        result = expand_manifest(source, target, to, per_class=per_class, config=config, seed=seed)
        for label, missing in result.short.items():
            typer.echo(
                f"note: class {label!r} stays {missing} short of {to}: none of its items "
                "may be augmented",
                err=True,
            )
        typer.echo(
            f"{result.written} augmented copies written; {result.total} items → {result.manifest}"
        )

    _guard(run)


@app.command("models")
def list_models() -> None:
    """The registered models and their input sizes."""
    from acnemodel.models import REGISTRY

    for spec in REGISTRY.values():
        h, w = spec.image_size
        typer.echo(f"{spec.name:8} {h}×{w}  {spec.summary}")


def _version(value: bool) -> None:
    if value:
        from acnemodel import __version__

        typer.echo(f"acnemodel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Show TensorFlow's own start-up and log lines.")
    ] = False,
) -> None:
    """acnemodel: Keras models from acnedata manifests."""
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"


def main() -> None:
    import importlib.util
    import sys

    from acnedata.cli_help import run

    # Every command but --version needs TensorFlow: without it, one line, not a traceback.
    if importlib.util.find_spec("tensorflow") is None and "--version" not in sys.argv[1:]:
        typer.echo(MODEL_EXTRA_HINT, err=True)
        raise SystemExit(1)
    args = sys.argv[1:]
    if "--verbose" not in args:
        _quiet_tf()
        # Every command loads TensorFlow; loading it here, filtered, hides the C++ start-up
        # lines that TF_CPP_MIN_LOG_LEVEL lets through. Help, version, completion and the model
        # list need none.
        if args and args[0] != "models" and not {"--help", "-h", "--version",
                         "--install-completion", "--show-completion"} & set(args):  # fmt: skip
            from acnemodel.tflog import import_tensorflow_quietly

            import_tensorflow_quietly()
    run(app, "acnemodel")
