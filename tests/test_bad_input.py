"""Generated bad-input tests (issue 14): every registered algorithm, every option of its config.

The cases come from :data:`jaxgen.registry.REGISTRY` when the module is collected, so a newly
registered algorithm gets them with no edit here. For each leaf field (dotted for nested
parts; the fields an entry fixes are skipped) and each value its
:meth:`~jaxgen.core.config.Accepts.bad_values` gives (a wrong type, an out-of-range value,
an unknown choice):

* Python API: ``algo.validate(config)`` raises ConfigError, one line that names the field with
  its value and says what is accepted.
* CLI: ``jaxgen train ALGO --option=VALUE`` exits with status 2 and one line on stderr naming the
  option, no traceback, and writes nothing (neither the given run directory nor anything in
  the working directory). A boolean is a ``--x/--no-x`` switch there, which cannot receive a
  wrong value, so booleans are tried through the Python API only.
"""
from __future__ import annotations

import re

import pytest

from jaxgen import cli, registry
from jaxgen.core import config as C
from jaxgen.core.cli_options import flag
from jaxgen.core.errors import ConfigError


def _cases() -> list[tuple[str, str, str, object]]:
    """``(algorithm, dotted field, kind, bad value)`` of every registered algorithm."""
    out = []
    for algo in registry.REGISTRY.values():
        for name, f, _ in C.leaf_fields(algo.preset()):
            if name in algo.fixed:
                continue
            acc = C.inferred(f, f.default)
            out += [(algo.name, name, acc.kind, bad) for bad in acc.bad_values()]
    return out


CASES = _cases()
CLI_CASES = [c for c in CASES if c[2] != "boolean"]


def _id(case) -> str:
    algo, name, _, bad = case
    return f"{algo}-{name}={bad!r}"


def _cli_value(bad) -> str:
    return ",".join(map(str, bad)) if isinstance(bad, tuple) else str(bad)


def test_every_algorithm_and_option_has_cases():
    """Every registered algorithm, and every option but the fixed ones, is tried at least once."""
    tried = {(a, n) for a, n, _, _ in CASES}
    for algo in registry.REGISTRY.values():
        for name, _, _ in C.leaf_fields(algo.preset()):
            if name not in algo.fixed:
                assert (algo.name, name) in tried, (algo.name, name)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_python_api_refuses_in_one_sentence(case):
    algo_name, name, _, bad = case
    algo = registry.get(algo_name)
    config = C.replace(algo.preset(), {**algo.fixed, name: bad})  # the entry's config, as the CLI builds it
    with pytest.raises(ConfigError) as e:
        algo.validate(config)
    msg = str(e.value)
    assert "\n" not in msg and msg.endswith("."), msg
    assert re.search(rf"(^|[^\w.]){re.escape(name)}=", msg), msg
    assert "accepted" in msg or "choose one of" in msg, msg


@pytest.mark.parametrize("case", CLI_CASES, ids=_id)
def test_cli_refuses_in_one_sentence_and_writes_nothing(case, tmp_path, monkeypatch, capsys):
    algo_name, name, _, bad = case
    algo = registry.get(algo_name)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    argv = ["train", algo_name, f"{flag(name)}={_cli_value(bad)}"]
    if algo.fam.run_args:  # families without a run directory (tabular) take no run options
        argv += ["--run-dir", str(run), "--no-progress"]
    try:
        rc = cli.main(argv)
    except SystemExit as e:  # argparse's own refusals (a value its type cannot parse) exit
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert flag(name) in err or re.search(rf"(^|[^\w.]){re.escape(name)}=", err), err
    assert "accepted" in err or "choose one of" in err, err
    assert not run.exists()
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- the batch size and the training set

def test_batch_size_sentence_names_the_training_set_size_once_known():
    """Issue 14: ``--batch-size 0`` said "... to the training-set size (None)". Before the data
    is loaded the sentence says it in words; once the size is known it prints the number,
    whatever is wrong with the batch size."""
    import numpy as np

    from jaxgen.generative import autoencoder as ae
    from jaxgen.generative import gan

    with pytest.raises(ConfigError) as e:
        ae.validate(ae.AEConfig(batch_size=0))
    assert "None" not in str(e.value)
    assert str(e.value) == "batch_size=0 is out of range; accepted: a whole number from 1 to the training-set size."
    images = np.zeros((50, 28, 28, 1), np.uint8)
    for bs in (0, 51, "many"):
        with pytest.raises(ConfigError, match=r"accepted: a whole number from 1 to the training-set size \(50\)\.$"):
            ae.make_trainer(ae.AEConfig(batch_size=bs), {"images": images})
    with pytest.raises(ConfigError) as e:
        gan.validate(gan.GANConfig(batch_size=0))
    assert "None" not in str(e.value)
    with pytest.raises(ConfigError, match=r"batch_size=0 is out of range; accepted: .*training-set size \(50\)"):
        gan.validate(gan.GANConfig(batch_size=0), 50)


@pytest.mark.parametrize("bs", ["5000", "0"])
def test_cli_batch_size_out_of_range_prints_the_training_set_size(bs, tmp_path, monkeypatch, capsys):
    """Through the CLI a batch size out of range for the training set (here 900 images: 1000,
    less the held-out tenth; the issue's case is 0) is refused with that size, exit status 2,
    nothing written."""
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    rc = cli.main(["train", "vae", "--batch-size", bs, "--data", "bundled", "--test-data", "bundled",
                   "--limit", "1000", "--run-dir", str(run), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == (f"jaxgen: error: batch_size={bs} is out of range; accepted: a whole number from 1 to the "
                           "training-set size (900).")
    assert not run.exists() and list(tmp_path.iterdir()) == []
