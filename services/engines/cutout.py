"""The transparent cut-out: the subject alone, made on this server, PNG or WEBP."""

from __future__ import annotations

from services import offline, touchup
from services.engines.base import CUTOUT, Handle, Job, MadeAtOnce, timed


class Cutout(MadeAtOnce):
    name, family, remote, redraws = CUTOUT, CUTOUT, False, False

    def submit(self, job: Job) -> Handle:
        def make() -> bytes:
            if job.image_type not in ("png", "webp"):  # before the model runs: JPEG has no transparency
                raise offline.NoTransparency
            cut = touchup.layers(job.data, job.scope, job.strokes)  # cut once per photo and reused
            return offline.alone(cut.subject, cut.alpha, job.image_type)

        return timed(self.name, make, job.image_type)



ENGINE = Cutout()
