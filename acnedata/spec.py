"""DatasetSpec: classes, criteria, sources, licence policy and limits, loaded from TOML."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from math import isfinite
from pathlib import Path
from typing import Any

from acnedata.errors import SpecError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on 3.10
    import tomli as tomllib

BUILTIN_PACKAGE = "acnedata.specs"
MAX_SECONDS = 86_400.0  # a day: longer waits overflow the platform's timeouts (time_t)

# Every source and portal we know, with the endpoint it uses unless [sources.<name>] base_url says
# otherwise. Portals answer "does a dataset exist?"; sources find images.
DEFAULT_ENDPOINTS: dict[str, str] = {
    "commons": "https://commons.wikimedia.org/w/api.php",
    "openverse": "https://api.openverse.org/v1/images/",
    "isic": "https://api.isic-archive.com/api/v2/images/search/",
    "zenodo": "https://zenodo.org/api/records",
    "huggingface": "https://huggingface.co/api/datasets",
    "datagokr": "https://api.odcloud.kr/api/15077093/v1/dataset",
    "kaggle": "https://api.kaggle.com/v1",
    "aihub": "https://api.aihub.or.kr/info/dataset.do",
    "urllist": "",
    "folder": "",
    "webpage": "",
}
PORTALS = frozenset({"zenodo", "huggingface", "datagokr", "kaggle", "aihub"})
NOASSERTION_ACTIONS = ("reject", "review")
MOSAIC_POLICIES = ("exclude", "group", "follow")
MOSAIC_POLICY_HELP = (
    '"exclude" (drop images tiled from several photos), "group" (keep them, grouped with every '
    'photo they show) or "follow" (keep them apart from the photos\' groups; a split puts each '
    "on the side of the photos it shows, or leaves it out)"
)


@dataclass(frozen=True)
class ClassSpec:
    """One class of the dataset and the criteria that select images for it."""

    name: str
    aliases: tuple[str, ...] = ()
    icd10: str = ""
    terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()

    def all_terms(self) -> list[str]:
        """Every search term, in every language, in spec order."""
        return [t for lang_terms in self.terms.values() for t in lang_terms]


@dataclass(frozen=True)
class LicencePolicy:
    """Which licences a dataset accepts, and what happens to items with none we recognise."""

    allow: tuple[str, ...] = ("CC0-1.0", "CC-PDM-1.0", "CC-BY-*", "CC-BY-SA-*")
    noncommercial: bool = False
    no_derivatives: bool = False
    noassertion: str = "reject"

    def as_dict(self) -> dict[str, Any]:
        return {
            "allow": list(self.allow),
            "noncommercial": self.noncommercial,
            "no_derivatives": self.no_derivatives,
            "noassertion": self.noassertion,
        }


@dataclass(frozen=True)
class SourceSpec:
    """One enabled source or portal: its endpoint and any source-specific options."""

    name: str
    base_url: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_portal(self) -> bool:
        return self.name in PORTALS


@dataclass(frozen=True)
class NetworkSpec:
    allow_private: bool = False
    min_interval: float = 1.0
    timeout: float = 30.0
    deadline: float = 120.0  # total seconds per request (timeout is per read)
    max_retries: int = 4
    concurrency: int = 2  # downloads in flight at once, across all hosts
    per_host_concurrency: int = 2  # of those, at most this many to any one host
    rate: float = 0.0  # per-host token bucket, requests/s (0: min_interval alone paces)
    # Store processes that validate, store and sign downloads; None: one per CPU plus one for
    # runs of 200 items or more; 0: the download threads do it themselves.
    processes: int | None = None


@dataclass(frozen=True)
class Limits:
    per_class: int = 200
    min_width: int = 64
    min_height: int = 64
    max_bytes: int = 25_000_000


@dataclass(frozen=True)
class DatasetSpec:
    """Everything `collect` needs to know about the dataset it builds."""

    name: str
    classes: tuple[ClassSpec, ...]
    sources: dict[str, SourceSpec]
    policy: LicencePolicy
    limits: Limits
    network: NetworkSpec
    title: str = ""
    description: str = ""
    icd10: str = ""
    contact: str = ""
    keywords: tuple[str, ...] = ()
    phash_threshold: int = 8
    verify_threshold: float = 0.94
    detail_threshold: float = 0.25  # fine detail must agree too (dedup.DedupConfig)
    regions: bool = True  # region-level matching (crops, mosaic tiles, overlaps) → groups
    mosaics: str = "exclude"  # "group" or "follow": what happens to images tiled from 2-4 photos
    sort_margin: float = 1.0
    path: str = ""
    sha256: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # as parsed, for the catalog

    @property
    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def class_named(self, name: str) -> ClassSpec:
        """The class called `name` or one of its aliases (case-insensitive)."""
        wanted = name.strip().lower()
        for cls in self.classes:
            if wanted == cls.name.lower() or wanted in (a.lower() for a in cls.aliases):
                return cls
        raise SpecError(
            f"{self.path or self.name}: no class named {name!r}; classes are "
            f"{', '.join(self.class_names)}"
        )

    def portals(self) -> list[SourceSpec]:
        return [s for s in self.sources.values() if s.is_portal]

    def image_sources(self) -> list[SourceSpec]:
        return [s for s in self.sources.values() if not s.is_portal]


def builtin_specs() -> list[str]:
    """Names of the specs shipped inside the package."""
    files = resources.files(BUILTIN_PACKAGE).iterdir()
    return sorted(f.name[: -len(".toml")] for f in files if f.name.endswith(".toml"))


def load_spec(name_or_path: str | Path, *, contact: str | None = None) -> DatasetSpec:
    """Load a spec from a TOML file, or a built-in spec by name (e.g. ``acne-l70``)."""
    text, where = _read_spec_text(str(name_or_path))
    return spec_from_text(text, where=where, contact=contact)


def spec_from_text(text: str, *, where: str = "<spec>", contact: str | None = None) -> DatasetSpec:
    """Parse spec TOML text (as stored in a catalog, or read from a file)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{where}: not valid TOML ({exc}); fix the syntax at that line") from None
    return spec_from_dict(
        raw, where=where, contact=contact, sha256=hashlib.sha256(text.encode("utf-8")).hexdigest()
    )


def spec_from_dict(
    raw: dict[str, Any],
    *,
    where: str = "<spec>",
    contact: str | None = None,
    sha256: str | None = None,
) -> DatasetSpec:
    """A spec from plain data: parsed TOML, the copy kept in a catalog, or one built in code."""
    spec = parse_spec(raw, where=where)
    if sha256 is None:
        canonical = json.dumps(raw, sort_keys=True, ensure_ascii=False)
        sha256 = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    overrides: dict[str, Any] = {"path": where, "sha256": sha256, "raw": raw}
    if contact:
        overrides["contact"] = contact
    return replace(spec, **overrides)


def _read_spec_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise SpecError(
                f"{name_or_path}: spec file not found; give a .toml path or one of "
                f"the built-in specs: {', '.join(builtin_specs())}"
            )
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"{name_or_path}: cannot read spec ({exc})") from None
    if name_or_path in builtin_specs():
        res = resources.files(BUILTIN_PACKAGE).joinpath(f"{name_or_path}.toml")
        return res.read_text(encoding="utf-8"), f"builtin:{name_or_path}"
    raise SpecError(
        f"{name_or_path}: unknown spec; give a .toml path or one of the built-in specs: "
        f"{', '.join(builtin_specs())}"
    )


def parse_spec(raw: dict[str, Any], *, where: str = "<spec>") -> DatasetSpec:
    """Build a DatasetSpec from parsed TOML, with one-line errors naming the key."""
    r = _Reader(raw, where).only(
        "name",
        "title",
        "description",
        "icd10",
        "contact",
        "keywords",
        "classes",
        "policy",
        "limits",
        "network",
        "sources",
        "dedup",
        "sort",
    )
    name = r.string("name", required=True)
    classes = tuple(_parse_class(r, i, c) for i, c in enumerate(r.table_list("classes")))
    if not classes:
        raise SpecError(f"{where}: [[classes]] is empty; add at least one class with a name")
    seen: set[str] = set()
    for cls in classes:
        for label in (cls.name, *cls.aliases):
            if label.lower() in seen:
                raise SpecError(
                    f"{where}: class name or alias {label!r} is used twice; make each unique"
                )
            seen.add(label.lower())

    policy_raw = r.table("policy")
    p = _Reader(policy_raw, where, prefix="policy.").only(
        "allow", "noncommercial", "no_derivatives", "noassertion"
    )
    noassertion = p.string("noassertion", default="reject")
    if noassertion not in NOASSERTION_ACTIONS:
        raise SpecError(
            f'{where}: policy.noassertion must be "reject" or "review", got {noassertion!r}'
        )
    policy = LicencePolicy(
        allow=tuple(p.string_list("allow", default=list(LicencePolicy.allow))),
        noncommercial=p.boolean("noncommercial", default=False),
        no_derivatives=p.boolean("no_derivatives", default=False),
        noassertion=noassertion,
    )

    lim = _Reader(r.table("limits"), where, prefix="limits.").only(
        "per_class", "min_width", "min_height", "max_bytes"
    )
    limits = Limits(
        per_class=lim.integer("per_class", default=200, minimum=1),
        min_width=lim.integer("min_width", default=64, minimum=1),
        min_height=lim.integer("min_height", default=64, minimum=1),
        max_bytes=lim.integer("max_bytes", default=25_000_000, minimum=1024),
    )
    net = _Reader(r.table("network"), where, prefix="network.").only(
        "allow_private",
        "min_interval",
        "timeout",
        "deadline",
        "max_retries",
        "concurrency",
        "per_host_concurrency",
        "rate",
        "processes",
    )
    network = NetworkSpec(
        allow_private=net.boolean("allow_private", default=False),
        min_interval=net.number("min_interval", default=1.0, minimum=0.0, maximum=MAX_SECONDS),
        timeout=net.number("timeout", default=30.0, minimum=0.1, maximum=MAX_SECONDS),
        deadline=net.number("deadline", default=120.0, minimum=0.1, maximum=MAX_SECONDS),
        max_retries=net.integer("max_retries", default=4, minimum=0),
        concurrency=net.integer("concurrency", default=2, minimum=1),
        per_host_concurrency=net.integer("per_host_concurrency", default=2, minimum=1),
        rate=check_rate(net.number("rate", default=0.0, minimum=0.0), f"{where}: network.rate"),
        processes=(
            net.integer("processes", default=0, minimum=0)
            if "processes" in r.table("network")
            else None
        ),
    )

    sources: dict[str, SourceSpec] = {}
    for src_name, src_raw in r.table("sources").items():
        if src_name not in DEFAULT_ENDPOINTS:
            raise SpecError(
                f"{where}: [sources.{src_name}] is not a source we know; use one of "
                f"{', '.join(sorted(DEFAULT_ENDPOINTS))}"
            )
        if not isinstance(src_raw, dict):
            raise SpecError(
                f"{where}: sources.{src_name} must be a table, e.g. "
                f'[sources.{src_name}] base_url = "..."'
            )
        s = _Reader(src_raw, where, prefix=f"sources.{src_name}.")
        if not s.boolean("enabled", default=True):
            continue
        base_url = s.string("base_url", default=DEFAULT_ENDPOINTS[src_name])
        options = {k: v for k, v in src_raw.items() if k not in ("base_url", "enabled")}
        sources[src_name] = SourceSpec(src_name, base_url, options)

    dedup = _Reader(r.table("dedup"), where, prefix="dedup.").only(
        "phash_threshold", "verify_threshold", "detail_threshold", "regions", "mosaics"
    )
    mosaics = dedup.string("mosaics", default="exclude")
    if mosaics not in MOSAIC_POLICIES:
        raise SpecError(
            f'{where}: [dedup] mosaics = "{mosaics}" is not a policy; use {MOSAIC_POLICY_HELP}'
        )
    sort = _Reader(r.table("sort"), where, prefix="sort.").only("margin")
    return DatasetSpec(
        name=name,
        classes=classes,
        sources=sources,
        policy=policy,
        limits=limits,
        network=network,
        title=r.string("title", default=""),
        description=r.string("description", default=""),
        icd10=r.string("icd10", default=""),
        contact=r.string("contact", default=""),
        keywords=tuple(r.string_list("keywords", default=[name])),
        phash_threshold=dedup.integer("phash_threshold", default=8, minimum=0),
        verify_threshold=dedup.number("verify_threshold", default=0.94, minimum=0.0),
        detail_threshold=dedup.number("detail_threshold", default=0.25, minimum=-1.0),
        regions=dedup.boolean("regions", default=True),
        mosaics=mosaics,
        sort_margin=sort.number("margin", default=1.0, minimum=0.0),
        path=where,
    )


def check_rate(rate: float, name: str) -> float:
    """A per-host rate in requests/s: 0 (off), or at least one a day (MAX_SECONDS between)."""
    if not (rate == 0 or 1 / MAX_SECONDS <= rate < float("inf")):
        raise SpecError(f"{name} {rate}: use 0 (no limit) or a rate of at least one request a day")
    return rate


def _parse_class(r: _Reader, index: int, raw: dict[str, Any]) -> ClassSpec:
    c = _Reader(raw, r.where, prefix=f"classes[{index}].").only(
        "name", "aliases", "icd10", "terms", "exclude"
    )
    name = c.string("name", required=True)
    terms_raw = c.table("terms")
    terms: dict[str, tuple[str, ...]] = {}
    term_reader = _Reader(terms_raw, r.where, prefix=f"classes[{index}].terms.")
    for lang in terms_raw:
        terms[lang] = tuple(term_reader.string_list(lang))
    if not any(terms.values()):
        terms = {"en": (name,)}
    return ClassSpec(
        name=name,
        aliases=tuple(c.string_list("aliases", default=[])),
        icd10=c.string("icd10", default=""),
        terms=terms,
        exclude=tuple(c.string_list("exclude", default=[])),
    )


class _Reader:
    """Typed access to one TOML table, raising SpecError that names file and key."""

    def __init__(self, raw: Any, where: str, prefix: str = ""):
        if not isinstance(raw, dict):
            raise SpecError(f"{where}: {prefix.rstrip('.') or 'spec'} must be a table")
        self.raw, self.where, self.prefix = raw, where, prefix

    def only(self, *allowed: str) -> _Reader:
        """Refuse keys we do not know: a typo must not pass silently as a default."""
        for key in self.raw:
            if key not in allowed:
                raise SpecError(
                    f"{self.where}: {self.prefix}{key} is not a key we know here; "
                    f"expected one of {', '.join(allowed)}"
                )
        return self

    def _fail(self, key: str, expected: str, got: Any) -> SpecError:
        return SpecError(f"{self.where}: {self.prefix}{key} must be {expected}, got {got!r}")

    def _get(self, key: str, default: Any, required: bool) -> Any:
        if key not in self.raw:
            if required:
                raise SpecError(f"{self.where}: missing key {self.prefix}{key}; add it")
            return default
        return self.raw[key]

    def string(self, key: str, *, default: str = "", required: bool = False) -> str:
        value = self._get(key, default, required)
        if not isinstance(value, str) or (required and not value.strip()):
            raise self._fail(key, "a non-empty string" if required else "a string", value)
        return value

    def string_list(self, key: str, *, default: list[str] | None = None) -> list[str]:
        value = self._get(key, default if default is not None else [], False)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings", value)
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        value = self._get(key, default, False)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def integer(self, key: str, *, default: int, minimum: int | None = None) -> int:
        value = self._get(key, default, False)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "a whole number", value)
        if minimum is not None and value < minimum:
            raise self._fail(key, f"at least {minimum}", value)
        return value

    def number(
        self,
        key: str,
        *,
        default: float,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self._get(key, default, False)
        # nan passes every comparison below and inf overflows sleeps and timeouts later
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not isfinite(value):
            raise self._fail(key, "a finite number", value)
        if minimum is not None and value < minimum:
            raise self._fail(key, f"at least {minimum}", value)
        if maximum is not None and value > maximum:
            raise self._fail(key, f"at most {maximum:g}", value)
        return float(value)

    def table(self, key: str) -> dict[str, Any]:
        value = self._get(key, {}, False)
        if not isinstance(value, dict):
            raise self._fail(key, "a table", value)
        return value

    def table_list(self, key: str) -> list[dict[str, Any]]:
        value = self._get(key, [], False)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._fail(key, "an array of tables ([[" + key + "]])", value)
        return value
