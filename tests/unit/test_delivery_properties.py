"""Property tests of delivery identity: ids are deterministic and tell deliveries apart, event
keys decode exactly, and key layouts name one delivery whichever duplicate arrives."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import quote_plus

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from burnguard.core.delivery import (
    PROVIDERS,
    Delivery,
    DeliveryFile,
    Provider,
    classify_object,
    delivery_for_single_file,
    delivery_id,
    parse_cur_manifest,
    parse_s3_key,
)
from burnguard.core.errors import InputError

providers: st.SearchStrategy[Provider] = st.sampled_from(PROVIDERS)
periods = st.one_of(st.none(), st.builds(lambda y, m: f"{y:04d}-{m:02d}", st.integers(1, 9999), st.integers(1, 12)))
texts = st.text(min_size=1, max_size=40)
identities = st.tuples(providers, texts, periods, texts)
Identity = tuple[Provider, str, str | None, str]


@given(identities, st.lists(st.text(min_size=1, max_size=20), unique=True, max_size=4), st.booleans())
def test_delivery_id_is_a_function_of_the_identity_only(identity: Identity,
                                                        keys: list[str], complete: bool) -> None:
    provider, source, period, version = identity
    first = delivery_id(provider, source, period, version)
    assert first == delivery_id(provider, source, period, version)
    assert first.startswith(f"{provider}-{period or 'none'}-")
    d = Delivery(provider=provider, source=source, billing_period=period, version=version, complete=complete,
                 layout="gcp", files=tuple(DeliveryFile(key=k) for k in keys))
    assert d.delivery_id == first
    assert Delivery.model_validate_json(d.model_dump_json()).delivery_id == first


@given(identities, identities)
def test_distinct_identities_have_distinct_ids(a: Identity,
                                               b: Identity) -> None:
    assume(a != b)
    assert delivery_id(*a) != delivery_id(*b)


@given(identities, st.sampled_from([0, 1, 2, 3]), texts)
def test_changing_any_one_part_changes_the_id(identity: Identity, part: int,
                                              replacement: str) -> None:
    provider, source, period, version = identity
    if part == 0:
        provider = "aws" if provider != "aws" else "gcp"
    elif part == 1:
        source = replacement
    elif part == 2:
        period = None if period else "2026-11"
    else:
        version = replacement
    assume((provider, source, period, version) != identity)
    assert delivery_id(*identity) != delivery_id(provider, source, period, version)


key_text = st.text(st.characters(codec="utf-8"), min_size=1, max_size=60)


@given(key_text)
def test_event_keys_decode_exactly(key: str) -> None:
    # S3 notifications encode keys like quote_plus (space → '+', '=' → %3D, '+' → %2B).
    encoded = quote_plus(key, safe="/")
    try:
        parsed = parse_s3_key(encoded)
    except InputError as exc:  # a key that happens to look like a malformed period folder names itself
        assert exc.file == key
        return
    assert parsed.key == key
    assert parsed.raw == encoded


segment = st.text(st.characters(categories=("Ll", "Lu", "Nd"), include_characters=" -_=+.!()"),
                  min_size=1, max_size=12).filter(lambda s: s.strip(".") != "")
months = st.builds(date, st.integers(1990, 2100), st.integers(1, 12), st.just(1))
uuids = st.uuids().map(str)


def _next(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


@given(st.lists(segment, max_size=3), segment, months, uuids, st.text("0123456789", min_size=10, max_size=13))
def test_both_cur_manifests_of_any_report_are_one_delivery(prefix: list[str], report: str, month: date,
                                                           assembly: str, account: str) -> None:
    folder = f"{month:%Y%m%d}-{_next(month):%Y%m%d}"
    base = "/".join([*prefix, report, folder])
    period_key = f"{base}/{report}-Manifest.json"
    assembly_key = f"{base}/{assembly}/{report}-Manifest.json"
    manifest = json.dumps({
        "assemblyId": assembly, "account": account, "reportName": report,
        "billingPeriod": {"start": f"{month:%Y%m%d}T000000.000Z", "end": f"{_next(month):%Y%m%d}T000000.000Z"},
        "reportKeys": [f"{base}/{assembly}/{report}-1.csv.gz"],
    }).encode()
    roles = [classify_object("aws", "b", k) for k in (period_key, assembly_key)]
    assert [r.kind for r in roles] == ["manifest", "manifest"]
    assert {r.billing_period for r in roles} == {f"{month:%Y-%m}"}
    # The event's URL-encoded key decodes to the same layout.
    encoded = parse_s3_key(quote_plus(assembly_key, safe="/"))
    assert (encoded.key, encoded.export_name, encoded.version) == (assembly_key, report, assembly)
    a = parse_cur_manifest(manifest, period_key, bucket="b")
    b = parse_cur_manifest(manifest, assembly_key, bucket="b")
    assert a == b
    assert a.billing_period == f"{month:%Y-%m}"
    assert a.source == f"aws-cur|{account}|{'/'.join(prefix)}|{report}"


@given(st.integers(1990, 2100), st.integers(0, 99).filter(lambda m: not 1 <= m <= 12))
def test_impossible_months_are_errors_naming_the_key(year: int, month: int) -> None:
    key = f"cur/x/metadata/BILLING_PERIOD={year:04d}-{month:02d}/x-Manifest.json"
    with pytest.raises(InputError) as info:
        classify_object("aws", "b", key)
    assert info.value.file == key
    gcs = f"billing/{year:04d}-{month:02d}/export.json"
    with pytest.raises(InputError) as info:
        delivery_for_single_file("gcp", "b", gcs, 1)
    assert gcs in str(info.value)


@given(st.dates(date(1990, 1, 1), date(2100, 12, 31)), st.dates(date(1990, 1, 1), date(2100, 12, 31)))
def test_range_folders_are_whole_months_only(start: date, end: date) -> None:
    key = f"p/r/{start:%Y%m%d}-{end:%Y%m%d}/r-Manifest.json"
    whole = start.day == 1 and end == _next(start)
    try:
        role = classify_object("aws", "b", key)
    except InputError as exc:
        assert not whole
        assert exc.file == key
    else:
        assert whole
        assert role.billing_period == f"{start:%Y-%m}"
    azure = f"r/e/{start:%Y%m%d}-{end:%Y%m%d}/e_0f8fad5b-d9cb-469f-a165-70867728950e.csv"
    month_ok = start.day == 1 and start <= end <= _next(start)
    try:
        d = delivery_for_single_file("azure", "c", azure, '"0x1"')
    except InputError as exc:
        assert not month_ok
        assert exc.file == azure
    else:
        assert month_ok
        assert d.billing_period == f"{start:%Y-%m}"


@given(st.one_of(st.integers(1, 2**63), st.integers(1, 2**63).map(str)))
def test_gcs_generation_number_or_string_is_one_delivery(generation: int | str) -> None:
    as_given = delivery_for_single_file("gcp", "b", "billing/2026-11/export.json", generation)
    assert as_given == delivery_for_single_file("gcp", "b", "billing/2026-11/export.json", int(generation))
    assert as_given.version == str(int(generation))
