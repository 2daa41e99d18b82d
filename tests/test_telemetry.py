"""The exporter's counts of its own API calls: what is kept for jobs that come and go."""

from __future__ import annotations

from exporter.drs.telemetry import ApiStats
from exporter.drs.transport import ApiCall


def failed(job_id: str, code: str = "DRS.M05004") -> ApiCall:
    return ApiCall(operation="list_progress_data", job_id=job_id, error_code=code, duration=0.1, status=400)


def test_before_any_job_list_every_error_is_counted() -> None:
    stats = ApiStats()
    stats(failed("a"))
    stats.error("compare", "b", "page_cap_exceeded")
    assert stats.errors == {("list_progress_data", "a", "DRS.M05004"): 1, ("compare", "b", "page_cap_exceeded"): 1}


def test_a_call_in_flight_when_its_job_went_does_not_bring_its_errors_back() -> None:
    stats = ApiStats()
    stats(failed("stays"))
    stats(failed("goes"))
    stats.retain_jobs({"stays"})
    assert stats.errors == {("list_progress_data", "stays", "DRS.M05004"): 1}
    # The refresh of the gone job was already under way: its failure arrives after the listing.
    stats(failed("goes"))
    stats.error("list_progress_data", "goes", "page_cap_exceeded")
    stats(failed(""))  # a call about no job (a listing) is always counted
    assert stats.errors == {
        ("list_progress_data", "stays", "DRS.M05004"): 1,
        ("list_progress_data", "", "DRS.M05004"): 1,
    }
    assert stats.requests["list_progress_data"] == 4, "the requests themselves are still counted"


def test_a_job_that_comes_back_is_counted_again() -> None:
    stats = ApiStats()
    stats.retain_jobs({"a"})
    stats(failed("b"))
    stats.retain_jobs({"a", "b"})
    stats(failed("b"))
    assert stats.errors == {("list_progress_data", "b", "DRS.M05004"): 1}
