"""The book's diagrams are drawn from code: the committed files must match the code, and both
Graphviz builds a reader may have (Debian's dot, the pip-only graphviz-pure) must render them."""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from labkit.cli import main as labkit_main
from labkit.view import diagrams

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
VENV_BIN = Path(sys.executable).parent


def test_committed_diagrams_are_fresh():
    problems = diagrams.stale(IMAGES)
    assert not problems, f"stale diagrams {problems}: run 'labkit diagrams --out images' (or 'make diagrams')"


def test_every_diagram_has_dot_and_svg_committed():
    for name in diagrams.DIAGRAMS:
        assert (IMAGES / f"{name}.dot").is_file()
        assert (IMAGES / f"{name}.svg").is_file()


def test_architecture_names_every_component_and_its_module():
    src = diagrams.source("architecture")
    for box in ["kube-apiserver", "kube-scheduler", "kube-controller-manager", "etcd", "kubelet", "CRI",
                "container runtime", "OCI", "namespaces", "cgroups", "Device Plugin", "gRPC", "CNI", "CSI"]:
        assert box in src, box
    for _, module, _ in diagrams.COMPONENTS:
        assert module.startswith("labkit") or module == "Linux kernel"
        if module.startswith("labkit"):
            assert module in src, module


def test_google_stack_puts_borg_at_the_bottom_under_spanner_and_bigtable():
    src = diagrams.source("google_stack")
    borg, spanner, bigtable = src.index("Borg"), src.index("Spanner"), src.index("BigTable")
    # Rows are written top to bottom: Borg's row comes after the storage row.
    assert borg > spanner and borg > bigtable


def test_landscape_has_the_three_orchestrators_and_borg():
    src = diagrams.source("landscape")
    for name in ["Swarm", "Compose", "Mesos", "Kubernetes", "Borg", "April 2015"]:
        assert name in src


@pytest.mark.parametrize("renderer", ["system dot", "graphviz-pure"])
def test_renders_with_each_graphviz(renderer, monkeypatch, tmp_path):
    binary = shutil.which("dot") if renderer == "system dot" else VENV_BIN / "graphviz-pure"
    if renderer == "system dot" and binary and Path(binary).resolve().name == "graphviz-pure":
        binary = None  # the venv's dot link, not Debian's graphviz
    if not binary or not Path(binary).exists():
        pytest.skip(f"{renderer} is not installed on this host")
    monkeypatch.setattr(diagrams, "dot_binary", lambda: str(binary))
    written = diagrams.render_all(tmp_path)
    assert len(written) == 2 * len(diagrams.DIAGRAMS)
    svg = (tmp_path / "architecture.svg").read_text()
    text = "".join(ET.fromstring(svg.encode()).itertext())  # well-formed XML, with its labels
    assert "kube-apiserver" in text and "labkit.controlplane.apiserver" in text
    assert diagrams.stale(tmp_path) == {}


def test_cli_check_passes_on_the_committed_images():
    result = CliRunner().invoke(labkit_main, ["diagrams", "--check", "--out", str(IMAGES)])
    assert result.exit_code == 0, result.output
    assert "fresh" in result.output


def test_cli_check_reports_an_edited_dot_file(tmp_path):
    for f in IMAGES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "landscape.dot").write_text("digraph { edited }\n")
    result = CliRunner().invoke(labkit_main, ["diagrams", "--check", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "landscape" in result.output and "labkit diagrams --out images" in result.output


def test_cli_check_reports_an_svg_not_rendered_from_its_dot(tmp_path):
    for f in IMAGES.iterdir():
        shutil.copy(f, tmp_path / f.name)
    (tmp_path / "container.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert diagrams.stale(tmp_path) == {"container": ".svg was not rendered from this .dot"}


def test_no_graphviz_gives_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    with pytest.raises(diagrams.DotNotFound, match="apt-get install graphviz.*pip install graphviz-pure"):
        diagrams.dot_binary()
    result = CliRunner().invoke(labkit_main, ["diagrams", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "graphviz" in result.output


def test_unknown_diagram_name_lists_the_choices():
    with pytest.raises(KeyError, match="architecture"):
        diagrams.source("no-such-diagram")
