"""The uplink's ground end: the signed bundles this ground holds, offered and streamed to the
satellites that pull them (``Uplink`` in ``proto/``), and what each satellite has in force.

Bundles are files ``bundle-<version>.tfb`` (a serialised ``UpdateBundle``) in the uplink
folder (``GroundSettings.uplink_folder``; ``targetfuse uplink build`` writes them there).
``BundleShelf`` lists them, each opened once (per file change) and checked with the ground's
own public key as a satellite will check it: a file that does not verify is skipped and
logged, never offered. ``Offer`` answers a satellite (its link name: ``ground.link_auth``)
with the newest bundle addressed to it (its name among the manifest's ``satellites``, or
none named), and records what it reports in force and refused; ``Fetch`` streams a bundle
from the offset asked for, at most the bytes asked for (``shared.uplink.transfer``), every
field of the request checked first (``shared.limits``).

The signing key is the ground's (``signing_key``: made at first start beside the database,
like the link's CA, when the settings name none). Only its public half is needed to serve:
a deployment that signs elsewhere gives the ground ``uplink-signing.pub`` alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

from ground.link_auth import LinkAuth
from ground.settings import GroundSettings
from shared import limits
from shared.uplink.bundle import BundleError, Manifest, open_bundle
from shared.uplink.keys import SigningKey, load_public_key, make_signing_key
from shared.uplink.transfer import blob_chunks
from shared.wire import link_pb2, link_pb2_grpc

log = logging.getLogger("targetfuse.ground.uplink")
BUNDLE_FILE = re.compile(r"bundle-([0-9]{1,10})\.tfb")


def bundle_name(version: int) -> str:
    return f"bundle-{version}.tfb"


def evidence_name(version: int) -> str:
    """Beside a bundle the ground built from a recalibration: what it was fit on and how it
    checked (``uplink recalibrate --build``); for the operators, not signed or sent."""
    return f"bundle-{version}.evidence.json"


def read_evidence(folder: Path, version: int) -> dict | None:
    """A bundle's evidence file, or None (none written, or unreadable: logged)."""
    path = Path(folder) / evidence_name(version)
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.error("uplink evidence %s unreadable: %s", path, exc)
        return None
    return found if isinstance(found, dict) else None


def signing_key(settings: GroundSettings) -> SigningKey:
    """The ground's signing key pair: the configured one (its ``.pub`` must exist; the
    private key may be kept elsewhere), else the one made at first start beside the
    database (its paths logged when made)."""
    if settings.uplink_signing_key_file is not None:
        key = SigningKey(settings.uplink_signing_key_file)
        if not key.public.exists():
            raise ValueError(f"uplink_signing_key_file: no public key {key.public} beside it")
        return key
    return make_signing_key(settings.uplink_key_path())


@dataclass(frozen=True)
class ShelvedBundle:
    path: Path
    manifest: Manifest
    size: int
    sha256: bytes

    @property
    def version(self) -> int:
        return self.manifest.version

    def as_dict(self) -> dict:
        m = self.manifest
        return {"version": m.version, "created": m.created, "bytes": self.size,
                "sha256": self.sha256.hex(), "model": m.model,
                "model_sha256": m.model_sha256, "satellites": list(m.satellites),
                "files": {f.role: f.size for f in m.files}, "note": m.note,
                "file": self.path.name}


class BundleShelf:
    """The bundles in ``folder`` that verify with ``public_key``."""

    def __init__(self, folder: Path, public_key):
        self.folder, self.public_key = Path(folder), public_key
        self.folder.mkdir(parents=True, exist_ok=True)
        self._cache: dict[Path, tuple[tuple[int, int], ShelvedBundle | None]] = {}
        self._lock = threading.Lock()

    def _open(self, path: Path) -> ShelvedBundle | None:
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            with self._lock:
                cached = self._cache.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
            blob = path.read_bytes()
        except OSError:
            return None
        try:
            opened = open_bundle(blob, self.public_key)
            number = int(BUNDLE_FILE.fullmatch(path.name).group(1))
            if opened.manifest.version != number:
                raise BundleError(f"holds version {opened.manifest.version}")
            shelved = ShelvedBundle(path, opened.manifest, len(blob),
                                    hashlib.sha256(blob).digest())
        except BundleError as exc:
            log.error("uplink bundle file %s is not offered: %s", path, exc)
            shelved = None
        with self._lock:
            self._cache[path] = (stamp, shelved)
        return shelved

    def bundles(self) -> list[ShelvedBundle]:
        """Every bundle that verifies, oldest version first."""
        try:
            paths = [p for p in self.folder.iterdir() if BUNDLE_FILE.fullmatch(p.name)]
        except OSError as exc:  # the folder removed under a running ground: none to offer
            log.error("uplink folder %s: %s", self.folder, exc.strerror)
            return []
        found = [self._open(p) for p in paths]
        return sorted((b for b in found if b is not None), key=lambda b: b.version)

    def evidence(self, version: int) -> dict | None:
        return read_evidence(self.folder, version)

    def newest_for(self, sender: str) -> ShelvedBundle | None:
        mine = [b for b in self.bundles() if b.manifest.for_sender(sender)]
        return mine[-1] if mine else None

    def get(self, version: int, sender: str) -> ShelvedBundle | None:
        b = self._open(self.folder / bundle_name(version)) \
            if 1 <= version <= limits.MAX_BUNDLE_VERSION else None
        return b if b is not None and b.manifest.for_sender(sender) else None

    def next_version(self) -> int:
        numbers = [int(m.group(1)) for p in self.folder.iterdir()
                   if (m := BUNDLE_FILE.fullmatch(p.name))]
        return max(numbers, default=0) + 1

    def put(self, blob: bytes, version: int) -> Path:
        """Write a new bundle file (never over one: a version is published once)."""
        path = self.folder / bundle_name(version)
        if path.exists():
            raise ValueError(f"{path} exists: a bundle version is published once; take "
                             f"version {self.next_version()}")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(blob)
        tmp.replace(path)
        return path


class UplinkServicer(link_pb2_grpc.UplinkServicer):
    def __init__(self, shelf: BundleShelf, auth: LinkAuth):
        self.shelf, self.auth = shelf, auth
        self.reports: dict[str, dict] = {}  # sender -> what it said at its last Offer

    @classmethod
    def of(cls, settings: GroundSettings, auth: LinkAuth) -> UplinkServicer:
        key = signing_key(settings)
        return cls(BundleShelf(settings.uplink_folder(), load_public_key(key.public)), auth)

    def Offer(self, request, context):  # noqa: N802 (gRPC method name)
        sender = self.auth.sender(context)
        try:
            limits.check_offer_request(request)
        except limits.OutOfRange as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        before = self.reports.get(sender, {})
        self.reports[sender] = {"in_force": request.in_force, "refused": request.refused,
                                "refused_reason": request.refused_reason, "at": time.time()}
        if request.refused and request.refused != before.get("refused"):
            log.warning("satellite %r refused uplink bundle %s: %s", sender or "(anonymous)",
                        request.refused, request.refused_reason)
        if request.in_force != before.get("in_force"):
            log.info("satellite %r has uplink bundle %s in force", sender or "(anonymous)",
                     request.in_force)
        b = self.shelf.newest_for(sender)
        if b is None:
            return link_pb2.BundleOffer()
        return link_pb2.BundleOffer(version=b.version, size=b.size, sha256=b.sha256)

    def Fetch(self, request, context):  # noqa: N802
        sender = self.auth.sender(context)
        b = self.shelf.get(request.version, sender)
        if b is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no bundle {request.version} for this "
                                                     "satellite")
        try:
            limits.check_fetch_request(request, b.size)
        except limits.OutOfRange as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            blob = b.path.read_bytes()
        except OSError as exc:
            context.abort(grpc.StatusCode.NOT_FOUND, f"bundle {b.version}: {exc.strerror}")
        if len(blob) != b.size:  # replaced under us: the offer no longer holds
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"bundle {b.version} changed; ask for the offer again")
        yield from blob_chunks(b.version, blob, request.offset,
                               min(request.max_bytes, limits.MAX_BUNDLE_BYTES),
                               sha256=b.sha256)


def evidence_summary(evidence: dict | None) -> dict | None:
    """What the dashboard shows of a recalibration: tiles, scenes, and each check's
    held-back figures before and after (``ground.recalibrate``'s report)."""
    if not evidence or not isinstance(evidence.get("satellite"), dict):
        return None
    sat = evidence["satellite"]
    return {"tiles": sat.get("tiles"), "under_bundle": sat.get("bundle_version"),
            "changed": sat.get("changed"), "reason": sat.get("reason"),
            "checks": {name: {k: v for k, v in check.items() if isinstance(v, int | float)}
                       for name, check in (sat.get("checks") or {}).items()
                       if isinstance(check, dict)}}


def uplink_report(store, servicer: UplinkServicer | None) -> dict:
    """The bundles offered and, per satellite, the bundle version in force: from the header
    of its newest scene (the calibration that chose that scene's tiles) and as it reported
    it at its last ``Offer``."""
    satellites: dict[str, dict] = {}
    for sender, scene, received_at, version in store.bundle_versions():
        satellites[sender] = {"sender": sender, "bundle_version": version,
                              "newest_scene": scene, "scene_received_at": received_at,
                              "reported": None}
    for sender, report in (servicer.reports if servicer is not None else {}).items():
        row = satellites.setdefault(sender, {"sender": sender, "bundle_version": None,
                                             "newest_scene": None, "scene_received_at": None})
        row["reported"] = dict(report)
    shelf = servicer.shelf if servicer is not None else None
    bundles = shelf.bundles() if shelf is not None else []
    return {"bundles": [{**b.as_dict(), "evidence": evidence_summary(shelf.evidence(b.version))}
                        for b in bundles],
            "satellites": sorted(satellites.values(), key=lambda r: r["sender"])}
