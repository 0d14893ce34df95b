"""Help that reads well: off-by-default flags without a `--no-` twin, shared by both CLIs."""

from __future__ import annotations

from typing import Any

import typer


def flags_only(command: Any) -> Any:
    """Drop the `--no-x` twin of every flag that is off by default (`--no-no-derivatives`).

    A flag on by default keeps its twin (`--no-vertical-flip` is how it is turned off).
    """
    commands = getattr(command, "commands", {})
    for sub in commands.values():
        flags_only(sub)
    for param in command.params:  # duck-typed: Typer runs its own copy of click
        twin = getattr(param, "is_flag", False) and getattr(param, "secondary_opts", None)
        if twin and param.default is False:
            param.secondary_opts = []
            param.show_default = False
    return command


def run(app: typer.Typer, prog_name: str, **kwargs: Any) -> Any:
    """Build the click command from `app`, tidy its flags, and run it."""
    return flags_only(typer.main.get_command(app))(prog_name=prog_name, **kwargs)
