"""The Google Cloud functions' settings: each missing or malformed variable is named."""

from __future__ import annotations

import pytest

from burnguard.app import gcp
from burnguard.app.config import ConfigurationError, open_firestore_ledger


def test_each_bad_setting_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="BURNGUARD_TOPIC is not set"):
        gcp.topic_path({})
    with pytest.raises(ConfigurationError, match="BURNGUARD_TOPIC must be projects/<project>/topics/<topic>"):
        gcp.topic_path({"BURNGUARD_TOPIC": "burnguard"})
    assert gcp.topic_path({"BURNGUARD_TOPIC": " projects/acme-finops/topics/burnguard "}) == \
        "projects/acme-finops/topics/burnguard"
    with pytest.raises(ConfigurationError, match="BURNGUARD_DEAD_LETTER_TOPIC"):
        gcp.topic_path({}, gcp.DEAD_LETTER_TOPIC)
    with pytest.raises(ConfigurationError, match="BURNGUARD_MAX_DELIVERY_ATTEMPTS must be an integer from 5 to 100"):
        gcp.max_attempts({"BURNGUARD_MAX_DELIVERY_ATTEMPTS": "3"})
    assert gcp.max_attempts({}) == 5 and gcp.max_attempts({"BURNGUARD_MAX_DELIVERY_ATTEMPTS": "12"}) == 12
    with pytest.raises(ConfigurationError, match="BURNGUARD_LEDGER must be firestore://projects/<project>"):
        open_firestore_ledger("firestore://projects/acme/ledger", client=object())
    ledger = open_firestore_ledger("firestore://projects/acme-finops/databases/(default)?prefix=prod_",
                                       client=object())
    assert ledger.prefix == "prod_"
    with pytest.raises(ConfigurationError, match="BURNGUARD_POLICY, BURNGUARD_LEDGER"):
        gcp.build_guardrail({})
    with pytest.raises(ConfigurationError, match="BURNGUARD_AZURE_CLIENT_ID, BURNGUARD_AZURE_SCOPES"):
        gcp.cloud_controllers({"BURNGUARD_AZURE_TENANT_ID": "t"})
