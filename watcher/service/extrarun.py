"""Making the extra reads the planner allows, counting what they spend, keeping what they learn.

Each cycle, after the poll was recorded and its alerts delivered, `ExtraReads.run` builds one
`Candidate` per registered read and target (`watcher.service.extras.REGISTRY`), asks the pure
planner (`watcher.core.extras.plan`, through the cycle's one `ReadsBudget`, which the
schedules, reports and prices share) which are due within the share, makes them, and counts
the requests each really sent (retries and pages included) over the sliding hour. A read that
fails is logged and waits its cadence; nothing here fails the cycle. A database status that
changes health is recorded as `database_unhealthy` / `database_recovered` first, then the
facts are stored (a crash between the two replays the same event id: a no-op).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType

import structlog

from watcher.core.clocks import Elapsed
from watcher.core.errors import SourceError
from watcher.core.extras import Candidate, ExtraPlan, Scope
from watcher.core.facts import (
    DatabaseStatus,
    HealthChange,
    KbFacts,
    StoredFact,
    agents_by_kb,
    decode_agent,
    decode_database,
    decode_sources,
    decode_uuids,
    health_change,
    health_transition,
)
from watcher.core.model import KnowledgeBase
from watcher.core.ports import ExtraSource, FactStore
from watcher.core.state import Transition
from watcher.service.budget import SPENT_KEY, ReadsBudget
from watcher.service.extras import AGENT, AGENTS, DATA_SOURCES, DATABASE, REGISTRY, ExtraRead

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ExtrasSettings:
    """`per_hour`: the extra reads' share (`share_per_hour`); `reserve`: below this
    `ratelimit-remaining` the budget is tight and no extra read is made; `spent_key`: where
    the store's meta keeps what the budget spent in the last hour (`budget.spent_key`);
    `ceiling`: the client's own requests per minute (`api.max_requests_per_minute`) and
    `fastest`: the shortest poll interval (`poll.active_interval`, seconds), with which the
    extra reads leave every poll of a minute its room (`ReadsBudget.minute_polls`)."""

    per_hour: int
    reserve: int = 500
    spent_key: str = SPENT_KEY  # the meta key of the spent hour (one per token lease)
    ceiling: int | None = None
    fastest: float | None = None


class ExtraReads:
    """Runs the registered extra reads within their share (`budget`); keeps their facts."""

    def __init__(
        self,
        source: ExtraSource,
        store: FactStore,
        budget: ReadsBudget,
        record: Callable[[tuple[Transition, ...]], Awaitable[None]],
        registry: Sequence[ExtraRead] = REGISTRY,
    ) -> None:
        self.source, self.store, self.budget = source, store, budget
        self.record, self.registry = record, tuple(registry)
        self._facts: dict[tuple[str, str], StoredFact] | None = None
        self._version = 0  # bumped whenever `_facts` changes: what the memos below key on
        self._kb_facts: tuple[int, Mapping[str, KbFacts]] | None = None
        self._candidates: tuple[tuple[object, ...], list[Candidate]] | None = None
        self._unknown: set[str] = set()

    async def run(self, kbs: Sequence[KnowledgeBase], now: Elapsed, wall: datetime) -> ExtraPlan:
        """Make the extra reads due now that fit; returns the plan that was followed."""
        facts = await self._load()
        if (blocked := self.budget.blocked(now)) is not None:
            return ExtraPlan((), self.budget.bucket, blocked)
        chosen = self.budget.plan(self.candidates(kbs, now), now)
        names = {kb.uuid: kb.name for kb in kbs}
        latest = {kb.uuid: kb.last_indexing_job.uuid for kb in kbs if kb.last_indexing_job}
        fresh: list[StoredFact] = []
        events: list[Transition] = []
        for candidate in chosen.reads:
            fact = await self._read(candidate, now, latest.get(candidate.target))
            if fact is None:
                continue
            if fact.kind == DATABASE:
                self._log_unknown(fact)
                fact, event = _health(facts.get((fact.subject, DATABASE)), fact, names, wall)
                events += [event] if event is not None else []
            fresh.append(fact)
        if events:
            await self.record(tuple(events))
        await self.store.save_facts(fresh, wall)
        if fresh:
            facts.update({(f.subject, f.kind): f for f in fresh})
            self._version += 1
        if chosen.reads or chosen.waiting:
            log.info("extra_reads_made", made=len(chosen.reads), waiting=chosen.waiting,
                     reason=chosen.reason.value, spent_hour=self.spent_hour(now))  # fmt: skip
        return chosen

    def candidates(self, kbs: Sequence[KnowledgeBase], now: Elapsed) -> list[Candidate]:
        """One candidate per registered read and target of its scope (a new list each call).

        A candidate depends on the facts, the KBs' latest jobs and the boot, never on `now`
        itself (its last read is an elapsed reading): the schedules' plan and the reads after
        the poll ask for the same list in one cycle, and the second time it is copied, not
        made again (keyed by the facts' version and the KBs: the very objects both times, so
        the comparison stops at identity)."""
        key = (self._version, now.boot, tuple(kbs))
        if self._candidates is not None and self._candidates[0] == key:
            return list(self._candidates[1])
        made = self._make_candidates(kbs, now)
        self._candidates = (key, made)
        return list(made)

    def _make_candidates(self, kbs: Sequence[KnowledgeBase], now: Elapsed) -> list[Candidate]:
        facts = self._facts or {}
        agents = facts.get(("", AGENTS))
        targets = {
            Scope.ACCOUNT: [""],
            Scope.KB: [kb.uuid for kb in kbs],
            Scope.AGENT: list(decode_uuids(agents.value)) if agents else [],
        }
        latest = {kb.uuid: kb.last_indexing_job.uuid for kb in kbs if kb.last_indexing_job}
        out = []
        for read in self.registry:
            for target in targets[read.spec.scope]:
                stored = facts.get((target, read.spec.name))
                last = stored.read_at if stored else None
                since = now.since(last) if last is not None else None
                moved = read.spec.on_new_job and stored is not None and (
                    target in latest and stored.marker != latest[target]
                )  # fmt: skip
                last_s = None if since is None else now.seconds - since.total_seconds()
                out.append(Candidate(read.spec, target, last_s, moved))
        return out

    def fact(self, target: str, name: str) -> StoredFact | None:
        """The last result of the read `name` for `target` (None before it was ever made)."""
        return (self._facts or {}).get((target, name))

    def spent_hour(self, now: Elapsed) -> int:
        """Requests the extra reads (all kinds charged to the share) sent in the last hour."""
        return self.budget.spent_hour(now)

    def kb_facts(self) -> Mapping[str, KbFacts]:
        """What is known of each KB, for alerts (`watcher.core.facts.with_facts`) and status
        (decoded again only when the facts changed)."""
        if self._kb_facts is None or self._kb_facts[0] != self._version:
            self._kb_facts = (self._version, MappingProxyType(self._decode_kb_facts()))
        return self._kb_facts[1]

    def _decode_kb_facts(self) -> dict[str, KbFacts]:
        facts = self._facts or {}
        listed = facts.get(("", AGENTS))
        current = set(decode_uuids(listed.value)) if listed else set()
        agents = [
            a for (s, k), f in facts.items()
            if k == AGENT and s in current and (a := decode_agent(s, f.value)) is not None
        ]  # fmt: skip
        feeds = agents_by_kb(agents)
        out: dict[str, KbFacts] = {}
        for (subject, kind), fact in facts.items():
            known = out.get(subject, KbFacts(agents=feeds.get(subject, ())))
            if kind == DATA_SOURCES:
                known = replace(known, sources=decode_sources(fact.value))
            elif kind == DATABASE:
                status, raw = decode_database(fact.value)
                known = replace(known, database=status, database_raw=raw)
            else:
                continue
            out[subject] = known
        for kb, names in feeds.items():
            out.setdefault(kb, KbFacts(agents=names))
        return out

    async def load(self) -> None:
        """Read the stored facts (once; later runs keep them in memory)."""
        await self._load()

    async def _load(self) -> dict[tuple[str, str], StoredFact]:
        if self._facts is None:
            self._facts = {(f.subject, f.kind): f for f in await self.store.load_facts()}
            self._version += 1
        return self._facts

    def _log_unknown(self, fact: StoredFact) -> None:
        """A database word the enum does not know: kept, never alerted, logged once each."""
        status, raw = decode_database(fact.value)
        if status is DatabaseStatus.UNKNOWN and raw is not None and raw not in self._unknown:
            self._unknown.add(raw)
            log.warning("api_unknown_value", value=raw, kb=fact.subject, field="database_status")

    async def _read(
        self, candidate: Candidate, now: Elapsed, marker: str | None
    ) -> StoredFact | None:
        """Make one read and count its requests; None (logged) when it failed."""
        read = next(r for r in self.registry if r.spec is candidate.spec)
        try:
            with self.budget.measure(read.spec.name, now):
                value: str | None = await read.fetch(self.source, candidate.target)
        except SourceError as exc:
            log.warning("extra_read_failed", read=read.spec.name, target=candidate.target,
                        error=str(exc))  # fmt: skip
            value = None
        if value is None:
            stored = (self._facts or {}).get((candidate.target, read.spec.name))
            return replace(stored, read_at=now) if stored is not None else None
        return StoredFact(candidate.target, read.spec.name, value, now, marker)


def _health(
    before: StoredFact | None, after: StoredFact, names: dict[str, str | None], wall: datetime
) -> tuple[StoredFact, Transition | None]:
    """The new database fact with its spell count, and the event its change makes, if any."""
    old = decode_database(before.value)[0] if before is not None else None
    new, raw = decode_database(after.value)
    episode = before.episode if before is not None else 0
    if new is None:
        return replace(after, episode=episode), None
    if new is DatabaseStatus.UNKNOWN:
        # an unknown word changes nothing: keep what was known, read again at the cadence
        kept = before.value if before is not None else after.value
        return replace(after, value=kept, episode=episode), None
    change = health_change(old, new)
    if change is HealthChange.UNHEALTHY:
        episode += 1
    text = raw or new.value
    event = health_transition(after.subject, names.get(after.subject), change, text, wall, episode)
    return replace(after, episode=episode), event
