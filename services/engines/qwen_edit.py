"""Novita's Qwen-Image Edit: the default photographic engine, an async task (submit, poll, fetch the link)."""

from __future__ import annotations

from services import novita
from services.engines.base import NOVITA, Handle, Job, Progress


class QwenEdit:
    name, family, remote, redraws = novita.EDIT_MODEL, NOVITA, True, True

    def submit(self, job: Job) -> Handle:
        submitted = novita.submit_edit(job.data, job.prompt, job.image_type, api_key=job.api_key)
        return Handle(self.name, task_id=submitted.task_id)

    def collect(self, handle: Handle, job: Job, progress: Progress | None = None) -> novita.ReplaceResult:
        return novita.wait_for_edit(handle.task_id, job.image_type, api_key=job.api_key,
                                    submitted_at=handle.submitted_at, progress=progress)


ENGINE = QwenEdit()
