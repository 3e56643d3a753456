"""The admin's delivery statistics: `GET /api/admin/notification-stats?from=&to=&bucket=day`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint
from quart_schema import document_response, validate_querystring

from domain import permissions
from gateway.api.guard import authenticated, current_actor
from gateway.api.openapi import answers
from gateway.api.resources import resources
from gateway.services import stats

blueprint = Blueprint("stats", __name__, url_prefix="/api/admin")


class StatsQuery(BaseModel):
    """`from`, `to`: a day (`2026-03-01`, in the plant's time zone `CLOCK_TIMEZONE`; the
    day of `to` included) or an instant with its offset; by default the last 30 days,
    today included. `bucket`: `day`."""

    model_config = ConfigDict(populate_by_name=True)
    from_: str | None = Field(default=None, alias="from", max_length=40)
    to: str | None = Field(default=None, max_length=40)
    bucket: Literal["day"] = "day"


class TypeCounts(BaseModel):
    created: int
    delivered_live: int = Field(description="reached an open app (framed on a connection)")
    pushed: int = Field(description="the push service accepted it for at least one device")
    push_failed: int = Field(description="a device's final attempt failed")
    delivered_inapp: int = Field(description="a page displayed it while visible (seen)")
    clicked: int
    read: int
    dead_lettered: int = Field(description="set aside after failing again and again (all time)")


class Histogram(BaseModel):
    bounds_ms: list[int] = Field(description="upper bounds of the buckets")
    counts: list[int] = Field(description="counts[i]: below bounds_ms[i]; the last: above all")
    count: int
    p50_ms: float | None
    p90_ms: float | None


class Latency(BaseModel):
    frame: Histogram = Field(description="write → frame on one of the person's connections")
    push: Histogram = Field(description="write → push accepted by the push service")


class Escalated(BaseModel):
    assignee: int
    supervisors: int
    admins: int


class AnswerDay(BaseModel):
    day: str
    alerts: int = Field(description="critical alerts that began waiting for an answer")
    answered: int
    waiting: int = Field(description="not answered yet")
    median_s: float | None = Field(description="median time to answer, seconds")
    p90_s: float | None = Field(description="90th percentile of the time to answer, seconds")
    escalated: int = Field(description="alerts that climbed at least one step of the ladder")
    escalated_to: Escalated


class Stats(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    bucket: Literal["day"]
    timezone: str
    types: dict[str, TypeCounts]
    latency: Latency
    acknowledgement: list[AnswerDay]


@blueprint.get("/notification-stats")
@answers(200, 403)
@authenticated
@validate_querystring(StatsQuery)
@document_response(Stats)
async def notification_stats(query_args: StatsQuery) -> dict[str, Any]:
    permissions.require_admin(current_actor(), "see delivery statistics")
    res = resources()
    span = stats.window(
        query_args.from_, query_args.to, res.settings.clock_timezone, datetime.now(UTC)
    )
    return await stats.notification_stats(res.pool, res.redis, res.keys, span)
