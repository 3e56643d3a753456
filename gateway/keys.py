"""The one home of every Redis key, stream and consumer-group name."""

from __future__ import annotations

from dataclasses import dataclass

ROUTER_GROUP = "router"
PUSH_GROUP = "push"


@dataclass(frozen=True)
class Keys:
    """Names under one prefix, so tests and tenants never collide."""

    prefix: str

    @property
    def domain_stream(self) -> str:
        """Every committed domain event, appended by the outbox relay."""
        return f"{self.prefix}events"

    @property
    def board_stream(self) -> str:
        """What every open app sees: board changes, presence, broadcasts to all."""
        return f"{self.prefix}board"

    def user_stream(self, user_id: int) -> str:
        """One person's notifications and badge counts."""
        return f"{self.prefix}user:{user_id}"

    @property
    def live_stream(self) -> str:
        """Every entry appended to any user stream, mirrored with its user and id: each
        gateway hub follows this one stream, whatever the number of users it serves."""
        return f"{self.prefix}live"

    @property
    def user_stream_pattern(self) -> str:
        return f"{self.prefix}user:*"

    @property
    def push_stream(self) -> str:
        """Notifications the push fan-out must consider."""
        return f"{self.prefix}push"

    @property
    def push_delayed(self) -> str:
        """Sorted set of notification ids waiting out the grace period, by due time."""
        return f"{self.prefix}push:delayed"

    @property
    def relay_published(self) -> str:
        """Sorted set of outbox ids already appended: makes the relay idempotent."""
        return f"{self.prefix}relay:published"

    @property
    def router_appended(self) -> str:
        """Sorted set of what the router appended: a redelivered event repeats nothing."""
        return f"{self.prefix}router:appended"

    @property
    def dead_letters(self) -> str:
        """Entries of any consumer group that failed again and again, set aside with their
        group, stream, id, error and attempts (and their own fields)."""
        return f"{self.prefix}dead-letters"

    def consumer_attempts(self, group: str) -> str:
        """Hash of entry id -> failures so far, for the group's failing entries."""
        return f"{self.prefix}attempts:{group}"

    @property
    def history_epoch(self) -> str:
        """The generation of the stream history: created by the first reader of a history,
        lost with it, renewed when another primary serves it (`gateway.history`), so a
        cursor of another generation is recognised."""
        return f"{self.prefix}history:epoch"

    @property
    def history_server(self) -> str:
        """The replication id of the Redis primary the generation was created on (another
        one, after a restart or a failover, starts a new generation) and when it began
        (`gateway.history`)."""
        return f"{self.prefix}history:server"

    @property
    def unread_versions(self) -> str:
        """Hash of user id -> version of the last unread counts appended to their stream:
        an older count arriving later is dropped."""
        return f"{self.prefix}unread:versions"

    def presence_connections(self, user_id: int) -> str:
        """Sorted set of a user's live connection ids, scored by expiry time."""
        return f"{self.presence_connections_prefix}{user_id}"

    @property
    def presence_connections_prefix(self) -> str:
        return f"{self.prefix}presence:conn:"

    @property
    def presence_online(self) -> str:
        """Sorted set of users believed online, scored by last-seen time."""
        return f"{self.prefix}presence:online"

    @property
    def presence_users(self) -> str:
        """Sorted set of users whose presence may change, scored by when: what the
        sweeper looks at."""
        return f"{self.prefix}presence:users"

    def presence_last_seen(self, user_id: int) -> str:
        return f"{self.presence_last_seen_prefix}{user_id}"

    @property
    def presence_last_seen_prefix(self) -> str:
        return f"{self.prefix}presence:last_seen:"

    def login_attempts(self, subject: str) -> str:
        return f"{self.prefix}ratelimit:login:{subject}"
