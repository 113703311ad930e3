"""The offline studio: the subject cut out on this server and set on a backdrop painted from the prompt."""

from __future__ import annotations

from services import offline, touchup
from services.engines.base import OFFLINE, Handle, Job, MadeAtOnce, timed


class Studio(MadeAtOnce):
    name, family, remote, redraws = OFFLINE, OFFLINE, False, False

    def submit(self, job: Job) -> Handle:
        def make() -> bytes:
            cut = touchup.layers(job.data, job.scope, job.strokes)  # cut once per photo: variants reuse it
            return offline.on_backdrop(cut.subject, cut.alpha, job.prompt, job.image_type)

        return timed(self.name, make, job.image_type)



ENGINE = Studio()
