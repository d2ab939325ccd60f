"""Update bundles onboard: verified when they arrive, applied between scenes, the previous
one kept, a bad one refused.

In ``<data_dir>/bundles/``:

- ``v<N>/``: a verified bundle, staged or in force: its signed manifest (``manifest.json``,
  ``manifest.sig``), its files, and the files in force it does not replace, copied from the
  bundle in force when it was staged; ``effective.json`` lists each role's file, sha256 and
  the version it came with. Each folder is whole, so the bundle in force and the previous
  one each load alone.
- ``state.json``: the versions in force, previous and staged, and those refused with why.
- ``transfer/``: a bundle still being received (``onboard.link.uplink``).

**Arrival** (``receive``, the uplink's thread): the signature against the ground's public
key, the manifest's every field, each file's size and sha256 (``shared.uplink.bundle``);
then: newer than the version in force, for this model pair, for the counter in force (or
bringing its own), each JSON file parsed and its numbers checked. Then it is staged. Anything
else is refused: logged, kept in ``state.json`` with its reason (reported to the ground at
the next ``Offer``), never fetched again; the bundle in force stays.

**Applying** (``between_scenes``, the processing worker before it plans a scene, never
during one): a staged bundle is loaded whole: its files against ``effective.json`` and its
manifest's signature again; a new ONNX counter through the parity check on the pair's
canary tiles (``shared.uplink.parity``); the thresholds against the configuration; the
counter, confidence and error model in force after it run on the canary tiles (counts
finite, confidences in [0, 1], expected errors finite and non-negative). Only then is it
swapped in, every part at once; the bundle that was in force becomes the previous one. A
check that fails refuses it, and the one in force stays.

**At start** (``restore``): the bundle in force is loaded with the same checks; when that
fails (a file damaged on disk) the previous one is rolled back to, and failing that the
shipped files. ``rollback`` puts the previous one back by hand.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from onboard.counter import session_options
from onboard.link.uplink import UplinkPuller
from shared.uplink.bundle import (
    ROLE_FILES,
    BundleError,
    Manifest,
    OpenedBundle,
    open_bundle,
    read_confidence,
    read_contents,
    read_error_model,
    read_thresholds,
    sha256_hex,
    verify_signature,
)
from shared.uplink.keys import fingerprint, load_public_key
from shared.uplink.parity import canary_batch, canary_counts, parity_failure

log = logging.getLogger("targetfuse.onboard.bundles")
MAX_REFUSED = 64  # refusals remembered (the oldest forgotten first)


@dataclass
class InForce:
    """What a bundle changes, as the counter and the planner hold it."""

    version: int
    confidence: object
    error_model: object
    cfg: object
    session: object
    input_name: str
    card: object
    variant: str


class BundleKeeper:
    def __init__(self, folder: Path, public_key, processor):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.public_key, self.processor = public_key, processor
        self.shipped = self._current(0)
        self._lock = threading.RLock()
        self.state = self._read_state()

    # --- state -------------------------------------------------------------------------------

    def _current(self, version: int) -> InForce:
        c, p = self.processor.counter, self.processor
        return InForce(version, c.confidence, p.error_model, p.cfg, c.session, c.input_name,
                       c.card, c.variant)

    def _read_state(self) -> dict:
        state = {"in_force": 0, "previous": 0, "staged": 0, "refused": {}, "applied_at": None}
        with contextlib.suppress(OSError, ValueError):  # none yet: nothing applied
            state.update(json.loads((self.folder / "state.json").read_text()))
        return state

    def _write_state(self) -> None:
        tmp = self.folder / "state.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=1))
        os.replace(tmp, self.folder / "state.json")

    @property
    def version(self) -> int:
        return int(self.state["in_force"])

    def report(self) -> tuple[int, int, str]:
        """What the next ``Offer`` tells the ground: in force, the last refused, why."""
        refused = self.state["refused"]
        if not refused:
            return self.version, 0, ""
        last = max(refused, key=lambda v: refused[v]["at"])
        return self.version, int(last), refused[last]["reason"]

    def wants(self, version: int) -> bool:
        return version > self.version and version != self.state["staged"] and \
            str(version) not in self.state["refused"]

    def _refuse(self, version: int, reason: str) -> None:
        # One printable line (what onnxruntime says may span lines): reported to the ground,
        # whose rule for the report refuses control characters.
        reason = " ".join("".join(c if c.isprintable() else " " for c in reason).split())
        log.error("uplink bundle %s refused: %s; bundle %s stays in force", version, reason,
                  self.version, extra={"bundle_version": version})
        refused = self.state["refused"]
        refused[str(version)] = {"reason": reason[:1000], "at": time.time()}
        for old in sorted(refused, key=lambda v: refused[v]["at"])[:-MAX_REFUSED]:
            del refused[old]
        if self.state["staged"] == version:
            self.state["staged"] = 0
        self._write_state()
        self._remove(version)

    def _remove(self, version: int) -> None:
        if version and version not in (self.version, self.state["previous"]):
            shutil.rmtree(self.folder / f"v{version}", ignore_errors=True)

    # --- arrival -----------------------------------------------------------------------------

    def receive(self, blob: bytes, version: int) -> bool:
        """Verify a received bundle and stage it to apply between scenes; False (refused,
        logged, recorded) when any check fails."""
        with self._lock:
            try:
                opened = open_bundle(blob, self.public_key)
                self._check_arrival(opened, version)
                self._stage(opened)
            except BundleError as exc:
                self._refuse(version, str(exc))
                return False
            old = self.state["staged"]
            self.state["staged"] = version
            self._write_state()
            if old and old != version:
                self._remove(old)
            log.warning("uplink bundle %s verified (%s) and staged: applied before the next "
                        "scene", version, ", ".join(opened.manifest.roles()),
                        extra={"bundle_version": version})
            return True

    def _model_sha(self) -> str:
        return self.processor.counter.card.sha256

    def _check_arrival(self, opened: OpenedBundle, version: int) -> None:
        m = opened.manifest
        if m.version != version:
            raise BundleError(f"the manifest says version {m.version}, the ground offered "
                              f"{version}")
        if m.version <= self.version:
            raise BundleError(f"version {m.version} is not newer than {self.version} in force "
                              "(a replayed bundle)")
        card = self.shipped.card
        if m.model != card.name:
            raise BundleError(f"for model pair {m.model!r}; this satellite counts with "
                              f"{card.name!r}")
        if "onnx" not in m.roles() and m.model_sha256 != self._model_sha():
            raise BundleError(f"fit for the counter {m.model_sha256[:12]}, the one in force is "
                              f"{self._model_sha()[:12]}")
        if "onnx" in m.roles() and m.canary["file_sha256"] != \
                card.extra.get("canary_tiles_sha256"):
            raise BundleError("its canary counts are for other canary tiles than this "
                              "pair's (or the pair ships none): the new counter cannot be "
                              "checked")
        read_contents(opened.files)

    def _stage(self, opened: OpenedBundle) -> None:
        """Write ``v<N>/``: the bundle's files and the ones it leaves in force."""
        m = opened.manifest
        base = self._effective(self.version) if self.version else {}
        tmp = self.folder / f"v{m.version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        effective = {}
        for role, entry in base.items():
            if role not in opened.files:
                shutil.copyfile(self.folder / f"v{self.version}" / entry["name"],
                                tmp / entry["name"])
                effective[role] = entry
        for role, data in opened.files.items():
            (tmp / ROLE_FILES[role]).write_bytes(data)
            effective[role] = {"name": ROLE_FILES[role], "sha256": sha256_hex(data),
                               "version": m.version}
            if role == "onnx":
                effective[role]["canary"] = m.canary
        (tmp / "manifest.json").write_bytes(opened.manifest_bytes)
        (tmp / "manifest.sig").write_bytes(opened.signature)
        (tmp / "effective.json").write_text(json.dumps(effective, indent=1))
        final = self.folder / f"v{m.version}"
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)

    def _effective(self, version: int) -> dict:
        try:
            return json.loads((self.folder / f"v{version}" / "effective.json").read_text())
        except (OSError, ValueError) as exc:
            raise BundleError(f"bundle {version} on disk: no effective.json ({exc})") from None

    # --- loading and checking ----------------------------------------------------------------

    def load(self, version: int) -> InForce:
        """Bundle ``version`` from its folder, every check passed (BundleError else)."""
        folder = self.folder / f"v{version}"
        try:
            manifest_bytes = (folder / "manifest.json").read_bytes()
            verify_signature(manifest_bytes, (folder / "manifest.sig").read_bytes(),
                             self.public_key)
        except OSError as exc:
            raise BundleError(f"bundle {version} on disk: {exc.strerror}") from None
        if Manifest.from_bytes(manifest_bytes).version != version:  # checked, once more
            raise BundleError(f"bundle {version} on disk holds another version's manifest")
        files = {}
        for role, entry in self._effective(version).items():
            try:
                data = (folder / entry["name"]).read_bytes()
            except OSError as exc:
                raise BundleError(f"bundle {version}: {entry['name']}: {exc.strerror}") from None
            if role not in ROLE_FILES or sha256_hex(data) != entry["sha256"]:
                raise BundleError(f"bundle {version}: {entry['name']} does not match its "
                                  "sha256 (damaged on disk)")
            files[role] = (data, entry)
        base = self.shipped
        loaded = replace(base, version=version)
        if "confidence" in files:
            loaded.confidence = read_confidence(files["confidence"][0])
        if "error_model" in files:
            loaded.error_model = read_error_model(files["error_model"][0])
        if "thresholds" in files:
            try:
                loaded.cfg = replace(base.cfg, **read_thresholds(files["thresholds"][0]))
            except ValueError as exc:  # a band the configuration in force refuses
                raise BundleError(f"thresholds: {exc}") from None
        if "onnx" in files:
            self._load_model(loaded, *files["onnx"])
        model_sha = Manifest.from_bytes(manifest_bytes).model_sha256
        if model_sha != loaded.card.sha256:
            raise BundleError(f"bundle {version} was fit for the counter {model_sha[:12]}, "
                              f"not {loaded.card.sha256[:12]}")
        self._check_on_canary(loaded)
        return loaded

    def _canary(self) -> np.ndarray | None:
        return self.processor.counter.bundle.canary

    def _load_model(self, loaded: InForce, data: bytes, entry: dict) -> None:
        import onnxruntime as ort

        tiles = self._canary()
        if tiles is None:
            raise BundleError("this pair ships no canary tiles: a new counter cannot be "
                              "checked")
        counter = self.processor.counter
        try:
            session = ort.InferenceSession(data, session_options(counter.threads),
                                           providers=["CPUExecutionProvider"])
            name = session.get_inputs()[0].name
            got = canary_counts(lambda b: session.run(None, {name: b})[0],
                                canary_batch(tiles, counter.input_convention))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own kinds
            raise BundleError(f"the new counter does not run on the canary tiles: "
                              f"{str(exc)[:300]}") from None
        failure = parity_failure(entry["canary"]["counts"], got)
        if failure is not None:
            raise BundleError(f"the new counter fails its parity check: {failure}")
        loaded.session, loaded.input_name, loaded.variant = session, name, "uplinked"
        loaded.card = replace(loaded.card, sha256=entry["sha256"])

    def _trial(self, loaded: InForce):
        """A counter like the one in force, with ``loaded``'s parts."""
        trial = copy.copy(self.processor.counter)
        trial.session, trial.input_name, trial.card = loaded.session, loaded.input_name, \
            loaded.card
        trial.variant, trial.confidence = loaded.variant, loaded.confidence
        return trial

    def _check_on_canary(self, loaded: InForce) -> None:
        tiles = self._canary()
        if tiles is None or not len(tiles):
            return
        trial = self._trial(loaded)
        try:
            counts, conf, _ = trial.count_at(list(tiles), trial.input_size)
        except Exception as exc:  # noqa: BLE001
            raise BundleError(f"counting the canary tiles failed: {str(exc)[:300]}") from None
        if not np.isfinite(counts).all():
            raise BundleError("the counter gives non-finite counts on the canary tiles")
        if loaded.confidence is not None and not (np.isfinite(conf).all() and
                                                  ((conf >= 0) & (conf <= 1)).all()):
            raise BundleError("the confidence is not in [0, 1] on the canary tiles")
        if loaded.error_model is not None:
            err = loaded.error_model.onboard_error(counts, np.nan_to_num(conf, nan=0.0))
            if not (np.isfinite(err).all() and (err >= 0).all()):
                raise BundleError("the error model gives non-finite or negative errors on the "
                                  "canary tiles")

    def _swap(self, loaded: InForce) -> None:
        """Every part at once (the worker calls this between scenes only)."""
        c, p = self.processor.counter, self.processor
        c.session, c.input_name, c.card, c.variant = loaded.session, loaded.input_name, \
            loaded.card, loaded.variant
        c.confidence = loaded.confidence
        p.error_model, p.cfg, p.bundle_version = loaded.error_model, loaded.cfg, loaded.version

    # --- applying, restoring, rolling back ---------------------------------------------------

    def between_scenes(self) -> None:
        """Apply the staged bundle, if any (the processing worker, before a scene)."""
        with self._lock:
            version = int(self.state["staged"])
            if not version:
                return
            try:
                loaded = self.load(version)
            except BundleError as exc:
                self._refuse(version, str(exc))
                return
            before = self.version
            self._swap(loaded)
            old_previous = self.state["previous"]
            self.state.update(in_force=version, previous=before, staged=0,
                              applied_at=time.time())
            self._write_state()
            self._remove(old_previous)
            log.warning("uplink bundle %s in force (previous %s)", version, before,
                        extra={"bundle_version": version})

    def restore(self) -> None:
        """At start: the bundle in force again, else the previous one, else the shipped
        files (each fall-back logged)."""
        with self._lock:
            for version in (self.version, self.state["previous"]):
                if not version:
                    break
                try:
                    self._swap(self.load(version))
                except BundleError as exc:
                    log.error("uplink bundle %s on disk fails its checks (%s): rolling back",
                              version, exc, extra={"bundle_version": version})
                    self.state["refused"][str(version)] = {"reason": " ".join(
                        f"at start: {exc}".split())[:1000],
                                                           "at": time.time()}
                    continue
                self.state.update(in_force=version,
                                  previous=self.state["previous"] if version == self.version
                                  else 0)
                self._write_state()
                log.info("uplink bundle %s in force", version)
                return
            self._swap(self.shipped)
            self.state.update(in_force=0, previous=0)
            self._write_state()

    def rollback(self) -> int:
        """Put the previous bundle (0: the shipped files) back in force; the one left is
        recorded as refused (never fetched again). Returns the version now in force."""
        with self._lock:
            left, target = self.version, int(self.state["previous"])
            if not left:
                return 0
            loaded = self.shipped if not target else self.load(target)
            self._swap(loaded)
            self.state.update(in_force=target, previous=0)
            self.state["refused"][str(left)] = {"reason": "rolled back", "at": time.time()}
            self._write_state()
            self._remove(left)
            log.warning("uplink bundle %s rolled back: %s in force", left, target)
            return target

    def info(self) -> dict:
        return {"in_force": self.version, "previous": self.state["previous"],
                "staged": self.state["staged"], "applied_at": self.state["applied_at"],
                "refused": {v: r["reason"] for v, r in self.state["refused"].items()}}


class Uplink:
    """The uplink's parts onboard: the keeper (hooked into the processor) and the puller
    with its thread. Off, with a warning, without the ground's public key or a budget."""

    def __init__(self, settings, link, processor):
        self.keeper: BundleKeeper | None = None
        self.puller: UplinkPuller | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if settings.uplink_public_key_file is None or not settings.uplink_bytes_per_window:
            log.warning("no uplink: %s; the shipped calibration stays in force",
                        "no uplink_public_key_file (the ground's uplink-signing.pub)"
                        if settings.uplink_public_key_file is None
                        else "uplink_bytes_per_window=0")
            return
        key = load_public_key(settings.uplink_public_key_file)
        folder = Path(settings.data_dir) / "bundles"
        self.keeper = BundleKeeper(folder, key, processor)
        self.keeper.restore()
        processor.updates = self.keeper
        self.puller = UplinkPuller(link, self.keeper, folder / "transfer",
                                   settings.uplink_bytes_per_window, settings.uplink_poll_s)
        self._thread = threading.Thread(target=self.puller.run, args=(self._stop,),
                                        daemon=True, name="onboard-uplink")
        log.info("uplink on: bundles signed by the key %s (fingerprint %s), at most %d bytes "
                 "a window, kept in %s; bundle %s in force", settings.uplink_public_key_file,
                 fingerprint(key), settings.uplink_bytes_per_window, folder,
                 self.keeper.version)

    def start(self) -> None:
        if self._thread is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.ident is not None:
            self._thread.join(10)

    def state(self) -> dict:
        if self.keeper is None:
            return {"enabled": False, "in_force": 0}
        return {"enabled": True, **self.keeper.info(), "transfer": self.puller.state()}
