"""Per-file reports kept under the state directory: `<state dir>/reports/<job uuid>.csv`.

The bytes are written to a temporary file in the same directory and renamed into place, so a
report is either whole or absent. Reports are pruned with the history (`state.retention`, on
the file's modification time, the wall clock). A job uuid that is not a plain identifier
(letters, digits, `-`, `_`) is refused, so no name from the API reaches outside the directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path

from watcher.core.errors import StoreError

_NAME = re.compile(r"[0-9A-Za-z_-]{1,100}")
SUFFIX = ".csv"


def reports_dir(state_path: Path) -> Path:
    """Where the reports of the store at `state_path` are kept."""
    return state_path.absolute().parent / "reports"


class ReportShelf:
    """The reports directory of one store; every method runs its file work off the loop."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path_of(self, job_uuid: str) -> Path:
        """The file of `job_uuid`'s report; ValueError for a uuid that is not a plain name."""
        if not _NAME.fullmatch(job_uuid):
            raise ValueError("a job uuid holds only letters, digits, '-' and '_'")
        return self.directory / f"{job_uuid}{SUFFIX}"

    async def keep(self, job_uuid: str, data: bytes) -> Path:
        """Write the report whole (replacing an older copy); `StoreError` when it cannot be."""
        return await asyncio.to_thread(self._keep, self.path_of(job_uuid), data)

    def _keep(self, path: Path, data: bytes) -> Path:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".report-", dir=self.directory)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, path)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StoreError(f"could not keep the report in {self.directory}: {exc}") from exc
        return path

    async def read(self, job_uuid: str) -> bytes | None:
        """The kept report of `job_uuid`, or None when none is kept."""
        path = self.path_of(job_uuid)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"could not read the report {path}: {exc}") from exc

    async def prune(self, before: datetime) -> int:
        """Delete reports last written before `before` (wall clock); returns how many."""
        return await asyncio.to_thread(self._prune, before.timestamp())

    def _prune(self, cutoff: float) -> int:
        deleted = 0
        try:
            files = list(self.directory.glob(f"*{SUFFIX}"))
        except OSError:
            return 0
        for path in files:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
            except OSError:
                continue
        return deleted
