"""An update bundle: what the ground uplinks to change how a satellite counts and chooses.

A bundle is one ``UpdateBundle`` message (``proto/``): a manifest, the ground's Ed25519
signature of it, and the files. It may carry, each under a fixed name per role:

- ``confidence`` (``confidence.json``): the onboard confidence calibration
  (``shared.confidence.ConfidenceModel``);
- ``error_model`` (``error_model.json``): the value policy's error model
  (``shared.pipeline.error_model.ErrorModel``);
- ``thresholds`` (``thresholds.json``): the selection band, ``{"conf_p": .., "conf_q": ..}``
  (either or both; ``THRESHOLDS`` lists what a bundle may set, the place for more);
- ``onnx`` (``model.onnx``): a new onboard counter, with the counts the ground measured it
  give on the pair's canary tiles (``canary`` in the manifest; ``shared.uplink.parity``).

The manifest (JSON) says: ``format`` (1), ``version`` (an integer, increasing: a satellite
takes only a version newer than the one in force), ``created`` (RFC 3339), ``model`` (the
pair) and ``model_sha256`` (the onboard counter the files are for: the new ONNX's when the
bundle carries one), ``satellites`` (the link names it is for; empty: every one), per file
its role, name, size and sha256, ``canary`` with a new ONNX, and a ``note``. The signature
covers ``DOMAIN`` and the manifest's bytes; the manifest's sha256s cover the files. The
satellite checks the signature before it reads the manifest, then every number of the
manifest (``shared.limits``), then each file against it, then parses each file and checks
its values; only then is anything applied (``onboard/bundles.py``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from dataclasses import dataclass, field

from shared import limits
from shared.confidence import FEATURE_NAMES, ConfidenceModel
from shared.pipeline.error_model import ErrorModel
from shared.pipeline.selection import check_thresholds
from shared.wire import link_pb2

FORMAT = 1
# What the signature covers before the manifest: a signature made for anything else (another
# protocol using the same key) never verifies as a bundle's.
DOMAIN = b"targetfuse.v1 uplink bundle\n"
ROLE_FILES = {"confidence": "confidence.json", "error_model": "error_model.json",
              "thresholds": "thresholds.json", "onnx": "model.onnx"}
THRESHOLDS = ("conf_p", "conf_q")
MAX_SATELLITES = 1024
MAX_CANARY_TILES = 256
PAIR_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class BundleError(ValueError):
    """A bundle refused: forged, corrupted, malformed, or not for this satellite."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class FileEntry:
    role: str
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    version: int
    created: str
    model: str
    model_sha256: str
    files: tuple[FileEntry, ...]
    satellites: tuple[str, ...] = ()
    canary: dict | None = None  # {"file_sha256": .., "counts": [..]}: with a new ONNX
    note: str = ""

    def entry(self, role: str) -> FileEntry | None:
        return next((f for f in self.files if f.role == role), None)

    def roles(self) -> list[str]:
        return [f.role for f in self.files]

    def for_sender(self, sender: str) -> bool:
        return not self.satellites or sender in self.satellites

    def as_dict(self) -> dict:
        return {"format": FORMAT, "version": self.version, "created": self.created,
                "model": self.model, "model_sha256": self.model_sha256,
                "satellites": list(self.satellites),
                "files": [{"role": f.role, "name": f.name, "bytes": f.size,
                           "sha256": f.sha256} for f in self.files],
                "canary": self.canary, "note": self.note}

    def to_bytes(self) -> bytes:
        return json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        """The manifest in ``data``, every field checked; BundleError naming the first
        that is wrong."""
        if len(data) > limits.MAX_MANIFEST_BYTES:
            raise BundleError(f"manifest larger than {limits.MAX_MANIFEST_BYTES} bytes")
        try:
            raw = json.loads(data.decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"manifest is not JSON: {exc}") from None
        try:
            return _manifest(raw)
        except limits.OutOfRange as exc:
            raise BundleError(f"manifest: {exc}") from None


_KEYS = {"format", "version", "created", "model", "model_sha256", "satellites", "files",
         "canary", "note"}


def _manifest(raw: object) -> Manifest:
    bad = limits.OutOfRange
    if not isinstance(raw, dict) or set(raw) != _KEYS:
        raise bad(f"a manifest is an object with exactly {sorted(_KEYS)}")
    if raw["format"] != FORMAT or isinstance(raw["format"], bool):
        raise bad(f"format must be {FORMAT}, got {raw['format']!r}")
    version = limits.check_bundle_version(raw["version"], "version")
    created = raw["created"]
    if not isinstance(created, str) or len(created) > 64:
        raise bad("created must be an RFC 3339 time")
    try:
        datetime.datetime.fromisoformat(created)
    except ValueError:
        raise bad(f"created must be an RFC 3339 time, got {created[:64]!r}") from None
    if not isinstance(raw["model"], str) or PAIR_NAME.fullmatch(raw["model"]) is None:
        raise bad("model must be a model pair's name")
    if not isinstance(raw["model_sha256"], str) or \
            SHA256_HEX.fullmatch(raw["model_sha256"]) is None:
        raise bad("model_sha256 must be 64 lowercase hex digits")
    sats = raw["satellites"]
    if not isinstance(sats, list) or len(sats) > MAX_SATELLITES or len(set(map(str, sats))) \
            != len(sats) or not all(isinstance(s, str) and limits.SENDER.fullmatch(s)
                                    for s in sats):
        raise bad(f"satellites must be at most {MAX_SATELLITES} distinct link names")
    files = raw["files"]
    if not isinstance(files, list) or not 1 <= len(files) <= len(ROLE_FILES):
        raise bad(f"files must list 1-{len(ROLE_FILES)} files")
    entries = []
    for f in files:
        if not isinstance(f, dict) or set(f) != {"role", "name", "bytes", "sha256"}:
            raise bad("a file is {role, name, bytes, sha256}")
        if f["role"] not in ROLE_FILES or f["name"] != ROLE_FILES[f["role"]]:
            raise bad(f"file roles are {sorted(ROLE_FILES)}, each under its own name")
        size = f["bytes"]
        if isinstance(size, bool) or not isinstance(size, int) or \
                not 1 <= size <= limits.MAX_BUNDLE_BYTES:
            raise bad(f"{f['name']}: bytes must be 1-{limits.MAX_BUNDLE_BYTES}")
        if not isinstance(f["sha256"], str) or SHA256_HEX.fullmatch(f["sha256"]) is None:
            raise bad(f"{f['name']}: sha256 must be 64 lowercase hex digits")
        entries.append(FileEntry(f["role"], f["name"], size, f["sha256"]))
    if len({e.role for e in entries}) != len(entries):
        raise bad("a role appears once")
    onnx = next((e for e in entries if e.role == "onnx"), None)
    canary = raw["canary"]
    if onnx is None:
        if canary is not None:
            raise bad("canary counts come with a new ONNX model only")
    else:
        if onnx.sha256 != raw["model_sha256"]:
            raise bad("model_sha256 must be the sha256 of the bundle's ONNX model")
        if not isinstance(canary, dict) or set(canary) != {"file_sha256", "counts"}:
            raise bad("a new ONNX model needs canary {file_sha256, counts}")
        if not isinstance(canary["file_sha256"], str) or \
                SHA256_HEX.fullmatch(canary["file_sha256"]) is None:
            raise bad("canary file_sha256 must be 64 lowercase hex digits")
        counts = canary["counts"]
        if not isinstance(counts, list) or not 1 <= len(counts) <= MAX_CANARY_TILES:
            raise bad(f"canary counts: 1-{MAX_CANARY_TILES} numbers")
        canary = {"file_sha256": canary["file_sha256"],
                  "counts": [limits.finite(c, "canary count", -1e6, 1e6) for c in counts]}
    note = raw["note"]
    if not isinstance(note, str) or len(note) > limits.MAX_TEXT or \
            any(ord(c) < 32 for c in note):
        raise bad(f"note must be printable text of at most {limits.MAX_TEXT} characters")
    return Manifest(version, created, raw["model"], raw["model_sha256"], tuple(entries),
                    tuple(sats), canary, note)


# --- signing and verifying ------------------------------------------------------------------

def sign(manifest_bytes: bytes, private_key) -> bytes:
    return private_key.sign(DOMAIN + manifest_bytes)


def verify_signature(manifest_bytes: bytes, signature: bytes, public_key) -> None:
    from cryptography.exceptions import InvalidSignature

    if len(signature) != 64:
        raise BundleError("signature must be 64 bytes (Ed25519)")
    try:
        public_key.verify(signature, DOMAIN + manifest_bytes)
    except InvalidSignature:
        raise BundleError("signature does not verify with the ground's public key: forged, "
                          "altered, or signed by another key") from None


# --- the files' contents --------------------------------------------------------------------

def _numbers(values: object, what: str, n: int | None = None, lo: float = -1e12,
             hi: float = 1e12) -> list[float]:
    if not isinstance(values, list) or (n is not None and len(values) != n):
        raise limits.OutOfRange(f"{what} must be a list of {n if n is not None else 'some'} "
                                "numbers")
    return [limits.finite(v, what, lo, hi) for v in values]


def _check_regression(obj: dict, what: str) -> None:
    n = len(FEATURE_NAMES)
    _numbers(obj.get("mean"), f"{what} mean", n)
    _numbers(obj.get("scale"), f"{what} scale", n, 1e-300, 1e12)
    _numbers(obj.get("coef"), f"{what} coef", n)
    limits.finite(obj.get("intercept"), f"{what} intercept", -1e12, 1e12)
    xs = _numbers(obj.get("iso_x"), f"{what} iso_x")
    ys = _numbers(obj.get("iso_y"), f"{what} iso_y", len(xs), 0.0, 1.0)
    if len(xs) < 2 or any(b < a for a, b in zip(xs, xs[1:], strict=False)) or \
            any(b < a for a, b in zip(ys, ys[1:], strict=False)):
        raise limits.OutOfRange(f"{what} iso_x and iso_y must be 2 or more non-decreasing "
                                "points")


def _check_map(obj: object, what: str) -> None:
    """A monotone map of [0, 1] onto [0, 1]: 2 or more non-decreasing points."""
    if not isinstance(obj, dict) or set(obj) != {"x", "y"}:
        raise limits.OutOfRange(f"{what} must be an object with x and y")
    xs = _numbers(obj["x"], f"{what} x", None, 0.0, 1.0)
    ys = _numbers(obj["y"], f"{what} y", len(xs), 0.0, 1.0)
    if len(xs) < 2 or any(b <= a for a, b in zip(xs, xs[1:], strict=False)) or \
            any(b < a for a, b in zip(ys, ys[1:], strict=False)):
        raise limits.OutOfRange(f"{what}: x must rise and y must not fall, 2 or more points")


def read_confidence(data: bytes) -> ConfidenceModel:
    """A confidence calibration, every number checked (finite, the feature count, a
    monotone calibration within [0, 1], a positive distance reference)."""
    obj = _json(data, "confidence.json")
    try:
        _check_regression(obj, "confidence")
        if obj.get("ood_mean") is not None:
            mean = _numbers(obj["ood_mean"], "confidence ood_mean")
            whiten = obj.get("ood_whiten")
            if not isinstance(whiten, list) or len(whiten) != len(mean):
                raise limits.OutOfRange("confidence ood_whiten must be square, as ood_mean")
            for row in whiten:
                _numbers(row, "confidence ood_whiten", len(mean))
            limits.finite(obj.get("ood_ref"), "confidence ood_ref", 1e-12, 1e12)
        limits.finite(obj.get("ood_power", 2.0), "confidence ood_power", 0.0, 16.0)
        if obj.get("busy") is not None:
            if not isinstance(obj["busy"], dict):
                raise limits.OutOfRange("confidence busy must be an object")
            _check_regression(obj["busy"], "confidence busy")
        limits.finite(obj.get("busy_from", 0.5), "confidence busy_from", 0.0, 1e6)
        for key in ("recalibration", "recalibration_busy"):
            if obj.get(key) is not None:
                _check_map(obj[key], f"confidence {key.replace('_', ' ')}")
        return ConfidenceModel(**obj)
    except TypeError as exc:
        raise BundleError(f"confidence.json: {exc}") from None
    except limits.OutOfRange as exc:
        raise BundleError(f"confidence.json: {exc}") from None


def read_error_model(data: bytes) -> ErrorModel:
    """The value policy's error model, every weight finite and non-negative, each quality
    1-100, each ground bias positive."""
    obj = _json(data, "error_model.json")
    try:
        _numbers(obj.get("onboard"), "onboard weights", 4, 0.0, 1e6)
        for name in ("ground", "ground_scale"):
            table = obj.get(name, {})
            if not isinstance(table, dict) or (name == "ground" and not table):
                raise limits.OutOfRange(f"{name} must be an object by JPEG quality")
            for q, v in table.items():
                if not (isinstance(q, str) and q.isdigit() and 1 <= int(q) <= 100):
                    raise limits.OutOfRange(f"{name}: qualities are '1'-'100', got {q!r}")
                if name == "ground":
                    _numbers(v, f"ground[{q}]", 2, 0.0, 1e6)
                else:
                    limits.finite(v, f"ground_scale[{q}]", 1e-3, 1e3)
        limits.finite(obj.get("prior_count"), "prior_count", 0.0, 1e6)
        return ErrorModel(**obj)
    except TypeError as exc:
        raise BundleError(f"error_model.json: {exc}") from None
    except limits.OutOfRange as exc:
        raise BundleError(f"error_model.json: {exc}") from None


def read_thresholds(data: bytes) -> dict[str, float]:
    """The selection band a bundle sets: some of ``THRESHOLDS``, each in [0, 1], conf_p not
    above conf_q when both are given (against the configuration in force: when applied)."""
    obj = _json(data, "thresholds.json")
    if not obj or set(obj) - set(THRESHOLDS):
        raise BundleError(f"thresholds.json: an object of some of {list(THRESHOLDS)}")
    try:
        out = {k: limits.finite(v, k, 0.0, 1.0) for k, v in obj.items()}
        if len(out) == 2:
            check_thresholds(out["conf_p"], out["conf_q"])
    except ValueError as exc:
        raise BundleError(f"thresholds.json: {exc}") from None
    return out


def _json(data: bytes, name: str) -> dict:
    try:
        obj = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleError(f"{name}: not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise BundleError(f"{name}: a JSON object")
    return obj


READERS = {"confidence": read_confidence, "error_model": read_error_model,
           "thresholds": read_thresholds}


def read_contents(files: dict[str, bytes]) -> dict:
    """Each JSON file of a bundle parsed and checked (role -> object); an ONNX model is
    checked by running it (``shared.uplink.parity``), not here."""
    return {role: READERS[role](data) for role, data in files.items() if role in READERS}


# --- building (the ground) and opening (the satellite) --------------------------------------

def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def build(files: dict[str, bytes], *, version: int, model: str, model_sha256: str,
          private_key, satellites: tuple[str, ...] = (), canary: dict | None = None,
          note: str = "", created: str | None = None) -> bytes:
    """A signed, serialised bundle of ``files`` (role -> bytes), checked as a satellite
    will check it; ValueError (BundleError) when it would be refused."""
    unknown = sorted(set(files) - set(ROLE_FILES))
    if unknown or not files:
        raise BundleError(f"a bundle holds some of {sorted(ROLE_FILES)}; got {sorted(files)}")
    read_contents(files)
    if "onnx" in files:
        model_sha256 = sha256_hex(files["onnx"])
    entries = tuple(FileEntry(role, ROLE_FILES[role], len(data), sha256_hex(data))
                    for role, data in sorted(files.items()))
    manifest = Manifest(version, created or now_rfc3339(), model, model_sha256, entries,
                        tuple(satellites), canary, note)
    data = manifest.to_bytes()
    Manifest.from_bytes(data)  # what the satellite will check, checked here first
    blob = link_pb2.UpdateBundle(
        manifest=data, signature=sign(data, private_key),
        files=[link_pb2.BundleFile(name=e.name, data=files[e.role]) for e in entries]
    ).SerializeToString()
    if len(blob) > limits.MAX_BUNDLE_BYTES:
        raise BundleError(f"the bundle is {len(blob)} bytes; at most "
                          f"{limits.MAX_BUNDLE_BYTES}")
    return blob


@dataclass(frozen=True)
class OpenedBundle:
    manifest: Manifest
    files: dict[str, bytes] = field(repr=False)  # role -> bytes, each checked
    manifest_bytes: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def open_bundle(blob: bytes, public_key) -> OpenedBundle:
    """A bundle's manifest and files once its signature, its manifest and every file check
    out; BundleError saying which check failed. Nothing is parsed before the signature is
    verified but the message's framing."""
    from google.protobuf.message import DecodeError

    if len(blob) > limits.MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle larger than {limits.MAX_BUNDLE_BYTES} bytes")
    try:
        msg = link_pb2.UpdateBundle.FromString(blob)
    except DecodeError as exc:
        raise BundleError(f"not a bundle: {exc}") from None
    verify_signature(msg.manifest, msg.signature, public_key)
    manifest = Manifest.from_bytes(msg.manifest)
    by_name = {}
    for f in msg.files:
        if f.name in by_name:
            raise BundleError(f"file {f.name[:64]!r} appears twice")
        by_name[f.name] = bytes(f.data)
    expected = {e.name: e for e in manifest.files}
    if set(by_name) != set(expected):
        raise BundleError(f"the files {[n[:64] for n in sorted(by_name)[:8]]} are not the "
                          f"manifest's {sorted(expected)}")
    files = {}
    for name, data in by_name.items():
        entry = expected[name]
        if len(data) != entry.size:
            raise BundleError(f"{name}: {len(data)} bytes, the manifest says {entry.size}")
        if sha256_hex(data) != entry.sha256:
            raise BundleError(f"{name}: sha256 does not match the manifest (corrupted)")
        files[entry.role] = data
    return OpenedBundle(manifest, files, bytes(msg.manifest), bytes(msg.signature))

