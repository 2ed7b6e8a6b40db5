"""The simulated API's schedule and report operations, and the object storage behind reports.

- `GET /v2/gen-ai/scheduled-indexing/knowledge-base/{uuid}` answers `apiGetScheduledIndexingOutput`
  for a KB with a scenario schedule (`ScheduleSpec`): `next_run_at` is the first run at or
  after now, `last_ran_at` the one before it; `is_active` is false once `disable_schedule`
  ran. A KB without a schedule answers 404 (DigitalOcean documents nothing for that case).
- `GET /v2/gen-ai/indexing_jobs/{uuid}/details_signed_url` answers
  `apiGetIndexingJobDetailsSignedURLOutput` for a finished job, 404 otherwise. The URL points
  at `/_spaces/reports/{uuid}.csv` on the same port, signed like an S3 presigned URL
  (`X-Amz-Signature`, an HMAC of the path under the simulator's token): that path is served
  without a bearer token (as object storage is) and refuses a wrong signature with 403.
- The report is a CSV (`file,data_source_uuid,status,error`) made from the job's data sources:
  one row per indexed item (up to 20 per source) and one per failed item, whose error is the
  source's `error_msg` or a rotating set of file errors.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import math
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from watcher.simulator.backend import Backend
from watcher.simulator.scenario import ScheduleSpec
from watcher.simulator.world import NotFound, World

JsonObject = dict[str, Any]
SPACES = "/_spaces/reports/"
_FILE_ERRORS = (
    "unsupported file type",
    "file exceeds the maximum size",
    "could not extract text from the file",
)
_MAX_INDEXED_ROWS = 20


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_at(world: World, kb_uuid: str, spec: ScheduleSpec, now: datetime) -> JsonObject:
    """The schedule's `apiScheduledIndexingInfo` as it reads at `now`."""
    first = world.t0 + timedelta(seconds=spec.next_run)
    every = timedelta(seconds=spec.every)
    runs = 0 if now <= first else math.ceil((now - first) / every)
    upcoming = first + runs * every
    off = world.schedules_off.get(kb_uuid)
    info: JsonObject = {
        "uuid": world.schedule_uuid(kb_uuid),
        "knowledge_base_uuid": kb_uuid,
        "is_active": off is None or now < off,
        "next_run_at": rfc3339(upcoming),
        "time": spec.time,
        "days": list(spec.days),
        "created_at": rfc3339(world.t0 - timedelta(days=30)),
        "updated_at": rfc3339(off if off is not None and now >= off else world.t0),
    }
    if runs:
        info["last_ran_at"] = rfc3339(upcoming - every)
    return info


def signature(token: str, job_uuid: str) -> str:
    """The simulated presigned URL's signature of one report."""
    return hmac.new(token.encode(), f"{SPACES}{job_uuid}.csv".encode(), hashlib.sha256).hexdigest()


def report_csv(job: JsonObject) -> bytes:
    """The per-file report of a finished job (see the module docstring)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["file", "data_source_uuid", "status", "error"])
    for source in job.get("data_source_jobs", []):
        uuid = source.get("data_source_uuid", "")
        indexed = min(int(source.get("indexed_item_count") or 0), _MAX_INDEXED_ROWS)
        for n in range(indexed):
            writer.writerow([f"docs/page-{n + 1}.html", uuid, "indexed", ""])
        for n in range(int(source.get("failed_item_count") or 0)):
            error = source.get("error_msg") or _FILE_ERRORS[n % len(_FILE_ERRORS)]
            writer.writerow([f"files/item-{n + 1}.pdf", uuid, "failed", error])
    return out.getvalue().encode()


class Extras:
    """The endpoint functions (see the module docstring)."""

    def __init__(self, sim: Backend, failure: type[Exception]) -> None:
        self.sim, self.failure = sim, failure

    def _missing(self) -> Exception:
        return self.failure(404, "The resource you requested could not be found.")

    async def get_schedule(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]

        def read(world: World, now: datetime) -> JsonObject:
            spec = world.schedules.get(uuid)
            if spec is None or not world.exists(uuid, now):
                raise NotFound(uuid)
            return schedule_at(world, uuid, spec, now)

        try:
            return JSONResponse({"indexing_info": self.sim.read(read)})
        except NotFound as exc:
            raise self._missing() from exc

    async def signed_url(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        job = self._finished_job(uuid)
        if job is None:
            raise self._missing()
        now = self.sim.now()
        query = (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential=SIMKEY%2F{now:%Y%m%d}%2Ftor1%2Fs3%2Faws4_request"
            f"&X-Amz-Date={now:%Y%m%dT%H%M%SZ}&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
            f"&X-Amz-Signature={signature(self.sim.token, uuid)}"
        )
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"signed_url": f"{base}{SPACES}{uuid}.csv?{query}"})

    async def report(self, request: Request) -> Response:
        uuid = request.path_params["uuid"]
        given = request.query_params.get("X-Amz-Signature", "")
        if not hmac.compare_digest(given, signature(self.sim.token, uuid)):
            return Response(b"<Error><Code>AccessDenied</Code></Error>", 403)
        job = self._finished_job(uuid)
        if job is None:
            return Response(b"<Error><Code>NoSuchKey</Code></Error>", 404)
        return Response(report_csv(job), media_type="text/csv")

    def _finished_job(self, uuid: str) -> JsonObject | None:
        try:
            job = self.sim.read(lambda world, now: world.job(uuid, now))
        except NotFound:
            return None
        return job if job.get("is_report_available") else None
