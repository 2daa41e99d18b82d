"""Parsers of the replication-health answers: every documented shape and spelling, garbage refused."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.drs import fields
from exporter.drs.batch import MISSING, Batch, EntryError, parse_batch
from exporter.drs.ddl import TEXT_LIMIT, alarms_of, parse_ddl_item, parse_ddl_page
from exporter.drs.dirty import dirty_item, parse_dirty_page, tables_of
from exporter.drs.errors import INVALID_ERROR_CODE, INVALID_RESPONSE, DRSAPIError
from exporter.drs.health_compare import parse_policy, parse_progress
from exporter.drs.jobstatus import DEFAULT_EXPIRED_DAYS, parse_job_detail, parse_job_status
from exporter.drs.monitor import MEGABYTE, parse_dr_monitoring, parse_monitor_data
from exporter.drs.rpo import parse_rpo_rto
from exporter.drs.throughput import parse_batch_progress, parse_throughput

ANY_TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=20,
)
T2023 = 1689736165.0  # 2023-07-19T03:09:25Z

# --- field readers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(3, 3.0), ("3", 3.0), (" 2.5 ", 2.5), ("1e3", 1000.0), (-1, -1.0), ("²", None), ("1_000", None)],
        *[
            ("NaN", None),
            (True, None),
            (None, None),
            ("", None),
            ([1], None),
            (float("inf"), None),
            ("9" * 400, None),
            (10**400, None),
        ],
    ],
)
def test_real_reads_numbers_and_numeric_strings_only(value: Any, expected: float | None) -> None:
    assert fields.real(value) == expected


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        *[(2, "s", 2.0), ("2", "s", 2.0), (1500, "ms", 1.5), ("1500", "ms", 1.5), ("1500ms", "s", 1.5)],
        *[("3s", "ms", 3.0), ("2 min", "s", 120.0), ("01:02:03", "s", 3723.0), ("02:03", "s", 123.0)],
        *[(-1, "s", None), ("-1", "ms", None), ("soon", "s", None), (None, "s", None), (True, "s", None)],
    ],
)
def test_durations_in_either_unit(value: Any, unit: str, expected: float | None) -> None:
    assert fields.seconds(value, unit) == expected


def test_unknown_duration_unit_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unit"):
        fields.seconds(1, "h")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("false", False), (" TRUE ", True), (1, True), (0, False), ("1", True), (2, None), ("yes", None)],
)
def test_booleans(value: Any, expected: bool | None) -> None:
    assert fields.boolean(value) is expected


def test_excerpt_escapes_control_characters_and_cuts() -> None:
    assert fields.excerpt("a\nb\tc\x00", 50) == "a\\nb\\tc\\x00"
    assert fields.excerpt("x" * 500, 10) == "x" * 10 + "…"
    assert fields.excerpt(None) == fields.excerpt(5) == ""
    assert fields.excerpt("\ud800x").encode("utf-8")  # a lone surrogate still encodes


# --- batch answers ------------------------------------------------------------------------


def _echo(job_id: str, item: dict[str, Any]) -> str | None:
    return item.get("v")


def test_a_per_entry_error_marks_that_entry_not_the_batch() -> None:
    body = {
        "count": 4,
        "results": [
            {"job_id": "a", "v": "ok"},
            {"job_id": "b", "error_code": "DRS.M05003", "error_msg": "Task information not found."},
            {"job_id": "c", "error_code": "no code at all", "error_message": "other spelling"},
            {"job_id": "d"},  # parse refuses it
            {"job_id": "zz", "v": "not asked"},
            {"job_id": "../x", "v": "bad id"},
            "not an object",
        ],
    }
    batch = parse_batch(body, ["a", "b", "c", "d", "e", "../x"], "op", _echo)
    assert dict(batch.values) == {"a": "ok"}
    assert batch.errors["b"] == EntryError("b", "DRS.M05003", "Task information not found.")
    assert batch.errors["c"] == EntryError("c", INVALID_ERROR_CODE, "other spelling")
    assert batch.errors["d"].error_code == INVALID_RESPONSE
    assert batch.errors["e"].error_code == batch.errors["../x"].error_code == MISSING


@pytest.mark.parametrize("body", [None, [], "x", {}, {"results": None}, {"results": {"a": 1}}, {"count": 1}], ids=repr)
def test_batch_answers_of_the_wrong_shape_are_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_batch(body, ["a"], "op", _echo)
    assert caught.value.error_code == INVALID_RESPONSE and caught.value.operation == "op"


def test_a_batch_answer_that_is_an_error_body_is_that_error() -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_batch({"error_code": "DRS.M00004", "error_msg": "Service abnormal."}, ["a"], "op", _echo)
    assert caught.value.error_code == "DRS.M00004"


def test_merged_batches_prefer_values_over_errors() -> None:
    one: Batch[str] = Batch.of({"a": "1"}, {"b": EntryError("b", "x")})
    two: Batch[str] = Batch.of({"b": "2"}, {"a": EntryError("a", "y"), "c": EntryError("c", "z")})
    merged = one.merged(two)
    assert dict(merged.values) == {"a": "1", "b": "2"} and list(merged.errors) == ["c"]


# --- monitor data -------------------------------------------------------------------------

V5_MONITOR = {
    "bandwidth": "10",
    "is_src_normal": True,
    "is_dst_normal": False,
    "src_offset": "mysql-bin.000003:1234",
    "node_offset": "mysql-bin.000003:1200",
    "dst_offset": "mysql-bin.000003:1100",
    "src_delay": 3,
    "dst_delay": 12,
    "src_rps": "120.5",
    "src_io": "30",
    "dst_rps": "118",
    "dst_io": "25",
    "trans_data": "512",
    "trans_lines": "100000",
    "used_volumes": "10",
    "used_memory": "2048",
    "used_cpu_percent": "12",
    "node_volume_size": 100,
    "node_memory_size": 8192,
    "update_time": "2023-07-19T03:09:25Z",
    "apply_rate": 2048,
}


def test_v5_monitor_data_as_the_sdk_types_it() -> None:
    data = parse_monitor_data(V5_MONITOR, "j")
    assert (data.source.up, data.target.up) == (True, False)
    assert (data.source.delay_seconds, data.target.delay_seconds) == (3.0, 12.0)
    assert (data.source.requests_per_second, data.target.requests_per_second) == (120.5, 118.0)
    assert (data.source.io_per_second, data.target.io_per_second) == (30.0, 25.0)
    assert data.source.offset == "mysql-bin.000003:1234" and data.node_offset == "mysql-bin.000003:1200"
    assert data.transferred_bytes == 512 * MEGABYTE and data.transferred_rows == 100000
    assert data.apply_bytes_per_second == 2048 and data.updated_at == T2023
    assert set(data.endpoints()) == {"source", "target"}


def test_v5_monitor_numbers_as_strings_booleans_as_strings_and_millisecond_delays() -> None:
    body = {**V5_MONITOR, "src_delay": "3000", "dst_delay": "1500ms", "is_src_normal": "true", "apply_rate": "2048"}
    data = parse_monitor_data(body, "j", delay_unit="ms")
    assert (data.source.delay_seconds, data.target.delay_seconds) == (3.0, 1.5)
    assert data.source.up is True and data.apply_bytes_per_second == 2048


def test_monitor_garbage_values_are_unknown_not_zero() -> None:
    body = {"is_src_normal": "maybe", "src_delay": -1, "dst_delay": "NaN", "src_rps": "fast", "trans_data": [1]}
    body["update_time"] = "yesterday"
    body["is_dst_normal"] = True
    data = parse_monitor_data(body, "j")
    assert data.source.up is None and data.source.delay_seconds is None and data.target.delay_seconds is None
    assert data.source.requests_per_second is None and data.transferred_bytes is None and data.updated_at is None


@pytest.mark.parametrize("body", [None, [], "x", {}, {"bandwidth": "1"}], ids=repr)
def test_monitor_answers_without_monitor_data_are_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_monitor_data(body, "j")
    assert caught.value.error_code == INVALID_RESPONSE


def test_dr_monitoring_both_spellings_of_the_object_and_its_fields() -> None:
    body = {
        "count": 3,
        "results": [
            {"id": "a", "data_guard_minitor": {"sr_delay": 4, "src_normal": True, "trans_inMB": "2", "dst_delay": 1}},
            {"id": "b", "data_guard_monitor": {"src_delay": "5", "dst_normal": "false", "trans_in_mb": 1}},
            {"id": "c", "data_guard_minitor": None},
        ],
    }
    batch = parse_dr_monitoring(body, ["a", "b", "c"])
    a, b = batch.values["a"], batch.values["b"]
    assert (a.source.delay_seconds, a.target.delay_seconds, a.source.up) == (4.0, 1.0, True)
    assert a.transferred_bytes == 2 * MEGABYTE and b.transferred_bytes == MEGABYTE
    assert (b.source.delay_seconds, b.target.up) == (5.0, False)
    assert batch.errors["c"].error_code == INVALID_RESPONSE


def test_dr_monitoring_bytes_per_second_spelling() -> None:
    body = {"results": [{"id": "a", "data_guard_minitor": {"migration_bytes_per_second": 99, "cpuUsed_percent": "3"}}]}
    assert parse_dr_monitoring(body, ["a"]).values["a"].apply_bytes_per_second == 99


# --- RPO / RTO ----------------------------------------------------------------------------


def test_rpo_and_rto_in_milliseconds_with_per_entry_errors() -> None:
    body = {
        "count": 3,
        "results": [
            {
                "job_id": "a",
                "rpo_info": {"check_point": "cp", "delay": "1500", "gtid_set": "g", "time": "2023-07-19 03:09:25"},
                "rto_info": {"delay": "250", "time": "2023-07-19T03:09:25Z"},
            },
            {"job_id": "b", "error_code": "DRS.M05003", "error_msg": "Task information not found."},
            {"job_id": "c", "rpo_info": {"delay": "soon"}, "rto_info": "garbage"},
        ],
    }
    batch = parse_rpo_rto(body, ["a", "b", "c"])
    a = batch.values["a"]
    assert (a.rpo_seconds, a.rto_seconds) == (1.5, 0.25)
    assert a.rpo is not None and a.rpo.time == T2023 and a.rpo.check_point == "cp"
    assert a.rto is not None and a.rto.time == T2023
    assert batch.errors["b"].error_code == "DRS.M05003"
    assert batch.errors["c"].error_code == INVALID_RESPONSE


def test_rpo_delay_in_seconds_when_told_or_written() -> None:
    body = {"results": [{"job_id": "a", "rpo_info": {"delay": "2"}, "rto_info": {"delay": "3s"}}]}
    assert parse_rpo_rto(body, ["a"], delay_unit="s").values["a"].rpo_seconds == 2.0
    value = parse_rpo_rto(body, ["a"]).values["a"]
    assert (value.rpo_seconds, value.rto_seconds) == (0.002, 3.0)


# --- batch progress extras ----------------------------------------------------------------


def test_apply_rates_and_phases_with_minus_one_meaning_not_in_this_phase() -> None:
    item = {
        "job_id": "a",
        "progress": "60",
        "incre_trans_delay": "",
        "incre_trans_delay_millis": "2500",
        "apply_rows_rate": 120,
        "apply_bytes_rate": "4096",
        "progress_map": {
            "structure": {"completed": "100%", "remaining_time": "0"},
            "data": {"completed": "94%", "remaining_time": 30},
            "index": {"completed": "-1", "remaining_time": "-1"},
            "Bad Phase": {"completed": "1%"},
            "extra_phase": {"completed": 5},
        },
    }
    value = parse_batch_progress({"results": [item]}, ["a"]).values["a"]
    assert value.progress.progress_ratio == 0.6 and value.progress.delay_seconds == 2.5
    throughput = value.throughput
    assert (throughput.apply_rows_per_second, throughput.apply_bytes_per_second) == (120.0, 4096.0)
    assert [(p.phase, p.ratio, p.remaining_seconds) for p in throughput.phases] == [
        ("structure", 1.0, 0.0),
        ("data", 0.94, 30.0),
        ("index", None, None),
        ("extra_phase", 0.05, None),
    ]


def test_before_the_incremental_phase_rates_are_absent_not_negative() -> None:
    throughput = parse_throughput("a", {"apply_rows_rate": -1, "apply_bytes_rate": "-1", "progress_map": "x"})
    assert throughput.apply_rows_per_second is None and throughput.apply_bytes_per_second is None
    assert throughput.phases == ()


def test_batch_progress_entry_errors_are_per_job() -> None:
    body = {"results": [{"job_id": "a", "progress": "1"}, {"job_id": "b", "error_code": "DRS.M05004"}]}
    batch = parse_batch_progress(body, ["a", "b"])
    assert set(batch.values) == {"a"} and batch.errors["b"].error_code == "DRS.M05004"


# --- batch status / detail ----------------------------------------------------------------


def test_failed_job_detail_reason_times_and_expiry() -> None:
    body = {
        "count": 3,
        "results": [
            {
                "id": "a",
                "status": "INCRE_TRANSFER_FAILED",
                "failed_reason": "apply failed:\nduplicate key",
                "actual_start_time": "1689736165000",
                "full_transfer_complete_time": "2023-07-19T03:09:25Z",
                "update_time": "2023-07-19 03:09:25",
                "error_code": "DRS.M00004",
                "error_message": "Service abnormal.",
                "multi_write": "false",
                "job_direction": "up",
                "job_kernel_direction": "down",
                "db_use_type": "cloudDataGuard",
                "expired_days": "30",
            },
            {"id": "b", "status": "INCRE_TRANSFER_STARTED", "base_info": {"expired_days": 5}},
            {"id": "c", "error_code": "DRS.M05003", "error_msg": "Task information not found."},
        ],
    }
    batch = parse_job_detail(body, ["a", "b", "c"])
    a = batch.values["a"]
    assert a.failed and a.failed_reason == "apply failed:\\nduplicate key"
    assert a.actual_start_time == a.full_transfer_complete_time == a.update_time == T2023
    assert (a.error_code, a.error_msg) == ("DRS.M00004", "Service abnormal.")
    assert (a.expired_days, a.expired_days_assumed) == (30, False)
    assert a.failed_expiry == T2023 + 30 * 86400
    assert (a.multi_write, a.job_direction, a.job_kernel_direction, a.db_use_type) == (
        False,
        "up",
        "down",
        "cloudDataGuard",
    )
    b = batch.values["b"]
    assert not b.failed and b.failed_expiry is None
    assert (b.expired_days, b.expired_days_assumed) == (DEFAULT_EXPIRED_DAYS, True)  # 5 is outside 14-100
    assert batch.errors["c"].error_code == "DRS.M05003"


def test_failed_reason_is_cut_and_odd_statuses_are_bounded() -> None:
    body = {"results": [{"id": "a", "status": "weird status\n", "failed_reason": "x" * 5000, "job_direction": "u p"}]}
    a = parse_job_detail(body, ["a"]).values["a"]
    assert a.status == "UNKNOWN" and len(a.failed_reason) <= 501 and a.job_direction == ""


def test_batch_status_entries() -> None:
    body = {
        "results": [
            {"id": "a", "status": "FULL_TRANSFER_FAILED", "error_code": "DRS.M00004", "error_message": "boom"},
            {"id": "b", "status": "INCRE_TRANSFER_STARTED"},
            {"id": "c", "error_code": "DRS.M05003"},
        ]
    }
    batch = parse_job_status(body, ["a", "b", "c"])
    assert batch.values["a"].failed and batch.values["a"].error_code == "DRS.M00004"
    assert batch.values["b"].error_code is None and batch.errors["c"].error_code == "DRS.M05003"


# --- DDL alarms ---------------------------------------------------------------------------

DDL_TEXT = "ALTER TABLE secret_marker_ddl ADD COLUMN c INT;\n-- " + "x" * 500


def test_ddl_alarms_keep_a_cut_escaped_text_only() -> None:
    body = {
        "count": 3,
        "ddl_list": [
            {"seqno": 7, "checkpoint": "cp", "status": 1, "ddl_timestamp": 1689736165000, "ddl_text": DDL_TEXT}
            | {"exe_result": False, "record_time": 1689736165, "clean_time": 0},
            {"seqno": "8", "status": "1", "ddl_timestamp": "1689736166000", "ddl_text": "DROP x", "exe_result": "true"},
            {"seqno": 9, "status": 0, "ddl_timestamp": 1689736999000, "ddl_text": "y"},
            {"status": 1},  # no seqno: skipped
        ],
    }
    alarms = parse_ddl_page(body, "j")
    assert alarms.count == 3 and [a.seqno for a in alarms.alarms] == [9, 8, 7]
    assert (alarms.active, alarms.failed, alarms.latest) == (2, 1, 1689736166.0)
    seven = alarms.alarms[2]
    assert (
        seven.text.startswith("ALTER TABLE secret_marker_ddl ADD COLUMN c INT;\\n")
        and len(seven.text) <= TEXT_LIMIT + 1
    )
    assert seven.time == T2023 and seven.record_time == T2023 and seven.clean_time is None and seven.exe_result is False
    assert "secret_marker_ddl" not in repr(alarms)  # never in a logged value


@pytest.mark.parametrize(
    "body", [None, [], {}, {"count": 2}, {"count": 1, "ddl_list": {"a": 1}}, {"ddl_list": "x"}], ids=repr
)
def test_ddl_answers_of_the_wrong_shape_are_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_ddl_page(body, "j")
    assert caught.value.error_code == INVALID_RESPONSE


@pytest.mark.parametrize(
    "status, active",
    [
        *[(1, True), ("1", True), (True, True), ("true", True)],
        *[(0, False), ("0", False), (False, False), (0.0, False)],
        *[(None, True), ("\u00b2", True), ("abc", True), (2, True), (-1, True), ({}, True)],
    ],
    ids=repr,
)
def test_a_ddl_alarm_whose_status_is_unreadable_counts_as_active(status: Any, active: bool) -> None:
    """Asked with ``status=1``: only a readable "no alarm" is not active; garbage never hides an alarm."""
    item = {"seqno": 1, "ddl_timestamp": 1689736165000} | ({} if status is None else {"status": status})
    alarm = parse_ddl_item(item)
    assert alarm is not None and alarm.active is active
    assert parse_ddl_page({"count": 1, "ddl_list": [item]}, "j").active == (1 if active else 0)


def test_no_ddl_alarms() -> None:
    assert parse_ddl_page({"count": 0}, "j") == alarms_of("j", 0, [])
    assert parse_ddl_item({"seqno": -1}) is None and parse_ddl_item("x") is None


# --- dirty data ---------------------------------------------------------------------------


def test_dirty_rows_keep_names_and_times_never_sql() -> None:
    items = [
        {"db_name": "shop", "schema_name": "", "table_name": "orders", "error_time": "2023-07-19T03:09:25Z"}
        | {
            "error_sql": "INSERT INTO orders VALUES ('secret_marker_sql')",
            "error_msg": "Duplicate 'secret_marker_sql'",
        },
        {"db_name": "shop", "table_name": "orders", "error_time": "2023-07-19T03:09:20Z", "error_sql": "x"},
        {"db_name": "shop", "schema_name": "public", "table_name": "users", "error_time": None},
        {"db_name": "shop", "error_sql": "no table: skipped"},
    ]
    page = parse_dirty_page({"count": 40, "dirty_data_list": items})
    assert page.total == 40 and len(page.items) == 3
    assert "secret_marker_sql" not in repr(page.items)
    assert set(page.items[0]._fields) == {"db_name", "schema_name", "table_name", "error_time"}
    tables = tables_of(page.items)
    assert [(t.db_name, t.schema_name, t.table_name, t.rows, t.latest) for t in tables] == [
        ("shop", "", "orders", 2, T2023),
        ("shop", "public", "users", 1, None),
    ]


@pytest.mark.parametrize("body", [None, {}, {"count": 3}, {"count": 1, "dirty_data_list": 7}], ids=repr)
def test_dirty_answers_of_the_wrong_shape_are_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_dirty_page(body)
    assert caught.value.error_code == INVALID_RESPONSE


def test_dirty_item_garbage() -> None:
    assert dirty_item([]) is None and dirty_item({"table_name": 5}) is not None


# --- health comparisons -------------------------------------------------------------------


def test_compare_policy_every_status() -> None:
    policy = parse_policy(
        {
            "period": "1,3,5",
            "status": "OPEN",
            "begin_time": "02:00",
            "end_time": "04:00",
            "compare_type": ["lines", "object_comparison", "bogus"],
            "next_compare_time": "2023-07-19T03:09:25Z",
            "compare_policy": "normal",
            "interval_hour": "24",
        }
    )
    assert policy.enabled and policy.next_compare_time == T2023 and policy.interval_hours == 24
    assert policy.compare_types == ("lines", "object_comparison") and policy.period == "1,3,5"
    assert (
        not parse_policy({"status": "closed"}).enabled and parse_policy({"status": "NO_SUPPORT"}).status == "NO_SUPPORT"
    )
    assert parse_policy({"status": "HALF_OPEN", "compare_type": "lines,account"}).status == "UNKNOWN"
    assert parse_policy({"status": "OPEN", "compare_type": "lines,account"}).compare_types == ("lines", "account")


@pytest.mark.parametrize("body", [None, {}, {"status": 1}, {"status": " "}], ids=repr)
def test_compare_policy_without_status_is_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_policy(body)
    assert caught.value.error_code == INVALID_RESPONSE


def test_compare_progress() -> None:
    value = parse_progress(
        {
            "full_info": {"progress": "55.5%", "src_speed": "10MB/s", "recheck_entities": 3},
            "incre_info": {"delay": 2.5, "src_speed": "1", "rps": "100", "log_point": "p", "recheck_entities": "1"},
            "global_info": {"src_speed": "x"},
        },
        "cmp",
    )
    assert (value.full_ratio, value.incremental_delay_seconds, value.rows_per_second, value.recheck_rows) == (
        0.555,
        2.5,
        100.0,
        4,
    )
    only_full = parse_progress({"full_info": {"progress": 150}}, "cmp")
    assert (
        only_full.full_ratio == 1.0 and only_full.incremental_delay_seconds is None and only_full.recheck_rows is None
    )


@pytest.mark.parametrize("body", [None, {}, {"global_info": {}}, {"full_info": 1, "incre_info": "x"}], ids=repr)
def test_compare_progress_without_progress_is_invalid(body: Any) -> None:
    with pytest.raises(DRSAPIError) as caught:
        parse_progress(body, "cmp")
    assert caught.value.error_code == INVALID_RESPONSE


# --- hostile input: arbitrary JSON never escapes as anything but DRSAPIError --------------

PARSERS: list[Callable[[Any], Any]] = [
    lambda b: parse_monitor_data(b, "j"),
    lambda b: parse_dr_monitoring(b, ["a", "b"]),
    lambda b: parse_rpo_rto(b, ["a", "b"]),
    lambda b: parse_batch_progress(b, ["a", "b"]),
    lambda b: parse_job_status(b, ["a", "b"]),
    lambda b: parse_job_detail(b, ["a", "b"]),
    lambda b: parse_ddl_page(b, "j"),
    parse_dirty_page,
    parse_policy,
    lambda b: parse_progress(b, "c"),
]
ENTRY = st.dictionaries(
    st.sampled_from(["job_id", "id", "status", "error_code", "rpo_info", "progress_map", "data_guard_minitor"])
    | ANY_TEXT,
    JSON | st.just("a"),
    max_size=6,
)
BODY = (
    JSON
    | st.fixed_dictionaries({"results": st.lists(ENTRY, max_size=4)})
    | st.fixed_dictionaries({"count": JSON, "ddl_list": st.lists(JSON, max_size=4)})
    | st.fixed_dictionaries({"count": JSON, "dirty_data_list": st.lists(JSON, max_size=4)})
    | st.fixed_dictionaries({"status": JSON, "full_info": JSON, "incre_info": JSON, "src_delay": JSON})
)


@given(body=BODY, which=st.integers(0, len(PARSERS) - 1))
def test_arbitrary_answers_parse_or_are_refused_with_a_code(body: Any, which: int) -> None:
    try:
        value = PARSERS[which](body)
    except DRSAPIError as err:
        assert err.error_code  # a named refusal, never another exception
        return
    for number in _numbers(value):
        assert math.isfinite(number) and number >= 0


def _numbers(value: Any) -> list[float]:
    """Every float of a parsed value (dataclasses, tuples, mappings), to check none is NaN or negative."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, Batch):
        return [n for v in value.values.values() for n in _numbers(v)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _numbers(v)]
    if hasattr(value, "__dataclass_fields__"):
        return [n for k in value.__dataclass_fields__ for n in _numbers(getattr(value, k))]
    return []


def test_job_detail_edge_cases_the_details_source_relies_on() -> None:
    """No full-phase end from a placeholder time, no error label from an empty or hostile code."""
    body = {
        "results": [
            {"id": "a", "status": "FULL_TRANSFER_STARTED", "full_transfer_complete_time": "0", "error_code": " "},
            {"id": "b", "status": "INCRE_TRANSFER_STARTED", "full_transfer_complete_time": "", "update_time": "-1"},
            {"job_id": "c", "status": "INCRE_TRANSFER_FAILED", "error_code": 'x"}\n' * 30, "expired_days": "abc"},
            {"id": "d", "status": "INCRE_TRANSFER_FAILED", "expired_days": 101, "base_info": {"expired_days": "30"}},
        ]
    }
    batch = parse_job_detail(body, ["a", "b", "c", "d"])
    a, b, c, d = (batch.values[j] for j in "abcd")
    assert a.full_transfer_complete_time is None and a.error_code is None
    assert b.full_transfer_complete_time is None and b.update_time is None
    assert c.error_code == "invalid_error_code" and (c.expired_days, c.expired_days_assumed) == (14, True)
    # Out of DRS's range at the top level: not a reading; base_info's is read instead.
    assert (d.expired_days, d.expired_days_assumed) == (30, False)
    assert c.failed_expiry is None, "no update_time: the parser alone cannot say when it failed"
