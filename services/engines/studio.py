"""The offline studio: the subject cut out on this server and set on a backdrop painted from the prompt."""

from __future__ import annotations

from services import novita, offline
from services.engines.base import OFFLINE, Handle, Job, Progress, timed


class Studio:
    name, family, remote, redraws = OFFLINE, OFFLINE, False, False

    def submit(self, job: Job) -> Handle:
        return timed(self.name, lambda: offline.replace_background(job.data, job.prompt, job.image_type),
                     job.image_type)

    def collect(self, handle: Handle, job: Job, progress: Progress | None = None) -> novita.ReplaceResult:
        return handle.result


ENGINE = Studio()
