"""Charts drawn on the server as SVG: a knowledge base's timeline, durations and tokens. Pure.

Why SVG from the server rather than a chart library in the browser: the charts are a
timeline and two bar series, a few dozen lines here; they then need no JavaScript at all, no
vendored bundle to keep patched, nothing to load on an offline host, and they work under a
Content-Security-Policy without `unsafe-inline` (colours come from classes in the page's
style sheet, never from `style` attributes). Each outcome is one `<path>` of rectangles, so
a knowledge base's whole retention (thousands of jobs) stays a few kilobytes per chart.

Every number drawn is also in the jobs table below the charts; each chart has a `<title>`
and `role="img"` for screen readers. No outside text is drawn (names live in the HTML).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from watcher.core.browse import point_state
from watcher.core.records import JobPoint

Value = Callable[[JobPoint], float | None]


@dataclass(frozen=True, slots=True)
class Frame:
    """The drawing area: size in pixels and the room kept for labels."""

    width: int = 960
    height: int = 120
    left: int = 56
    bottom: int = 18


def _paths(rects: dict[str, list[str]]) -> str:
    return "".join(
        f'<path class="o-{escape(cls)}" d="{" ".join(parts)}"/>'
        for cls, parts in sorted(rects.items())
    )


def _rect(x: float, y: float, w: float, h: float) -> str:
    return f"M{x:.1f} {y:.1f}h{w:.1f}v{h:.1f}h{-w:.1f}z"


def _svg(frame: Frame, title: str, body: str, kind: str) -> Markup:
    return Markup(
        f'<svg class="chart chart-{kind}" viewBox="0 0 {frame.width} {frame.height}" '
        f'role="img" aria-label="{escape(title)}" preserveAspectRatio="none">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _label(x: float, y: float, words: str, anchor: str = "start") -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}">{escape(words)}</text>'


def timeline(points: Sequence[JobPoint], end: datetime, frame: Frame | None = None) -> Markup:
    """Every job on one time axis (first job to `end`, the API's clock now), coloured by outcome.

    A job spans its start to its finish (a running one to `end`); one too short to see is
    drawn 2 px wide. Jobs without a time are left out (they are in the table).
    """
    frame = frame or Frame(height=44)
    spans = [(p, start) for p in points if (start := p.started_at or p.created_at) is not None]
    title = f"Timeline of {len(spans)} jobs, coloured by outcome"
    if not spans:
        return _svg(frame, title, _label(frame.left, 24, "no jobs yet"), "timeline")
    begin = min(start for _, start in spans)
    scale = (frame.width - frame.left) / max((end - begin).total_seconds(), 1.0)
    rects: dict[str, list[str]] = {}
    bar = frame.height - frame.bottom - 4
    for p, start in spans:
        stop = p.finished_at or end
        x = frame.left + (start - begin).total_seconds() * scale
        w = max((stop - start).total_seconds() * scale, 2.0)
        rects.setdefault(point_state(p), []).append(_rect(x, 2, w, bar))
    labels = _label(frame.left, frame.height - 4, _day(begin)) + _label(
        frame.width, frame.height - 4, _day(end), "end"
    )
    return _svg(frame, title, _paths(rects) + labels, "timeline")


def bars(
    points: Sequence[JobPoint],
    value: Value,
    *,
    title: str,
    unit: Callable[[float], str],
    frame: Frame | None = None,
) -> Markup:
    """One bar per job (oldest on the left), its height `value(job)`, coloured by outcome.

    Jobs without a value (not finished, no tokens reported) leave a gap; the axis is labelled
    with the largest value and the first and last job's dates.
    """
    frame = frame or Frame()
    values = [(p, value(p)) for p in points]
    known = [v for _, v in values if v is not None]
    top = max(known, default=0.0)
    if not points or not known:
        return _svg(frame, title, _label(frame.left, 24, "no data yet"), "bars")
    plot_h = frame.height - frame.bottom - 2
    slot = (frame.width - frame.left) / len(points)
    width = min(max(slot * 0.8, 0.6), 24.0)  # a few jobs make bars, not walls
    rects: dict[str, list[str]] = {}
    for i, (p, v) in enumerate(values):
        if v is None:
            continue
        h = max(plot_h * (v / top), 1.0) if top > 0 else 1.0
        rects.setdefault(point_state(p), []).append(
            _rect(frame.left + i * slot, 2 + plot_h - h, width, h)
        )
    first, last = points[0].created_at, points[-1].created_at
    labels = (
        _label(frame.left - 6, 12, unit(top), "end")
        + _label(frame.left - 6, plot_h + 2, "0", "end")
        + f'<line class="axis" x1="{frame.left}" y1="{plot_h + 2}" x2="{frame.width}" '
        f'y2="{plot_h + 2}"/>'
    )
    if first is not None:
        labels += _label(frame.left, frame.height - 2, _day(first))
    if last is not None:
        labels += _label(frame.width, frame.height - 2, _day(last), "end")
    return _svg(frame, title, _paths(rects) + labels, "bars")


def duration_of(point: JobPoint) -> float | None:
    """A finished job's duration in seconds."""
    return None if point.duration is None else point.duration.total_seconds()


def tokens_of(point: JobPoint) -> float | None:
    """A job's tokens, as reported."""
    return None if point.tokens is None else float(point.tokens)


def short_duration(secs: float) -> str:
    """`4h`, `12m`, `45s`: an axis label."""
    delta = timedelta(seconds=secs)
    if delta >= timedelta(hours=1):
        return f"{secs / 3600:.1f}h"
    if delta >= timedelta(minutes=1):
        return f"{secs / 60:.0f}m"
    return f"{secs:.0f}s"


def short_count(n: float) -> str:
    """`1.2M`, `35k`, `800`: an axis label."""
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}k"
    return f"{n:.0f}"


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
