"""The README's two commands stay true: CI runs exactly the test command the README gives."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci_lines = [
        ln
        for ln in (ROOT / ".ci" / "run").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    test_command = ci_lines[-1]
    assert "pytest" in test_command
    assert test_command in readme


def test_readme_demo_command_names_a_real_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && acnedata demo --out demo" in readme


def test_schema_shipped_in_package_equals_the_repo_copy():
    repo = (ROOT / "manifests" / "schema" / "manifest.schema.json").read_bytes()
    shipped = (ROOT / "acnedata" / "schema" / "manifest.schema.json").read_bytes()
    assert repo == shipped
