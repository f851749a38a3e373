import subprocess
import sys

from gensight import __version__
from gensight.cli import main


def test_version_flag_prints_package_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_help_lists_subcommands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "usage: gensight" in out


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "gensight", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "COMMAND" in proc.stdout
