"""Export a lab's exercises in Killercoda's scenario layout, so a teacher can move them there.

A scenario is a folder with ``index.json``; each step has a Markdown ``text`` and a ``verify``
script whose exit status says whether the step is done. Here every verify script calls
``labkit exercise verify ID``, the same function the notebook's ``check()`` runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from labkit.practice.catalog import exercises_for


def export(lab: str | int, out: str | os.PathLike, title: str | None = None) -> Path:
    """Write ``out/index.json`` and one ``stepN/`` folder per exercise; return the folder."""
    exs = exercises_for(lab)
    if not exs:
        raise ValueError(f"lab {lab} has no exercises to export")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    steps = []
    for n, ex in enumerate(exs, start=1):
        step = root / f"step{n}"
        step.mkdir(exist_ok=True)
        (step / "text.md").write_text(f"# {ex.title}\n\n{ex.statement.strip()}\n")
        verify = step / "verify.sh"
        verify.write_text("#!/bin/bash\n# exit 0 when the step is done (Killercoda runs this on 'Check')\n"
                          f"exec labkit exercise verify {ex.id} --namespace \"${{NAMESPACE:-default}}\"\n")
        verify.chmod(0o755)
        entry = {"title": ex.title, "text": f"step{n}/text.md", "verify": f"step{n}/verify.sh"}
        if ex.setup:  # the starting state the statement describes (a broken Deployment ...)
            background = step / "background.sh"
            background.write_text("#!/bin/bash\n# Killercoda runs this when the step opens\n"
                                  f"exec labkit exercise prepare {ex.id} --namespace \"${{NAMESPACE:-default}}\"\n")
            background.chmod(0o755)
            entry["background"] = f"step{n}/background.sh"
        steps.append(entry)
    (root / "intro.md").write_text(f"# Lab {exs[0].lab}: exercises\n\nEach step is checked against the real system.\n")
    (root / "finish.md").write_text("# Done\n\nEvery step passed its check.\n")
    index = {
        "title": title or f"Lab {exs[0].lab} exercises",
        "description": f"{len(exs)} exercises from the book's lab {exs[0].lab}",
        "details": {"intro": {"text": "intro.md"}, "steps": steps, "finish": {"text": "finish.md"}},
        "backend": {"imageid": "kubernetes-kubeadm-1node"},
    }
    (root / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return root
