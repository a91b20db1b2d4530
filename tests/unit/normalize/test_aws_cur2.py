"""CUR 2.0 / Data Exports: snake_case columns with ``resource_tags`` as a map (Parquet) or as
JSON text (CSV). No public CUR 2.0 file exists (formats.md §9): these are built in the test
from the documented column names."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq

from burnguard.normalize import Normalizer

COLUMNS = {
    "bill_payer_account_id": ["111122223333"] * 4,
    "bill_payer_account_name": ["payer"] * 4,
    "line_item_usage_account_id": ["444455556666"] * 4,
    "line_item_line_item_type": ["Usage", "Usage", "SavingsPlanCoveredUsage", "Usage"],
    "line_item_usage_start_date": [datetime(2024, 9, 1, h) for h in range(4)],
    "line_item_usage_end_date": [datetime(2024, 9, 1, h + 1) for h in range(4)],
    "line_item_usage_type": ["BoxUsage:p4d.24xlarge", "BoxUsage:m5.large", "BoxUsage:g5.xlarge", "BoxUsage:m5.large"],
    "product_instance_type": ["p4d.24xlarge", "m5.large", "g5.xlarge", "m5.large"],
    "line_item_currency_code": ["USD"] * 4,
    "savings_plan_savings_plan_effective_cost": [None, None, Decimal("0.7"), None],
}
COSTS = [Decimal("32.7726"), Decimal("0.096"), Decimal("1.006"), Decimal("0.096")]
TAGS = [[("user_team", "ml-research"), ("user_Name", "trainer")], [], [("user_team", "x" * 2000)],
        [("user_team", " ml-research "), ("aws_created_by", "role")]]


def table() -> pa.Table:
    cols = {k: pa.array(v) for k, v in COLUMNS.items()}
    cols["line_item_unblended_cost"] = pa.array(COSTS, pa.decimal128(18, 10))
    cols["line_item_usage_start_date"] = pa.array(COLUMNS["line_item_usage_start_date"], pa.timestamp("ms"))
    cols["line_item_usage_end_date"] = pa.array(COLUMNS["line_item_usage_end_date"], pa.timestamp("ms"))
    cols["savings_plan_savings_plan_effective_cost"] = pa.array(COLUMNS["savings_plan_savings_plan_effective_cost"],
                                                                pa.decimal128(18, 10))
    cols["resource_tags"] = pa.array(TAGS, pa.map_(pa.string(), pa.string()))
    return pa.table(cols)


def test_parquet_map_tags_are_normalized_and_a_huge_value_is_a_bad_row() -> None:
    sink = io.BytesIO()
    pq.write_table(table(), sink)
    sink.seek(0)
    n = Normalizer(sink, "cur2.snappy.parquet")
    out = n.read_all()
    assert n.stats.variant == "aws-cur2"
    assert [dict(t) for t in out.column("Tags").to_pylist()] == [
        {"team": "ml-research", "Name": "trainer"}, {}, {"team": "ml-research", "aws_created_by": "role"}]
    assert out.column("x_SourceRow").to_pylist() == [1, 2, 4]
    [err] = n.stats.errors
    assert (err.row, err.field) == (3, "resource_tags") and "2000 characters" in str(err)
    assert out.column("x_AcceleratorFamily").to_pylist() == ["nvidia-a100", None, None]


def test_csv_json_tags_and_amortized_cost() -> None:
    t = table()
    rows = ["bill_payer_account_id,bill_payer_account_name,line_item_line_item_type,line_item_usage_start_date,"
            "line_item_unblended_cost,line_item_currency_code,savings_plan_savings_plan_effective_cost,resource_tags"]
    texts = ['"{""user_team"": ""ml-research""}"', "", '"{""user_team"": ""web""}"', "not json"]
    for i in range(4):
        sp = t.column("savings_plan_savings_plan_effective_cost")[i].as_py()
        rows.append(f"111122223333,payer,{COLUMNS['line_item_line_item_type'][i]},2024-09-01T0{i}:00:00Z,"
                    f"{COSTS[i]},USD,{sp if sp is not None else ''},{texts[i]}")
    n = Normalizer(io.BytesIO(("\n".join(rows) + "\n").encode()), "cur2.csv")
    out = n.read_all()
    assert [dict(x) for x in out.column("Tags").to_pylist()] == [{"team": "ml-research"}, {}, {"team": "web"}]
    assert out.column("EffectiveCost").to_pylist() == [COSTS[0], COSTS[1], Decimal("0.7")]
    [err] = n.stats.errors
    assert (err.row, err.field) == (4, "resource_tags") and "not a JSON object" in str(err)


def test_columnar_map_tags_match_the_per_row_rule() -> None:
    # GIVEN resource_tags maps with prefixes, blanks, white space, null values and null maps
    import random

    from burnguard.core.clouds import AWS
    from burnguard.core.columnar import map_tag_rows
    from burnguard.core.tags import normalize_cur2_key, normalize_tags
    from burnguard.normalize.aws import _cur2_tags_columnar

    rng = random.Random(15)
    keys = ["user_team", "user_env", "aws_created_by", " user_x ", "", "user_", "team2", "user:owner"]
    values = ["a", " b ", "", None, "ml research", "x\t"]
    map_type = pa.map_(pa.string(), pa.string())
    used = 0
    for _ in range(200):
        rows: list[list[tuple[str, str | None]] | None] = []
        for _ in range(rng.randint(0, 30)):
            rows.append(None if rng.random() < 0.1 else
                        [(k, rng.choice(values)) for k in rng.sample(keys, rng.randint(0, 4))])
        tags = pa.array(rows, map_type)
        # WHEN they are normalized column-wise and row by row
        fast = _cur2_tags_columnar(tags)
        slow, _ = map_tag_rows(tags, lambda pairs: normalize_tags(AWS, [(normalize_cur2_key(k), v)
                                                                        for k, v in pairs]))
        # THEN both give the same tags
        assert fast is not None
        assert fast.to_pylist() == slow.to_pylist()
        used += 1
    assert used == 200
    # AND two keys of one normalized name, or a value past the limit, take the per-row rule
    assert _cur2_tags_columnar(pa.array([[("user_team", "a"), ("team", "b")]], map_type)) is None
    assert _cur2_tags_columnar(pa.array([[("user_team", "x" * 2000)]], map_type)) is None


def test_parquet_many_chunks_keep_file_order_errors_and_exact_float_costs() -> None:
    # Many chunks (chunk_rows=50) over row groups of 300: the bad rows of every chunk are
    # named in file order and counted once; float costs are their shortest decimal text.
    n_rows = 1_000
    costs = [round(0.001 * i + 0.1, 10) for i in range(n_rows)]
    bad = {17, 333, 334, 777, 999}
    for i in bad:
        costs[i] = float("nan")
    t = pa.table({
        "bill_payer_account_id": ["111122223333"] * n_rows,
        "line_item_usage_account_id": ["444455556666"] * n_rows,
        "line_item_line_item_type": ["Usage"] * n_rows,
        "line_item_usage_start_date": pa.array([datetime(2024, 9, 1, i % 24) for i in range(n_rows)], pa.timestamp("ms")),
        "line_item_currency_code": ["USD"] * n_rows,
        "line_item_unblended_cost": pa.array(costs, pa.float64()),
        "resource_tags": pa.array([[("user_team", f"t{i % 3}")] for i in range(n_rows)], pa.map_(pa.string(), pa.string())),
    })
    sink = io.BytesIO()
    pq.write_table(t, sink, row_group_size=300)
    sink.seek(0)
    n = Normalizer(sink, "cur2.parquet", chunk_rows=50)
    tables = list(n.batches())
    out = pa.concat_tables(tables)
    good = [i for i in range(n_rows) if i not in bad]
    assert out.column("x_SourceRow").to_pylist() == [i + 1 for i in good]
    assert out.column("BilledCost").to_pylist() == [Decimal(repr(costs[i])) for i in good]
    assert [e.row for e in n.stats.errors] == sorted(i + 1 for i in bad)
    assert all(e.field == "line_item_unblended_cost" for e in n.stats.errors)
    assert (n.stats.error_count, n.stats.rows_skipped, n.stats.rows_normalized) == (5, 5, n_rows - 5)
    assert [dict(x)["team"] for x in out.column("Tags").to_pylist()] == [f"t{i % 3}" for i in good]


def _chunked_parquet(rows: int) -> bytes:
    """A CUR 2.0 Parquet of ``rows`` rows whose text columns hold blanks and ``NULL`` now and
    then (written dictionary-encoded, as exporters do)."""
    resource = [("" if i % 7 == 3 else "NULL" if i % 11 == 5 else f"i-{i % 50:04x}") for i in range(rows)]
    cols = {
        "bill_payer_account_id": pa.array(["111122223333"] * rows),
        "line_item_usage_account_id": pa.array([("" if i % 13 == 0 else "444455556666") for i in range(rows)]),
        "line_item_line_item_type": pa.array([("Usage", "Tax", "")[i % 3] for i in range(rows)]),
        "line_item_usage_start_date": pa.array([datetime(2024, 9, 1, i % 24) for i in range(rows)], pa.timestamp("ms")),
        "line_item_resource_id": pa.array(resource),
        "line_item_currency_code": pa.array(["USD"] * rows),
        "line_item_unblended_cost": pa.array([float(i % 100) / 4 for i in range(rows)]),
    }
    sink = io.BytesIO()
    pq.write_table(pa.table(cols), sink, row_group_size=rows // 3)
    return sink.getvalue()


def test_parquet_text_columns_decoded_ahead_read_as_the_first_chunk_does() -> None:
    """After the first chunk the reader decodes the columns the plan reads as text only in its
    own thread (blanks and NULL made null first); the line items are the same as reading every
    chunk in the transform, serial or parallel."""
    data = _chunked_parquet(9_000)
    outs = []
    for parallel in (True, False):
        n = Normalizer(io.BytesIO(data), "cur2.parquet", chunk_rows=1_000, parallel=parallel)
        outs.append(n.read_all())
        assert "line_item_resource_id" in n._text_ahead and "line_item_usage_account_id" in n._text_ahead
        assert "line_item_line_item_type" not in n._text_ahead  # read as codes too (Distinct)
    # The oracle, from the rows as written: type blank -> a bad row; blank and NULL -> null.
    kept = [i for i in range(9_000) if i % 3 != 2]
    for out in outs:
        assert out.column("x_SourceRow").to_pylist() == [i + 1 for i in kept]
        assert out.column("ResourceId").to_pylist() == [
            None if i % 7 == 3 or i % 11 == 5 else f"i-{i % 50:04x}" for i in kept]
        assert out.column("SubAccountId").to_pylist() == [None if i % 13 == 0 else "444455556666" for i in kept]
    assert outs[0].equals(outs[1])
