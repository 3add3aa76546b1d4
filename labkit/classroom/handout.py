"""The printable handout: one page per student with their kubeconfig and how to start.

Plain HTML with its style inline (no CDN, no script), so it opens and prints offline;
``@media print`` starts each student on a new sheet. ``handout.html`` holds the whole room;
``handouts/NAME.html`` one student each, to mail or put on a USB stick.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from labkit.classroom.roster import Student
from labkit.classroom.sizes import size

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #111; }
.student { max-width: 46em; margin-bottom: 3em; }
h1 { font-size: 1.5em; margin-bottom: .2em; }
pre { background: #f4f4f4; padding: .6em; font-size: .72em; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; } td { padding: .1em .8em .1em 0; vertical-align: top; }
@media print {
  body { margin: 0; }
  .student { page-break-after: always; break-after: page; margin: 0; }
  .student:last-child { page-break-after: auto; break-after: auto; }
}
"""


def _page(class_name: str, s: Student, kubeconfig_text: str, server: str) -> str:
    budget = size(s.size)
    ns = escape(s.namespace)
    return f"""<section class="student" id="{escape(s.name)}">
<h1>{escape(class_name)}: {escape(s.name)}</h1>
<table>
<tr><td>Your user</td><td><code>{escape(s.name)}</code></td></tr>
<tr><td>Your namespace</td><td><code>{ns}</code> (kubectl uses it by default)</td></tr>
<tr><td>Your budget ({escape(s.size)})</td><td>{escape(budget.cpu)} CPU and {escape(budget.memory)} of memory requested,
 at most {budget.pods} pods</td></tr>
<tr><td>API server</td><td><code>{escape(server)}</code></td></tr>
</table>
<h2>Start</h2>
<pre>save the block below as ~/.kube/{escape(s.name)}.yaml, then:
export KUBECONFIG=~/.kube/{escape(s.name)}.yaml
kubectl get pods                  # your namespace: empty at first
kubectl auth can-i --list         # what you may do
kubectl get nodes                 # the class's machines: you can look, not change
labkit exercise verify 14.1 --namespace {ns}   # with labkit installed: check an exercise</pre>
<p>You may create, change and delete Deployments, Pods, Services, ConfigMaps and Secrets in your namespace.
You cannot see other students' namespaces, change Nodes, run privileged or hostPath pods, or go over
your budget: the server answers 403 with the reason. Keep this token to yourself: it is you.</p>
<h2>Your kubeconfig</h2>
<pre>{escape(kubeconfig_text)}</pre>
</section>
"""


def _document(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n")


def write(folder: Path, class_name: str, students: list[Student], kubeconfigs: dict[str, Path], server: str) -> Path:
    """Write ``handout.html`` (all students) and ``handouts/NAME.html``; returns the first."""
    pages = []
    (folder / "handouts").mkdir(parents=True, exist_ok=True)
    for s in students:
        page = _page(class_name, s, kubeconfigs[s.name].read_text(), server)
        pages.append(page)
        p = folder / "handouts" / f"{s.name}.html"
        p.write_text(_document(f"{class_name}: {s.name}", page))
        p.chmod(0o600)
    out = folder / "handout.html"
    out.write_text(_document(f"{class_name}: handouts", "".join(pages)))
    out.chmod(0o600)
    return out
