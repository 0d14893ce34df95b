"""Terminal output for the CLI: rich progress bars per stage and the closing summary tables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from acnedata.dedup.groups import DEFAULT_TEST_FRACTION
from acnedata.pipeline import PortalReport, Summary

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)


class RateColumn(ProgressColumn):
    """Items per second (rich's own speed column counts bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:6.1f}/s" if speed else "", style="progress.data.speed")


class _Bar:
    def __init__(self, progress: Progress, task: int):
        self.progress, self.task = progress, task

    def advance(self, n: int = 1) -> None:
        self.progress.advance(self.task, n)

    def set_total(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def describe(self, text: str) -> None:
        """Replace the stage name shown left of the bar (e.g. with per-state counts)."""
        self.progress.update(self.task, description=text)


class NullBar:
    def advance(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class RichReporter:
    """One progress bar per stage, with rate and ETA; notes printed above the bars."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Any]:
        if total == 0:  # nothing to do in this stage: no empty bar
            yield NullBar()
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<13}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
            disable=self.quiet,
        )
        with progress:
            task = progress.add_task(name, total=total)
            yield _Bar(progress, task)
            if total is None:
                progress.update(task, total=progress.tasks[0].completed)

    def note(self, message: str) -> None:
        if not self.quiet:
            err_console.print(f"[dim]{message}[/dim]")


def portal_table(report: PortalReport) -> Table:
    """One row per dataset; the URL sits under its title to stay readable at 80 columns."""
    table = Table(title="Existing datasets (portal check; full reasons in portals.json)")
    table.add_column("portal", no_wrap=True)
    table.add_column("dataset and URL", overflow="fold", ratio=4)
    table.add_column("licence", overflow="fold", ratio=1)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("verdict", overflow="fold", ratio=1)
    for h in report.hits:
        size = f"{h.size / 1e6:.1f} MB" if h.size else "?"
        if h.fits:
            verdict = "[green]fits[/green]"
        elif h.decision == "allow":
            verdict = "no: not images"
        elif h.decision == "review":
            verdict = "review: " + h.reason.split(";")[0]
        else:
            verdict = "no: licence"
        table.add_row(h.portal, f"{h.title or h.name}\n[dim]{h.url}[/dim]", h.spdx, size, verdict)
    if not report.hits:
        table.add_row("-", "no datasets found", "", "", "")
    return table


def _reasons(pairs: list[tuple[str, int]], total: int | None = None) -> str:
    """One reason a line, cut to its first sentence: the full text is in `acnedata status`.
    When the lines cover fewer than `total` items, a last line says how many more there are."""
    lines = [f"{n}× {r.split('. ')[0].rstrip('.')}" for r, n in pairs]
    rest = (total or 0) - sum(n for _, n in pairs)
    if rest > 0:
        lines.append(f"+{rest} more (acnedata status DIR --show STATE lists them)")
    return "\n".join(lines)


def summary_tables(s: Summary) -> list[Table]:
    main = Table(title="Collection summary")
    main.add_column("stage")
    main.add_column("figure", justify="right")
    main.add_column("detail", overflow="fold")
    main.add_row("found", str(s.found), f"{s.requests} HTTP requests this run")
    main.add_row(
        "rejected by licence",
        str(s.states.get("rejected", 0)),
        _reasons(s.rejected_reasons[:3], s.states.get("rejected", 0)),
    )
    main.add_row(
        "failed downloads",
        str(s.states.get("failed", 0)),
        _reasons(s.failed_reasons[:4], s.states.get("failed", 0)),
    )
    main.add_row("stored", str(s.states.get("stored", 0)), "")
    main.add_row(
        "duplicates",
        str(s.duplicates),
        f"in {s.clusters_with_duplicates} clusters; one kept per cluster",
    )
    links = sum(s.region_links.values())
    relations = ", ".join(f"{n} {kind}" for kind, n in sorted(s.region_links.items()))
    main.add_row(
        "shared regions", str(links), f"verified pairs of images: {relations}" if links else ""
    )
    if s.mosaics:
        # \\[: rich would read [dedup] as markup
        fate = (
            f"{s.excluded} excluded: tiled from several photos, not a photo "
            '(\\[dedup] mosaics = "exclude")'
            if s.excluded
            else "kept apart from the photos' groups; a split puts each on the side of the "
            'photos it shows, or leaves it out (\\[dedup] mosaics = "follow")'
            if s.mosaic_policy == "follow"
            else 'kept, grouped with the photos they show (\\[dedup] mosaics = "group")'
        )
        if s.keys_only_in_mosaics:
            fate += (
                f"; {s.keys_only_in_mosaics} of {s.provenance_keys} group keys (an upload, a "
                "patient) had nothing but mosaics and are gone with them (import --mosaics "
                "follow keeps them)"
            )
        main.add_row("mosaics", str(s.mosaics), fate)
    too_large = (
        f"; {len(s.oversized_groups)} too large for a {DEFAULT_TEST_FRACTION:.0%} test share"
        if s.oversized_groups
        else ""
    )
    main.add_row(
        "groups",
        str(s.groups),
        f"largest holds {s.largest_group} items; a split keeps each group on one side{too_large}",
    )
    main.add_row("conflicts", str(s.conflicts), "cross-class: kept out until reviewed")
    main.add_row("in review", str(s.review), _reasons(s.review_reasons[:3], s.review))
    main.add_row(
        "in manifest", str(sum(s.per_class.values())), str(s.manifest) if s.manifest else ""
    )
    per_class = Table(title="Kept per class")
    per_class.add_column("class")
    per_class.add_column("images", justify="right")
    for name, n in s.per_class.items():
        per_class.add_row(name, str(n))
    tables = [main, per_class]
    if s.skipped_pages:
        skipped = Table(title="Pages passed over on purpose (robots, noai, refused atlases)")
        skipped.add_column("page: why", overflow="fold")
        for line in s.skipped_pages:
            skipped.add_row(line)
        tables.append(skipped)
    if s.source_errors:
        errors = Table(title="Source errors (the run went on without them)")
        errors.add_column("source: error", overflow="fold")
        for e in s.source_errors:
            errors.add_row(e)
        tables.append(errors)
    return tables
