"""Build the services of one application from its config, and find them during a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app

from cypher.keys import KeyPurpose, KeyRing
from cypher.services.accounts import AccountService
from cypher.services.admin import AdminService
from cypher.services.audit import AuditTrail
from cypher.services.clock import Clock
from cypher.services.login import LoginService
from cypher.services.maintenance import MaintenanceService
from cypher.services.opaque_protocol import OpaqueProtocol
from cypher.services.recovery_codes import RecoveryCodes
from cypher.services.registration import RegistrationLifetimes, RegistrationService
from cypher.services.regulation import LoginRegulation, RegulationPolicy
from cypher.services.sealing import Sealer
from cypher.services.sessions import SessionService
from cypher.services.tokens import TokenPurpose, TokenService
from cypher.services.totp import TotpService
from cypher.store import Store

EXTENSION_NAME = "cypher"


@dataclass(frozen=True)
class Services:
    store: Store
    keyring: KeyRing
    tokens: TokenService
    registration: RegistrationService
    login: LoginService
    sessions: SessionService
    totp: TotpService
    accounts: AccountService
    maintenance: MaintenanceService
    admin: AdminService
    audit: AuditTrail


def build_services(config: dict[str, Any], keyring: KeyRing, store: Store, clock: Clock) -> Services:
    server_id: str = config["SERVER_ID"]
    tokens = TokenService(
        keyring,
        issuer=server_id,
        lifetimes={
            TokenPurpose.PASS_AUTH: config["PASS_AUTH_TTL"],
            TokenPurpose.ENROLL: config["ENROLL_TTL"],
            TokenPurpose.ACCESS: config["ACCESS_TTL"],
            TokenPurpose.REFRESH: config["REFRESH_TTL"],
        },
        clock=clock,
    )
    protocol = OpaqueProtocol(
        server_id,
        server_private_key=keyring[KeyPurpose.OPAQUE_SERVER].current,
        fake_record_secret=keyring[KeyPurpose.FAKE_RECORD].current,
    )
    sealer = Sealer(keyring[KeyPurpose.AT_REST])
    regulation_policy = RegulationPolicy(
        window=timedelta(seconds=config["LOGIN_WINDOW"]),
        attempts_per_address=config["LOGIN_ATTEMPTS_PER_ADDRESS"],
        attempts_per_name=config["LOGIN_ATTEMPTS_PER_NAME"],
        ban=timedelta(seconds=config["LOGIN_BAN"]),
        longest_ban=timedelta(seconds=config["LOGIN_LONGEST_BAN"]),
    )
    audit = AuditTrail(store, clock)
    registration = RegistrationService(
        store,
        protocol,
        sealer,
        tokens,
        clock,
        RegistrationLifetimes(
            registration_state=timedelta(seconds=config["REGISTRATION_STATE_TTL"]),
            pending_account=timedelta(seconds=config["PENDING_TTL"]),
            password_change=timedelta(seconds=config["LOGIN_STATE_TTL"]),
        ),
        audit,
    )
    login = LoginService(
        store,
        protocol,
        sealer,
        tokens,
        clock,
        timedelta(seconds=config["LOGIN_STATE_TTL"]),
        LoginRegulation(regulation_policy),
        audit,
    )
    sessions = SessionService(
        store, tokens, clock, session_lifetime=timedelta(seconds=config["REFRESH_TTL"]), audit=audit
    )
    pending_ttl = timedelta(seconds=config["PENDING_TTL"])
    totp = TotpService(
        store,
        sealer,
        tokens,
        sessions,
        RecoveryCodes(keyring[KeyPurpose.AT_REST]),
        clock,
        config["TOTP_ISSUER"],
        pending_ttl,
        audit,
    )
    accounts = AccountService(store, registration, totp, audit)
    maintenance = MaintenanceService(
        store,
        clock,
        pending_ttl,
        regulation_memory=regulation_policy.longest_ban,
        audit_retention=timedelta(days=config["AUDIT_RETENTION_DAYS"]),
    )
    return Services(
        store=store,
        keyring=keyring,
        tokens=tokens,
        registration=registration,
        login=login,
        sessions=sessions,
        totp=totp,
        accounts=accounts,
        maintenance=maintenance,
        admin=AdminService(store, clock, audit),
        audit=audit,
    )


def services() -> Services:
    """The services of the application handling the current request."""
    found: Services = current_app.extensions[EXTENSION_NAME]
    return found
