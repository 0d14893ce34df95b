"""acnemodel command line (placeholder until the training commands land)."""

import typer

app = typer.Typer(help="Train, compare and predict Keras models from acnedata manifests.")


@app.callback()
def _root() -> None:
    """acnemodel: train from acnedata manifests."""


def main() -> None:
    app()
