"""Service settings: environment variables, overridden by `spinefoot serve` flags, validated once.

Every setting is declared once below (name, environment variable, flag, help); the README's
configuration table is generated from the same declaration, and a test keeps them equal.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from service.setting_fields import CommaList, check_directory, check_http_url, check_jwks_source, check_origin

ENV_PREFIX = "SPINEFOOT_"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # the metrics client's own variable, not a setting


def _cpu_count() -> int:
    """The CPUs this process may run on (a container's cpuset), not all the host's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    workers: int = field(default_factory=_cpu_count)
    worker_connections: int = 1000
    request_timeout: int = 30
    max_body_bytes: int = 5 * 1024 * 1024
    max_bundle_entries: int = 10_000
    max_json_depth: int = 64
    request_budget: float = 5.0
    log_level: str = "INFO"
    log_format: str = "json"
    knowledge_dir: Path | None = None  # None: the knowledge base shipped with the package
    base_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    cds_fhir_servers: tuple[str, ...] = ()
    cds_open_fhir_servers: tuple[str, ...] = ()
    cds_fetch_timeout: float = 5.0
    cds_fetch_max_pages: int = 20
    cds_fetch_max_bytes: int = 10 * 1024 * 1024
    cds_fetch_deadline: float = 15.0
    cds_jwt: bool = False
    cds_jwt_issuers: tuple[str, ...] = ()
    cds_jwks: str | None = None
    cds_replay_db: Path | None = None  # None: cds-jti.sqlite3 in the data directory
    data_dir: Path = Path("/tmp/spinefoot")

    @property
    def replay_db(self) -> Path:
        return self.cds_replay_db or self.data_dir / "cds-jti.sqlite3"

    @property
    def metrics_dir(self) -> Path:
        return self.data_dir / "metrics"

    # issue 14: the playground page
    playground: bool = False


class SettingsError(Exception):
    """A setting has a bad value; the message names the variable and the flag."""


def _doc(help_: str, default: str) -> dict[str, str]:
    """What the README table and `serve --help` say about a setting."""
    return {"help": help_, "default": default}


class SettingsSchema(Schema):
    """The declaration: order here is the order of the README table and of `serve --help`."""

    host = fields.String(
        validate=validate.Length(min=1), metadata=_doc("interface to listen on", "`0.0.0.0`")
    )
    port = fields.Integer(validate=validate.Range(1, 65535), metadata=_doc("TCP port", "`8080`"))
    workers = fields.Integer(
        validate=validate.Range(1, 256),
        metadata=_doc(
            "worker processes; the rule engine never releases the GIL, so processes, not threads, "
            "add throughput",
            "CPU count",
        ),
    )
    worker_connections = fields.Integer(
        validate=validate.Range(10, 100_000),
        metadata=_doc(
            "most connections one worker holds open at once (gevent workers: a slow or idle client "
            "costs a connection, not a worker); more wait in the listen queue",
            "`1000`",
        ),
    )
    request_timeout = fields.Integer(
        validate=validate.Range(1, 3600),
        metadata=_doc(
            "seconds a request may take before its worker is restarted; also how long SIGTERM waits "
            "for in-flight requests",
            "`30`",
        ),
    )
    max_body_bytes = fields.Integer(
        validate=validate.Range(1024, 1 << 30),
        metadata=_doc("largest request body in bytes; larger gets 413", "`5242880` (5 MiB)"),
    )
    max_bundle_entries = fields.Integer(
        validate=validate.Range(1, 1_000_000),
        metadata=_doc("most entries in one Bundle; more gets 413", "`10000`"),
    )
    max_json_depth = fields.Integer(
        validate=validate.Range(8, 512),
        metadata=_doc("deepest JSON nesting accepted; deeper gets 400", "`64`"),
    )
    request_budget = fields.Float(
        validate=validate.Range(0.01, 3600),
        metadata=_doc(
            "seconds of processing (validation, facts, rules) one request may use; more gets 503 "
            "with Retry-After",
            "`5`",
        ),
    )
    log_level = fields.String(
        validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]),
        metadata=_doc("`DEBUG`, `INFO`, `WARNING` or `ERROR`", "`INFO`"),
    )
    log_format = fields.String(
        validate=validate.OneOf(["json", "text"]),
        metadata=_doc("`json` (one object per line) or `text`", "`json`"),
    )
    knowledge_dir = fields.String(
        validate=check_directory,
        metadata=_doc(
            "a site's own knowledge directory, used instead of the shipped one (see knowledge/README.md)",
            "the shipped one",
        ),
    )
    base_url = fields.String(
        validate=check_http_url,
        metadata=_doc(
            "the public URL of the service as clients reach it (OpenAPI `servers`, "
            "CapabilityStatement `implementation.url`)",
            "none",
        ),
    )
    cors_origins = CommaList(
        check_origin,
        metadata=_doc(
            "comma-separated browser origins allowed to call the API (`*` for any)", "none (CORS off)"
        ),
    )
    cds_fhir_servers = CommaList(
        check_http_url,
        metadata=_doc(
            "comma-separated FHIR base URLs that CDS Hooks calls may ask the service to fetch from "
            "(`fhirServer` must start with one); others get 412",
            "none (prefetch only)",
        ),
    )
    cds_open_fhir_servers = CommaList(
        check_http_url,
        metadata=_doc(
            "comma-separated FHIR base URLs that may be fetched from without a token, for calls with "
            "no `fhirAuthorization` (an EHR's open endpoint, the CDS Hooks sandbox); a call with a "
            "token still needs `SPINEFOOT_CDS_FHIR_SERVERS`",
            "none",
        ),
    )
    cds_fetch_timeout = fields.Float(
        validate=validate.Range(0.1, 60),
        metadata=_doc("seconds allowed for each request to a `fhirServer`", "`5`"),
    )
    cds_fetch_max_pages = fields.Integer(
        validate=validate.Range(1, 1000),
        metadata=_doc("most search result pages followed per query (`link` `next`); more gets 412", "`20`"),
    )
    cds_fetch_max_bytes = fields.Integer(
        validate=validate.Range(1024, 1 << 30),
        metadata=_doc(
            "most bytes read from a `fhirServer` in one CDS Hooks call (all its pages together); "
            "more gets 412",
            "`10485760` (10 MiB)",
        ),
    )
    cds_fetch_deadline = fields.Float(
        validate=validate.Range(0.5, 300),
        metadata=_doc(
            "seconds all the fetching of one CDS Hooks call may take together; longer gets 412", "`15`"
        ),
    )
    cds_jwt = fields.Boolean(
        metadata=_doc("require a signed JWT (RS384/ES384) on every CDS Hooks request", "`false`")
    )
    cds_jwt_issuers = CommaList(
        metadata=_doc("comma-separated `iss` values accepted (required with `SPINEFOOT_CDS_JWT`)", "none")
    )
    cds_jwks = fields.String(
        validate=check_jwks_source,
        metadata=_doc(
            "the issuers' public keys: a JWKS file or an http(s) URL (required with `SPINEFOOT_CDS_JWT`)",
            "none",
        ),
    )
    cds_replay_db = fields.String(
        validate=validate.Length(min=1),
        metadata=_doc(
            "SQLite file where used `jti`s are kept, shared by the worker processes",
            "`cds-jti.sqlite3` in the data directory",
        ),
    )
    data_dir = fields.String(
        validate=validate.Length(min=1),
        metadata=_doc(
            "writable directory for the workers' shared metrics (`metrics/`) and the replay cache; "
            "checked at start (unwritable or full: exit 2); persistent if it is a volume",
            "`/tmp/spinefoot`",
        ),
    )
    # issue 14: the playground page
    playground = fields.Boolean(
        metadata=_doc(
            "serve `/playground`, a page for integration testers; it accepts patient data, so keep "
            "it off in production",
            "`false`",
        )
    )

    @validates_schema
    def _jwt_needs(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("cds_jwt"):
            for name in ("cds_jwt_issuers", "cds_jwks", "base_url"):
                if not data.get(name):
                    raise ValidationError("is required when SPINEFOOT_CDS_JWT is true", name)

    @post_load
    def _build(self, data: dict[str, Any], **_: Any) -> Settings:
        for name in ("knowledge_dir", "cds_replay_db", "data_dir"):
            if data.get(name) is not None:
                data[name] = Path(data[name])
        if data.get("base_url"):
            data["base_url"] = data["base_url"].rstrip("/")
        return Settings(**data)


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def load_settings(environ: Mapping[str, str], flags: Mapping[str, Any] | None = None) -> Settings:
    """Environment first, then flags that were given; empty variables count as unset."""
    raw: dict[str, Any] = {
        name: environ[env_name(name)]
        for name in SettingsSchema().fields
        if environ.get(env_name(name), "").strip()
    }
    raw.update({k: v for k, v in (flags or {}).items() if v is not None})
    if isinstance(raw.get("log_level"), str):
        raw["log_level"] = raw["log_level"].upper()
    try:
        settings: Settings = SettingsSchema().load(raw)
    except ValidationError as exc:
        raise SettingsError(
            "; ".join(
                f"{env_name(name)} ({flag_name(name)}) = {raw.get(name)!r}: {' '.join(map(str, msgs))}"
                for name, msgs in sorted(exc.messages_dict.items())
            )
        ) from None
    return settings


def settings_table() -> str:
    """The README's configuration table (Markdown)."""
    rows = ["| Environment variable | `serve` flag | Default | Meaning |", "|---|---|---|---|"]
    for name, declared in SettingsSchema().fields.items():
        rows.append(
            f"| `{env_name(name)}` | `{flag_name(name)}` | {declared.metadata['default']} "
            f"| {declared.metadata['help']} |"
        )
    return "\n".join(rows)
