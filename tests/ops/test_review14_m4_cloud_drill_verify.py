"""Review 14 (m4): the cloud drill verifies the scratch D1 it restored, not only the export it stored."""

from __future__ import annotations

from test_dr_cloud import cloud, r2  # noqa: F401 -- the D1 stand-in and R2 fixtures

from goldgate.ops.dr import latest_drill, run_cloud_drill


def test_a_scratch_d1_that_lost_rows_in_the_import_fails_the_drill(cloud, r2, tmp_path, monkeypatch):  # noqa: F811
    # The import reported success but the scratch database lacks a job (an import cut short server-side, a
    # statement D1 skipped): the backup in R2 is intact, yet this restore did not bring the database back, and
    # the drill is what says whether one would.
    standin, d1, source = cloud
    imported = d1.import_sql

    def import_losing_a_row(database_id, path, progress=None):
        answer = imported(database_id, path, progress) if progress else imported(database_id, path)
        d1.query(database_id, "DELETE FROM job_metrics WHERE job_id = 'job-0150'")
        return answer

    monkeypatch.setattr(d1, "import_sql", import_losing_a_row)
    result = run_cloud_drill("staging", d1, source, r2, tmp_path)
    assert result.passed is False
    assert "differs from the export" in result.error and "job_metrics: 299 rows, expected 300" in result.error
    assert result.rto_s is None  # no restore was verified: no RTO to show
    assert latest_drill(tmp_path, "staging", "cloud")["passed"] is False
    assert list(standin.backend.databases) == [source]  # the scratch is deleted all the same
