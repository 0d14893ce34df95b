"""The CLI as a user meets it: a real process, one-line errors, exit codes, help everywhere."""

import json
import subprocess
import sys

import pytest

from acnedata.cli import app


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "acnedata", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_bad_spec(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('name = "x"\n[policy]\nnoassertion = "maybe"\n[[classes]]\nname = "a"\n')
    assert_one_line_error(
        run("collect", str(spec), "--out", str(tmp_path / "o")), str(spec), "policy.noassertion"
    )


def test_unknown_spec_name(tmp_path):
    assert_one_line_error(
        run("collect", "acne-l99", "--out", str(tmp_path / "o")),
        "acne-l99",
        "unknown spec",
        "acne-l70",
    )


def test_missing_contact_for_a_public_host(tmp_path):
    proc = run("collect", "acne-l70", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "no contact given", "--contact")


def test_unreachable_host(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = tmp_path / "s.toml"
    spec.write_text(
        f'name = "x"\n[network]\nmax_retries = 0\nmin_interval = 0.0\n'
        f'[sources.commons]\nbase_url = "http://127.0.0.1:{port}/w/api.php"\n'
        '[[classes]]\nname = "a"\n'
    )
    proc = run("collect", str(spec), "--out", str(tmp_path / "o"), "--allow-private", "--quiet")
    assert_one_line_error(proc, "cannot connect")


def test_stage_commands_on_a_folder_without_catalog(tmp_path):
    for cmd in ("download", "manifest", "status"):
        assert_one_line_error(run(cmd, str(tmp_path)), "no catalog.sqlite", "acnedata collect")
    assert_one_line_error(run("verify", str(tmp_path)), "manifest not found")


def test_standalone_dedup_json(tmp_path):
    from imagefactory import make_image

    a = make_image(1)
    a.save(tmp_path / "a.png")
    a.save(tmp_path / "b.png", compress_level=1)
    make_image(2).save(tmp_path / "c.png")
    proc = run("dedup", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    clusters = json.loads(proc.stdout)["clusters"]
    assert len(clusters) == 1
    assert sorted(p.rsplit("/", 1)[-1] for p in clusters[0]) == ["a.png", "b.png"]


@pytest.mark.parametrize(
    "command", [c.name or c.callback.__name__ for c in app.registered_commands]
)
def test_every_command_has_help(command):
    proc = run(command, "--help")
    assert proc.returncode == 0
    assert "Usage" in proc.stdout
