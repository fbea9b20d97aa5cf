"""JWT bearer tokens for agents and supervisors signed in through the company's identity provider (PyJWT).

Accepted: HS256 with a shared secret, RS256/ES256 with a configured public key or the provider's JWKS URL
(keys fetched and cached by PyJWT's ``PyJWKClient``). Issuer and audience are checked when configured; the
expiry always is. Claims: the tenant (``SWITCHBOARD_JWT_TENANT_CLAIM``), the role (``..._ROLE_CLAIM``), and for
agents the agent id (``..._AGENT_CLAIM``, default ``agent_id``, else ``sub``)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import jwt

from services.router.adapters.db.api_keys import ROLES, Principal
from shared.settings import Settings

log = logging.getLogger(__name__)

ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("eyJ")


class JwtVerifier:
    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self.public_key = settings.jwt_public_key
        self.jwks = jwt.PyJWKClient(settings.jwt_jwks_url, cache_keys=True) if settings.jwt_jwks_url else None
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.tenant_claim = settings.jwt_tenant_claim
        self.role_claim = settings.jwt_role_claim
        self.agent_claim = settings.jwt_agent_claim

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.public_key or self.jwks)

    async def verify(self, token: str) -> Principal | None:
        """The principal the token names, or None if it is not valid here (bad signature, expired, wrong
        issuer or audience, no tenant, unknown role)."""
        if not self.enabled:
            return None
        try:
            claims = await self._decode(token)
        except (jwt.PyJWTError, ValueError) as exc:
            log.info("jwt.rejected", extra={"reason": type(exc).__name__})
            return None
        tenant, role = claims.get(self.tenant_claim), claims.get(self.role_claim)
        if not isinstance(tenant, str) or not tenant or role not in ROLES:
            log.info("jwt.rejected", extra={"reason": "missing tenant or role claim"})
            return None
        subject = str(claims.get("sub") or "")
        agent = claims.get(self.agent_claim) or (subject if role == "agent" else None)
        return Principal(
            tenant_id=tenant,
            role=role,
            key_prefix=f"jwt:{subject[:40]}",
            agent_id=str(agent) if agent else None,
        )

    async def _decode(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        options = {"require": ["exp"], "verify_aud": self.audience is not None}
        common: dict[str, Any] = {"audience": self.audience, "issuer": self.issuer, "options": options}
        if algorithm == "HS256":
            if not self.secret:
                raise jwt.InvalidAlgorithmError("HS256 tokens are not configured")
            return jwt.decode(token, self.secret, algorithms=["HS256"], **common)
        if algorithm not in ASYMMETRIC:
            raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted")
        if self.jwks is not None:
            # PyJWKClient fetches with urllib (blocking): off the event loop; keys are cached after the first
            jwk = await asyncio.to_thread(self.jwks.get_signing_key_from_jwt, token)
            return jwt.decode(token, jwk.key, algorithms=[algorithm], **common)
        if self.public_key:
            return jwt.decode(token, self.public_key, algorithms=[algorithm], **common)
        raise jwt.InvalidAlgorithmError(f"{algorithm} tokens are not configured")
