"""The guardrail's reach into AWS and Azure from Google Cloud (``app.gcp.cloud_controllers``):
EC2 through AssumeRoleWithWebIdentity on moto's STS with a STAND-IN Google ID token (the
metadata server is not here), the token's audience from the environment; misconfiguration
named at cold start. The whole path, stops included, runs in ``tests/e2e``."""

from __future__ import annotations

from typing import Any

import pytest

from burnguard.adapters.aws.ec2 import Ec2Controller
from burnguard.app import gcp
from burnguard.app import slack as bootstrap
from burnguard.app.slack import ConfigurationError
from burnguard.services.pricing import ListPricedController

pytestmark = pytest.mark.emulator
ROLE = "arn:aws:iam::123456789012:role/burnguard-guardrail-stop"


def test_ec2_is_reached_with_a_google_id_token_for_the_configured_audience(aws: Any) -> None:
    asked: list[str] = []

    def token(audience: str) -> str:  # STAND-IN for the metadata server
        asked.append(audience)
        return "stand-in-id-token"

    env = {"BURNGUARD_AWS_ROLE_ARN": ROLE, "BURNGUARD_AWS_REGIONS": "us-east-1,eu-west-1"}
    controllers = gcp.cloud_controllers(env, id_token=token)
    # EC2, wrapped so that the instances it finds carry their list price (the API gives none)
    assert set(controllers) == {"aws"} and isinstance(controllers["aws"], ListPricedController)
    assert isinstance(controllers["aws"].inner, Ec2Controller)
    assert controllers["aws"].find("team", "nobody") == []  # the assumed role's credentials work
    gcp.cloud_controllers({**env, "BURNGUARD_AWS_TOKEN_AUDIENCE": "acme-stop"}, id_token=token)
    assert asked == ["burnguard-aws-stop", "acme-stop"]


def test_misconfigured_reach_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="BURNGUARD_AWS_ROLE_ARN"):
        gcp.cloud_controllers({"BURNGUARD_AWS_REGIONS": "us-east-1"})
    with pytest.raises(ConfigurationError, match="BURNGUARD_AWS_REGIONS"):
        gcp.cloud_controllers({"BURNGUARD_AWS_ROLE_ARN": ROLE, "BURNGUARD_AWS_REGIONS": "mars-1"})
    with pytest.raises(ConfigurationError, match="BURNGUARD_AZURE_SCOPES"):
        gcp.cloud_controllers({"BURNGUARD_AZURE_TENANT_ID": "t", "BURNGUARD_AZURE_CLIENT_ID": "c"},
                              id_token=lambda audience: "x")


def test_the_gcp_slash_bootstrap_resumes_through_the_guardrails_controllers() -> None:
    assert bootstrap.RESUMERS["gcp"] is gcp.resume_guardrails
