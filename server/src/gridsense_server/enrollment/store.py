"""Gateways awaiting enrollment and their codes, in the database: create, issue a code, claim
one (atomically: of two concurrent claims exactly one wins), mark enrolled, revoke."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from gridsense_protocol import utc_now

from ..db.enrollment_models import EnrolledGateway, EnrollmentCode, RevokedCertificate
from ..db.models import Gateway
from .codes import code_hash, new_code, normalize

PENDING, ENROLLED, REVOKED = "pending", "enrolled", "revoked"


class RefusalKind(StrEnum):
    WRONG = "wrong"  # no such code (or not a code at all)
    USED = "used"
    EXPIRED = "expired"
    INVALIDATED = "invalidated"  # a newer code or a revocation replaced it


REFUSAL_TEXT = {
    RefusalKind.WRONG: "注册码错误 / wrong enrollment code",
    RefusalKind.USED: "注册码已使用 / this enrollment code has been used",
    RefusalKind.EXPIRED: "注册码已过期 / this enrollment code has expired",
    RefusalKind.INVALIDATED: "注册码已作废（已签发新码或网关已吊销）/ this enrollment code was "
                             "replaced or its gateway revoked",
}


class Refused(Exception):
    def __init__(self, kind: RefusalKind, gateway_id: str | None = None) -> None:
        super().__init__(REFUSAL_TEXT[kind])
        self.kind = kind
        self.gateway_id = gateway_id


class GatewayExists(Exception):
    pass


@dataclass(frozen=True, slots=True)
class IssuedCode:
    gateway_id: str
    code: str  # shown once: only its hash is kept
    expires_at: datetime


class EnrollmentStore:
    def __init__(self, factory: sessionmaker[Session], code_ttl_s: float,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._factory = factory
        self._ttl = timedelta(seconds=code_ttl_s)
        self._clock = clock

    def create(self, session: Session, gateway_id: str, community_id: str, name: str,
               location: str | None, actor: str) -> IssuedCode:
        """A new gateway (in the caller's transaction) and its first code."""
        if session.get(EnrolledGateway, gateway_id) is not None \
                or session.get(Gateway, gateway_id) is not None:
            raise GatewayExists(gateway_id)
        session.add(EnrolledGateway(id=gateway_id, community_id=community_id, name=name,
                                    location=location, state=PENDING, created_by=actor,
                                    created_at=self._clock()))
        session.flush()
        return self.issue(session, gateway_id)

    def issue(self, session: Session, gateway_id: str) -> IssuedCode:
        """A fresh code; every earlier code of the gateway stops working."""
        now = self._clock()
        self._invalidate(session, gateway_id, now)
        code = new_code()
        expires = now + self._ttl
        session.add(EnrollmentCode(code_hash=code_hash(code), gateway_id=gateway_id,
                                   created_at=now, expires_at=expires))
        return IssuedCode(gateway_id, code, expires)

    def claim(self, typed: str) -> str:
        """Use the code: the gateway's id, or Refused. One UPDATE with every condition in its
        WHERE clause, so the database decides between concurrent claims."""
        code = normalize(typed)
        if code is None:
            raise Refused(RefusalKind.WRONG)
        digest, now = code_hash(code), self._clock()
        with self._factory.begin() as session:
            claimed = session.execute(
                update(EnrollmentCode)
                .where(EnrollmentCode.code_hash == digest, EnrollmentCode.used_at.is_(None),
                       EnrollmentCode.invalidated_at.is_(None), EnrollmentCode.expires_at > now)
                .values(used_at=now)).rowcount
            row = session.get(EnrollmentCode, digest)
            if row is None:
                raise Refused(RefusalKind.WRONG)
            if claimed == 1:
                return row.gateway_id
            kind = (RefusalKind.INVALIDATED if row.invalidated_at is not None
                    else RefusalKind.USED if row.used_at is not None else RefusalKind.EXPIRED)
            raise Refused(kind, row.gateway_id)

    def release(self, typed: str) -> None:
        """Give a claimed code back (the broker or the CA failed: the installer may retry)."""
        code = normalize(typed)
        if code is None:
            return
        with self._factory.begin() as session:
            session.execute(update(EnrollmentCode)
                            .where(EnrollmentCode.code_hash == code_hash(code))
                            .values(used_at=None))

    def enrolled(self, session: Session, gateway_id: str, cert_serial: str | None) -> None:
        row = session.get(EnrolledGateway, gateway_id)
        if row is None:
            return
        if row.cert_serial and row.cert_serial != cert_serial:
            # Re-enrolled: the certificate it had before is no longer its own.
            self._revoke_serial(session, row.cert_serial, gateway_id)
        row.state, row.enrolled_at, row.revoked_at = ENROLLED, self._clock(), None
        row.cert_serial = cert_serial

    def revoke(self, session: Session, gateway_id: str) -> str | None:
        """Mark revoked, invalidate codes, record the certificate's serial; that serial."""
        row = session.get(EnrolledGateway, gateway_id)
        if row is None:
            raise KeyError(gateway_id)
        now = self._clock()
        self._invalidate(session, gateway_id, now)
        serial = row.cert_serial
        if serial:
            self._revoke_serial(session, serial, gateway_id)
        row.state, row.revoked_at = REVOKED, now
        return serial

    def _revoke_serial(self, session: Session, serial: str, gateway_id: str) -> None:
        if session.get(RevokedCertificate, serial) is None:
            session.add(RevokedCertificate(serial=serial, gateway_id=gateway_id,
                                           revoked_at=self._clock()))

    @staticmethod
    def _invalidate(session: Session, gateway_id: str, now: datetime) -> None:
        session.execute(update(EnrollmentCode)
                        .where(EnrollmentCode.gateway_id == gateway_id,
                               EnrollmentCode.used_at.is_(None),
                               EnrollmentCode.invalidated_at.is_(None))
                        .values(invalidated_at=now))

    @staticmethod
    def revoked_serials(session: Session) -> list[str]:
        return list(session.scalars(select(RevokedCertificate.serial)))
