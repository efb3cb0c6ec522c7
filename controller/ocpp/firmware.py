"""Firmware updates for every OCPP version: 1.6 UpdateFirmware, the 1.6 whitepaper's SignedUpdateFirmware and
2.0.1 UpdateFirmware (L01). The firmware is a release of this package (:mod:`controller.releases`).

One update at a time, in the order L01 gives: (DownloadScheduled until retrieveDateTime) Downloading, with the
request's retries, Downloaded, the signature checked against an installed ManufacturerRootCertificate
(SignatureVerified, or InvalidSignature and nothing installed), (InstallScheduled until installDateTime)
Installing into a new environment while charging goes on, then, once no transaction runs (idle EVSEs are made
Unavailable meanwhile, L01.FR.07), InstallRebooting and a restart into the new release through the guard. The new
release reports Installed (and the security event FirmwareUpdated) after its BootNotification is Accepted; one
that does not get that far within ``firmware.trial_seconds`` is rolled back, and the old release reports
InstallationFailed.

1.6's plain UpdateFirmware carries no signature: the station fetches ``<location>.sig``, a JSON object with the
same ``signature`` and ``signingCertificate`` as a signed request (``evse firmware pack --key`` writes it), and
refuses an image without one.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller import firmware_guard
from controller.config import redact
from controller.domain.types import EvseStatus
from controller.ocpp.certificates import CertificateProblem, Kind, load_chain
from controller.ocpp.firmware_request import FirmwareRequest, FwStatus
from controller.ocpp.transfer import TransferError, download, location_problem
from controller.releases import SNAPSHOT, ImageProblem, Releases, VerifyFailed, running_release
from controller.tasks import until

if TYPE_CHECKING:
    from cryptography import x509

    from controller.ocpp.client import OcppClient

log = logging.getLogger(__name__)

#: The setting that keeps the update under way across restarts (and tells the new release what it was).
JOB = "firmware.job"
DOWNLOAD_TIMEOUT = 900.0
#: A retrieve or install time less than this ahead is now: the station's clock follows the CSMS's currentTime,
#: which has whole seconds, so a CSMS's "now" can be up to a second ahead of the station's.
NOW_WITHIN = 1.0


class Firmware:
    """Runs the station's firmware updates."""

    def __init__(self, client: OcppClient) -> None:
        self.client = client
        self.status = FwStatus.IDLE
        self.current: FirmwareRequest | None = None
        self._task: asyncio.Task[None] | None = None
        self._trial_task: asyncio.Task[None] | None = None  # the new release's bound, until it is confirmed
        self._installing = False
        self._ended = False  # the current update has ended (its last status may still be on its way)
        self._blocked: list[int] = []  # EVSEs made Unavailable while the restart waits for transactions
        self._report: FwStatus | None = None  # what the last run's update ended as, told after the boot

    def switched(self) -> bool:
        """This start follows a switch to a new release (into it, or back from it): a firmware update's boot
        (2.0.1 reason FirmwareUpdate), however many starts it took."""
        job = self._job()
        return job is not None and job.get("phase") == "rebooting"

    @property
    def releases(self) -> Releases:
        """The station's releases (``firmware.releases_dir``)."""
        return Releases(self.client.config.firmware.releases_dir)

    # -------------------------------------------------------------- requests

    def request(self, request: FirmwareRequest) -> str:
        """An update request: Accepted, AcceptedCanceled (one under way was cancelled for it), Rejected or
        InvalidCertificate (the signing certificate cannot be trusted: nothing is downloaded)."""
        problem = self.releases.problem() or location_problem(request.location) or self._settling()
        if problem is not None:
            log.warning("firmware update refused: %s", problem)
            return "Rejected"
        if request.signing_certificate:
            from controller.ocpp.signing import ImageRefused, check_signer

            try:
                check_signer(request.signing_certificate, self._roots(), self.client.clock.utcnow())
            except ImageRefused as exc:
                log.warning("firmware update refused: %s", exc)
                self.client.security_event("InvalidFirmwareSigningCertificate")
                return "InvalidCertificate"
        answer = "Accepted"
        if self._task is not None and not self._task.done() and not self._ended:
            if self._installing:
                log.warning("firmware update refused: the one under way is installing and cannot be cancelled")
                return "Rejected"
            self._task.cancel()
            self._restore_availability()
            answer = "AcceptedCanceled"
            log.info("firmware update %s cancelled for a new request", self.current and self.current.request_id)
        self._start(request)
        return answer

    def _settling(self) -> str | None:
        """Why no update can start now: the last one is not told yet, or this release is still on trial (an
        update from it would lose the way back to the confirmed one)."""
        running = running_release(self.releases.root)
        trial = firmware_guard.read_json(self.releases.root / firmware_guard.TRIAL)
        if self._report is not None or (trial is not None and running is not None
                                        and trial.get("release") == running):
            return "the last update has not ended yet (its release awaits an Accepted BootNotification)"
        return None

    def _start(self, request: FirmwareRequest) -> None:
        self.current = request
        self._ended = False
        self._save({"request": request.to_json(), "phase": "download"})
        self._task = asyncio.get_running_loop().create_task(self._run(request), name="ocpp-firmware")

    def start(self) -> None:
        """At start: resume an update a restart interrupted, or settle the one that restarted into a release."""
        job = self._job()
        if job is None:
            return
        request = FirmwareRequest.from_json(job["request"])
        self.current = request
        if job.get("phase") != "rebooting":
            log.info("firmware update from %s resumed after the restart", redact(request.location))
            self._start(request)
            return
        root, running = self.releases.root, running_release(self.releases.root)
        if running == job.get("release"):
            self._report = FwStatus.INSTALLED
            trial = firmware_guard.read_json(root / firmware_guard.TRIAL)
            if trial is not None and trial.get("release") == running:
                seconds = max(0.0, float(trial.get("deadline", 0)) - self.client.clock.utcnow().timestamp())
                self._trial_task = asyncio.get_running_loop().create_task(self._trial(seconds),
                                                                          name="firmware-trial")
        else:
            outcome = firmware_guard.read_json(root / firmware_guard.OUTCOME) or {}
            log.error("firmware update to release %s failed: %s; running release %s again", job.get("release"),
                      outcome.get("why", "it did not start"), running)
            self._report = FwStatus.INSTALLATION_FAILED

    async def booted(self) -> None:
        """After an Accepted BootNotification: end the new release's trial and report how the update ended."""
        if self.releases.problem() is not None:
            return  # not installed as releases: nothing is on trial, nothing was updated
        root, running = self.releases.root, running_release(self.releases.root)
        trial = firmware_guard.read_json(root / firmware_guard.TRIAL) or {}
        if running is not None and firmware_guard.confirm(root, running):
            # Whatever the job says (a power cut may have lost it): this release came up.
            if self._trial_task is not None:
                self._trial_task.cancel()
            gone = self.releases.prune({running, str(trial.get("previous", ""))})
            log.info("release %s confirmed (Accepted by the CSMS); removed old releases: %s", running,
                     ", ".join(gone) or "none")
        if self._report is None or self.current is None:
            return
        (self.client.store.path.parent / SNAPSHOT).unlink(missing_ok=True)
        if self._report == FwStatus.INSTALLED:
            self.client.security_event("FirmwareUpdated")
        elif running is not None:
            # Back on the release that was confirmed before: the failed one (and what it would have fallen back
            # to) is not needed any more.
            gone = self.releases.prune({running})
            log.info("removed releases after the failed update: %s", ", ".join(gone) or "none")
        report, self._report = self._report, None
        (root / firmware_guard.OUTCOME).unlink(missing_ok=True)
        await self._finish(report, self.current)

    async def close(self) -> None:
        """Stop an update under way (shutdown); a download starts again at the next start."""
        for task in (self._task, self._trial_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    # -------------------------------------------------------------- the update

    async def _run(self, request: FirmwareRequest) -> None:
        clock = self.client.clock
        wait = (request.retrieve_at - clock.utcnow()).total_seconds()
        if wait > NOW_WITHIN:
            await self._tell(FwStatus.DOWNLOAD_SCHEDULED, request)
            await asyncio.sleep(wait)
        image = await self._download(request)
        if image is None:
            return
        if not await self._verify(request, image):
            return
        wait = (request.install_at - clock.utcnow()).total_seconds() if request.install_at else 0.0
        if wait > NOW_WITHIN:
            await self._tell(FwStatus.INSTALL_SCHEDULED, request)
            await asyncio.sleep(wait)
        await self._install(request, image)

    async def _download(self, request: FirmwareRequest) -> bytes | None:
        for attempt in range(request.retries + 1):
            await self._tell(FwStatus.DOWNLOADING, request)
            try:
                image = await asyncio.wait_for(asyncio.to_thread(download, request.location), DOWNLOAD_TIMEOUT)
            except (TransferError, TimeoutError) as exc:
                log.warning("firmware download from %s failed (attempt %d of %d): %s", redact(request.location),
                            attempt + 1, request.retries + 1, exc)
                if attempt < request.retries:
                    await asyncio.sleep(request.retry_interval)
                continue
            log.info("firmware image downloaded: %d bytes from %s", len(image), redact(request.location))
            await self._tell(FwStatus.DOWNLOADED, request)
            return image
        await self._finish(FwStatus.DOWNLOAD_FAILED, request)
        return None

    async def _verify(self, request: FirmwareRequest, image: bytes) -> bool:
        signature, certificate = request.signature, request.signing_certificate
        why = ""
        if request.request_id is None:  # 1.6 UpdateFirmware: the signature comes beside the image
            try:
                sidecar = json.loads(await asyncio.to_thread(download, request.location + ".sig"))
                signature, certificate = str(sidecar["signature"]), str(sidecar["signingCertificate"])
            except (TransferError, ValueError, KeyError, TypeError) as exc:
                why = f"{redact(request.location)}.sig is missing or unreadable ({exc})"
        if not why and not (signature and certificate):
            why = "the request carries no signature and signing certificate"
        if not why:
            from controller.ocpp.signing import INVALID_CERTIFICATE, ImageRefused, verify_image

            try:
                digest = verify_image(image, str(signature), str(certificate), self._roots(),
                                      self.client.clock.utcnow())
                log.info("firmware image signature verified (SHA-256 %s)", digest)
                await self._tell(FwStatus.SIGNATURE_VERIFIED, request)
                return True
            except ImageRefused as exc:
                why = str(exc)
                if exc.status == INVALID_CERTIFICATE:
                    self.client.security_event("InvalidFirmwareSigningCertificate")
        log.error("firmware image refused, nothing installed: %s", why)
        self.client.security_event("InvalidFirmwareSignature")
        await self._finish(FwStatus.INVALID_SIGNATURE, request)
        return False

    async def _install(self, request: FirmwareRequest, image: bytes) -> None:
        self._installing = True
        await self._tell(FwStatus.INSTALLING, request)
        config = self.client.config.source
        try:
            name = await asyncio.to_thread(self.releases.install, image, hashlib.sha256(image).hexdigest(),
                                           config if config.startswith("/") else None)
        except (ImageProblem, VerifyFailed, OSError) as exc:
            log.error("firmware installation failed: %s", exc)
            await self._finish(FwStatus.INSTALL_VERIFICATION_FAILED if isinstance(exc, VerifyFailed)
                               else FwStatus.INSTALLATION_FAILED, request)
            return
        log.info("release %s installed", name)
        commands = self.client.commands
        if commands.busy():
            log.info("the restart into release %s waits for the running transactions to end", name)
            self._block_new_sessions()
            await until(lambda: not commands.busy(), math.inf, 1.0)
        try:
            previous = await asyncio.to_thread(self._switch, request, name)
        except Exception as exc:  # any failure here must end in a report and the EVSEs back in use
            log.error("the switch to release %s failed, staying on this one: %s", name, exc)
            await self._finish(FwStatus.INSTALLATION_FAILED, request)
            return
        await self._tell(FwStatus.INSTALL_REBOOTING, request)
        log.warning("restarting into release %s (on trial for %g s; %s is kept to go back to)", name,
                    self.client.config.firmware.trial_seconds, previous)
        self.client.restart_for_firmware()

    def _switch(self, request: FirmwareRequest, name: str) -> str:
        """Snapshot the database, record the job, then switch (in this order: a power cut between any two steps
        leaves a station that starts, and a new release that knows it is the update's)."""
        root = self.releases.root
        previous = firmware_guard.current(root) or running_release(root) or ""
        self.client.store.backup(self.client.store.path.parent / SNAPSHOT)
        self._save({"request": request.to_json(), "phase": "rebooting", "release": name, "previous": previous})
        self.releases.switch_to(name, previous, self.client.config.firmware.trial_seconds)
        return previous

    async def _trial(self, seconds: float) -> None:
        """The new release's bound: an Accepted BootNotification within its trial, or back to the old one (once
        no transaction runs: a charge is not cut for it)."""
        await asyncio.sleep(seconds)
        if self._report == FwStatus.INSTALLED:  # not yet told: no Accepted boot so far
            commands = self.client.commands
            await until(lambda: not commands.busy(), math.inf, 1.0)
            log.error("release on trial: no Accepted BootNotification in time; restarting into the previous one")
            self.client.restart_for_firmware()

    def _block_new_sessions(self) -> None:
        for evse in self.client.station.evses.values():
            if evse.state != EvseStatus.UNAVAILABLE.value and not evse.inoperative_pending:
                evse.set_operative(False)  # Unavailable now, or when its transaction ends; not persisted
                self._blocked.append(evse.id)

    def _restore_availability(self) -> None:
        for evse_id in self._blocked:
            self.client.station.evses[evse_id].set_operative(True)
        self._blocked.clear()

    # -------------------------------------------------------------- state

    async def _tell(self, status: FwStatus, request: FirmwareRequest) -> None:
        self.status = status
        message = self.client.adapter.firmware_status_of(status, request)
        if message is not None:
            await self.client.send(message)

    def _roots(self) -> list[x509.Certificate]:
        roots = self.client.certificates.roots(Kind.MANUFACTURER)
        provisioned = self.client.config.firmware.manufacturer_root_file
        if provisioned:
            try:
                roots += load_chain(Path(provisioned).read_text())
            except (OSError, CertificateProblem) as exc:
                log.error("firmware.manufacturer_root_file %s cannot be read (%s): only installed roots count",
                          provisioned, exc)
        return roots

    def _job(self) -> dict[str, Any] | None:
        raw = self.client.store.get_setting(JOB)
        try:
            job = json.loads(raw) if raw else None
            if job is not None:
                FirmwareRequest.from_json(job["request"])
        except (ValueError, KeyError, TypeError) as exc:
            log.error("the stored firmware update cannot be read (%s); it is dropped", exc)
            self._settle()
            return None
        return job if isinstance(job, dict) else None

    def _save(self, job: dict[str, Any]) -> None:
        self.client.store.set_setting(JOB, json.dumps(job))

    async def _finish(self, status: FwStatus, request: FirmwareRequest) -> None:
        """The update ended as ``status``: settled first (a request arriving while this is told starts afresh),
        then told."""
        self._settle()
        self._ended = True
        message = self.client.adapter.firmware_status_of(status, request)
        if self.current is request:
            self.status = FwStatus.IDLE  # what a trigger reports once the end is on its way (2.0.1 F06)
        if message is not None:
            await self.client.send(message)

    def _settle(self) -> None:
        self._installing = False
        self._restore_availability()
        with self.client.store.atomic() as db:
            self.client.store.drop_setting(db, JOB)

