"""The built static site, checked the way a reader meets it: every page opened from disk by a
headless Chromium with no network, plus link, glossary and seed-coverage checks on the HTML.

The site is ``_build/html`` (``make test`` builds it first); ``LABKIT_BOOK_HTML`` points elsewhere.
"""

from __future__ import annotations

import asyncio
import html.parser
import json
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from support.chromium import CHROMIUM, Chromium

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("LABKIT_BOOK_HTML", ROOT / "_build" / "html"))

pytestmark = pytest.mark.skipif(not (SITE / "intro.html").exists(),
                                reason=f"no built book at {SITE}: run 'make book' first")

# Seed (Chinese source text) section -> the page that explains it.
SEED_SECTIONS = {
    "从容器到容器云": "chapters/02-from-container-to-container-cloud.html",
    "容器编排工具": "chapters/03-orchestration-tools.html",
    "Kubernetes的来源": "chapters/04-where-kubernetes-came-from.html",
    "Kubernetes要解决的问题是什么？": "chapters/05-what-kubernetes-solves.html",
    "Kubernetes全局架构": "chapters/06-architecture.html",
    "Borg对Kubernetes的指导体现在哪里？": "chapters/07-borg-lessons.html",
}
GLOSSARY_TERMS = ["容器编排", "控制节点", "计算节点", "持久化数据", "容器云", "镜像", "调度", "作业",
                  "容器运行时", "路由网关", "水平扩展", "监控", "备份", "灾难恢复", "承载点", "容器生态",
                  "头把交椅", "秘密武器", "小打小闹", "旧瓶装新酒", "原生", "传承关系", "拉取镜像", "经典 PaaS"]
RAW_MYST = ["```", "{code-cell}", "{ref}", "{doc}", "{figure}", "{note}", ":::", "{eval-rst}"]
WIDGET_PAGE = "chapters/03-orchestration-tools.html"


def pages() -> list[Path]:
    return sorted(p for p in SITE.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts)


# ---------------------------------------------------------------- HTML checks (no browser)

class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "link", "script", "img", "iframe", "source"):
                self.links.append(a[key])


def _parse(page: Path) -> _Links:
    p = _Links()
    p.feed(page.read_text(errors="replace"))
    return p


def test_every_internal_link_resolves():
    parsed = {page: _parse(page) for page in pages()}
    broken = []
    for page, p in parsed.items():
        for link in p.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                continue  # external (checked for not being loaded by the browser test)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(SITE)}: {link}")
                continue
            if parts.fragment and target.suffix == ".html":
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{page.relative_to(SITE)}: {link} (no such anchor)")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


def test_every_seed_section_has_a_page():
    for heading, page in SEED_SECTIONS.items():
        path = SITE / page
        assert path.exists(), f"no page for the seed section {heading}"
        assert heading in path.read_text(), f"{page} does not name its seed section {heading}"


def test_seed_headings_are_all_mapped():
    seed_dir = Path(os.environ.get("LABKIT_SEED", ROOT.parent / "shared" / "seed"))
    seeds = sorted(seed_dir.glob("*.txt")) if seed_dir.is_dir() else []
    if not seeds:
        pytest.skip(f"the seed text is not at {seed_dir} (set LABKIT_SEED to check it)")
    for seed in seeds:
        text = seed.read_text()
        headings = re.findall(r"^## (.+?)\s*$", text, re.M) + re.findall(r"^\*\*(.+?)[：:]\*\*\s*$", text, re.M)
        assert headings
        for h in headings:
            assert h in SEED_SECTIONS, f"seed section {h!r} has no page in SEED_SECTIONS"


def test_glossary_has_the_chinese_terms_beside_english():
    text = (SITE / "chapters" / "glossary.html").read_text()
    missing = [t for t in GLOSSARY_TERMS if t not in text]
    assert not missing, f"glossary lacks {missing}"
    for english in ["container orchestration", "Master node", "persistent data", "scheduling", "job"]:
        assert english in text


def test_glossary_marks_whose_term_each_is():
    """A row marked "source" uses the source text's own word; a row marked "book" does not."""
    seed_dir = Path(os.environ.get("LABKIT_SEED", ROOT.parent / "shared" / "seed"))
    seeds = sorted(seed_dir.glob("*.txt")) if seed_dir.is_dir() else []
    if not seeds:
        pytest.skip(f"the seed text is not at {seed_dir} (set LABKIT_SEED to check it)")
    seed = "".join(p.read_text() for p in seeds)
    rows = [r.split("|")[1:-1] for r in (ROOT / "chapters" / "glossary.md").read_text().splitlines()
            if r.startswith("| ") and r.count("|") == 5]
    wrong = []
    for english, chinese, whose, _ in (map(str.strip, r) for r in rows[1:]):
        word = chinese.split(" (")[0].replace("Pod ", "").strip()
        if whose == "source" and word not in seed:
            wrong.append(f"{english}: {word!r} is marked source but is not in the source text")
        if whose == "book" and word in seed:
            wrong.append(f"{english}: {word!r} is marked book but the source text uses it")
    assert len(rows) > 40 and not wrong, wrong


def test_every_lab_opens_with_the_source_claim_it_runs_and_links_its_chapter():
    seed_dir = Path(os.environ.get("LABKIT_SEED", ROOT.parent / "shared" / "seed"))
    seed = "".join(p.read_text() for p in sorted(seed_dir.glob("*.txt"))) if seed_dir.is_dir() else ""
    squash = lambda t: re.sub(r"\s+", "", t)  # noqa: E731
    for page in sorted((ROOT / "labs").glob("[0-9]*.md")):
        text = page.read_text()
        m = re.search(r"^> \*\*The claim this lab runs\*\*, from the chapter \{doc\}`\.\./chapters/([\w-]+)`:\n>\n> (.+)$",
                      text, re.M)
        assert m, f"{page.name} does not open with the claim it runs"
        assert (ROOT / "chapters" / f"{m.group(1)}.md").exists(), f"{page.name} links a missing chapter"
        if seed:
            for part in m.group(2).split("……"):
                assert squash(part.strip(" 。")) in squash(seed), f"{page.name}: {part!r} is not in the source text"


def test_chapters_carry_the_dates_a_careful_reader_expects():
    text = " ".join((SITE / "chapters" / f).read_text() for f in [
        "01-what-is-a-container.html", "03-orchestration-tools.html", "04-where-kubernetes-came-from.html",
        "06-architecture.html", "07-borg-lessons.html"])
    for fact in ["March 2013", "April 2015", "EuroSys 2015", "June 2014", "July 2015", "Cloud Native Computing",
                 "UC Berkeley", "1.24", "December 2018", "1.8", "Fig"]:
        assert fact in text, fact


def test_widget_javascript_is_served_by_the_book_only_where_needed():
    static = SITE / "_static"
    assert (static / "require.js").exists() and (static / "embed-amd.js").exists()
    widget_page = (SITE / WIDGET_PAGE).read_text()
    assert "_static/require.js" in widget_page and "_static/embed-amd.js" in widget_page
    assert "cdn.jsdelivr.net" not in widget_page and "cdnjs.cloudflare.com" not in widget_page
    plain = (SITE / "chapters" / "01-what-is-a-container.html").read_text()
    assert "embed-amd.js" not in plain


# ---------------------------------------------------------------- the browser

BROKEN_IMAGES_JS = """(async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src'));
})()"""

RAW_TEXT_JS = """(() => {
  const main = (document.querySelector('main') || document.body).cloneNode(true);
  main.querySelectorAll('pre, code, script, style, .cell_output').forEach(n => n.remove());
  return main.innerText;
})()"""

WIDGETS_JS = """(async () => {
  const wanted = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length;
  for (let i = 0; i < 100; i++) {
    const drawn = document.querySelectorAll('.jupyter-widgets.widget-tab, .jupyter-widgets.lm-Widget, .widget-tab, .widget-box, .widget-html, .jupyter-widgets');
    if (drawn.length >= wanted && wanted > 0) break;
    await new Promise(r => setTimeout(r, 100));
  }
  const tabs = Array.from(document.querySelectorAll('.lm-TabBar-tabLabel, .p-TabBar-tabLabel')).map(t => t.innerText);
  return {wanted, drawn: document.querySelectorAll('.jupyter-widgets').length, tabs,
          svgs: document.querySelectorAll('.jupyter-widgets svg').length};
})()"""


@pytest.fixture(scope="module")
def browser_report() -> dict:
    if CHROMIUM is None:
        pytest.skip("no chromium on this host (apt-get install chromium): the browser checks need it")

    async def run() -> dict:
        b = Chromium()
        report = {}
        try:
            await b.start()
            for page in pages():
                rel = str(page.relative_to(SITE))
                if 'http-equiv="refresh"' in page.read_text(errors="replace").lower():
                    continue  # a redirect (index.html -> intro.html); its target is opened on its own
                await b.open(page.as_uri())
                has_widgets = "application/vnd.jupyter.widget-view+json" in page.read_text(errors="replace")
                widgets = await b.evaluate(WIDGETS_JS) if has_widgets else None
                report[rel] = {
                    "broken_images": await b.evaluate(BROKEN_IMAGES_JS),
                    "text": await b.evaluate(RAW_TEXT_JS) or "",
                    "widgets": widgets,
                    "images": await b.evaluate("document.images.length"),
                }
                await asyncio.sleep(0.1)  # late console errors (e.g. from widget scripts)
                report[rel]["problems"] = b.problems()
        finally:
            await b.close()
        return report

    return asyncio.run(run())


def test_browser_opens_every_page_with_no_console_errors(browser_report):
    bad = {page: r["problems"] for page, r in browser_report.items() if r["problems"]}
    assert not bad, "console errors or network requests:\n" + json.dumps(bad, indent=1, ensure_ascii=False)


def test_every_image_loads(browser_report):
    bad = {page: r["broken_images"] for page, r in browser_report.items() if r["broken_images"]}
    assert not bad, f"images that did not load: {bad}"
    assert browser_report["intro.html"]["images"] >= 1
    assert browser_report["chapters/06-architecture.html"]["images"] >= 1


def test_no_raw_myst_syntax_in_the_text(browser_report):
    bad = {page: [m for m in RAW_MYST if m in r["text"]] for page, r in browser_report.items()}
    bad = {page: marks for page, marks in bad.items() if marks}
    assert not bad, f"raw MyST syntax shown to readers: {bad}"


def test_widget_is_drawn_offline(browser_report):
    w = browser_report[WIDGET_PAGE]["widgets"]
    assert w and w["drawn"] >= 1, f"the widget on {WIDGET_PAGE} was not drawn: {w}"
    assert w["tabs"] == ["Swarm", "Mesos", "Kubernetes"], w
    assert w["svgs"] >= 1, "the tab widget shows no diagram"


def test_every_widget_page_draws_its_widgets(browser_report):
    bad = {page: r["widgets"] for page, r in browser_report.items()
           if r["widgets"] is not None and r["widgets"]["drawn"] < 1}
    assert not bad, f"pages whose widgets stayed empty: {bad}"


# ---------------------------------------------------------------- the concept checklist (DESIGN.md S1-S16)

CONCEPTS = {
    "S1": ("02-from-container-to-container-cloud", ["image", "digest", "CI/CD", "monitoring", "security",
                                                   "network", "storage", "developers"]),
    "S2": ("02-from-container-to-container-cloud", ["container cloud", "orchestration", "top seat"]),
    "S3": ("03-orchestration-tools", ["Compose", "Swarm", "Mesos", "Kubernetes", "Red Hat", "offers"]),
    "S4": ("04-where-kubernetes-came-from", ["Borg", "April 2015", "Spanner", "BigTable", "bottom",
                                            "priority", "quota"]),
    "S5": ("03-orchestration-tools", ["advancedness", "completeness"]),
    "S6": ("05-what-kubernetes-solves", ["no fixed answer", "Orchestration", "Scheduling", "Cluster management"]),
    "S7": ("05-what-kubernetes-solves", ["routing gateway", "horizontal scaling", "monitoring", "backup",
                                         "disaster recovery", "Cloud Foundry", "PaaS"]),
    "S8": ("05-what-kubernetes-solves", ["Compose + Swarm", "no edge"]),
    "S9": ("06-architecture", ["kube-apiserver", "kube-scheduler", "kube-controller-manager", "etcd",
                               "persistent data"]),
    "S10": ("06-architecture", ["CRI", "OCI", "namespaces", "cgroups", "Docker"]),
    "S11": ("06-architecture", ["Device plugins", "gRPC", "GPU", "machine-learning"]),
    "S12": ("06-architecture", ["CNI", "network"]),
    "S13": ("06-architecture", ["CSI", "persistent volumes"]),
    "S14": ("07-borg-lessons", ["kubelet", "Borglet", "Master", "jobs"]),
    "S15": ("07-borg-lessons", ["new way to package"]),
    "S16": ("07-borg-lessons", ["lowest layer", "1.24", "runtime"]),
}


@pytest.mark.parametrize("concept", sorted(CONCEPTS, key=lambda s: int(s[1:])))
def test_every_seed_claim_is_explained(concept):
    page, phrases = CONCEPTS[concept]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", (SITE / "chapters" / f"{page}.html").read_text()))
    missing = [p for p in phrases if p not in text]
    assert not missing, f"{concept} on {page}: missing {missing}"


def test_every_chapter_runs_labkit_and_links_to_its_labs():
    for n in range(1, 8):
        page = next((SITE / "chapters").glob(f"0{n}-*.html"))
        text = page.read_text()
        assert "cell_output" in text, f"{page.name} has no executed output"
        assert "labkit" in text
        assert 'href="../labs/' in text, f"{page.name} links to no lab"


def test_index_html_leads_to_the_landing_page():
    """The README tells readers to open _build/html/index.html."""
    index = (SITE / "index.html").read_text().lower()
    assert "intro.html" in index and (SITE / "intro.html").exists()



def test_widget_tabs_switch_in_the_static_page():
    """Clicking the second tab shows the Mesos diagram: the widget works with no Python kernel."""
    if CHROMIUM is None:
        pytest.skip("no chromium on this host (apt-get install chromium): the browser checks need it")

    async def run() -> list:
        b = Chromium()
        try:
            await b.start()
            await b.open((SITE / WIDGET_PAGE).as_uri())
            await b.evaluate(WIDGETS_JS)
            x, y = await b.evaluate("""(() => { const tab = document.querySelectorAll('.lm-TabBar-tab')[1];
                tab.scrollIntoView(); const r = tab.getBoundingClientRect();
                return [r.x + r.width / 2, r.y + r.height / 2]; })()""")
            for kind in ("mousePressed", "mouseReleased"):
                await b.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
            await asyncio.sleep(0.3)
            return await b.evaluate("""Array.from(document.querySelectorAll('.widget-tab-contents > *'))
                .filter(w => !w.classList.contains('lm-mod-hidden')).map(w => w.innerText)""")
        finally:
            await b.close()

    visible = asyncio.run(run())
    assert len(visible) == 1 and "Mesos master" in visible[0], visible
