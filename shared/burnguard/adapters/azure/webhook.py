"""Authentication of the budget webhook (the Action Group calls it).

Two ways, one configured per deployment:

* ``SecretAuth``: a secret carried in the webhook URL (``…/api/budget?token=<secret>``), the
  secret read from Key Vault by reference (``BURNGUARD_WEBHOOK_SECRET_REF``), compared in
  constant time. The Action Group stores the URL; nothing else knows the secret.
* ``EntraAuth``: the Action Group's *secure webhook* with Entra ID. App Service
  Authentication ("Easy Auth") on the Function App validates the bearer token and injects
  ``X-MS-CLIENT-PRINCIPAL-ID`` / ``X-MS-CLIENT-PRINCIPAL-IDP`` (headers a caller cannot set: the
  platform strips them from incoming requests). The function refuses a request without them,
  and, when ``allowed`` is given, one from any other principal (the Action Group's app).

Both return ``None`` for an accepted request, else the reason (logged, never answered).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping

PRINCIPAL_ID = "x-ms-client-principal-id"
PRINCIPAL_IDP = "x-ms-client-principal-idp"
TOKEN_PARAM = "token"


class SecretAuth:
    def __init__(self, secret: str):
        if len(secret) < 16:
            raise ValueError("the webhook secret is shorter than 16 characters")
        self._secret = secret.encode()

    def refuse(self, params: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
        given = params.get(TOKEN_PARAM)
        if not given:
            return f"no {TOKEN_PARAM} in the webhook URL"
        if not hmac.compare_digest(given.encode(), self._secret):
            return f"wrong {TOKEN_PARAM} in the webhook URL"
        return None


class EntraAuth:
    def __init__(self, allowed: Collection[str] = ()):
        self.allowed = {a.strip().lower() for a in allowed if a.strip()}

    def refuse(self, params: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        principal = lowered.get(PRINCIPAL_ID, "").strip().lower()
        if not principal:
            return "no Entra ID principal (App Service Authentication did not authenticate the call)"
        if lowered.get(PRINCIPAL_IDP, "aad").lower() not in ("aad", "azureactivedirectory"):
            return f"principal from identity provider {lowered.get(PRINCIPAL_IDP)!r}, not Entra ID"
        if self.allowed and principal not in self.allowed:
            return f"principal {principal} is not allowed"
        return None
