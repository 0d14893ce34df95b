"""Licence strings to SPDX ids, policy verdicts with reasons, and attribution (credits) files."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from acnedata import licence_expressions as expressions
from acnedata.manifest import atomic_write_text
from acnedata.spec import LicencePolicy

NOASSERTION = "NOASSERTION"
PUBLIC_DOMAIN = "LicenseRef-PublicDomain"
SAMPLING_PLUS = "LicenseRef-CC-Sampling-Plus"
KR_UNRESTRICTED = "LicenseRef-KR-PublicData-Unrestricted"
AIHUB = "LicenseRef-AIHub-Terms"
GFDL_UNVERSIONED = "LicenseRef-GFDL"  # "GFDL" with no version


@dataclass(frozen=True)
class LicenceTerms:
    """What a licence permits and requires, as far as building and training on a dataset goes."""

    spdx: str
    commercial: bool | None  # None = unknown
    derivatives: bool  # False for ND and for NOASSERTION
    attribution: bool
    share_alike: bool
    url: str | None
    name: str


@dataclass(frozen=True)
class Verdict:
    """The policy's decision on one licence, with a sentence saying why."""

    decision: str  # "allow" | "reject" | "review"
    reason: str
    spdx: str
    no_derivatives: bool  # True: acnemodel must never augment this item


# --- Creative Commons ---------------------------------------------------------------------------

_CC_TYPES = ("BY", "BY-SA", "BY-ND", "BY-NC", "BY-NC-SA", "BY-NC-ND")
_CC_VERSIONS = ("1.0", "2.0", "2.5", "3.0", "4.0")
# Ported (jurisdiction) versions that have their own SPDX id; other ports map to the unported id.
_CC_PORTS = (
    "CC-BY-2.5-AU", "CC-BY-3.0-AT", "CC-BY-3.0-AU", "CC-BY-3.0-DE", "CC-BY-3.0-IGO",
    "CC-BY-3.0-NL", "CC-BY-3.0-US", "CC-BY-NC-3.0-DE", "CC-BY-NC-ND-3.0-DE",
    "CC-BY-NC-ND-3.0-IGO", "CC-BY-NC-SA-2.0-DE", "CC-BY-NC-SA-2.0-FR", "CC-BY-NC-SA-2.0-UK",
    "CC-BY-NC-SA-3.0-DE", "CC-BY-NC-SA-3.0-IGO", "CC-BY-ND-3.0-DE", "CC-BY-SA-2.0-UK",
    "CC-BY-SA-2.1-JP", "CC-BY-SA-3.0-AT", "CC-BY-SA-3.0-DE", "CC-BY-SA-3.0-IGO",
)  # fmt: skip
CC_SPDX: frozenset[str] = frozenset(
    {f"CC-{t}-{v}" for t in _CC_TYPES for v in _CC_VERSIONS} | {*_CC_PORTS, "CC-SA-1.0"}
)
_KNOWN_CC_VERSIONS = {*_CC_VERSIONS, "2.1"}  # 2.1 exists only as ports (JP, ES, ...)
_CC_ID = re.compile(r"CC-((?:BY|SA)(?:-NC)?(?:-ND)?(?:-SA)?)-(\d\.\d)(?:-([A-Z]+))?")

# Long CC names ("Attribution-NonCommercial-ShareAlike 4.0 International") to short codes.
_CC_WORDS = (
    (r"creative\s*commons", "cc"),
    (r"public\s*domain\s*mark", "pdm"),
    (r"attribution", "by"),
    (r"share[\s-]*alike", "sa"),
    (r"non[\s-]*commercial", "nc"),
    (r"no[\s-]*deriv(?:ative)?s?", "nd"),
)
_CC_NOISE = {"international", "unported", "generic", "universal", "license", "licence", "deed",
             "legalcode", "migrated", "version", "only"}  # fmt: skip
_VERSION = re.compile(r"v?(\d)(?:\.(\d))?")

# --- Everything else normalise() can return -------------------------------------------------

# id → (commercial, derivatives, attribution, share_alike, url, name)
_FIXED: dict[str, tuple[bool | None, bool, bool, bool, str | None, str]] = {
    "CC0-1.0": (True, True, False, False, "https://creativecommons.org/publicdomain/zero/1.0/",
                "CC0 1.0"),
    "CC-PDM-1.0": (True, True, False, False, "https://creativecommons.org/publicdomain/mark/1.0/",
                   "Public Domain Mark 1.0"),
    "CC-PDDC": (True, True, False, False, "https://creativecommons.org/licenses/publicdomain/",
                "CC Public Domain Dedication and Certification"),
    PUBLIC_DOMAIN: (True, True, False, False, None, "Public domain"),
    SAMPLING_PLUS: (False, False, True, False, None, "CC Sampling+"),
    KR_UNRESTRICTED: (True, True, True, False, None,
                      "data.go.kr 이용허락범위 제한 없음 (no restriction on use)"),
    # AI Hub: training only (augmenting for training is within that), models may be used
    # commercially, data itself never redistributed. Commercial use is conditional, so None.
    AIHUB: (None, True, True, False, "https://www.aihub.or.kr/",
            "AI Hub terms of use"),
    # Common non-CC ids seen on data portals; exact SPDX ids pass through normalise().
    "MIT": (True, True, True, False, None, "MIT"),
    "Apache-2.0": (True, True, True, False, None, "Apache 2.0"),
    "BSD-2-Clause": (True, True, True, False, None, "BSD 2-Clause"),
    "BSD-3-Clause": (True, True, True, False, None, "BSD 3-Clause"),
    "ISC": (True, True, True, False, None, "ISC"),
    "Unlicense": (True, True, False, False, None, "The Unlicense"),
    "PDDL-1.0": (True, True, False, False, None, "ODC Public Domain Dedication and Licence 1.0"),
    "ODC-By-1.0": (True, True, True, False, None, "ODC Attribution Licence 1.0"),
    "ODbL-1.0": (True, True, True, True, None, "Open Database Licence 1.0"),
    "CDLA-Permissive-1.0": (True, True, True, False, None, "CDLA Permissive 1.0"),
    "CDLA-Permissive-2.0": (True, True, True, False, None, "CDLA Permissive 2.0"),
    "CDLA-Sharing-1.0": (True, True, True, True, None, "CDLA Sharing 1.0"),
    "GPL-2.0-only": (True, True, True, True, None, "GNU GPL 2.0 only"),
    "GPL-2.0-or-later": (True, True, True, True, None, "GNU GPL 2.0 or later"),
    "GPL-3.0-only": (True, True, True, True, None, "GNU GPL 3.0 only"),
    "GPL-3.0-or-later": (True, True, True, True, None, "GNU GPL 3.0 or later"),
    "AGPL-3.0-only": (True, True, True, True, None, "GNU AGPL 3.0 only"),
    "MPL-2.0": (True, True, True, True, None, "Mozilla Public Licence 2.0"),
}  # fmt: skip
# GNU FDL: every SPDX id (1.1-1.3, only/or-later, with or without invariant sections). Invariant
# sections bind the text of a document, not a picture: all of them allow derivatives.
_GFDL_INVARIANTS = {"": "", "invariants": ", with invariant sections",
                    "no-invariants": ", no invariant sections"}  # fmt: skip


def _gfdl_entries() -> dict[str, tuple[bool | None, bool, bool, bool, str | None, str]]:
    entries = {}
    for version in ("1.1", "1.2", "1.3"):
        url = (
            "https://www.gnu.org/licenses/fdl-1.3.html"
            if version == "1.3"
            else f"https://www.gnu.org/licenses/old-licenses/fdl-{version}.html"
        )
        for inv, words in _GFDL_INVARIANTS.items():
            for scope in ("only", "or-later"):
                name = f"GNU FDL {version} {scope.replace('-', ' ')}{words}"
                entries[f"GFDL-{version}-{inv + '-' if inv else ''}{scope}"] = (
                    True, True, True, True, url, name
                )  # fmt: skip
    return entries


_FIXED.update(_gfdl_entries())
_FIXED[GFDL_UNVERSIONED] = (True, True, True, True, None, "GNU FDL (version not stated)")

# KOGL (공공누리) type → (commercial, derivatives, attribution); sources.md §6.
_KOGL = {
    0: (True, True, False),  # expired works, no conditions
    1: (True, True, True),
    2: (False, True, True),
    3: (True, False, True),
    4: (False, False, True),
}
_FIXED.update({
    f"LicenseRef-KOGL-Type-{n}": (
        c, d, a, False,
        f"https://www.kogl.or.kr/info/licenseType{n}.do" if n else "https://www.kogl.or.kr/info/license.do",
        f"KOGL Type {n} (공공누리 제{n}유형)",
    )
    for n, (c, d, a) in _KOGL.items()
})  # fmt: skip

# Retired by Creative Commons: no longer recommended, so never accepted automatically.
RETIRED = frozenset({SAMPLING_PLUS, "CC-PDDC", "CC-SA-1.0"})

# Lower-cased, whitespace-collapsed strings with a fixed meaning.
_ALIASES = {
    "cc0: public domain": "CC0-1.0",  # Kaggle
    "public domain": PUBLIC_DOMAIN,
    "public-domain": PUBLIC_DOMAIN,
    "pd": PUBLIC_DOMAIN,
    "pdm": "CC-PDM-1.0",
    "pddl": "PDDL-1.0",  # Hugging Face ids that are not SPDX ids
    "odbl": "ODbL-1.0",
    "odc-by": "ODC-By-1.0",
}
CC_UNVERSIONED = frozenset(f"LicenseRef-CC-{t}" for t in _CC_TYPES)  # "CC BY" with no version
# A licence named without its version: the versions differ in their terms, so never guessed.
UNVERSIONED = CC_UNVERSIONED | {GFDL_UNVERSIONED}
_BY_LOWER = {key.lower(): key for key in (*CC_SPDX, *UNVERSIONED, *_FIXED)}
# "GFDL-1.2" (SPDX's deprecated id: 1.2 only), "GFDL 1.2" (Commons), "GFDL-1.3-or-later",
# "GNU Free Documentation License v1.2 or any later version", "gfdl-1.2+".
_GFDL = re.compile(
    r"(?:gfdl|gnu[\s-]*free[\s-]*documentation[\s-]*licen[cs]e)"
    r"(?:[\s-]*(?:version|v)?[\s-]*(1\.[123]))?"
    r"(?:[\s-]*(no[\s-]*invariants|invariants))?"
    r"(?:[\s-]*(only|\+|or[\s-]*later|or[\s-]*any[\s-]*later[\s-]*version))?"
)

_KOGL_KO = re.compile(r"(?:공공누리)?\s*제?\s*([0-4])\s*유형")
_KOGL_EN = re.compile(r"kogl[\s-]*(?:type)?[\s-]*([0-4]|iv|i{1,3})\b")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}
_KOGL_URL = re.compile(r"kogl\.or\.kr/.*licensetype([0-4])")
_CC_URL = re.compile(r"(?:^|//|\.)creativecommons\.org/(licenses|publicdomain)/(.*)")


def normalise(value: str | None) -> str:
    """One licence string or URL as an SPDX id, a LicenseRef-… id, or NOASSERTION; never a guess.
    An AND/OR expression ("CC BY-SA 4.0 OR GFDL 1.2") becomes an SPDX expression of such ids;
    when one of its licences is not recognised, the whole string is read as one name."""
    if not isinstance(value, str):
        return NOASSERTION
    tree = expressions.parse(value)
    if tree is None:
        return _normalise_one(value)
    ids = expressions.map_leaves(tree, _normalise_one)
    if NOASSERTION in expressions.leaves(ids):  # "GFDL 1.2 or any later version" is one name
        return _normalise_one(value)
    return expressions.render(ids)


def _normalise_one(value: str) -> str:
    low = " ".join(value.split()).lower().replace("_", "-")
    low = low.removeprefix("license:").strip()  # Hugging Face tag
    found = _read(low)
    # "Attribution 4.0 International (CC BY 4.0)": the short code in brackets is the precise one.
    for candidate in (*re.findall(r"\(([^()]*)\)", low), re.sub(r"\([^()]*\)", " ", low)):
        if found != NOASSERTION:
            break
        found = _read(candidate.strip())
    return found


def _read(low: str) -> str:
    """One lower-cased licence string or URL, without brackets around parts of it."""
    if not low:
        return NOASSERTION
    if low in _ALIASES:
        return _ALIASES[low]
    if low in _BY_LOWER:
        return _BY_LOWER[low]
    if "://" in low or low.startswith(("//", "creativecommons.org", "www.")):
        return _from_url(low)
    squashed = re.sub(r"[\s-]+", "", low)
    if squashed in ("이용허락범위제한없음", "제한없음"):
        return KR_UNRESTRICTED
    if squashed in ("aihub", "aihubterms", "ai허브"):
        return AIHUB
    if re.fullmatch(r"(?:nc)?sampling(?:\+|plus)(?:1\.0)?", squashed):
        return SAMPLING_PLUS
    if match := _GFDL.fullmatch(low):
        return _gfdl_id(*match.groups())
    if match := _KOGL_EN.match(low) or _KOGL_KO.search(low):
        return f"LicenseRef-KOGL-Type-{_ROMAN.get(match.group(1), match.group(1))}"
    if re.fullmatch(r"pd(?:-[a-z0-9-]+)?", low):  # Commons PD-* templates: pd-old, pd-usgov …
        return PUBLIC_DOMAIN
    for pattern, short in _CC_WORDS:
        low = re.sub(pattern, short, low)
    return _from_cc_tokens([t for t in re.split(r"[\s,:;/-]+", low) if t and t not in _CC_NOISE])


def _gfdl_id(version: str | None, invariants: str | None, scope: str | None) -> str:
    if not version:
        return GFDL_UNVERSIONED
    inv = ""
    if invariants:
        inv = "no-invariants-" if invariants.startswith("no") else "invariants-"
    later = bool(scope) and scope != "only"
    return f"GFDL-{version}-{inv}{'or-later' if later else 'only'}"


def _from_cc_tokens(tokens: list[str]) -> str:
    """["cc", "by", "sa", "3.0", "de"] → CC-BY-SA-3.0-DE; anything it cannot read → NOASSERTION."""
    has_cc = bool(tokens) and tokens[0] == "cc"
    rest = tokens[1:] if has_cc else list(tokens)
    if rest[:1] == ["cc0"] or (has_cc and rest[:1] in (["0"], ["zero"])):
        return "CC0-1.0" if _version_ok(rest[1:], "1.0") else NOASSERTION
    if rest[:1] == ["pdm"]:
        return "CC-PDM-1.0" if _version_ok(rest[1:], "1.0") else NOASSERTION
    elements: set[str] = set()
    while rest and rest[0] in ("by", "sa", "nc", "nd") and rest[0] not in elements:
        elements.add(rest.pop(0))
    versions = []
    while rest and (match := _VERSION.fullmatch(rest[0])):
        versions.append(f"{match.group(1)}.{match.group(2) or 0}")
        rest.pop(0)
    port = rest.pop(0).upper() if rest and re.fullmatch(r"[a-z]{2,8}", rest[0]) else ""
    if rest or not elements or not (has_cc or versions) or {"sa", "nd"} <= elements:
        return NOASSERTION
    if "by" not in elements:  # of the licences without BY only CC SA 1.0 has an SPDX id
        return "CC-SA-1.0" if elements == {"sa"} and versions[:1] == ["1.0"] else NOASSERTION
    base = "CC-" + "-".join(e.upper() for e in ("by", "nc", "nd", "sa") if e in elements)
    if not versions:
        return f"LicenseRef-{base}"  # never guess a version
    version = versions[0]  # "cc-by-sa-3.0,2.5,2.0": the licensor offers each; take the first
    if version not in _KNOWN_CC_VERSIONS:
        return NOASSERTION
    for candidate in (f"{base}-{version}-{port}", f"{base}-{version}"):
        if candidate in CC_SPDX:
            return candidate
    return f"LicenseRef-{base}"  # a real CC licence with no SPDX id (e.g. CC BY 2.1 JP)


def _version_ok(rest: list[str], version: str) -> bool:
    return rest == [] or (
        len(rest) == 1
        and (m := _VERSION.fullmatch(rest[0])) is not None
        and f"{m.group(1)}.{m.group(2) or 0}" == version
    )


def _from_url(low: str) -> str:
    if match := _KOGL_URL.search(low):
        return f"LicenseRef-KOGL-Type-{match.group(1)}"
    match = _CC_URL.search(low)
    if not match:
        return NOASSERTION
    kind, path = match.groups()
    parts = []
    for part in re.split(r"[?#]", path)[0].split("/"):
        if part.startswith(("deed", "legalcode")):  # /deed.de, /legalcode.ko: language pages
            break
        if part:
            parts.append(part)
    if kind == "publicdomain":
        return {"zero": "CC0-1.0", "mark": "CC-PDM-1.0"}.get(parts[0] if parts else "", NOASSERTION)
    if parts == ["publicdomain"]:
        return "CC-PDDC"
    if parts and "sampling" in parts[0]:
        return SAMPLING_PLUS
    return _from_cc_tokens(["cc", *parts[0].split("-"), *parts[1:]] if parts else [])


# --- Several raw fields, as each source keeps them ------------------------------------------

_ISIC = {"CC-0": "CC0-1.0", "CC-BY": "CC-BY-4.0", "CC-BY-NC": "CC-BY-NC-4.0"}  # ISIC: no version;
# the archive's licences are the 4.0 ones (documented assumption, sources.md §9).
_OPENVERSE_CC = {"by", "by-sa", "by-nd", "by-nc", "by-nc-sa", "by-nc-nd"}
_GENERIC_KEYS = ("licence", "license", "spdx", "license_url", "licence_url", "url")
_DATAGOKR_KEYS = ("이용허락범위", "license", "licence", "kogl", "kogl_type", "license_type")


def normalise_fields(fields: Mapping[str, Any], source: str | None = None) -> str:
    """Several raw licence fields of one record, read the way `source` keeps them."""
    if source == "aihub":
        return AIHUB
    if source == "commons":
        meta = fields.get("extmetadata", fields)
        return _first(meta, ("LicenseShortName", "License", "LicenseUrl"))
    if source == "openverse":
        code = str(fields.get("license") or "").strip().lower()
        version = str(fields.get("license_version") or "").strip()
        found = normalise(f"cc {code} {version}" if code in _OPENVERSE_CC else code)
        return found if found != NOASSERTION else normalise(fields.get("license_url"))
    if source == "isic":
        raw = str(fields.get("copyright_license") or "").strip().upper()
        return _ISIC.get(raw) or normalise(raw)
    if source == "zenodo":
        meta = fields.get("metadata", fields)
        return _agreed(meta.get("license"))
    if source == "huggingface":
        tags = [t for t in fields.get("tags") or () if str(t).lower().startswith("license:")]
        card = fields.get("cardData") or fields.get("card_data") or {}
        for candidate in (tags, card.get("license"), fields.get("license")):
            if candidate:
                return _agreed(candidate)
        return NOASSERTION
    if source == "kaggle":
        return _first(fields, ("licenseName", "license_name", "licenses"))
    if source == "datagokr":
        for key in ("kogl", "kogl_type"):  # a bare type number
            if str(fields.get(key, "")).strip() in ("0", "1", "2", "3", "4"):
                return f"LicenseRef-KOGL-Type-{str(fields[key]).strip()}"
        return _first(fields, (*_DATAGOKR_KEYS, *_GENERIC_KEYS))
    return _first(fields, _GENERIC_KEYS)


def _first(fields: Mapping[str, Any], keys: Iterable[str]) -> str:
    """The first key whose value normalises to something we recognise."""
    for key in keys:
        found = _agreed(fields.get(key))
        if found != NOASSERTION:
            return found
    return NOASSERTION


def _agreed(value: Any) -> str:
    """A value, a {"value"|"id"|"name": …} wrapper, or a list whose entries must all agree."""
    if isinstance(value, Mapping):
        inner = next((value[k] for k in ("value", "id", "name") if k in value), None)
        return _agreed(inner)
    if isinstance(value, (list, tuple)):
        found = {_agreed(v) for v in value}
        return found.pop() if len(found) == 1 else NOASSERTION
    return normalise(value if isinstance(value, str) else None)


# --- Terms and verdicts ---------------------------------------------------------------------


@lru_cache(maxsize=1024)  # asked per item by the gate, dedup ranks, manifest and credits
def terms(spdx: str) -> LicenceTerms:
    """What `spdx` permits; anything unknown (and NOASSERTION) is treated as permitting nothing."""
    if (tree := expressions.parse(spdx)) is not None:
        return _expression_terms(spdx, tree)
    if spdx in _FIXED:
        return LicenceTerms(spdx, *_FIXED[spdx])
    cc = _CC_ID.fullmatch(spdx) if spdx in CC_SPDX else None
    if cc or spdx in CC_UNVERSIONED:
        code = cc.group(1) if cc else spdx.removeprefix("LicenseRef-CC-")
        elements = set(code.split("-"))
        name = "CC " + code
        url = None
        if cc:
            version, port = cc.group(2), cc.group(3)
            path = "by-nd-nc" if code == "BY-NC-ND" and version == "1.0" else code.lower()
            url = f"https://creativecommons.org/licenses/{path}/{version}/"
            url += f"{port.lower()}/" if port else ""
            name += f" {version}" + (f" {port}" if port else "")
        else:
            name += " (version not stated)"
        e = elements
        return LicenceTerms(spdx, "NC" not in e, "ND" not in e, "BY" in e, "SA" in e, url, name)
    # Unknown: commercial use unknown, no derivatives, and credit the author anyway.
    name = "no recognised licence" if spdx == NOASSERTION else spdx
    return LicenceTerms(spdx, None, False, True, False, None, name)


def _expression_terms(spdx: str, tree: expressions.Tree) -> LicenceTerms:
    """An OR lets the user pick the alternative that permits the most, an AND binds them to
    every part: a permission is any part's under OR, every part's under AND."""
    if isinstance(tree, str):
        return terms(tree)
    op, children = tree
    parts = [_expression_terms(expressions.render(c), c) for c in children]
    pick = any if op == "OR" else all
    duty = all if op == "OR" else any
    commercials = [p.commercial for p in parts]
    if op == "OR":
        commercial = True if True in commercials else (None if None in commercials else False)
    else:
        commercial = False if False in commercials else (None if None in commercials else True)
    name = f" {op.lower()} ".join(
        p.name if isinstance(c, str) else f"({p.name})"
        for p, c in zip(parts, children, strict=True)
    )
    return LicenceTerms(
        spdx,
        commercial,
        pick(p.derivatives for p in parts),
        duty(p.attribution for p in parts),
        duty(p.share_alike for p in parts),
        None,
        name,
    )


def verdict(spdx: str, policy: LicencePolicy) -> Verdict:
    """Allow, reject or send to review one licence under `policy`, with the rule that decided.
    An expression is allowed as a whole when policy.allow lists it; otherwise an OR is allowed
    when one alternative is (and used under that one), an AND when every part is."""
    given, spdx = spdx, normalise(spdx)  # ids we cannot describe are treated as NOASSERTION
    tree = expressions.parse(spdx)
    if tree is not None and spdx not in policy.allow:  # a pattern would match its first part
        return _expression_verdict(spdx, tree, policy)
    t = terms(spdx)
    label = f"{spdx} ({t.name})"

    def decide(decision: str, reason: str) -> Verdict:
        return Verdict(decision, reason, spdx, not t.derivatives)

    if spdx == NOASSERTION:
        what = (
            "no recognised licence"
            if given in (None, "", NOASSERTION)
            else f"an unrecognised licence ({given!r})"
        )
        action = "sends it to manual review" if policy.noassertion == "review" else "rejects it"
        return decide(
            policy.noassertion,
            f"The item has {what}, so its licence is NOASSERTION; "
            f"the policy {action} "
            f'(policy.noassertion = "{policy.noassertion}").',
        )
    if spdx in RETIRED:
        return decide("reject", f"{label} is retired by Creative Commons and is never accepted.")
    if t.commercial is False and not policy.noncommercial:
        return decide(
            "reject",
            f"{spdx} forbids commercial use and the policy does not accept "
            "non-commercial licences (policy.noncommercial = false).",
        )
    if not t.derivatives and not policy.no_derivatives:
        return decide(
            "reject",
            f"{spdx} forbids derivatives (no cropping or augmentation) and "
            "the policy does not accept no-derivatives licences "
            "(policy.no_derivatives = false).",
        )
    if spdx == AIHUB and AIHUB not in policy.allow:
        return decide(
            "reject",
            f"{label}: AI Hub data may be used for training only and must "
            "never be redistributed; list LicenseRef-AIHub-Terms explicitly "
            "in policy.allow to use it locally.",
        )
    if spdx in UNVERSIONED and spdx not in policy.allow:
        return _unversioned_verdict(spdx, label, policy)
    pattern = next((p for p in policy.allow if fnmatchcase(spdx, p)), None)
    if pattern is None:
        allowed = ", ".join(policy.allow) or "(empty)"
        return decide(
            "reject", f"{label} is not in the policy's allow list (policy.allow = {allowed})."
        )
    return decide("allow", f"{label} matches {pattern!r} in policy.allow.")


def _expression_verdict(spdx: str, tree: expressions.Tree, policy: LicencePolicy) -> Verdict:
    if isinstance(tree, str):
        return verdict(tree, policy)
    op, children = tree
    parts = [_expression_verdict(expressions.render(c), c, policy) for c in children]
    by_decision = {d: [p for p in parts if p.decision == d] for d in ("allow", "review", "reject")}
    if op == "OR" and by_decision["allow"]:
        chosen = by_decision["allow"][0]
        return Verdict(
            "allow",
            f"{spdx}: usable under {chosen.spdx}, one of its alternatives: {chosen.reason}",
            spdx,
            chosen.no_derivatives,
        )
    if op == "AND" and len(by_decision["allow"]) == len(parts):
        return Verdict(
            "allow",
            f"{spdx}: every part is allowed (" + " ".join(p.reason for p in parts) + ")",
            spdx,
            any(p.no_derivatives for p in parts),
        )
    # Not allowed: an AND with a rejected part is rejected; else a part under review needs a person.
    if op == "AND" and by_decision["reject"]:
        decision = "reject"
    else:
        decision = "review" if by_decision["review"] else "reject"
    shown = by_decision[decision]
    what = "no alternative is allowed" if op == "OR" else "not every part is allowed"
    return Verdict(
        decision,
        f"{spdx}: {what}: " + " ".join(p.reason for p in shown),
        spdx,
        any(p.no_derivatives for p in parts),
    )


def _unversioned_verdict(spdx: str, label: str, policy: LicencePolicy) -> Verdict:
    """A licence named without a version: a person checks which version the source means when
    some version of it would be allowed; rejected when none would be."""
    family = spdx.removeprefix("LicenseRef-")
    if family == "GFDL":
        versions = sorted(i for i in _FIXED if i.startswith("GFDL-"))
    else:
        code = family.removeprefix("CC-")
        versions = sorted(i for i in CC_SPDX if (m := _CC_ID.fullmatch(i)) and m.group(1) == code)
    allowed = [i for i in versions if any(fnmatchcase(i, p) for p in policy.allow)]
    no_derivatives = not terms(spdx).derivatives
    if not allowed:
        shown = ", ".join(policy.allow) or "(empty)"
        return Verdict(
            "reject",
            f"{label} names no version, and no version of it is in the policy's allow list "
            f"(policy.allow = {shown}).",
            spdx,
            no_derivatives,
        )
    return Verdict(
        "review",
        f"{label}: the record names no version of the licence that SPDX lists, and its versions "
        "differ in their terms; check the version on the source page "
        f"(the policy allows {allowed[0]}"
        + (f" and {len(allowed) - 1} more" if len(allowed) > 1 else "")
        + ").",
        spdx,
        no_derivatives,
    )


# --- Hosts whose terms forbid reuse ---------------------------------------------------------

REFUSED_HOSTS: dict[str, str] = {
    "dermnetnz.org": "DermNet NZ images are CC BY-NC-ND with extra conditions (watermark, "
                     "no AI training reported); reuse needs DermNet's written permission",
    "dermnet.com": "Dermnet.com (Habif) images are proprietary and copyrighted",
    "dermis.net": "DermIS images are all rights reserved; web reuse is sold per image",
}  # fmt: skip


def refused_host(url: str) -> str | None:
    """Why `url` must not be collected from, if its host is (under) a refused atlas; else None."""
    if not _may_name_refused_host(url):
        return None  # the common case, decided without parsing the URL
    try:
        host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    except ValueError:
        return None
    host = host.rstrip(".").lower()
    for suffix, reason in REFUSED_HOSTS.items():
        if host == suffix or host.endswith("." + suffix):
            return f"{host}: {reason}"
    return None


def _may_name_refused_host(url: str) -> bool:
    """False only if no refused host can be `url`'s: the host is a slice of the URL once urlsplit
    has dropped tabs and newlines, and lower-casing a slice is slicing the lower-cased URL."""
    low = url.lower()
    if "\t" in low or "\r" in low or "\n" in low:
        low = low.replace("\t", "").replace("\r", "").replace("\n", "")
    return any(suffix in low for suffix in REFUSED_HOSTS)


# --- Attribution ----------------------------------------------------------------------------

_CSV_COLUMNS = ("id", "file", "title", "author", "source_page", "licence", "licence_url",
                "changes", "attribution")  # fmt: skip
_KOGL_ID = re.compile(r"LicenseRef-KOGL-Type-([0-4])")


def attribution_line(item: Mapping[str, Any], *, markdown: bool = False) -> str:
    """The TASL credit (title, author, source, licence) for one manifest item; KOGL in Korean.
    One line whatever the record holds; with `markdown`, the record's own text (title, author,
    credit, changes, page URL) cannot add Markdown either."""
    text, link = (_md_text, _md_url) if markdown else (_one_line, _one_line)
    source = item.get("source") or {}
    lic = item.get("licence") or {}
    spdx = lic.get("spdx") or NOASSERTION
    t = terms(spdx)
    title = text(_title(item))
    page = link(source.get("page_url") or source.get("url") or "")
    changes = text(_changes(item))
    if kogl := _KOGL_ID.fullmatch(spdx):
        author = text(lic.get("author") or "작성자 미상")
        line = (
            f"본 저작물은 '{author}'에서 작성하여 공공누리 제{kogl.group(1)}유형으로 개방한 "
            f"'{title}'을 이용하였습니다" + (f" ({page})." if page else ".")
        )
        return line + (f" 변경 내용: {changes}." if changes else "")
    author = text(lic.get("author") or "unknown author")
    url = link(lic.get("url") or t.url or "")
    named = f"{t.name} ({url})" if url else t.name
    if spdx == NOASSERTION:
        terms_text = "licence not recorded"
    elif spdx == PUBLIC_DOMAIN:
        terms_text = "in the public domain"
    elif spdx == "CC0-1.0":
        terms_text = f"dedicated to the public domain under {named}"
    elif spdx == "CC-PDM-1.0":
        terms_text = f"marked with the {named}"
    else:
        terms_text = f"licensed under {named}"
    line = f'"{title}" by {author}, {terms_text}' + (f", from {page}." if page else ".")
    credit = text(lic.get("attribution") or "")
    if credit and credit != author:  # the credit the licensor asked for, kept verbatim
        line += f" Credit: {credit.rstrip().rstrip('.')}."  # Openverse credits end in "."
    return line + (f" Changes: {changes}." if changes else "")


def _md_credits(items: Sequence[Mapping[str, Any]], title: str) -> list[str]:
    """The Markdown credit lines of one licence's items: a line per item, except one line for
    each set of a dataset's items (source "folder": an import or a local folder) whose credit is
    the same, which would otherwise repeat it once per image."""
    shared: dict[tuple, list[Mapping[str, Any]]] = {}
    for item in items:
        if (key := _dataset_key(item)) is not None:
            shared.setdefault(key, []).append(item)
    lines, done = [], set()
    for item in items:
        key = _dataset_key(item)
        members = shared[key] if key is not None else [item]
        if len(members) == 1:
            lines.append(attribution_line(item, markdown=True))
        elif key not in done:
            done.add(key)
            lines.append(_dataset_line(members, title))
    return lines


def _dataset_key(item: Mapping[str, Any]) -> tuple | None:
    """What a dataset's items share when one credit covers them; None for items of a source
    that credits each item (Commons, Openverse, a URL list, ...)."""
    lic, source = item.get("licence") or {}, item.get("source") or {}
    if source.get("name") != "folder":
        return None
    return (lic.get("spdx"), lic.get("url"), lic.get("author"), lic.get("attribution"),
            source.get("page_url"), _changes(item))  # fmt: skip


def _dataset_line(members: Sequence[Mapping[str, Any]], title: str) -> str:
    """The credit of a whole dataset: its title for the item's, no per-file source."""
    first = members[0]
    source = dict(first.get("source") or {})
    source.update(title=title, url=None)
    line = attribution_line({**first, "source": source}, markdown=True)
    return f"{len(members)} images: {line}"


# What makes Markdown inline markup: code, emphasis, links and images (their brackets), HTML,
# table cells, strikethrough, and "&" where it would start an entity. With newlines gone and a
# line of our own starting each credit, the record's text cannot start a heading, list or row;
# "(" after an escaped "]" is only text, so citations keep their "(2024)" unescaped.
_MD_SPECIAL = re.compile(r"[\\`*_\[\]<>|~]|&(?=#?\w+;)")
_URL_UNSAFE = re.compile(r"[\s<>\[\]()`*\\\"']")


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


def _md_text(value: str) -> str:
    return _MD_SPECIAL.sub(lambda m: "\\" + m.group(), _one_line(value))


def _md_url(value: str) -> str:
    """A URL left clickable (no backslashes in it), its Markdown-breaking characters
    percent-encoded; those never carry meaning in a URL's path or query."""
    return _URL_UNSAFE.sub(lambda m: quote(m.group(), safe=""), str(value).strip())


def _title(item: Mapping[str, Any]) -> str:
    source = item.get("source") or {}
    if source.get("title"):
        return str(source["title"])
    for path in (_url_path(source.get("url") or ""), item.get("file") or ""):
        name = unquote(_last_name(path))
        if name:
            return name
    return str(item.get("id") or "untitled")


# scheme://host/path[?…|#…] with a plain ASCII host and no tab or newline before the query: the
# path is the one group, as urlsplit would give it; anything else goes to urlsplit itself.
_PLAIN_URL = re.compile(
    r"[A-Za-z][A-Za-z0-9+.\-]*://[^\x00-\x20/?#\[\]\x7f-\U0010ffff]*(/[^?#\t\r\n]*)?(?:[?#]|\Z)"
)


def _url_path(url: str) -> str:
    """urlsplit(url).path, without urlsplit's general parse for the URLs most items have."""
    if match := _PLAIN_URL.match(url):
        return match.group(1) or ""
    return urlsplit(url).path


def _last_name(path: str) -> str:
    """PurePosixPath(path).name (the last part other than "" and "."), without building a path
    object per item."""
    for part in reversed(path.split("/")):
        if part and part != ".":
            return part
    return ""


def _changes(item: Mapping[str, Any]) -> str:
    changes = item.get("changes")
    if isinstance(changes, (list, tuple)):
        return "; ".join(str(c) for c in changes if c)
    return str(changes).rstrip(".") if changes else ""


def write_attribution(
    folder: Path,
    items: Sequence[Mapping[str, Any]],
    *,
    dataset_name: str,
    dataset_title: str | None = None,
) -> tuple[Path, Path]:
    """Write ATTRIBUTION.md and attribution.csv for `items` into `folder`, atomically. Items of
    one local or imported dataset that share their credit (licence, author, citation, page) get
    one dataset-level line in ATTRIBUTION.md; attribution.csv keeps a row per item."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for item in items:
        groups.setdefault((item.get("licence") or {}).get("spdx") or NOASSERTION, []).append(item)

    md = [f"# Attribution: {dataset_name}", "",
          f"This file credits the author, source and licence of each of the {len(items)} images "
          f"in the {dataset_name} dataset, as their licences require. "
          "The same credits are in attribution.csv.", ""]  # fmt: skip
    lines = {id(item): attribution_line(item) for item in items}
    for spdx, members in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0])):
        count = f"{len(members)} item" + ("s" if len(members) != 1 else "")
        md += [f"## {terms(spdx).name} (`{spdx}`): {count}", ""]
        md += [f"- {line}" for line in _md_credits(members, dataset_title or dataset_name)]
        md += [""]
    if not items:
        md += ["No items.", ""]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for item in items:
        source, lic = item.get("source") or {}, item.get("licence") or {}
        spdx = lic.get("spdx") or NOASSERTION
        writer.writerow([
            item.get("id", ""), item.get("file", ""), source.get("title") or "",
            lic.get("author") or "", source.get("page_url") or source.get("url") or "", spdx,
            lic.get("url") or terms(spdx).url or "", _changes(item), lines[id(item)],
        ])  # fmt: skip

    md_path, csv_path = folder / "ATTRIBUTION.md", folder / "attribution.csv"
    atomic_write_text(md_path, "\n".join(md), newline="")
    atomic_write_text(csv_path, buffer.getvalue(), newline="")
    return md_path, csv_path
