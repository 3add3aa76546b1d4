import subprocess
import sys


def test_labkit_command_lists_its_subcommands():
    out = subprocess.run([sys.executable, "-m", "labkit.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for word in ("run", "image", "cluster", "gc", "doctor"):
        assert word in out.stdout
