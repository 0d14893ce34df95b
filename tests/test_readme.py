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
    # The README's command, as a line of its own; other steps (the Ray tests) may follow it
    test_command = next(ln for ln in ci_lines if ln.startswith("pip install -e '.[model,test]'"))
    assert "pytest" in test_command
    assert test_command in readme


def test_readme_demo_command_names_a_real_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e . && acnedata demo --out demo" in readme


def test_schema_shipped_in_package_equals_the_repo_copy():
    repo = (ROOT / "manifests" / "schema" / "manifest.schema.json").read_bytes()
    shipped = (ROOT / "acnedata" / "schema" / "manifest.schema.json").read_bytes()
    assert repo == shipped


def section(title: str) -> str:
    """The README's text under a `### title` heading, up to the next heading."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"### {title}\n")
    ends = [i for i in (readme.find("\n## ", start), readme.find("\n### ", start)) if i != -1]
    return readme[start : min(ends, default=len(readme))]


def blocks(text: str, lang: str = "") -> list[str]:
    import re

    return re.findall(rf"```{lang}\n(.*?)```", text, re.DOTALL)


def test_readme_python_api_loading_and_export_sections_run(tmp_path, monkeypatch):
    """The new sections run as written: import and verify, loading, every export command."""
    import json
    import shlex
    import subprocess
    import sys

    from imagefactory import make_image

    for c, label in enumerate(("comedonal", "papular")):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for k in range(3):
            make_image(c * 10 + k, size=(40, 40), seed=k).save(
                tmp_path / "photos" / label / f"{k}.png"
            )
    monkeypatch.chdir(tmp_path)
    for title in ("Import and verify from Python", "Loading without TensorFlow"):
        for code in blocks(section(title), "python"):
            exec(compile(code, f"README: {title}", "exec"), {})
    lines = [ln.split("#")[0].strip() for ln in blocks(section("Exports"))[0].splitlines()]
    commands = [shlex.split(ln) for ln in lines if ln]
    assert [c[4] for c in commands] == ["imagefolder", "hf", "webdataset", "croissant"]
    for command in commands:
        assert command[0] == "acnedata"
        proc = subprocess.run([sys.executable, "-m", "acnedata", *command[1:]],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        out = tmp_path / command[command.index("--out") + 1]
        assert json.loads((out / ".acnedata-export.json").read_text())["format"] == command[4]


def test_readme_documents_every_json_key_and_exit_code():
    from acnedata.cli import NOTHING_STORED

    text = section("Scripting: --json and exit codes")
    keys = ["found", "states", "rejected_reasons", "failed_reasons", "duplicates",
            "clusters_with_duplicates", "groups", "largest_group", "oversized_groups",
            "split_conflict", "mosaics", "conflicts", "review", "per_class", "in_manifest",
            "manifest", "download", "source_errors", "notes", "stopped_for_portal"]  # fmt: skip
    for key in keys:
        assert f"`{key}`" in text, key
    assert '"group_keys_only_in_mosaics"' in text  # inside `mosaics`
    assert f"| {NOTHING_STORED} |" in text
