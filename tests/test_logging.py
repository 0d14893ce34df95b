"""The library speaks through `logging`, never print(); the CLI shows that log under -v."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from httpserver import Reply
from test_http import FakeClock, session

import acnedata
from acnedata.pipeline import NullReporter

ROOT = Path(acnedata.__file__).resolve().parent.parent
CLI_LAYER = {"cli.py", "cli_help.py", "cli_json.py", "console.py"}  # where output belongs


def test_no_library_module_prints():
    offenders = []
    for package in ("acnedata", "acnemodel"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.name in CLI_LAYER:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "print"
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_the_package_logger_has_a_null_handler():
    logger = logging.getLogger("acnedata")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)


def test_retries_and_robots_refusals_are_logged(httpserver, caplog):
    clock = FakeClock()
    busy = Reply(503, "busy", {"Retry-After": "2"})
    httpserver.route("/api", replies=[busy, Reply(200, "{}", {"Content-Type": "application/json"})])
    httpserver.route("/robots.txt", body="User-agent: *\nDisallow: /private/\n")
    caplog.set_level(logging.INFO, logger="acnedata")
    s = session(clock)
    s.get_json(httpserver.url("/api"))
    assert not s.fetch(httpserver.url("/private/a.jpg")).ok
    messages = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    assert (
        "acnedata.http",
        logging.INFO,
        f"retry 1 of {s.config.max_retries} for {httpserver.url('/api')} in 2.0 s: http 503",
    ) in messages
    assert (
        "acnedata.http",
        logging.INFO,
        f"{httpserver.url('/private/a.jpg')} refused: robots.txt disallows",
    ) in messages


def test_a_library_run_without_a_reporter_logs_its_notes(caplog):
    caplog.set_level(logging.INFO, logger="acnedata")
    NullReporter().note("kept 3 of 4 uploads")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("acnedata.pipeline", "kept 3 of 4 uploads")
    ]


def test_verbose_cli_shows_the_content_stage_log(tmp_path):
    from imagefactory import make_image
    from typer.testing import CliRunner

    from acnedata.cli import app

    source = tmp_path / "source" / "papular"
    source.mkdir(parents=True)
    for k in range(3):
        make_image(k, size=(96, 96), seed=k).save(source / f"{k}.jpg")
    out = tmp_path / "out"
    runner = CliRunner()
    done = runner.invoke(
        app, ["import", str(source.parent), "--out", str(out), "--licence", "CC0-1.0"]
    )
    assert done.exit_code == 0, done.output
    quiet = runner.invoke(app, ["dedup", str(out)])
    loud = runner.invoke(app, ["-v", "dedup", str(out)])
    assert quiet.exit_code == loud.exit_code == 0
    assert "content stage" not in quiet.output
    shown = " ".join(loud.output.split())  # rich wraps lines at the terminal's width
    assert "INFO acnedata.dedup.content: content stage: 3 images unchanged" in shown
