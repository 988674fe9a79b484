import argparse

import pytest

from common import cli


def test_bad_flag_is_one_line_and_exit_1(capsys):
    p = cli.ArgumentParser(prog="train.py")
    p.add_argument("--batch_size", type=cli.positive_int, default=8)
    p.add_argument("--lr", type=cli.positive_float, default=0.1)
    for argv, text in [(["--batch_size=0"], "argument --batch_size: expected an integer >= 1, got 0"),
                       (["--batch_size=abc"], "argument --batch_size: expected an integer >= 1, got 'abc'"),
                       (["--lr=-1"], "argument --lr: expected a number > 0, got -1"),
                       (["--lr=nan"], "argument --lr: expected a number > 0, got nan"),
                       (["--nope=1"], "unrecognized arguments: --nope=1")]:
        with pytest.raises(SystemExit) as info:
            p.parse_args(argv)
        assert info.value.code == 1
        err = capsys.readouterr().err
        assert err == f"Error: {text}\n"


def test_ranges():
    assert cli.int_range(0, 3)("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match=r"in \[0, 3\]"):
        cli.int_range(0, 3)("4")
    assert cli.float_range(0, 1)("0") == 0.0
    with pytest.raises(argparse.ArgumentTypeError, match=r"in \[0, 1\]"):
        cli.float_range(0, 1)("1.5")


def test_add_bool_forms():
    p = cli.ArgumentParser()
    cli.add_bool(p, "--amp", default=False)
    assert p.parse_args([]).amp is False
    assert p.parse_args(["--amp"]).amp is True
    assert p.parse_args(["--amp", "False"]).amp is False
    assert p.parse_args(["--amp=1"]).amp is True


def test_shared_device_and_amp_flags_are_checked(capsys):
    from common.amp import add_amp_args
    from common.device import add_device_args

    p = add_amp_args(add_device_args(cli.ArgumentParser()))
    assert p.parse_args(["--loss_scale=128", "--device_id=1"]).loss_scale == "128"
    assert p.parse_args(["--loss_scale=dynamic"]).loss_scale == "dynamic"
    for argv, text in [(["--loss_scale=abc"],
                         "argument --loss_scale/--loss-scale: expected 'dynamic', -1 or a number > 0, got 'abc'"),
                       (["--device_id=-1"], "argument --device_id: expected an integer >= 0, got -1")]:
        with pytest.raises(SystemExit):
            p.parse_args(argv)
        assert capsys.readouterr().err == f"Error: {text}\n"
