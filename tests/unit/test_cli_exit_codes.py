"""What `syncd run --once` exits with, decided from its runs' outcomes (no process, no I/O)."""

from __future__ import annotations

import pytest

from syncd import cli
from syncd.engine.outcomes import Outcome, RunSummary


def summary(*outcomes: Outcome) -> RunSummary:
    return RunSummary({(f"i{n}", "properties"): outcome for n, outcome in enumerate(outcomes)})


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ((), cli.EXIT_OK),  # nothing was due: nothing left undone
        (("ok", "ok"), cli.EXIT_OK),
        (("ok", "busy"), cli.EXIT_OK),  # another process is syncing it and reports it
        (("busy",), cli.EXIT_OK),
        (("ok", "failed"), cli.EXIT_RUNS_FAILED),  # a breaker refusing a run is a failed run
        (("failed", "failed"), cli.EXIT_RUNS_FAILED),
        (("ok", "interrupted"), cli.EXIT_RUNS_FAILED),
        (("busy", "failed", "ok"), cli.EXIT_RUNS_FAILED),
    ],
)
def test_run_once_exits_non_zero_only_when_a_due_run_was_left_undone(
    outcomes: tuple[Outcome, ...], code: int
) -> None:
    assert cli.run_once_exit_code(summary(*outcomes)) == code


def test_the_summary_counts_every_outcome_and_names_the_unfinished_runs() -> None:
    runs = RunSummary(
        {
            ("beach", "reservations"): "failed",
            ("acme", "properties"): "ok",
            ("acme", "reservations"): "busy",
            ("beach", "properties"): "interrupted",
        }
    )
    assert runs.counts() == {"ok": 1, "failed": 1, "interrupted": 1, "busy": 1}
    assert runs.unfinished() == ["beach/properties", "beach/reservations"]
    assert RunSummary().counts() == {"ok": 0, "failed": 0, "interrupted": 0, "busy": 0}


def test_every_exit_code_is_distinct_and_listed_in_run_help_and_the_module_doc(
    capsys: pytest.CaptureFixture[str],
) -> None:
    codes = [cli.EXIT_OK, cli.EXIT_RUNTIME, cli.EXIT_CONFIG, cli.EXIT_RUNS_FAILED]
    assert len(set(codes)) == len(codes)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--help"])
    help_text = capsys.readouterr().out
    doc = cli.__doc__ or ""
    for code in codes:
        assert f"\n  {code}  " in help_text, help_text
        assert f"\n    {code}  " in doc, doc
