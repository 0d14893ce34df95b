"""acnedata command line: every command calls one library function; user errors are one line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from acnedata import __version__
from acnedata.errors import AcnedataError, DiskFullError, is_disk_full

app = typer.Typer(
    help="Build legally clean, de-duplicated, labelled image datasets from public sources.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain click help: option names in full at any width (rich's boxes cut them to "--licen…")
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Output folder (catalog, images, manifest).")
]
DirArg = Annotated[Path, typer.Argument(help="An output folder written by `acnedata collect`.")]
ContactOpt = Annotated[
    str | None,
    typer.Option(
        "--contact", help="Your e-mail or URL, sent in the User-Agent (required for public APIs)."
    ),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bars and no summary; errors only.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (shape: README, Scripting).")
]
DistributorOpt = Annotated[
    str,
    typer.Option(
        help="Where downloads run: local (this machine) or ray (a Ray cluster; pip install "
        "'acnedata[ray]'; the output folder must be on storage every node mounts)."
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(help="With --distributor ray: the cluster to join (default: start one here)."),
]
ProcessesOpt = Annotated[
    int | None,
    typer.Option(
        help="Processes that validate, store and hash downloads (default: one per CPU plus one "
        "for 200+ items; 0: in the download threads)."
    ),
]


INTERRUPTED = 130  # the exit status after Ctrl-C (128 + SIGINT)


def user_errors(fn: F) -> F:
    """Domain errors end with one line on stderr and exit 1; Ctrl-C says how to resume."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AcnedataError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            # a write the library does not translate itself: name its folder, else --out's
            folder = Path(exc.filename).parent if exc.filename else kwargs.get("out", "--out")
            typer.echo(f"error: {DiskFullError(folder)}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: everything finished so far is saved; run the same command "
                "again to resume",
                err=True,
            )
            raise typer.Exit(INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def _print_summary(summary: Any) -> None:
    from acnedata.console import console, portal_table, summary_tables

    if summary.portals is not None:
        console.print(portal_table(summary.portals))
    for table in summary_tables(summary):
        console.print(table)
    _echo_cut("oversized group", summary.oversized_groups)
    if summary.split_conflict:
        typer.echo(f"split conflict: {summary.split_conflict}")
    for line in summary.notes:
        typer.echo(line)


def _echo_cut(what: str, lines: list[str], limit: int = 5) -> None:
    """Plain lines (no wrapping: scripts read them), at most `limit`, then "+N more"."""
    for line in lines[:limit]:
        typer.echo(f"{what}: {line}")
    if len(lines) > limit:
        typer.echo(f"{what}: +{len(lines) - limit} more")


def _load(spec: str, contact: str | None, allow_private: bool = False) -> Any:
    from dataclasses import replace

    from acnedata.spec import load_spec

    loaded = load_spec(spec, contact=contact)
    if allow_private:
        loaded = replace(loaded, network=replace(loaded.network, allow_private=True))
    return loaded


@app.command()
@user_errors
def collect(
    spec: Annotated[
        str, typer.Argument(help="A spec .toml file or a built-in spec name, e.g. acne-l70.")
    ],
    out: OutOpt,
    contact: ContactOpt = None,
    collect_anyway: Annotated[
        bool, typer.Option(help="Collect even when a portal already has a dataset that fits.")
    ] = False,
    retry_failed: Annotated[bool, typer.Option(help="Retry items whose download failed.")] = False,
    allow_private: Annotated[
        bool, typer.Option(help="Allow loopback/private addresses (mirrors, tests).")
    ] = False,
    distributor: DistributorOpt = "local",
    ray_address: RayAddressOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run every stage: portals, search, licence gate, download, dedup, sort, manifest."""
    from acnedata.console import RichReporter, console, portal_table
    from acnedata.pipeline import Collector

    reporter = RichReporter(quiet or as_json)
    ray = _ray_options(distributor, ray_address)
    with Collector(_load(spec, contact, allow_private), out, reporter=reporter, ray=ray) as col:
        summary = col.collect(collect_anyway=collect_anyway, retry_failed=retry_failed)
        if summary.stopped_for_portal and not (as_json or quiet):
            console.print(portal_table(summary.portals))
            console.print(
                "A public dataset already fits this spec: use it (see the table), or "
                "run again with --collect-anyway to collect images yourself."
            )
            return
        _finish(summary, out, as_json, quiet)


@app.command()
@user_errors
def demo(
    out: OutOpt = Path("demo"),
    per_class: Annotated[int, typer.Option(help="Images the mirror serves per class.")] = 24,
    all_sources: Annotated[
        bool,
        typer.Option(
            "--all-sources",
            help="Also mirror Openverse, ISIC, a web gallery, data.go.kr, Kaggle and AI Hub.",
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """The whole procedure offline, against a local mirror on 127.0.0.1 with planted problems."""
    from contextlib import nullcontext

    from acnedata.console import RichReporter, console
    from acnedata.demo.mirror import DemoMirror
    from acnedata.demo.spec import demo_credentials, demo_spec_toml
    from acnedata.pipeline import Collector
    from acnedata.spec import load_spec

    out.mkdir(parents=True, exist_ok=True)
    shapes = (
        "Commons, Openverse, ISIC, a web gallery, Zenodo, Hugging Face, data.go.kr, Kaggle "
        "and AI Hub"
        if all_sources
        else "Commons, Zenodo and Hugging Face"
    )
    with DemoMirror(per_class=per_class) as mirror:
        if not quiet:
            console.print(f"demo mirror ({shapes} shaped) at {mirror.base_url}")
        spec_path = out / "demo-spec.toml"
        spec_text = demo_spec_toml(mirror.base_url, per_class=per_class, all_sources=all_sources)
        spec_path.write_text(spec_text, "utf-8")
        # data.go.kr and Kaggle read their keys only from the environment: the mirror's demo
        # keys are set for this run alone, in this process, and what was there is restored after.
        keys = demo_credentials() if all_sources else nullcontext({})
        with keys as env, Collector(load_spec(spec_path), out, reporter=RichReporter(quiet)) as col:
            if env and not quiet:
                console.print(f"demo keys set for this run only: {', '.join(sorted(env))}")
            summary = col.collect()
            if not quiet:
                _print_summary(summary)
    if quiet:
        return
    console.print(
        f"manifest: {summary.manifest}\nnext: acnemodel train {summary.manifest} "
        f"--out {out / 'run'}"
    )


@app.command()
@user_errors
def fetch(
    urls: Annotated[
        Path,
        typer.Argument(
            help="CSV or JSON Lines: url, optional label, licence, author, page_url, title."
        ),
    ],
    out: OutOpt,
    contact: ContactOpt = None,
    allow_private: Annotated[bool, typer.Option(help="Allow loopback/private addresses.")] = False,
    licence: Annotated[
        str | None,
        typer.Option(
            help="Licence (SPDX) you state for rows that name none, e.g. your own photos."
        ),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            help="Accepted SPDX ids or patterns (repeatable; default CC0, PDM, CC-BY, CC-BY-SA)."
        ),
    ] = None,
    noncommercial: Annotated[bool, typer.Option(help="Accept non-commercial licences.")] = False,
    no_derivatives: Annotated[bool, typer.Option(help="Accept no-derivatives licences.")] = False,
    noassertion: Annotated[
        str, typer.Option(help="Rows with no recognisable licence: review or reject.")
    ] = "review",
    workers: Annotated[int, typer.Option(help="Downloads in flight at once, all hosts.")] = 8,
    per_host: Annotated[int, typer.Option(help="Downloads in flight to any one host.")] = 2,
    rate: Annotated[
        float, typer.Option(help="Requests per second to any one host (token bucket; 0: none).")
    ] = 0.0,
    retry_failed: Annotated[bool, typer.Option(help="Retry items whose download failed.")] = False,
    processes: ProcessesOpt = None,
    distributor: DistributorOpt = "local",
    ray_address: RayAddressOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Download a URL list without a spec; rerunning resumes. Writes catalog, images, manifest."""
    from acnedata.console import RichReporter
    from acnedata.fetch import url_list_spec
    from acnedata.pipeline import Collector

    if noassertion not in ("review", "reject"):
        raise AcnedataError(f"--noassertion {noassertion}: use review or reject")
    ray = _ray_options(distributor, ray_address)
    spec = url_list_spec(
        urls,
        allow_private=allow_private,
        contact=contact or "",
        allow=allow,
        noncommercial=noncommercial,
        no_derivatives=no_derivatives,
        noassertion=noassertion,
        licence=licence,
        workers=workers,
    )
    spec = _with_network(spec, workers=workers, per_host=per_host, rate=rate, processes=processes)
    with Collector(spec, out, reporter=RichReporter(quiet or as_json), ray=ray) as col:
        summary = col.build(retry_failed=retry_failed)
        failures = col.catalog.top_reasons("failed", limit=20)
    if not (as_json or quiet):
        _print_download_line(summary.download)
    _finish(summary, out, as_json, quiet)
    if not (as_json or quiet):
        _print_failures(failures)


@app.command("import")
@user_errors
def import_(
    source: Annotated[
        str,
        typer.Argument(
            help="A folder of class subfolders, a labels CSV, a "
            "zip/tar, or an http(s) archive / Zenodo record URL."
        ),
    ],
    out: OutOpt,
    licence: Annotated[
        str, typer.Option("--licence", "--license", help="The dataset's licence, e.g. CC-BY-4.0.")
    ],
    author: Annotated[str | None, typer.Option(help="Author or owner to credit.")] = None,
    citation: Annotated[str | None, typer.Option(help="Citation recorded on every item.")] = None,
    labels: Annotated[Path | None, typer.Option(help="CSV with file,label columns.")] = None,
    title: Annotated[str | None, typer.Option(help="Dataset title.")] = None,
    page_url: Annotated[str | None, typer.Option(help="The dataset's landing page.")] = None,
    group_col: Annotated[
        str | None,
        typer.Option(
            help="CSV column whose value groups items (a patient, a photo): a split keeps a "
            "group on one side."
        ),
    ] = None,
    split_col: Annotated[
        str | None,
        typer.Option(
            help="CSV column holding the dataset's own split (default: a column named split)."
        ),
    ] = None,
    group_from: Annotated[
        str | None,
        typer.Option(
            help="Regex on each file name; its first group (or the match) is the group key. "
            "Default: Roboflow export names are grouped by upload."
        ),
    ] = None,
    mosaics: Annotated[
        str,
        typer.Option(
            help="Images tiled from 2-4 photos: exclude them; group them with every photo they "
            "show; or follow: keep them out of the photos' groups, and let a split put each on "
            "the side of the photos it shows or leave it out."
        ),
    ] = "exclude",
    contact: ContactOpt = None,
    allow_private: Annotated[bool, typer.Option(help="Allow loopback/private addresses.")] = False,
    distributor: DistributorOpt = "local",
    ray_address: RayAddressOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring in an existing dataset, its licence and citation on every item (local: no network)."""
    from acnedata.console import RichReporter
    from acnedata.http import HttpConfig, PoliteSession
    from acnedata.importer import import_dataset

    ray = _ray_options(distributor, ray_address)
    session = None
    if allow_private:
        session = PoliteSession(
            HttpConfig(contact=contact or "", allow_private=True, respect_robots=False)
        )
    summary = import_dataset(
        source,
        out,
        licence=licence,
        author=author,
        citation=citation,
        title=title,
        page_url=page_url,
        labels_csv=labels,
        group_col=group_col,
        split_col=split_col,
        group_from=group_from,
        mosaics=mosaics,
        contact=contact,
        session=session,
        reporter=RichReporter(quiet or as_json),
        ray=ray,
    )
    _finish(summary, out, as_json, quiet)


@app.command()
@user_errors
def portals(
    spec: Annotated[str, typer.Argument(help="A spec .toml file or a built-in spec name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for portals.json.")] = Path("."),
    contact: ContactOpt = None,
    allow_private: Annotated[bool, typer.Option(help="Allow loopback/private addresses.")] = False,
) -> None:
    """Does a suitable public dataset already exist? Prints a table and writes portals.json."""
    from acnedata.console import console, portal_table
    from acnedata.manifest import atomic_write_text
    from acnedata.pipeline import Collector

    with Collector(_load(spec, contact, allow_private), out) as col:
        col.check_contact()
        report = col.check_portals()
    for line in report.skipped:
        console.print(f"[dim]skipped — {line}[/dim]")
    console.print(portal_table(report))
    path = out / "portals.json"
    atomic_write_text(
        path,
        json.dumps(
            {"hits": [h.as_dict() for h in report.hits], "skipped": report.skipped},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
    )
    console.print(f"{len(report.fitting)} of {len(report.hits)} datasets fit; wrote {path}")
    if report.asked and not report.reached:  # nothing was checked: a script must not read "none"
        typer.echo(
            f"error: none of the {report.asked} portals could be reached (see the skipped "
            "lines); nothing was checked",
            err=True,
        )
        raise typer.Exit(3)


@app.command()
@user_errors
def search(
    spec: Annotated[str, typer.Argument(help="A spec .toml file or a built-in spec name.")],
    out: OutOpt,
    contact: ContactOpt = None,
    allow_private: Annotated[bool, typer.Option(help="Allow loopback/private addresses.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Find candidates in every source and give each its licence verdict (nothing downloaded)."""
    from acnedata.console import RichReporter, console
    from acnedata.pipeline import Collector

    with Collector(_load(spec, contact, allow_private), out, reporter=RichReporter(quiet)) as col:
        col.check_contact()
        found = col.search()
        verdicts = col.gate()
    if quiet:
        return
    console.print(
        f"found {found.get('new', 0)} new candidates; licence verdicts: "
        + (", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())) or "none new")
    )


def _ray_options(distributor: str, ray_address: str | None) -> Any:
    """RayOptions for --distributor ray, None for local; one-line errors for bad input."""
    from acnedata.distributed import RayOptions, check_distributor, probe_address, require_ray

    if check_distributor(distributor) == "local":
        if ray_address:
            raise AcnedataError("--ray-address needs --distributor ray")
        return None
    require_ray()  # fail now, not after the search stage
    if ray_address:
        probe_address(ray_address)
    return RayOptions(address=ray_address)


def _with_network(
    spec: Any,
    *,
    workers: int | None,
    per_host: int | None,
    rate: float | None,
    processes: int | None = None,
) -> Any:
    """The spec with the [network] limits given on the command line (None: keep the spec's)."""
    from dataclasses import replace

    from acnedata.spec import check_rate

    for name, value, least in (
        ("--workers", workers, 1),
        ("--per-host", per_host, 1),
        ("--processes", processes, 0),
    ):
        if value is not None and value < least:
            raise AcnedataError(f"{name} {value}: use a whole number of at least {least}")
    if rate is not None:
        check_rate(rate, "--rate")
    net = spec.network
    net = replace(
        net,
        concurrency=net.concurrency if workers is None else workers,
        per_host_concurrency=net.per_host_concurrency if per_host is None else per_host,
        rate=net.rate if rate is None else rate,
        processes=net.processes if processes is None else processes,
    )
    return replace(spec, network=net)


def _timed_download(col: Any, retry_failed: bool, quiet: bool = False) -> dict[str, int]:
    """Run the download stage and say how it went, with its rate (not with -q)."""
    import time

    started = time.perf_counter()
    counts = col.download(retry_failed=retry_failed)
    if not quiet:
        _print_download_line({**counts, "seconds": time.perf_counter() - started})
    return counts


NOTHING_STORED = 3  # exit status: items were attempted and none was stored (README: Exit codes)


def _exit_if_nothing_stored(summary: Any, out: Path) -> None:
    """A run that tried to download and stored nothing is a failure a script must see."""
    counts = summary.download or {}
    if counts.get("failed", 0) and not counts.get("stored", 0):
        typer.echo(
            f"error: none of the {counts['failed']} downloads of this run was stored; "
            f"see acnedata status {out} --show failed",
            err=True,
        )
        raise typer.Exit(NOTHING_STORED)


def _finish(summary: Any, out: Path, as_json: bool, quiet: bool = False) -> None:
    """The closing output of a run (the summary, its JSON, or nothing with -q) and its exit
    status."""
    if as_json:
        from acnedata.cli_json import summary_dict

        typer.echo(json.dumps(summary_dict(summary), ensure_ascii=False))
    elif not quiet:
        _print_summary(summary)
    _exit_if_nothing_stored(summary, out)


def _print_download_line(counts: dict[str, float] | None) -> None:
    """`download: stored N, failed M in S s (R items/s)`; bench/download.py reads this line."""
    from acnedata.console import console

    if not counts:
        return
    took, done = counts["seconds"], counts["stored"] + counts["failed"]
    rate = f" ({done / took:.0f} items/s)" if done and took > 0 else ""
    console.print(
        f"download: stored {counts['stored']}, failed {counts['failed']} in {took:.1f} s{rate}"
    )


def _print_failures(failures: list[tuple[str, int]]) -> None:
    """The closing table of why downloads failed, most frequent first."""
    from rich.table import Table

    from acnedata.console import console

    if not failures:
        return
    table = Table(
        title="Failed downloads by reason", caption="the items: acnedata status OUT --show failed"
    )
    table.add_column("items", justify="right")
    table.add_column("reason", overflow="fold")
    for reason, n in failures:
        table.add_row(str(n), reason)
    console.print(table)


@app.command()
@user_errors
def download(
    out: DirArg,
    retry_failed: Annotated[
        bool,
        typer.Option(help="Also retry failed items (stored ones are never fetched again)."),
    ] = False,
    workers: Annotated[
        int | None, typer.Option(help="Downloads in flight at once, all hosts (default: spec).")
    ] = None,
    per_host: Annotated[
        int | None, typer.Option(help="Downloads in flight to any one host (default: spec).")
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Requests per second to any one host (token bucket; default: spec)."),
    ] = None,
    contact: ContactOpt = None,
    processes: ProcessesOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Download every candidate the licence gate let through (resumes where it stopped)."""
    from acnedata.console import RichReporter
    from acnedata.http import HttpConfig, PoliteSession
    from acnedata.pipeline import Collector

    with Collector.reopen(out, contact=contact, reporter=RichReporter(quiet)) as col:
        col.spec = _with_network(
            col.spec, workers=workers, per_host=per_host, rate=rate, processes=processes
        )
        col.session.close()
        col.session = PoliteSession(HttpConfig.from_spec(col.spec))
        col.check_contact()
        _timed_download(col, retry_failed, quiet)
        failed = col.catalog.top_reasons("failed", limit=20)
    if not quiet:
        _print_failures(failed)


@app.command()
@user_errors
def dedup(
    paths: Annotated[
        list[Path],
        typer.Argument(help="An output folder of `collect`, or any image files and folders."),
    ],
    threshold: Annotated[
        int | None, typer.Option(help="Hamming distance for near duplicates (default: the spec's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print clusters as JSON.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Mark duplicates in a collection, or list duplicate clusters among any files."""
    from acnedata.console import RichReporter, console
    from acnedata.pipeline import Collector

    if len(paths) == 1 and (paths[0] / "catalog.sqlite").is_file():
        with Collector.reopen(paths[0], reporter=RichReporter(quiet or as_json)) as col:
            if threshold is not None:
                from dataclasses import replace

                col.spec = replace(col.spec, phash_threshold=threshold)
            counts = col.dedup()
            content = col.regions()
            col.group()
            sorted_counts = col.sort()
            refreshed = _refresh_manifest(col, paths[0])
            summary = col.summary()
        # The figures `status` shows, counted the same way (groups over the kept items).
        oversized = summary.oversized_groups
        grouped = {"groups": summary.groups, "largest_group": summary.largest_group}
        sorted_counts = {**sorted_counts, "review": summary.review}
        regional = {
            "mosaics": content.mosaics,
            "excluded": content.excluded,
            "region_links": content.links,
            "relations": content.relations,
        }
        if as_json:
            typer.echo(json.dumps({**counts, **regional, **grouped, **sorted_counts}))
        elif not quiet:
            console.print(
                f"{counts['duplicates']} duplicates in {counts['stored']} stored images; "
                f"{content.links} region links ({_relations(content.relations)}); "
                f"{content.mosaics} mosaics ({content.excluded} excluded); "
                f"{grouped['groups']} groups (largest {grouped['largest_group']} items); "
                f"{sorted_counts.get('review', 0)} items need review"
            )
            _echo_cut("oversized group", oversized)
            if refreshed:
                console.print(f"manifest rewritten: {refreshed}")
        return
    from acnedata.dedup import dedup_paths

    for p in paths:
        if not p.exists():
            raise AcnedataError(f"{p}: no such file or folder")
    from acnedata.dedup import walk_images
    from acnedata.dedup.content import paths_content

    files = walk_images([str(p) for p in paths])
    clusters = dedup_paths(files, threshold=8 if threshold is None else threshold)
    links, mosaics = paths_content(files)
    groups = _groups_of(files, clusters, links)
    if as_json:
        payload = {"clusters": clusters, "regions": links, "mosaics": mosaics, "groups": groups}
        typer.echo(json.dumps(payload, ensure_ascii=False))
    else:
        for cluster in clusters:
            console.print("  ".join(cluster))
        for link in links:
            console.print(
                f"{link['a']} ~ {link['b']} ({link['relation']}, {link['inliers']} points)"
            )
        for found in mosaics:
            console.print(f"{found['path']}: {found['reason']}")
        console.print(
            f"{len(clusters)} clusters of duplicates; {len(links)} pairs sharing a region; "
            f"{len(mosaics)} mosaics; {len(groups)} groups of images that share content"
        )


def _groups_of(files: list[str], clusters: list[list[str]], links: list[dict]) -> list[list[str]]:
    """Groups of two or more files joined by a duplicate cluster or a shared region."""
    from acnedata.dedup import UnionFind

    uf = UnionFind()
    for f in files:
        uf.add(f)
    for cluster in clusters:
        for other in cluster[1:]:
            uf.union(cluster[0], other)
    for link in links:
        uf.union(link["a"], link["b"])
    return sorted(sorted(g) for g in uf.groups().values() if len(g) > 1)


@app.command()
@user_errors
def manifest(out: DirArg, as_json: JsonOpt = False) -> None:
    """Rewrite manifest.json (and the attribution files) from the catalog."""
    from acnedata.console import console
    from acnedata.pipeline import Collector

    with Collector.reopen(out) as col:
        path = col.write_manifest()
        n = len(json.loads(path.read_text("utf-8"))["items"])
    if as_json:
        typer.echo(json.dumps({"manifest": str(path), "items": n}))
        return
    console.print(f"wrote {path} with {n} items")


@app.command("export")
@user_errors
def export_(
    manifest_dir: Annotated[
        Path, typer.Argument(metavar="DIR", help="A folder holding manifest.json, or the file.")
    ],
    to: Annotated[str, typer.Option("--to", help="imagefolder, hf, webdataset or croissant.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the export in.")],
    shard_size: Annotated[
        int, typer.Option(help="Items per Parquet or tar shard (hf, webdataset).")
    ] = 1000,
    push: Annotated[
        str | None,
        typer.Option(help="hf only: upload the export to this Hub dataset repo (user/name)."),
    ] = None,
) -> None:
    """Export the manifest for other training stacks, keeping labels, splits, groups, licences."""
    from acnedata.formats import export_manifest

    if push and to != "hf":
        raise AcnedataError(f"--push {push}: only an hf export can be pushed; use --to hf")
    options = {"shard_items": shard_size} if to in ("hf", "webdataset") else {}
    path = export_manifest(manifest_dir, to, out, **options)
    typer.echo(f"wrote the {to} export to {path}")
    if push:
        from acnedata.formats.hf import push as push_to_hub

        typer.echo(f"pushed to {push_to_hub(path, push)}")


@app.command()
@user_errors
def verify(out: DirArg, as_json: JsonOpt = False) -> None:
    """Re-hash every file the manifest names; exit 1 listing anything missing or changed."""
    from acnedata.export import verify as verify_manifest

    report = verify_manifest(out)
    _note_stale_manifest(out)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "checked": report.checked,
                    "missing": report.missing,
                    "changed": report.changed,
                    "ok": report.ok,
                }
            )
        )
        raise typer.Exit(0 if report.ok else 1)
    for f in report.missing:  # plain lines (no wrapping): scripts read these
        typer.echo(f"missing: {f}")
    for f in report.changed:
        typer.echo(f"changed: {f}")
    typer.echo(
        f"checked {report.checked} files: {len(report.missing)} missing, "
        f"{len(report.changed)} changed"
    )
    if not report.ok:
        raise typer.Exit(1)


def _refresh_manifest(col: Any, out: Path) -> Path | None:
    """Rewrite a manifest that no longer lists what the catalog holds (after dedup and sort
    changed it); None when there is none, or it is current."""
    from acnedata.staleness import stale_manifest_note

    if (out / "manifest.json").is_file() and stale_manifest_note(col.catalog, col.spec, out):
        return col.write_manifest()
    return None


def _note_stale_manifest(out: Path) -> None:
    """On stderr: the manifest no longer lists what the collection's catalog holds."""
    from acnedata.pipeline import Collector
    from acnedata.staleness import stale_manifest_note

    if (out / "catalog.sqlite").is_file():  # a manifest alone (a copy, an export) has no catalog
        with Collector.reopen(out) as col:
            stale = stale_manifest_note(col.catalog, col.spec, out)
        if stale:
            typer.echo(stale, err=True)


@app.command()
@user_errors
def audit(
    train: Annotated[
        str, typer.Argument(help="Train side: a folder, a manifest, or MANIFEST:train.")
    ],
    test: Annotated[str, typer.Argument(help="Test side: a folder, a manifest, or MANIFEST:test.")],
    as_json: JsonOpt = False,
) -> None:
    """Near-copies across a split, by content: crops, mosaic tiles, overlaps; exit 1 if any."""
    from acnedata.audit import audit as audit_sides

    leaks = audit_sides(train, test)
    if as_json:
        typer.echo(json.dumps({"leaks": [leak.as_dict() for leak in leaks]}, indent=2))
    else:
        for leak in leaks:
            typer.echo(leak.line())
        tests = len({leak.test for leak in leaks})
        typer.echo(f"{len(leaks)} cross-split near-copies; {tests} test images share content")
    if leaks:
        raise typer.Exit(1)


@app.command()
@user_errors
def status(
    out: DirArg,
    show: Annotated[
        str | None,
        typer.Option(
            help="List items in this state (rejected, failed, review) or kept out by a policy "
            "(excluded: mosaics) with their reasons."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """What the catalog holds: items per state, and the reasons for rejections and failures."""
    from acnedata.pipeline import Collector
    from acnedata.staleness import stale_manifest_note

    with Collector.reopen(out) as col:
        summary = col.summary()
        stale = stale_manifest_note(col.catalog, col.spec, out)
        rows = []
        if show == "review":
            rows = [
                (r["key"], r["review"])
                for r in col.catalog.items(
                    "state = 'stored' AND review IS NOT NULL AND decision IS NULL "
                    "AND duplicate_of IS NULL"
                )
            ]
        elif show in ("rejected", "failed"):
            column = "verdict_reason" if show == "rejected" else "reason"
            rows = [(r["key"], r[column]) for r in col.catalog.items("state = ?", (show,))]
        elif show == "excluded":
            rows = [
                (r["key"], r["excluded"])
                for r in col.catalog.items("state = 'stored' AND excluded IS NOT NULL")
            ]
        elif show:
            raise AcnedataError(f"--show {show}: unknown; use rejected, failed, review or excluded")
    if as_json:
        from acnedata.cli_json import summary_dict

        shown = {"show": show, "items": [{"id": k, "reason": r} for k, r in rows]} if show else {}
        typer.echo(json.dumps({**summary_dict(summary), **shown}, ensure_ascii=False))
    else:
        _print_summary(summary)
        for key, reason in rows:
            typer.echo(f"{key}\t{reason}")
    if stale:
        typer.echo(stale, err=True)


def _relations(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "none"


@app.command("review")
def review(
    out: DirArg,
    decisions: Annotated[
        Path | None,
        typer.Option(help="Apply a CSV of id,decision rows instead of opening the page."),
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Only print the URL.")] = False,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free one).")] = 0,
    suggestions: Annotated[
        Path | None,
        typer.Option(
            help="Predictions JSON from `acnemodel predict RUN IMAGES... --json`: each item "
            "shows the suggested class and confidence; the least confident come first."
        ),
    ] = None,
) -> None:
    """Review queue in the browser: conflicts, low scores, NOASSERTION licences; keys 1-9, x, u."""
    from acnedata.review import review_command

    user_errors(review_command)(
        out, decisions=decisions, no_browser=no_browser, port=port, suggestions=suggestions
    )


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"acnedata {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Show the library's log: -v retries, refusals and stage results; -vv each item.",
        ),
    ] = 0,
) -> None:
    """acnedata: legally clean, de-duplicated, labelled image datasets."""
    if verbose:
        show_library_log(logging.DEBUG if verbose > 1 else logging.INFO)


def show_library_log(level: int) -> None:
    """Send the `acnedata` loggers to stderr through rich, at `level` and above."""
    from rich.logging import RichHandler

    from acnedata.console import err_console

    handler = RichHandler(console=err_console, show_path=False, markup=False)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.set_name("acnedata-cli")
    logger = logging.getLogger("acnedata")
    for old in [h for h in logger.handlers if h.get_name() == "acnedata-cli"]:
        logger.removeHandler(old)  # a second run in one process (tests, notebooks)
    logger.addHandler(handler)
    logger.setLevel(level)


def main() -> None:
    from acnedata.cli_help import run

    try:
        run(app, "acnedata")
    except SystemExit as done:
        if done.code == INTERRUPTED:
            # Ctrl-C: user_errors runs after every stage has closed its files, so all that
            # finished is saved. Skip the interpreter's teardown of its hundreds of modules,
            # which alone took up to a second of the 2 s a Ctrl-C may take on a busy machine.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise
