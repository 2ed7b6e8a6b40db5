"""`watcher report JOB`: a kept report given back safely to a terminal and to `--output`.

Real parts: a kept report on the shelf beside a store path, a real pseudo-terminal (`os.openpty`)
for stdout, real files for `--output`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watcher.config import Config
from watcher.config.load import load_config
from watcher.edges.reports import ReportShelf, reports_dir
from watcher.service.report_command import NoReport, write_report

JOB = "4d588143-399c-5617-a9d9-5144e3f48dc6"
HOSTILE = (
    b"file,status,error\r\n"
    b"files/a.pdf,failed,\x1b]0;pwned\x07\x1b[2J\xe2\x80\xaecleared\r\n"
    b"files/b.pdf,indexed,\r\n"
)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    state = tmp_path / "state" / "watcher.db"
    path = tmp_path / "watcher.toml"
    path.write_text(
        f'[state]\npath = "{state}"\n[[routes]]\nname = "ops"\nurls = ["json://127.0.0.1:9/"]\n',
        encoding="utf-8",
    )
    loaded = load_config(path, env={}, require_token=False, check_urls=False)
    return loaded


async def _kept(config: Config, data: bytes = HOSTILE) -> None:
    await ReportShelf(reports_dir(config.state.path)).keep(JOB, data)


async def test_a_report_printed_on_a_terminal_cannot_drive_the_terminal(config: Config) -> None:
    await _kept(config)
    master, slave = os.openpty()
    try:
        with os.fdopen(slave, "wb") as terminal:
            assert await write_report(config, JOB, None, stdout=terminal) == 0
        shown = os.read(master, 65536)
    finally:
        os.close(master)
    assert b"\x1b" not in shown and b"\x07" not in shown  # no escape sequence, no bell
    assert "\u202e".encode() not in shown  # no bidi override
    assert b"\\x1b]0;pwned\\x07" in shown  # shown as visible escapes instead
    assert b"files/b.pdf,indexed," in shown  # the rows stay rows


async def test_a_report_piped_or_written_is_given_back_byte_for_byte(
    config: Config, tmp_path: Path
) -> None:
    await _kept(config)
    piped = tmp_path / "piped.csv"
    with piped.open("wb") as pipe:
        assert await write_report(config, JOB, None, stdout=pipe) == 0
    assert piped.read_bytes() == HOSTILE
    out = tmp_path / "out.csv"
    assert await write_report(config, JOB, out) == 0
    assert out.read_bytes() == HOSTILE


async def test_output_never_replaces_an_existing_file_without_force(
    config: Config, tmp_path: Path
) -> None:
    await _kept(config)
    existing = tmp_path / "precious.txt"
    existing.write_bytes(b"keep me\n")
    with pytest.raises(NoReport, match="exists"):
        await write_report(config, JOB, existing)
    assert existing.read_bytes() == b"keep me\n"


async def test_output_with_force_overwrites_in_place_keeping_mode_and_links(
    config: Config, tmp_path: Path
) -> None:
    await _kept(config)
    target = tmp_path / "shared.csv"
    target.write_bytes(b"old\n")
    target.chmod(0o644)
    alias = tmp_path / "alias.csv"
    alias.symlink_to(target)
    assert await write_report(config, JOB, alias, force=True) == 0
    assert alias.is_symlink()  # the link is still a link...
    assert target.read_bytes() == HOSTILE  # ...to the file now holding the report
    assert target.stat().st_mode & 0o777 == 0o644


async def test_output_into_a_missing_directory_is_one_clear_error_leaving_nothing(
    config: Config, tmp_path: Path
) -> None:
    await _kept(config)
    with pytest.raises(NoReport, match="No such file or directory"):
        await write_report(config, JOB, tmp_path / "nowhere" / "r.csv")
    assert not (tmp_path / "nowhere").exists()
