"""Novita's replace-background: the seed's synchronous call, retired by Novita on 2026-07-22 and kept for a
gateway or dedicated endpoint that still serves it (`NOVITA_MODEL=replace-background`)."""

from __future__ import annotations

from services import novita
from services.engines.base import NOVITA, Handle, Job, MadeAtOnce


class SeedReplace(MadeAtOnce):
    name, family, remote, redraws = novita.SEED_MODEL, NOVITA, True, False

    def submit(self, job: Job) -> Handle:
        result = novita.replace_background(job.data, job.prompt, job.image_type, api_key=job.api_key)
        return Handle(self.name, result=result)



ENGINE = SeedReplace()
