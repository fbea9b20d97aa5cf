"""Routing profiles: what an agent may hold at once, in weighted units, shared by agents
(``services/router/domain/routing/capacity.py``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.router.domain.routing.capacity import profile_from
from services.router.entrypoints.http.deps import RouterDep, StaffPrincipal, SupervisorPrincipal

router = APIRouter(tags=["profiles"])

Channel = Annotated[str, Field(min_length=1, max_length=16)]


class ProfileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capacity: Annotated[float, Field(gt=0, le=1000)] = Field(3.0, description="Units an agent holds at most.")
    weights: dict[Channel, Annotated[float, Field(gt=0, le=1000)]] = Field(
        default_factory=lambda: {"default": 1.0, "email": 0.5},
        description='Units one conversation costs per channel, "default" for the rest.',
    )
    max: dict[Channel, Annotated[int, Field(ge=0, le=1000)]] = Field(
        default_factory=dict, description="At most this many conversations of a channel at once."
    )
    exclusive: Annotated[list[Channel], Field(max_length=20)] = Field(
        default_factory=lambda: ["voice"],
        description="Channels that need the agent free and, while held, allow nothing else (a call).",
    )


class ProfileIn(ProfileConfig):
    name: Annotated[str, Field(min_length=1, max_length=128)]

    @model_validator(mode="after")
    def _usable(self) -> ProfileIn:
        profile_from("new", self.name, self.model_dump(exclude={"name"}))
        return self


class ProfilePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    config: ProfileConfig | None = None


@router.post("/v1/profiles", status_code=201)
async def create_profile(body: ProfileIn, router_: RouterDep, principal: SupervisorPrincipal) -> dict[str, Any]:
    """A named profile agents share (``profile_id`` on an agent): e.g. 3 units, email 0.5, a call alone."""
    config = body.model_dump(mode="json", exclude={"name"})
    return await router_.configuration.create_profile(principal.tenant_id, body.name, config)


@router.get("/v1/profiles")
async def list_profiles(router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """The tenant's routing profiles."""
    return {"items": await router_.configuration.profiles(principal.tenant_id)}


@router.get("/v1/profiles/{profile_id}")
async def get_profile(profile_id: str, router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """One routing profile: capacity in units, each channel's weight and maximum, the exclusive channels."""
    return await router_.configuration.profile(principal.tenant_id, profile_id)


@router.patch("/v1/profiles/{profile_id}")
async def patch_profile(
    profile_id: str, body: ProfilePatch, router_: RouterDep, principal: SupervisorPrincipal
) -> dict[str, Any]:
    """A change applies to every agent with the profile at once."""
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = body.name
    if body.config is not None:
        values["config"] = body.config.model_dump(mode="json")
    return await router_.configuration.update_profile(principal.tenant_id, profile_id, values)
