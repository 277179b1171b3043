"""The RL commands of the CLI, and its one-sentence errors."""
import json

from jaxgen.cli import main


def test_tabular_value_iteration_prints_the_converged_table(capsys):
    assert main(["train", "tabular", "--method", "value-iteration"]) == 0
    out = capsys.readouterr().out
    assert "    0    10.00    10.00" in out and "    2   -10.00    10.00" in out
    assert "mean return 16.00" in out  # 0 -> 1 -> 2 -> 4 -> 5 -> 7 -> 8 -> 9 along safe cells: 6 x 1 + 10


def test_dqn_train_inspect_and_errors(tmp_path, capsys):
    run = tmp_path / "dqn"
    args = ["train", "dqn", "--total-steps", "4000", "--learning-starts", "500", "--buffer-size", "2000",
            "--eval-episodes", "2", "--run-dir", str(run), "--no-progress"]
    assert main(args) == 0
    assert (run / "curves.png").is_file() and json.loads((run / "results.json").read_text())["env"] == "CartPole-v1"
    assert main(["inspect", str(run), "--n", "3"]) == 0
    assert "mean Q" in capsys.readouterr().out
    for bad, words in ((["--env", "Pendulum-v1"], "continuous action space"), (["--env", "Nope-v0"], "not a known environment"),
                       (["--buffer-size", "10"], "smaller than batch_size")):
        assert main(["train", "dqn", *bad]) == 2
        err = capsys.readouterr().err
        assert words in err and "Traceback" not in err and err.count("\n") == 1
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not a jaxgen run directory" in capsys.readouterr().err


def test_pg_train_eval_render(tmp_path, capsys):
    run = tmp_path / "ppo"
    assert main(["train", "ppo", "--total-steps", "8192", "--eval-episodes", "2", "--run-dir", str(run), "--no-progress"]) == 0
    assert main(["eval", str(run), "--episodes", "4", "--greedy"]) == 0
    assert '"mean_return"' in capsys.readouterr().out
    assert main(["render", str(run), "--frames", "3"]) == 0 and (run / "episode.png").is_file()
    assert main(["train", "reinforce", "--env", "Nope-v0"]) == 2
    assert "not a known environment" in capsys.readouterr().err
