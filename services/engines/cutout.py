"""The transparent cut-out: the subject alone, made on this server, PNG or WEBP."""

from __future__ import annotations

from services import novita, offline
from services.engines.base import CUTOUT, Handle, Job, Progress, timed


class Cutout:
    name, family, remote, redraws = CUTOUT, CUTOUT, False, False

    def submit(self, job: Job) -> Handle:
        return timed(self.name, lambda: offline.transparent(job.data, job.image_type), job.image_type)

    def collect(self, handle: Handle, job: Job, progress: Progress | None = None) -> novita.ReplaceResult:
        return handle.result


ENGINE = Cutout()
