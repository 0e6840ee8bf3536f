"""`goldgate cancel` given --yes or a D1 to read from beside a single job (or with neither a job nor a selection) says
what those options are for: they act on a selection (--all-queued or --all-active), and say nothing of which jobs,
so the refusal does not tell the operator they "say which jobs to cancel" or "narrow a selection"."""

from __future__ import annotations

import pytest

from goldgate.cli import main

JOB = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("argv", "said", "not_said"), [
    ([JOB, "--yes"], ("--yes is for a selection (--all-queued or --all-active): `goldgate cancel <job_id> --stack "
                      "staging` cancels one job at once, without it"), "say which jobs"),
    ([JOB, "--database-id", "f" * 32, "--yes"], "--yes and --database-id are for a selection", "say which jobs"),
    (["--yes"], "--yes is for a selection: name the job to cancel", "narrow"),
    (["--workflow", "sdxl-txt2img", "--yes"], "--workflow narrows a selection; --yes is for a selection: name the job",
     "--yes narrow"),
])
def test_options_that_only_act_on_a_selection_are_named_for_what_they_are(argv, said, not_said, tmp_path, capsys):
    assert main(["cancel", *argv, "--stack", "staging", "--home", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert said in err and not_said not in err and err.count("\n") == 1, err


def test_a_job_id_with_a_selection_is_still_refused_as_two_answers_to_which_jobs(tmp_path, capsys):
    assert main(["cancel", JOB, "--all-queued", "--yes", "--stack", "staging", "--home", str(tmp_path)]) == 1
    assert "a job id and --all-queued both say which jobs to cancel" in capsys.readouterr().err
