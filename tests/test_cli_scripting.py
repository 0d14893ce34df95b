"""A CLI scripts can trust: --json shapes, exit codes, file modes, help, --version, no-TF hint."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from imagefactory import make_image

from acnedata.cli import app

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_KEYS = {
    "found", "states", "rejected_reasons", "failed_reasons", "duplicates",
    "clusters_with_duplicates", "groups", "largest_group", "oversized_groups", "split_conflict",
    "mosaics", "conflicts", "review", "per_class", "in_manifest", "manifest", "download",
    "source_errors", "notes", "stopped_for_portal",
}  # fmt: skip


def run(*args: str, tool: str = "acnedata", umask: int = 0o022) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", tool, *args] if tool == "acnedata" else
        [sys.executable, "-c", "from acnemodel.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(umask),
    )  # fmt: skip


def class_folders(root: Path, seed: int = 70) -> Path:
    """Two class folders of three small generated photos each, under root."""
    for c, label in enumerate(("comedonal", "papular")):
        (root / label).mkdir(parents=True)
        for k in range(3):
            make_image(c * 10 + k, size=(40, 40), seed=seed + c * 10 + k).save(
                root / label / f"{k}.png"
            )
    return root


@pytest.fixture(scope="module")
def imported(tmp_path_factory) -> tuple[Path, dict]:
    tmp = tmp_path_factory.mktemp("scripting")
    out = tmp / "out"
    proc = run("import", str(class_folders(tmp / "src")), "--out", str(out),
               "--licence", "CC-BY-4.0", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out, json.loads(proc.stdout)


def test_import_json_shape(imported):
    out, data = imported
    assert set(data) == SUMMARY_KEYS
    assert data["in_manifest"] == 6 and data["per_class"] == {"comedonal": 3, "papular": 3}
    assert data["states"] == {"stored": 6}
    assert data["download"] == {"stored": 6, "failed": 0, "seconds": data["download"]["seconds"]}
    assert data["manifest"] == str(out / "manifest.json")


def test_outputs_follow_the_umask(imported):
    out, _ = imported
    for name in ("manifest.json", "ATTRIBUTION.md", "attribution.csv", "DATASET_CARD.md"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
    proc = run("manifest", str(out), "--json", umask=0o027)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"manifest": str(out / "manifest.json"), "items": 6}
    assert (out / "manifest.json").stat().st_mode & 0o777 == 0o640


def test_status_and_verify_json(imported, tmp_path):
    out, _ = imported
    proc = run("status", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert set(status) == SUMMARY_KEYS and status["in_manifest"] == 6
    proc = run("status", str(out), "--json", "--show", "failed")
    assert json.loads(proc.stdout)["items"] == []
    proc = run("verify", str(out), "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {"checked": 6, "missing": [], "changed": [], "ok": True}
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    manifest = json.loads((copy / "manifest.json").read_text())
    victim = copy / manifest["items"][0]["file"]
    victim.write_bytes(victim.read_bytes() + b"x")
    proc = run("verify", str(copy), "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["changed"] == [manifest["items"][0]["file"]]


def test_fetch_that_stores_nothing_exits_3(httpserver, tmp_path):
    urls = tmp_path / "urls.csv"
    urls.write_text(
        "url,licence\n" + "".join(f"{httpserver.url(f'/gone/{k}.jpg')},CC0-1.0\n" for k in range(5))
    )
    proc = run("fetch", str(urls), "--out", str(tmp_path / "o"), "--allow-private", "--json")
    assert proc.returncode == 3, proc.stderr
    data = json.loads(proc.stdout)
    assert data["download"]["stored"] == 0 and data["download"]["failed"] == 5
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("error: none of the 5 downloads of this run was stored")
    )


COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_renders_option_names_in_full(command):
    proc = subprocess.run(
        [sys.executable, "-m", "acnedata", command.rstrip("_"), "--help"],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "60"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "<bool>" not in proc.stdout
    assert "--no-no-" not in proc.stdout
    assert "…" not in proc.stdout


def test_version_and_completion_on_both_clis():
    assert run("--version").stdout.strip() == "acnedata 0.1.0"
    assert run("--version", tool="acnemodel").stdout.strip() == "acnemodel 0.1.0"
    for tool in ("acnedata", "acnemodel"):
        helptext = run("--help", tool=tool).stdout
        assert "--show-completion" in helptext and "--install-completion" in helptext
    train = run("train", "--help", tool="acnemodel").stdout
    assert "--no-horizontal-flip" in train  # on by default: its twin turns it off
    assert "--no-vertical-flip" not in train


def test_acnemodel_without_tensorflow_prints_one_line(tmp_path):
    """A fresh venv with only `pip install -e .`: acnemodel --help gives the one-line hint."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if install.returncode != 0:
        pytest.skip(f"pip could not install the package here: {install.stderr[-300:]}")
    proc = subprocess.run(
        [str(env_dir / "bin" / "acnemodel"), "--help"], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == "install the model extra: pip install 'acnedata[model]'\n"
    assert re.fullmatch(r"acnemodel \S+\n", subprocess.run(
        [str(env_dir / "bin" / "acnemodel"), "--version"], capture_output=True, text=True
    ).stdout)  # fmt: skip
