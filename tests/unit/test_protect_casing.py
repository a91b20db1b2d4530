"""The protect tag always wins: any key equal to the protect key without regard to case, with
a true value in any casing, protects the instance, whatever other keys say (AWS tag keys are
case-sensitive, so both spellings can sit on one instance)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from burnguard.core.instances import Instance
from burnguard.core.ledger import Scope
from burnguard.core.policy import Safety
from burnguard.rules.actions import select_for_stop


def casings(word: str) -> st.SearchStrategy[str]:
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda flips: "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True)))


def gpu(tags: dict[str, str]) -> Instance:
    return Instance("aws", "i-1", "trainer", "us-east-1", "p4d.24xlarge", "running", tags=tags)


@given(key=casings("burnguard:protect"), value=casings("true"), other_key=casings("burnguard:protect"),
       other_value=st.sampled_from(["false", "FALSE", "no", "", "0"]), true_first=st.booleans())
def test_any_casing_of_the_protect_key_protects_whatever_other_keys_say(
        key: str, value: str, other_key: str, other_value: str, true_first: bool) -> None:
    pairs = [(key, value), (other_key, other_value)] if true_first else [(other_key, other_value), (key, value)]
    tags = {"team": "ml-research"}
    for k, v in pairs:
        tags.setdefault(k, v)  # the same spelling twice cannot be two AWS tags
    if key == other_key:
        tags[key] = value
    selection = select_for_stop([gpu(tags)], Scope("team", "ml-research"), Safety(), budget=10)
    assert not selection.stop
    assert "protected" in selection.skipped[0].reason


def test_the_reported_attack_is_refused() -> None:
    tags = {"team": "ml-research", "burnguard:protect": "true", "Burnguard:Protect": "false"}
    assert Safety().is_protected(tags)
    assert Safety().is_protected(dict(reversed(list(tags.items()))))
    assert not Safety().is_protected({"team": "ml-research", "Burnguard:Protect": "false"})
