"""The offline studio: the subject cut out on this server and set on a backdrop painted from the prompt."""

from __future__ import annotations

from services import masks, novita, offline
from services.engines.base import OFFLINE, Handle, Job, Progress, timed


class Studio:
    name, family, remote, redraws = OFFLINE, OFFLINE, False, False

    def submit(self, job: Job) -> Handle:
        def make() -> bytes:
            cut = masks.layers(job.data, job.scope)  # the subject is cut once per photo: variants reuse it
            return offline.on_backdrop(cut.subject, cut.alpha, job.prompt, job.image_type)

        return timed(self.name, make, job.image_type)

    def collect(self, handle: Handle, job: Job, progress: Progress | None = None) -> novita.ReplaceResult:
        return handle.result


ENGINE = Studio()
