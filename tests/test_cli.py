import subprocess
import sys

import pytest

from darkside.cli import VERBS, build_parser, main


def test_every_verb_has_help(capsys):
    parser = build_parser()
    for name in VERBS:
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([name, "--help"])
        assert exc.value.code == 0
        assert name in capsys.readouterr().out


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "darkside.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "extract" in out.stdout


def test_common_options_before_or_after_verb(repo_root, capsys):
    assert main(["--preset", "paper", "params", "--params", str(repo_root / "params.yaml")]) == 0
    assert '"preset": "paper"' in capsys.readouterr().out
    assert main(["params", "--preset", "mini", "--params", str(repo_root / "params.yaml")]) == 0
    assert '"preset": "mini"' in capsys.readouterr().out
