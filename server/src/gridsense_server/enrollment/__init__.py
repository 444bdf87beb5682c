"""Enrollment: a gateway created by an installer or the control room joins with a one-time
code, receiving its broker account, its client certificate and a starting configuration."""

from .codes import format_code, new_code
from .issuer import Enroller, EnrollError, EnrollErrorKind
from .store import EnrollmentStore, GatewayExists, RefusalKind, Refused

__all__ = ["EnrollError", "EnrollErrorKind", "Enroller", "EnrollmentStore", "GatewayExists",
           "RefusalKind", "Refused", "format_code", "new_code"]
