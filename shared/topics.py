"""Topic names: the contract between connectors, router and other consumers.

An optional prefix (SWITCHBOARD_TOPIC_PREFIX) lets several environments, or test runs, share one cluster."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = ""

    @property
    def events(self) -> str:
        """Inbound conversation events from every connector (key: tenant). Co-partitioned with
        ``routing_commands``: the router that holds partition p of both is the one writer of the tenants
        hashed there (their customer context and routing state)."""
        return f"{self.prefix}conversation.events"

    @property
    def routing_commands(self) -> str:
        """Agents' commands and timers for a tenant's routing engine (key: tenant), applied in order by the
        owner of the partition; the outcome of each is stored under the command id for whoever sent it."""
        return f"{self.prefix}routing.commands"

    @property
    def deadletter(self) -> str:
        """Events that can never be processed, untouched, with the reason in headers."""
        return f"{self.prefix}conversation.deadletter"

    @property
    def assignments(self) -> str:
        """Routing decisions (key: agent id) for live feeds and other consumers."""
        return f"{self.prefix}routing.assignments"

    @property
    def customers(self) -> str:
        """Customer-level events: merges and unmerges (key: tenant + surviving customer)."""
        return f"{self.prefix}customer.events"

    def outbound(self, channel: str) -> str:
        """Agents' replies for one channel's connectors to deliver (key: conversation id)."""
        return f"{self.prefix}conversation.outbound.{channel}"

    @property
    def status(self) -> str:
        """Delivery statuses of replies, reported by connectors (key: conversation id)."""
        return f"{self.prefix}conversation.status"

    def all(self) -> tuple[str, ...]:
        outbound = tuple(self.outbound(c) for c in (*OUTBOUND_CHANNELS, "voice"))
        return (
            self.events,
            self.routing_commands,
            self.deadletter,
            self.assignments,
            self.customers,
            self.status,
            *outbound,
        )


# Channels with a connector that delivers agents' replies. (conversation.outbound.voice also exists: the router
# sends what to say to a caller it cannot put through, e.g. when the queue is closed.)
OUTBOUND_CHANNELS = ("email", "chat", "messenger", "instagram", "whatsapp", "telegram", "sms", "in_app")
