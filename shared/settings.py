"""The one settings model. Read once at start-up from SWITCHBOARD_* variables, validated, passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Values that must never reach production as secrets.
_PLACEHOLDERS = {"", "changeme", "change-me", "secret", "dev", "test", "password"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHBOARD_", extra="ignore", frozen=True)

    environment: Literal["dev", "test", "prod"] = Field(
        "dev", description="dev and test allow generated or placeholder secrets; prod refuses them."
    )
    http_host: str = Field("127.0.0.1", description="Interface the HTTP API listens on.")
    http_port: int = Field(8000, ge=1, le=65535, description="Port of the HTTP API.")
    database_url: str = Field(
        "sqlite+aiosqlite:///.local/switchboard.db",
        description="SQLAlchemy async URL: postgresql+asyncpg://... in production, SQLite for the embedded desk.",
    )
    database_ssl_mode: Literal["disable", "require", "verify-ca", "verify-full"] | None = Field(
        None,
        description="PostgreSQL TLS: disable, require (no verification), verify-ca or verify-full; unset: the URL's.",
    )
    database_ssl_rootcert: str | None = Field(
        None, description="PEM file of the CAs PostgreSQL's certificate must chain to (unset: the system's)."
    )
    database_ssl_cert: str | None = Field(None, description="PEM client certificate, for servers that require one.")
    database_ssl_key: str | None = Field(None, description="PEM key of that client certificate.")
    kafka_bootstrap: str | None = Field(
        None, description="Kafka bootstrap servers (host:port,...). Unset: the in-process bus."
    )
    kafka_partitions: int = Field(12, ge=1, description="Partitions for topics Switchboard creates.")
    kafka_client_id: str = Field("switchboard", description="Client id prefix for Kafka connections.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients reach Kafka: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = Field(
        None, description="SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER."
    )
    kafka_sasl_username: str | None = Field(
        None, description="SASL user (PLAIN, SCRAM), or the OAuth client id (OAUTHBEARER)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password (PLAIN, SCRAM), or the OAuth client secret (OAUTHBEARER)."
    )
    kafka_sasl_oauth_token_url: str | None = Field(
        None, description="OAUTHBEARER: OAuth 2.0 token endpoint, asked with the client-credentials grant."
    )
    kafka_sasl_oauth_scope: str | None = Field(
        None, description="OAUTHBEARER: scope asked for, if the issuer needs one."
    )
    kafka_ssl_cafile: str | None = Field(
        None, description="PEM file of the CAs Kafka's certificate must chain to (unset: the system's trust store)."
    )
    kafka_ssl_certfile: str | None = Field(None, description="PEM client certificate, for brokers that require mTLS.")
    kafka_ssl_keyfile: str | None = Field(None, description="PEM key of that client certificate.")
    kafka_ssl_check_hostname: bool = Field(True, description="Check that Kafka's certificate names the broker host.")
    topic_prefix: str = Field("", description="Prefix of every topic name, to share a Kafka cluster.")
    consumer_group: str = Field("switchboard-router", description="Consumer group of the router's context stage.")
    consumer_batch_max: int = Field(500, ge=1, description="Most events the router handles in one batch.")
    consumer_lanes: int = Field(
        4,
        ge=1,
        le=64,
        description="Transactions the router runs at once per batch on PostgreSQL, split by partition (a tenant "
        "stays in one lane, in order); the embedded store takes one writer at a time and uses 1.",
    )
    consumer_lane_records: int = Field(
        100,
        ge=1,
        description="Records per lane: a batch runs in one lane per this many records, up to "
        "`SWITCHBOARD_CONSUMER_LANES` (a lane is a transaction of its own, which a small batch does not repay).",
    )
    bootstrap_api_key: SecretStr | None = Field(
        None,
        description="Admin API key for the demo tenant in `switchboard dev`; generated and printed if unset.",
    )
    inapp_identity_secret: SecretStr | None = Field(
        None,
        description="Secret apps use to sign user_hash (HMAC-SHA256 of the external id) for verified identities.",
    )
    reopen_window_hours: float = Field(
        168.0, ge=0, description="A customer who writes within this many hours of a resolution reopens it."
    )
    seed_demo: bool = Field(
        False, description="Seed the demo desk (tenant `demo`) at start-up; `switchboard dev` turns it on."
    )
    max_body_bytes: int = Field(65_536, ge=1024, description="Largest accepted request body, in bytes.")
    rate_limit_per_s: float = Field(
        100.0, gt=0, description="Requests a second each API key may make on average (per router replica)."
    )
    rate_limit_burst: int = Field(200, ge=1, description="Requests an API key may make at once above that rate.")

    # -- access and privacy ---------------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(None, description="Accept HS256 bearer tokens signed with this secret.")
    jwt_public_key: str | None = Field(None, description="Accept RS256/ES256 bearer tokens verified by this PEM key.")
    jwt_jwks_url: str | None = Field(None, description="Accept RS256/ES256 bearer tokens from this JWKS (cached).")
    jwt_issuer: str | None = Field(None, description="Required `iss` of bearer tokens, when set.")
    jwt_audience: str | None = Field(None, description="Required `aud` of bearer tokens, when set.")
    jwt_tenant_claim: str = Field("tenant", description="Claim naming the token's tenant.")
    jwt_role_claim: str = Field("role", description="Claim naming the token's role: agent, supervisor or admin.")
    jwt_agent_claim: str = Field("agent_id", description="Claim naming the agent an agent token acts as (else sub).")
    agents_see_queues: bool = Field(
        False, description="Agents may also read conversations waiting in the queues they serve (manual pull)."
    )
    erasure_key: SecretStr | None = Field(
        None, description="Key of the hashes that remember erased identifiers (set it: unset, a built-in one)."
    )
    retention_days: float = Field(
        0, ge=0, description="Erase closed conversations' messages older than this many days (0: keep for ever)."
    )
    deadletter_retention_days: float = Field(
        14,
        gt=0,
        description="Keep dead letters (GET /v1/deadletters; they hold personal data) this many days.",
    )
    max_text_chars: int = Field(20_000, ge=1, description="Longest accepted message text, in characters.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    log_json: bool = Field(True, description="Structured JSON logs (one object a line).")
    otlp_endpoint: str | None = Field(
        None,
        description="OTLP/HTTP traces URL (e.g. http://otel-collector:4318/v1/traces): traces across REST, Kafka, "
        "the router and the agents' feeds are exported there. Unset: no tracing.",
    )
    auto_migrate: bool = Field(
        True,
        description="Apply database migrations at start-up (production may run `switchboard migrate` instead).",
    )
    instance_id: str | None = Field(None, description="Name of this process in logs and consumer ids; random if unset.")
    feed_keepalive_s: float = Field(15.0, gt=0, description="Seconds between SSE keep-alive comments.")
    sla_warning_fraction: float = Field(
        0.8,
        gt=0,
        lt=1,
        description="Fraction of an SLA target after which the warning fires (escalate before it breaks).",
    )
    survey_kind: Literal["csat", "nps", "ces", "none"] = Field(
        "csat", description="Feedback question sent on resolve: csat (1-5), nps (0-10), ces (1-7) or none."
    )
    routing_tick_s: float = Field(
        1.0, gt=0, description="Seconds between runs of routing timers (offer timeouts, overflow, opening hours)."
    )
    role: Literal["all", "api", "router"] = Field(
        "all",
        description="What this router process does. `api`: the REST API, agents' live feeds and presence, without "
        "joining the consumer group (scale HTTP ingest on its own); `router`: consumes the tenants' events and "
        "routing commands and runs the routing timers (its HTTP port serves the same API); `all`: both.",
    )
    routing_sweep_s: float = Field(
        10.0, gt=0, description="Seconds between sweeps for tenants with expired offers no replica holds in memory."
    )
    outbox_relay_s: float = Field(
        1.0,
        gt=0,
        description="Seconds between looks for outbox rows no transaction published itself (a replica that "
        "crashed between its commit and its publish, a broker that was down).",
    )
    memory_trim_s: float = Field(
        30.0,
        ge=0,
        description="Seconds between handing freed heap memory back to the system (glibc malloc_trim), so a "
        "service's resident size falls again after a burst; 0: never.",
    )
    presence_grace_s: float = Field(
        60.0,
        gt=0,
        description="An online agent whose last console connection (feed) dropped is set away if none returns "
        "within this many seconds; their open offers go to someone else.",
    )
    presence_offline_s: float = Field(
        900.0,
        gt=0,
        description="An agent with no console connection for this many seconds is set offline; their "
        "conversations go back to their queues.",
    )
    presence_heartbeat_s: float = Field(
        10.0,
        gt=0,
        description="Seconds between a replica's refreshes of its live connections; a replica silent for three "
        "of these is taken for dead and its connections for dropped.",
    )

    command_timeout_s: float = Field(
        15.0,
        gt=0,
        description="Seconds an API call waits for the tenant's routing owner to apply its command (then 503).",
    )

    webhook_urls: str = Field(
        "", description="Comma-separated URLs that receive routing events as signed webhooks (POST, JSON)."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Key of the webhooks' Switchboard-Signature (HMAC-SHA256 over timestamp and body)."
    )
    webhook_timeout_s: float = Field(10.0, gt=0, description="Seconds a webhook receiver has to answer one POST.")
    webhook_retry_first_s: float = Field(
        1.0, gt=0, description="A webhook's first retry comes 0.5-1x this many seconds after it failed; each doubles."
    )
    webhook_retry_max_s: float = Field(
        3600.0, gt=0, description="Longest step between two attempts of a webhook, in seconds (at least the first)."
    )
    webhook_retry_window_h: float = Field(
        24.0, gt=0, description="Hours a webhook is retried before it is given up and listed as failed."
    )
    webhook_delivery_tick_s: float = Field(
        1.0, gt=0, description="Seconds between two looks for webhooks due (new ones are sent at once)."
    )
    webhook_retention_days: float = Field(
        14,  # two weeks to look into a failed delivery and redeliver it (POST .../redeliver needs the row)
        gt=0,
        description="Keep delivered and failed webhooks (GET /v1/webhook-deliveries; they hold routing events) "
        "this many days.",
    )

    # -- connectors ---------------------------------------------------------------------------------------
    connector_mode: Literal["all", "inbound", "outbound"] = Field(
        "all",
        description="What a connector process does: all, inbound only (webhooks, SMTP, IMAP), or outbound only "
        "(delivering replies), so each half can scale on its own signal.",
    )
    connector_tenant: str = Field("demo", description="Tenant that webhook, SMTP, IMAP and chat traffic belongs to.")
    public_base_url: str | None = Field(
        None, description="Public URL of the webhooks (as providers call them), for URL-based signatures (Twilio)."
    )
    blob_dir: str = Field(".local/blobs", description="Where connectors store attachments; events carry references.")
    outbound_max_attempts: int = Field(5, ge=1, description="Delivery attempts of a reply before it is failed.")
    outbound_backoff_s: float = Field(0.5, gt=0, description="First retry delay; doubles each attempt.")
    meta_app_secret: SecretStr | None = Field(None, description="Meta app secret: verifies X-Hub-Signature-256.")
    meta_verify_token: SecretStr | None = Field(None, description="Token Meta echoes in the hub.challenge handshake.")
    meta_graph_base_url: str = Field("https://graph.facebook.com", description="Graph API base URL.")
    meta_graph_version: str = Field("v21.0", description="Graph API version.")
    meta_page_access_token: SecretStr | None = Field(None, description="Page token for Messenger/Instagram replies.")
    whatsapp_access_token: SecretStr | None = Field(None, description="WhatsApp Cloud API token.")
    whatsapp_phone_number_id: str | None = Field(None, description="WhatsApp business phone number id to send from.")
    telegram_secret_token: SecretStr | None = Field(
        None, description="Checked against X-Telegram-Bot-Api-Secret-Token on every update."
    )
    telegram_bot_token: SecretStr | None = Field(None, description="Bot token for sendMessage.")
    telegram_api_base_url: str = Field("https://api.telegram.org", description="Telegram Bot API base URL.")
    twilio_auth_token: SecretStr | None = Field(None, description="Twilio auth token: verifies X-Twilio-Signature.")
    twilio_account_sid: str | None = Field(None, description="Twilio account SID for the Messages API.")
    twilio_from_number: str | None = Field(None, description="Number replies are sent from (E.164).")
    voice_greeting: str = Field(
        "Thank you for calling. Please hold while we find someone to help you.",
        description="What callers hear first (Twilio <Say>).",
    )
    voice_max_wait_s: int = Field(
        300, ge=10, description="Seconds a caller waits before being offered voicemail instead."
    )
    voice_dial_timeout_s: int = Field(
        20, ge=5, le=120, description="Seconds an agent's phone rings before the call is offered to the next agent."
    )
    twilio_api_base_url: str = Field("https://api.twilio.com", description="Twilio REST API base URL.")
    smtp_host: str = Field("127.0.0.1", description="Interface of the inbound SMTP server.")
    smtp_port: int = Field(2525, ge=1, le=65535, description="Port of the inbound SMTP server.")
    smtp_max_bytes: int = Field(25 * 1024 * 1024, ge=1024, description="Largest inbound email, in bytes.")
    smtp_relay_host: str = Field("127.0.0.1", description="SMTP relay that delivers replies.")
    smtp_relay_port: int = Field(25, ge=1, le=65535, description="Port of the SMTP relay.")
    smtp_relay_username: str | None = Field(None, description="SMTP relay user.")
    smtp_relay_password: SecretStr | None = Field(None, description="SMTP relay password.")
    smtp_relay_starttls: bool = Field(False, description="Use STARTTLS to the relay.")
    email_from: str = Field("support@switchboard.localhost", description="From address of email replies.")
    email_reply_domain: str = Field(
        "switchboard.localhost",
        description="Domain of the Reply-To addresses (<local part of SWITCHBOARD_EMAIL_FROM>+<conversation>@) "
        "and of Message-IDs.",
    )
    email_webhook_signing_key: SecretStr | None = Field(
        None,
        description="Key of the inbound-parse webhook's HMAC-SHA256 signature (timestamp + token, or "
        "X-Switchboard-Signature over the body).",
    )
    email_webhook_max_age_s: float = Field(
        300.0,
        gt=0,
        description="An inbound-parse webhook whose signed timestamp is further than this from now is refused "
        "(403); each signed token is accepted for one message only.",
    )
    imap_host: str | None = Field(None, description="IMAP server to poll; unset: no IMAP polling.")
    imap_port: int = Field(993, ge=1, le=65535, description="IMAP port.")
    imap_ssl: bool = Field(True, description="IMAP over TLS.")
    imap_username: str | None = Field(None, description="IMAP user.")
    imap_password: SecretStr | None = Field(None, description="IMAP password.")
    imap_mailbox: str = Field("INBOX", description="Mailbox to read.")
    imap_poll_s: float = Field(30.0, gt=0, description="Seconds between polls when the server has no IDLE.")
    chat_token_secret: SecretStr | None = Field(
        None, description="Signs web-chat visitor tokens; set the same on every chat connector instance."
    )
    inapp_delivery_url: str | None = Field(
        None,
        description="The app backend's endpoint that receives in-app replies (POST, JSON; docs/in-app.md). "
        "Unset: in-app replies fail with the reason on the timeline.",
    )
    inapp_delivery_secret: SecretStr | None = Field(
        None,
        description="Key of the Switchboard-Signature on in-app deliveries (HMAC-SHA256 over timestamp and body); "
        "needed with SWITCHBOARD_INAPP_DELIVERY_URL. Keep it apart from the identity secret.",
    )
    inapp_delivery_timeout_s: float = Field(
        10.0, gt=0, description="Seconds the app backend has to answer a delivery before it is retried."
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, data: object) -> object:
        """``SWITCHBOARD_X=`` (as in an env file template) means "not set", never an empty secret."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != ""}
        return data

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_prod(self) -> Settings:
        if self.environment == "prod":
            key = self.bootstrap_api_key.get_secret_value() if self.bootstrap_api_key else None
            if key is not None and (key.lower() in _PLACEHOLDERS or len(key) < 24):
                raise ValueError("SWITCHBOARD_BOOTSTRAP_API_KEY is a placeholder or too short for prod")
        return self

    @model_validator(mode="after")
    def _secure_connections_are_whole(self) -> Settings:
        problem = _kafka_security_problem(self) or _database_tls_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka_bootstrap)


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


def _kafka_security_problem(s: Settings) -> str | None:
    """What makes the Kafka security settings unusable (docs/secure-connections.md), or None."""
    sasl, tls = s.kafka_security_protocol.startswith("SASL_"), s.kafka_security_protocol.endswith("SSL")
    mechanism = s.kafka_sasl_mechanism
    if sasl and mechanism is None:
        return f"SWITCHBOARD_KAFKA_SECURITY_PROTOCOL={s.kafka_security_protocol} needs SWITCHBOARD_KAFKA_SASL_MECHANISM"
    if not sasl and (mechanism or s.kafka_sasl_username or s.kafka_sasl_password):
        return "SWITCHBOARD_KAFKA_SASL_* settings need SWITCHBOARD_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT"
    if sasl and not (s.kafka_sasl_username and s.kafka_sasl_password):
        return f"SASL {mechanism} needs SWITCHBOARD_KAFKA_SASL_USERNAME and SWITCHBOARD_KAFKA_SASL_PASSWORD"
    if (mechanism == "OAUTHBEARER") != bool(s.kafka_sasl_oauth_token_url):
        return "SWITCHBOARD_KAFKA_SASL_OAUTH_TOKEN_URL goes with SWITCHBOARD_KAFKA_SASL_MECHANISM=OAUTHBEARER, and back"
    if s.environment == "prod" and mechanism == "PLAIN" and not tls:
        return "SASL PLAIN sends the password as is: use SWITCHBOARD_KAFKA_SECURITY_PROTOCOL=SASL_SSL in prod"
    files = {"CAFILE": s.kafka_ssl_cafile, "CERTFILE": s.kafka_ssl_certfile, "KEYFILE": s.kafka_ssl_keyfile}
    if not tls and any(files.values()):
        return "SWITCHBOARD_KAFKA_SSL_* files need SWITCHBOARD_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"
    if s.kafka_ssl_keyfile and not s.kafka_ssl_certfile:
        return "SWITCHBOARD_KAFKA_SSL_KEYFILE needs SWITCHBOARD_KAFKA_SSL_CERTFILE"
    return _missing_file({f"SWITCHBOARD_KAFKA_SSL_{k}": v for k, v in files.items()})


def _database_tls_problem(s: Settings) -> str | None:
    """What makes the PostgreSQL TLS settings unusable, or None."""
    files = {"ROOTCERT": s.database_ssl_rootcert, "CERT": s.database_ssl_cert, "KEY": s.database_ssl_key}
    if (s.database_ssl_mode or any(files.values())) and not s.database_url.startswith("postgresql"):
        return "SWITCHBOARD_DATABASE_SSL_* settings apply to PostgreSQL only"
    if s.database_ssl_rootcert and s.database_ssl_mode not in ("verify-ca", "verify-full"):
        return "SWITCHBOARD_DATABASE_SSL_ROOTCERT needs SWITCHBOARD_DATABASE_SSL_MODE=verify-ca or verify-full"
    if s.database_ssl_mode == "disable" and any(files.values()):
        return "SWITCHBOARD_DATABASE_SSL_MODE=disable takes no certificate files"
    if bool(s.database_ssl_cert) != bool(s.database_ssl_key):
        return "SWITCHBOARD_DATABASE_SSL_CERT and SWITCHBOARD_DATABASE_SSL_KEY go together"
    return _missing_file({f"SWITCHBOARD_DATABASE_SSL_{k}": v for k, v in files.items()})


def _missing_file(paths: dict[str, str | None]) -> str | None:
    for name, path in paths.items():
        if path and not Path(path).is_file():
            return f"{name}: no such file: {path}"
    return None
