"""Write validated reports to Redis in one round trip (a Lua script per service)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from string import Template

import redis

from store import keys, minute_hash
from store.config import Settings
from web.ingest import Outcome, Report


def comment_json(report: Report) -> str:
    """Return the comment list entry of a report, or '' when it has no comment."""
    if not report.comment:
        return ""
    at = datetime.fromtimestamp(report.at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {"at": at, "region": report.region, "problem": report.problem, "text": report.comment},
        ensure_ascii=False,
        separators=(",", ":"),
    )


# KEYS: stream, comments, first, idempotency marker, then (counts, prefixes) per minute
# (ascending), then one dedup marker per report. ARGV: dedup seconds, retention seconds,
# stream cap, comments cap, source, idempotency seconds (0: none), number of minutes, the
# minutes, then per report: minute index, region|problem, network hash, comment JSON or ''.
# Field names: store/minute_hash.py, substituted below. Returns accepted, duplicates and
# 1 when an earlier call with the same idempotency marker already wrote (nothing written).
_WRITE_TEMPLATE = """
local idem = tonumber(ARGV[6])
if idem > 0 then
  local done = redis.call('GET', KEYS[4])
  if done then
    local sep = string.find(done, ':', 1, true)
    return {tonumber(string.sub(done, 1, sep - 1)), tonumber(string.sub(done, sep + 1)), 1}
  end
end
local nm = tonumber(ARGV[7])
local base = 7 + nm
local nr = (#ARGV - base) / 4
local dk = 4 + 2 * nm
local keep = tonumber(ARGV[2])
local accepted, commented = 0, false
local counts, nets = {}, {}
for m = 1, nm do counts[m] = {}; nets[m] = {} end
for i = 1, nr do
  local a = base + (i - 1) * 4
  local m = tonumber(ARGV[a + 1])
  local c = counts[m][ARGV[a + 2]]
  if not c then c = {0, 0}; counts[m][ARGV[a + 2]] = c end
  c[1] = c[1] + 1
  if redis.call('SET', KEYS[dk + i], '1', 'NX', 'EX', ARGV[1]) then
    accepted = accepted + 1
    c[2] = c[2] + 1
    if ARGV[a + 4] ~= '' then
      redis.call('LPUSH', KEYS[2], ARGV[a + 4])
      commented = true
    end
  end
  nets[m][#nets[m] + 1] = ARGV[a + 3]
end
for m = 1, nm do
  local hash, pfx = KEYS[3 + 2 * m], KEYS[4 + 2 * m]
  for field, c in pairs(counts[m]) do
    redis.call('HINCRBY', hash, '$reports' .. field, c[1])
    -- Always written, 0 included: a missing field would read as "no reporter data" and
    -- count the raw (duplicate) reports instead.
    redis.call('HINCRBY', hash, '$reporters' .. field, c[2])
    local sep = string.find(field, '$sep', 1, true)
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'minute', ARGV[7 + m],
      'region', string.sub(field, 1, sep - 1), 'problem', string.sub(field, sep + #'$sep'),
      'source', ARGV[5], 'reports', c[1], 'counted', c[2])
  end
  redis.call('PFADD', pfx, unpack(nets[m]))
  local expires = tonumber(ARGV[7 + m]) * 60 + keep
  redis.call('EXPIREAT', hash, expires)
  redis.call('EXPIREAT', pfx, expires)
end
redis.call('EXPIRE', KEYS[1], keep)
if commented then
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1)
  redis.call('EXPIRE', KEYS[2], keep)
end
local first = redis.call('GET', KEYS[3])
if (not first) or tonumber(first) > tonumber(ARGV[8]) then
  redis.call('SET', KEYS[3], ARGV[8], 'EX', keep)
else
  redis.call('EXPIRE', KEYS[3], keep)
end
if idem > 0 then
  redis.call('SET', KEYS[4], accepted .. ':' .. (nr - accepted), 'EX', idem)
end
return {accepted, nr - accepted, 0}
"""

WRITE_SCRIPT = Template(_WRITE_TEMPLATE).substitute(
    reports=minute_hash.REPORTS + minute_hash.SEP,
    reporters=minute_hash.REPORTERS + minute_hash.SEP,
    sep=minute_hash.SEP,
)
"""The ingestion script, with the minute-hash field names of store/minute_hash.py."""


IDEMPOTENCY_SECONDS = 86400
"""How long the outcome of a request with an Idempotency-Key is kept for its retries."""

REGISTER_SECONDS = 60.0
"""How often a process re-adds a service it writes to the service index (`outage:services`):
once a minute instead of every request, and a lost index heals within a minute."""


class ReportStore:
    """Write reports in one round trip: one script call per service, pipelined."""

    def __init__(self, settings: Settings):
        self.dedup_seconds = settings.dedup_seconds
        self.keep_seconds = settings.retention_days * 86400
        self.stream_maxlen = settings.stream_maxlen
        self.comments_maxlen = settings.comments_maxlen
        self.sha = hashlib.sha1(WRITE_SCRIPT.encode()).hexdigest()
        self._registered: dict[str, float] = {}

    def command(
        self, service: str, reports: Sequence[Report], idempotency: str = ""
    ) -> list[object]:
        """Return the EVALSHA arguments that store one service's reports (once per
        `idempotency` token, a keyed hash, when one is given)."""
        minutes = sorted({r.minute for r in reports})
        index = {m: i + 1 for i, m in enumerate(minutes)}
        keylist: list[str] = [
            keys.stream(service),
            keys.comments(service),
            keys.first_minute(service),
            keys.idempotency(service, idempotency or "-"),
        ]
        for m in minutes:
            keylist += (keys.minute_counts(service, m), keys.prefixes(service, m))
        args: list[object] = [
            self.dedup_seconds,
            self.keep_seconds,
            self.stream_maxlen,
            self.comments_maxlen,
            reports[0].source,
            IDEMPOTENCY_SECONDS if idempotency else 0,
            len(minutes),
            *minutes,
        ]
        for r in reports:
            keylist.append(keys.dedup(service, r.reporter))
            args += (
                index[r.minute],
                minute_hash.leaf(r.region, r.problem),
                r.network,
                comment_json(r),
            )
        return [self.sha, len(keylist), *keylist, *args]

    def write(self, conn: redis.Redis, reports: Iterable[Report], idempotency: str = "") -> Outcome:
        """Store the reports; return how many were counted and how many were duplicates.

        With an `idempotency` token, each service's reports are written at most once: a
        retry gets the stored outcome of the call that wrote them (`replayed`)."""
        groups: dict[str, list[Report]] = {}
        for r in reports:
            groups.setdefault(r.service, []).append(r)
        if not groups:
            return Outcome(0, 0)
        commands = [self.command(svc, items, idempotency) for svc, items in groups.items()]
        now = time.monotonic()
        register = [
            s
            for s in groups
            if now - self._registered.get(s, -REGISTER_SECONDS) >= REGISTER_SECONDS
        ]
        results = self._run(conn, commands, register)
        for service in register:
            self._registered[service] = now
        return Outcome(
            sum(int(r[0]) for r in results),
            sum(int(r[1]) for r in results),
            replayed=all(int(r[2]) for r in results),
        )

    def _run(self, conn: redis.Redis, commands: list[list[object]], register: list[str]) -> list:
        out = self._send(conn, commands, register)
        missing = [i for i, r in enumerate(out) if isinstance(r, redis.exceptions.NoScriptError)]
        if missing:  # a NOSCRIPT reply wrote nothing, so only those calls are repeated
            conn.script_load(WRITE_SCRIPT)
            again = self._send(conn, [commands[i] for i in missing], [])
            for i, result in zip(missing, again, strict=True):
                out[i] = result
        for result in out:
            if isinstance(result, Exception):
                raise result
        return out

    def _send(self, conn: redis.Redis, commands: list[list[object]], register: list[str]) -> list:
        """One round trip: EVALSHA per service (redis-py's pipelined Script would add a
        SCRIPT EXISTS round trip), plus SADD to the service index when due."""
        if len(commands) == 1 and not register:
            try:
                return [conn.execute_command("EVALSHA", *commands[0])]
            except redis.exceptions.NoScriptError as exc:
                return [exc]
        pipe = conn.pipeline(transaction=False)
        if register:
            pipe.sadd(keys.ACTIVE_SERVICES, *register)
        for cmd in commands:
            pipe.execute_command("EVALSHA", *cmd)
        out = pipe.execute(raise_on_error=False)
        if register and isinstance(out[0], Exception):
            raise out[0]
        return out[1:] if register else out
