"""The command line: `serve`'s flags reach the settings (without starting the app); every command's help prints."""

from __future__ import annotations

from pathlib import Path

from core.cli import build_parser
from core.cli.serve import import_root_settings
from core.cli.team import login_settings
from core.config import Settings


def test_import_roots_and_login_limits_reach_the_settings(tmp_path: Path) -> None:
    args = build_parser().parse_args(["serve", "--db", str(tmp_path / "x.sqlite"), "--import-root", "/data/a",
                                      "--import-root", "/data/b", "--login-lockout-after", "7"])
    settings = import_root_settings(args, login_settings(args, Settings()))
    assert settings.import_roots == (Path("/data/a"), Path("/data/b"))
    assert settings.login.lockout_after == 7


def test_without_the_flag_the_environment_decides(tmp_path: Path) -> None:
    args = build_parser().parse_args(["demo", "--db", str(tmp_path / "x.sqlite")])
    env = Settings.from_env({"CLIPMARK_IMPORT_ROOTS": f"/srv/photos:{tmp_path}"})
    assert import_root_settings(args, env).import_roots == (Path("/srv/photos"), tmp_path)
    assert import_root_settings(args, Settings()).import_roots == ()


def test_every_command_prints_its_help(capsys) -> None:  # type: ignore[no-untyped-def]
    """argparse formats help with %: a bare '95%' in one command's help broke `clipmark --help`."""
    import pytest

    from core.cli import GROUPS

    names = [command.name for commands in GROUPS for command in commands]
    for argv in ([], *([name] for name in names)):
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args([*argv, "--help"])
        assert done.value.code == 0
    assert "estimate" in capsys.readouterr().out
