"""The CLI around the runner, through the real CLI with the fake executor: the [checks] gate failing in the right direction, --set over a matrix, --resume's refusals."""

from __future__ import annotations

import signal

from bench import cli
from bench.results.rundir import RunDir
from tests.runs import ONE, one_row, run, scen_file


def test_a_checks_failure_exits_1_naming_the_check(tmp_path, fake, capsys) -> None:
    body = ONE + "[checks]\nmin_rps = 1000000\n"
    code, row = one_row(tmp_path, body=body)
    assert code == 1 and row.status == "ok"
    err = capsys.readouterr().err
    assert "< min_rps 1000000" in err and row.cell_id in err


def test_checks_that_pass_exit_0(tmp_path, fake) -> None:
    code, _row = one_row(tmp_path, body=ONE + "[checks]\nmin_rps = 1\nmax_p99_ms = 1000\n")
    assert code == 0


def test_set_overrides_a_per_block_matrix_value(tmp_path, fake) -> None:
    body = ('[[matrix]]\nworkload = ["sleep"]\nusers = [5, 7]\n'
            '[[matrix]]\nworkload = ["noop"]\nusers = [9]\n')
    code, run_dir = run(tmp_path, scen_file(tmp_path, body), "--set", "users=3")
    assert code == 0
    assert sorted((r.workload, r.users) for r in RunDir(run_dir).rows()) == [("noop", 3), ("sleep", 3)]


def test_cpuset_axes_take_semicolons(tmp_path, fake) -> None:
    code, run_dir = run(tmp_path, scen_file(tmp_path, ""), "--set", "target_cpuset=0;0-1")
    assert code == 0
    assert sorted(r.target_cpuset for r in RunDir(run_dir).rows()) == ["0", "0-1"]
    assert sorted(r.target_affinity for r in RunDir(run_dir).rows()) == ["0", "0-1"]


def test_resume_refuses_set(tmp_path, fake, capsys) -> None:
    code, run_dir = run(tmp_path, scen_file(tmp_path, ""))
    assert code == 0
    assert cli.main(["run", "--resume", str(run_dir), "--set", "users=5"]) == 2
    assert "--set" in capsys.readouterr().err


def test_the_cli_puts_the_sigterm_handler_back(tmp_path, fake) -> None:
    """SIGTERM is Ctrl-C while a run is on (rows kept, targets stopped), and only then."""
    before = signal.getsignal(signal.SIGTERM)
    code, _row = one_row(tmp_path)
    assert code == 0 and signal.getsignal(signal.SIGTERM) is before
