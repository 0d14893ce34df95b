"""The one place that wires the stages: portals, search, gate, download, dedup, sort, manifest."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from acnedata import dedup, licensing, sorting
from acnedata.catalog import FAILED, FOUND, QUEUED, REJECTED, STORED, Catalog, VerdictRow
from acnedata.dedup import groups as grouping
from acnedata.dedup.content import FOLLOW, ContentReport, content_stage
from acnedata.distributed import RayOptions
from acnedata.download import download_queued
from acnedata.errors import AcnedataError, DiskFullError, NetworkError
from acnedata.export import export, final_label
from acnedata.http import HttpConfig, PoliteSession, is_public_host, redact
from acnedata.intake import DISK_FULL
from acnedata.manifest import atomic_write_text
from acnedata.portals import PORTALS, PortalContext, PortalHit
from acnedata.sources import SOURCES, SearchContext
from acnedata.spec import DatasetSpec, LicencePolicy, spec_from_dict

log = logging.getLogger(__name__)

HASH_CHUNK = 512  # signatures computed and committed per batch
SEARCH_BATCH = 50  # candidates recorded and committed per batch: what a kill may lose


class StageProgress(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def set_total(self, total: int) -> None: ...


class Reporter(Protocol):
    """How stages report progress; the CLI shows rich progress bars, the library stays quiet."""

    def stage(self, name: str, total: int | None = None) -> Any: ...  # context → StageProgress
    def note(self, message: str) -> None: ...


class _NullProgress:
    def advance(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


class NullReporter:
    """No progress bars; notes go to the `acnedata.pipeline` logger."""

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[StageProgress]:
        yield _NullProgress()

    def note(self, message: str) -> None:
        log.info(message)


@dataclass
class PortalReport:
    hits: list[PortalHit] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "portal: why", one line each
    asked: int = 0  # portals the spec names
    reached: int = 0  # ... that answered a search

    @property
    def fitting(self) -> list[PortalHit]:
        return [h for h in self.hits if h.fits]


@dataclass
class Summary:
    """The figures `collect` ends with; all read back from the catalog, never estimated."""

    found: int
    states: dict[str, int]
    rejected_reasons: list[tuple[str, int]]
    failed_reasons: list[tuple[str, int]]
    duplicates: int
    clusters_with_duplicates: int
    conflicts: int
    review: int
    review_reasons: list[tuple[str, int]]
    per_class: dict[str, int]
    source_errors: list[str]
    skipped_pages: list[str] = field(default_factory=list)
    manifest: Path | None = None
    portals: PortalReport | None = None
    stopped_for_portal: bool = False
    download: dict[str, float] | None = None  # this run's stored/failed counts and seconds
    requests: int = 0
    groups: int = 0  # groups among the manifest's items (what a split keeps together)
    largest_group: int = 0  # items in the largest of them
    oversized_groups: list[str] = field(default_factory=list)  # one line each, see groups.py
    mosaics: int = 0  # stored representatives tiled from several photos
    excluded: int = 0  # ... of them kept out of the manifest by the mosaic policy
    mosaic_policy: str = "exclude"  # [dedup] mosaics
    # provenance keys (an upload, a patient): how many the stored items carry, and how many of
    # them are left with no item once the mosaics are excluded (they existed only as mosaics)
    provenance_keys: int = 0
    keys_only_in_mosaics: int = 0
    region_links: dict[str, int] = field(default_factory=dict)  # relation → verified pairs
    split_conflict: str | None = None  # groups across the dataset's own splits, in one line
    notes: list[str] = field(default_factory=list)  # one-line remarks of the run (import)


class Collector:
    """Runs the stages against one output folder; every stage resumes from the catalog."""

    def __init__(
        self,
        spec: DatasetSpec,
        out_dir: str | Path,
        *,
        reporter: Reporter | None = None,
        session: PoliteSession | None = None,
        ray: RayOptions | None = None,
    ):
        """`ray`: run the download stage on a Ray cluster (acnedata.distributed); None: here."""
        self.spec = spec
        self.ray = ray
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.reporter = reporter or NullReporter()
        self.catalog = Catalog.open(self.out)
        self._remember_spec()
        self.session = session or PoliteSession(HttpConfig.from_spec(spec))

    @classmethod
    def reopen(
        cls, out_dir: str | Path, *, contact: str | None = None, reporter: Reporter | None = None
    ) -> Collector:
        """A collector for an existing output folder, with the spec stored in its catalog."""
        catalog_path = Path(out_dir) / "catalog.sqlite"
        if not catalog_path.is_file():
            raise AcnedataError(
                f"{out_dir}: no catalog.sqlite here; run `acnedata collect SPEC "
                f"--out {out_dir}` first"
            )
        cat = Catalog(catalog_path)
        raw, where = cat.get_meta("spec_raw"), cat.get_meta("spec_path", "<catalog>")
        sha = cat.get_meta("spec_sha256")
        contact = contact or cat.get_meta("contact")  # given once at collect, kept for resumes
        cat.close()
        if not raw:
            raise AcnedataError(f"{out_dir}: the catalog holds no spec; run collect again")
        spec = spec_from_dict(raw, where=where, contact=contact, sha256=sha)
        return cls(spec, out_dir, reporter=reporter)

    def close(self) -> None:
        self.session.close()
        self.catalog.close()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _remember_spec(self) -> None:
        if self.spec.raw:
            self.catalog.set_meta("spec_raw", self.spec.raw)
            self.catalog.set_meta("spec_path", self.spec.path)
            self.catalog.set_meta("spec_sha256", self.spec.sha256)
        if self.spec.contact:
            self.catalog.set_meta("contact", self.spec.contact)

    def check_contact(self) -> None:
        """Public APIs are never called without a contact: fail before the first request."""
        if self.spec.contact:
            return
        for src in self.spec.sources.values():
            host = urlparse(src.base_url).hostname
            if host and is_public_host(host):
                raise NetworkError(
                    f"{src.base_url}: no contact given; public APIs are not called without one "
                    '— pass --contact you@example.org or set contact = "..." in the spec'
                )

    # --- 1. portals -----------------------------------------------------------------------
    def check_portals(self) -> PortalReport:
        report = PortalReport()
        portals = self.spec.portals()
        report.asked = len(portals)
        with self.reporter.stage("portals", total=len(portals)) as progress:
            for src in portals:
                portal_cls = PORTALS.get(src.name)
                if portal_cls is None:
                    report.skipped.append(f"{src.name}: not supported yet")
                else:
                    ctx = PortalContext(self.spec, src, self.session)
                    try:
                        hits = portal_cls().search(ctx)
                        report.hits.extend(h.judge(self.spec) for h in hits)
                        report.reached += 1
                    except AcnedataError as exc:
                        report.skipped.append(f"{src.name}: {exc}")
                progress.advance()
        record = {
            "spec_sha256": self.spec.sha256,
            "hits": [h.as_dict() for h in report.hits],
            "skipped": report.skipped,
        }
        self.catalog.set_meta("portals", record)
        atomic_write_text(
            self.out / "portals.json", json.dumps(record, indent=2, ensure_ascii=False) + "\n"
        )
        return report

    # --- 2. search ------------------------------------------------------------------------
    def search(self) -> dict[str, int]:
        """Ask every image source for candidates; a source already searched is not asked again."""
        counts: Counter[str] = Counter()
        errors: list[str] = []
        failures: list[AcnedataError] = []
        sources = self.spec.image_sources()
        with self.reporter.stage("search", total=None) as progress:
            for src in sources:
                done_key = f"search_done:{src.name}"
                if self.catalog.get_meta(done_key) == self.spec.sha256:
                    continue
                source_cls = SOURCES.get(src.name)
                if source_cls is None:
                    errors.append(f"{src.name}: not supported yet")
                    continue
                ctx = SearchContext(self.spec, src, self.session)
                source = source_cls()
                try:
                    self._add_candidates(source.candidates(ctx), counts, progress)
                except AcnedataError as exc:  # this source failed; what it found is kept
                    errors.append(f"{src.name}: {exc}")
                    failures.append(exc)
                    continue
                self.catalog.set_meta(done_key, self.spec.sha256)
                # pages a source passed over on purpose (noai, robots, refused atlases)
                skipped = [f"{url}: {why}" for url, why in getattr(source, "skipped", [])]
                self.catalog.set_meta(f"skipped:{src.name}", skipped)
        previous = [
            e
            for e in self.catalog.get_meta("source_errors", [])
            if e.split(":")[0] not in {s.name for s in sources}
        ]
        self.catalog.set_meta("source_errors", previous + errors)
        if failures and len(failures) == len(sources) and not self.catalog.count():
            raise failures[0]  # nothing to go on with: the user must fix this first
        return dict(counts)

    def _add_candidates(self, found: Iterator[Any], counts: Counter[str], progress: Any) -> None:
        """Record candidates in batches of SEARCH_BATCH, each committed, so a kill or an error
        loses at most one batch of finds; what came before an error is kept."""
        batch: list[Any] = []
        try:
            for cand in found:
                batch.append(cand)
                if len(batch) == SEARCH_BATCH:
                    full, batch = batch, []  # emptied first: never recorded twice
                    self._record_candidates(full, counts, progress)
        finally:
            self._record_candidates(batch, counts, progress)

    def _record_candidates(self, batch: list[Any], counts: Counter[str], progress: Any) -> None:
        """One batch of candidates in one transaction, counted as new or found again."""
        if not batch:
            return
        with self.catalog.transaction():
            results = self.catalog.add_candidates(batch)
        counts.update("new" if new else "again" for _, new in results)
        progress.advance(len(batch))

    # --- 3. legal gate --------------------------------------------------------------------
    def gate(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        rows = self.catalog.items(
            "state = ?", (FOUND,), columns="id, source, licence_raw, url, page_url"
        )
        judge = _licence_judge(self.spec.policy)
        verdicts: list[VerdictRow] = []
        with self.reporter.stage("licence gate", total=len(rows)) as progress:
            for row in rows:
                spdx, licence_url, verdict, commercial = judge(row["source"], row["licence_raw"])
                decision, reason = verdict.decision, verdict.reason
                refusal = licensing.refused_host(row["page_url"] or "") or licensing.refused_host(
                    row["url"]
                )
                if refusal:
                    decision, reason = "reject", refusal
                verdicts.append(
                    (row["id"], spdx, licence_url, decision, reason, verdict.no_derivatives,
                     commercial)
                )  # fmt: skip
                counts[decision] += 1
            with self.catalog.transaction():
                self.catalog.set_verdicts(verdicts)
            progress.advance(len(rows))
        return dict(counts)

    # --- 4. download ----------------------------------------------------------------------
    def download(self, *, retry_failed: bool = False) -> dict[str, int]:
        """Download the queued items; a full disk stops the run with DiskFullError, and the
        next run retries what the disk did not take."""
        if retry_failed:
            self.catalog.requeue_failed()
        else:
            self.catalog.requeue_failed(reason=DISK_FULL)
        # Two columns, not whole rows: a 20,000-item queue held whole cost ~100 MB all stage long.
        queued = self.catalog.db.execute(
            "SELECT url, source FROM items WHERE state = ?", (QUEUED,)
        ).fetchall()
        if not self.spec.contact:
            for row in queued:
                host = urlparse(row["url"]).hostname
                if row["source"] != "folder" and host and is_public_host(host):
                    raise NetworkError(
                        f"{redact(row['url'])}: no contact given; public hosts are not "
                        "contacted without one — pass --contact you@example.org"
                    )
        total = len(queued)
        with self.reporter.stage("download", total=total) as progress:
            tally: Counter[str] = Counter()
            describe = getattr(progress, "describe", None)  # optional: per-state counts

            def done(outcome: Any) -> None:
                tally["stored" if outcome.ok else "failed"] += 1
                tally["disk full"] += outcome.reason == DISK_FULL
                if describe:
                    describe(f"download {tally['stored']} stored {tally['failed']} failed")
                progress.advance()

            if self.ray is not None:
                from acnedata.distributed.ray_runner import ray_download

                counts = ray_download(
                    self.catalog,
                    self.session.config,
                    self.out,
                    self.spec.limits,
                    threads=self.spec.network.concurrency,
                    options=self.ray,
                    on_done=done,
                    should_stop=lambda: tally["disk full"] > 0,
                )
            else:
                counts = self._download_here(done, tally)
        if tally["disk full"]:
            raise DiskFullError(self.out)
        return counts

    def _download_here(self, done: Callable[[Any], None], tally: Counter[str]) -> dict[str, int]:
        """The download stage on this machine (threads and store processes)."""
        return download_queued(
            self.catalog,
            self.session,
            self.out,
            self.spec.limits,
            workers=self.spec.network.concurrency,
            processes=self.spec.network.processes,
            on_done=done,
            # every later item would be downloaded only to fail the same way
            should_stop=lambda: tally["disk full"] > 0,
        )

    # --- 5. dedup -------------------------------------------------------------------------
    def dedup(self) -> dict[str, int]:
        # phash_alt holds the item's dedup.Signature (query hashes + verification thumbnail), so
        # verification never reopens files; rows without one (new, or hashed by an older
        # version) are hashed now. Downloads usually come with theirs (see intake.finish_many).
        need_hash = self.catalog.items(
            "state = ? AND (phash_alt IS NULL OR phash_alt NOT LIKE ?)",
            (STORED, dedup.Signature.PREFIX + "%"),
            columns="id, file",
        )
        config = self.dedup_config()
        with self.reporter.stage("hash", total=len(need_hash)) as progress:
            for start in range(0, len(need_hash), HASH_CHUNK):
                chunk = need_hash[start : start + HASH_CHUNK]
                paths = [str(self.out / r["file"]) for r in chunk]
                # several processes for a big chunk; results committed per chunk (resumable)
                results = dedup.signature_files(paths, config)
                with self.catalog.transaction():
                    for row, result in zip(chunk, results, strict=True):
                        if result is None:
                            self.catalog.mark_failed(row["id"], "stored file unreadable")
                        else:
                            sig = result[2]
                            self.catalog.set_phash(row["id"], sig.phash, sig.to_text())
                progress.advance(len(chunk))
        rows = self.catalog.items(
            "state = ?",
            (STORED,),
            columns="id, sha256, phash, pixel_sha256, phash_alt, spdx, width, height",
        )
        items = [
            dedup.DedupItem(
                key=r["id"],
                sha256=r["sha256"],
                phash=r["phash"],
                pixel_sha256=r["pixel_sha256"],
                signature=dedup.Signature.from_text(r["phash_alt"]),
                rank=_rank(r),
            )
            for r in rows
        ]
        clusters = dedup.cluster_items(items, config=config)
        dupes = 0
        assignments = []
        for item_id, (cluster_id, rep) in clusters.items():
            duplicate_of = None if rep == item_id else rep
            dupes += duplicate_of is not None
            assignments.append((item_id, cluster_id, duplicate_of))
        with self.catalog.transaction():
            self.catalog.set_clusters(assignments)
        return {
            "stored": len(rows),
            "duplicates": dupes,
            "clusters": len({c for c, _ in clusters.values()}),
        }

    def regions(self) -> ContentReport:
        """Mosaics and region links among the stored representatives (see dedup.content)."""
        total = self.catalog.count(
            "state = ? AND duplicate_of IS NULL AND cluster IS NOT NULL", (STORED,)
        )
        if not self.spec.regions:
            return ContentReport(scanned=total, reused=True)
        with self.reporter.stage("regions", total=total) as progress:
            return content_stage(
                self.catalog, self.out, policy=self.spec.mosaics, advance=progress.advance
            )

    def group(self) -> dict[str, int]:
        """Write every stored item's group: its cluster joined with the clusters that share a
        provenance key or a content link (catalog.region_links()) with it.

        Under [dedup] mosaics = "follow", a link to a mosaic joins nothing: a mosaic of four
        photos would otherwise join their four groups (on a mosaic-heavy export, into one
        group of most items). Such links reach the manifest as the items' `links` instead.
        """
        rows = self.catalog.items(
            "state = ? AND cluster IS NOT NULL", (STORED,), columns="id, cluster, group_key, mosaic"
        )
        links = [(a, b) for a, b, *_ in self.catalog.region_links()]
        if self.spec.mosaics == FOLLOW:
            tiled = {r["id"] for r in rows if r["mosaic"]}
            links = [(a, b) for a, b in links if a not in tiled and b not in tiled]
        with self.reporter.stage("group", total=len(rows)) as progress:
            groups = grouping.assign_groups(
                ((r["id"], r["cluster"], r["group_key"]) for r in rows), links
            )
            with self.catalog.transaction():
                self.catalog.set_groups(groups)
            progress.advance(len(rows))
        sizes = grouping.group_sizes(groups)
        return {"groups": len(sizes), "largest_group": max(sizes.values(), default=0)}

    def dedup_config(self) -> dedup.DedupConfig:
        return dedup.DedupConfig(
            hash_threshold=self.spec.phash_threshold,
            verify_threshold=self.spec.verify_threshold,
            detail_threshold=self.spec.detail_threshold,
        )

    # --- 6. sort --------------------------------------------------------------------------
    def sort(self) -> dict[str, int]:
        rows = self.catalog.items(
            "state = ? AND cluster IS NOT NULL",
            (STORED,),
            columns="id, cluster, title, description, tags, query, verdict, spdx",
        )
        found_for = self.catalog.all_classes()
        cluster_classes: dict[str, set[str]] = {}
        for r in rows:
            cluster_classes.setdefault(r["cluster"], set()).update(found_for.get(r["id"], []))
        counts: Counter[str] = Counter()
        labels: list[tuple[int, str | None, str, str | None]] = []
        # assign() depends on these inputs alone, and most rows share them (no title, one
        # class): each distinct combination is assigned once.
        assigned: dict[tuple, sorting.Assignment] = {}
        with self.reporter.stage("sort", total=len(rows)) as progress:
            for r in rows:
                licence_review = (
                    f"licence {r['spdx']} needs a person's check"
                    if r["verdict"] == "review"
                    else None
                )
                found, classes = found_for.get(r["id"], []), cluster_classes[r["cluster"]]
                key = (tuple(found), frozenset(classes), r["title"], r["description"], r["tags"],
                       r["query"], licence_review)  # fmt: skip
                a = assigned.get(key)
                if a is None:
                    a = assigned[key] = sorting.assign(
                        self.spec,
                        found_for=found,
                        cluster_classes=classes,
                        texts=[r["title"] or "", r["description"] or "", *_json(r["tags"], [])],
                        query=r["query"],
                        licence_review=licence_review,
                    )
                labels.append((r["id"], a.label, a.reason, a.review))
                counts["review" if a.review else "assigned"] += 1
            progress.advance(len(rows))
        with self.catalog.transaction():
            self.catalog.set_labels(labels)
        return dict(counts)

    # --- 7. manifest ----------------------------------------------------------------------
    def write_manifest(self) -> Path:
        if self.catalog.count("state = ? AND cluster IS NOT NULL AND group_id IS NULL", (STORED,)):
            self.group()  # a catalog deduplicated before groups existed: every item needs one
        with self.reporter.stage("manifest", total=1) as progress:
            path = export(self.catalog, self.spec, self.out)
            progress.advance()
        return path

    # --- everything -----------------------------------------------------------------------
    def collect(self, *, collect_anyway: bool = False, retry_failed: bool = False) -> Summary:
        self.check_contact()
        portals = self.check_portals()
        for line in portals.skipped:
            self.reporter.note(f"portal skipped — {line}")
        if portals.fitting and not collect_anyway:
            summary = self.summary()
            summary.portals = portals
            summary.stopped_for_portal = True
            return summary
        summary = self.build(retry_failed=retry_failed)
        summary.portals = portals
        return summary

    def build(self, *, retry_failed: bool = False) -> Summary:
        """Every stage after the portal check (each resumes from the catalog), then the summary."""
        self.search()
        self.gate()
        started = time.perf_counter()
        counts = self.download(retry_failed=retry_failed)
        seconds = time.perf_counter() - started
        self.dedup()
        self.regions()
        self.group()
        self.sort()
        path = self.write_manifest()
        summary = self.summary()
        summary.manifest = path
        summary.download = {**counts, "seconds": seconds}
        return summary

    def summary(self) -> Summary:
        cat = self.catalog
        rows = cat.items(
            "state = ?",
            (STORED,),
            columns="id, key, cluster, duplicate_of, decision, review, label, verdict, group_id, "
            "split, mosaic, excluded, group_key",
        )
        reps = [r for r in rows if r["duplicate_of"] is None and r["cluster"]]
        excluded = sum(r["excluded"] is not None for r in reps)
        mosaics = sum(r["mosaic"] is not None for r in reps)
        all_keys = {r["group_key"] for r in reps if r["group_key"]}
        reps = [r for r in reps if r["excluded"] is None]
        keys_left = {r["group_key"] for r in reps if r["group_key"]}
        dup_clusters = {r["cluster"] for r in rows if r["duplicate_of"] is not None}
        kept = [r for r in reps if final_label(r) and (r["verdict"] == "allow" or r["decision"])]
        per_class = Counter(final_label(r) for r in kept)
        review = [r for r in reps if r["review"] and not r["decision"]]
        groups = {r["id"]: r["group_id"] for r in kept if r["group_id"]}
        links = cat.region_links()
        sizes = grouping.group_sizes(groups)
        return Summary(
            found=cat.count(),
            states=cat.count_by("state"),
            rejected_reasons=cat.top_reasons(REJECTED),
            failed_reasons=cat.top_reasons(FAILED),
            duplicates=sum(r["duplicate_of"] is not None for r in rows),
            clusters_with_duplicates=len(dup_clusters),
            conflicts=sum(1 for r in review if (r["review"] or "").startswith("cross-class")),
            review=len(review),
            review_reasons=Counter(r["review"] for r in review).most_common(5),
            per_class={c: per_class.get(c, 0) for c in self.spec.class_names},
            source_errors=cat.get_meta("source_errors", []),
            skipped_pages=[
                line for name in self.spec.sources for line in cat.get_meta(f"skipped:{name}", [])
            ],
            requests=self.session.request_count(),
            mosaics=mosaics,
            excluded=excluded,
            mosaic_policy=self.spec.mosaics,
            provenance_keys=len(all_keys),
            keys_only_in_mosaics=len(all_keys - keys_left),
            region_links=dict(Counter(link[2] for link in links)),
            groups=len(sizes),
            largest_group=max(sizes.values(), default=0),
            oversized_groups=grouping.oversized_groups(
                groups,
                {r["id"]: final_label(r) for r in kept},
                linkers=grouping.linkers(
                    groups, [(a, b) for a, b, *_ in links], {r["id"]: r["key"] for r in kept}
                ),
            ),
            split_conflict=grouping.split_conflicts(
                groups, {r["id"]: r["split"] for r in kept}, {r["id"]: r["key"] for r in kept}
            ),
        )


def _rank(row: Any) -> tuple:
    """Representative order: largest resolution, then most permissive licence, then first found."""
    t = licensing.terms(row["spdx"] or "NOASSERTION")
    permissive = (t.commercial is True) + t.derivatives + (not t.share_alike)
    return (-(row["width"] or 0) * (row["height"] or 0), -permissive, row["id"])


# spdx, licence URL, the policy's verdict and whether commercial use is allowed
LicenceJudgement = tuple[str, str | None, licensing.Verdict, bool | None]


def _licence_judge(policy: LicencePolicy) -> Callable[[str, str], LicenceJudgement]:
    """judge(source, licence_raw JSON) → LicenceJudgement, each distinct pair worked out once:
    most items of a run share their licence fields, and reading them is most of the gate."""

    @functools.cache
    def judge(source: str, licence_raw: str) -> LicenceJudgement:
        raw = _json(licence_raw)
        spdx = licensing.normalise_fields(raw, source=source)
        t = licensing.terms(spdx)
        return spdx, _licence_url(raw) or t.url, licensing.verdict(spdx, policy), t.commercial

    return judge


def _licence_url(raw: dict[str, Any]) -> str | None:
    for key in ("LicenseUrl", "license_url", "licence_url"):
        if raw.get(key):
            return str(raw[key])
    return None


def _json(text: str | None, default: Any = None) -> Any:
    if not text:
        return {} if default is None else default
    return json.loads(text)
