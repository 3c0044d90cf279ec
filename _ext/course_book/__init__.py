"""The course's Sphinx extension: what readers see of the lessons, made at build time.

- exercises: the page shows each exercise's statement, the student's starting cell, the visible
  tests and (setting `course_exercise_solutions`) the solution behind a "Solution to exercise n"
  toggle or nothing; the page's `.ipynb` download is the student edition (`exercises.py`);
- launch and set-up: MyST substitutions for the set-up page, all derived from `repository` in
  `_config.yml` (`repo_url`, `clone_block`, `pip_block`);
- offline pages: widgets drawn from their saved state (`widgets_static.py`), no thebe scripts
  when thebe is off, no script included twice;
- citations: author-year in the text and in the reference lists, 2016a/2016b told apart
  (`citations.py`).
"""

from __future__ import annotations

import json
from pathlib import Path

from docutils import nodes
from sphinx.util import logging

from . import citations, exercises, widgets_static

logger = logging.getLogger(__name__)
WIDGET_VIEW = '<script type="application/vnd.jupyter.widget-view+json">'


def repository(config) -> tuple[str, str]:
    """(url, branch) of the course repository, as `_config.yml` sets them."""
    options = config.html_theme_options or {}
    url = str(options.get("repository_url", "")).rstrip("/")
    return url, str(options.get("repository_branch", "main") or "main")


def substitutions(url: str, branch: str) -> dict[str, str]:
    """The set-up page's commands for the repository at `url` (branch `branch`)."""
    pip_spec = f"lessons_lib[kernel] @ git+{url}@{branch}"
    return {
        "repo_url": url,
        "repo_branch": branch,
        "clone_block": (
            "```bash\n"
            f"git clone --branch {branch} \\\n    {url} ln-course\n"
            "cd ln-course\n"
            "make lab   # creates .venv, installs the pinned dependencies, opens JupyterLab\n"
            "```"
        ),
        "pip_block": f'```bash\npip install \\\n    "{pip_spec}"\n```',
        "colab_block": f'```python\n%pip install --quiet "{pip_spec}"\n```',
    }


def _config_inited(app, config) -> None:
    if config.course_exercise_solutions not in exercises.SOLUTION_MODES:
        raise ValueError(
            f"course_exercise_solutions must be one of {exercises.SOLUTION_MODES}, "
            f"got {config.course_exercise_solutions!r}"
        )
    url, branch = repository(config)
    subs = dict(config.myst_substitutions or {})
    subs.update(substitutions(url, branch))
    config.myst_substitutions = subs
    config.html_static_path = [*config.html_static_path, str(Path(__file__).parent / "static")]


def _is_notebook(app, docname: str) -> bool:
    return str(app.env.doc2path(docname)).endswith(".ipynb")


def _source_read(app, docname: str, source: list[str]) -> None:
    if not _is_notebook(app, docname):
        return
    nb = json.loads(source[0])
    book = exercises.book_edition(nb, app.config.course_exercise_solutions)
    source[0] = json.dumps(book, ensure_ascii=False, indent=1)


def _static_widgets(app, doctree) -> None:
    docname = app.env.docname
    data = getattr(app.env, "nb_metadata", {}).get(docname, {})
    js_files = data.get("js_files", {})
    if "ipywidgets_state" not in js_files:
        return
    state = json.loads(js_files["ipywidgets_state"][1]["body"]).get("state", {})
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext()
        if text.startswith(WIDGET_VIEW):
            view = json.loads(text[len(WIDGET_VIEW) : text.rindex("</script>")])
            html = widgets_static.render(view["model_id"], state)
            node.replace_self(nodes.raw("", html, format="html"))
    for key in [k for k in js_files if k.startswith("ipywidgets")]:
        del js_files[key]


def _page_context(app, pagename, templatename, context, doctree) -> None:
    thebe = bool((app.config.html_theme_options or {}).get("launch_buttons", {}).get("thebe"))
    kept, seen = [], set()
    for js in context.get("script_files", []):
        attrs = getattr(js, "attributes", {}) or {}
        key = (str(js), json.dumps(attrs, sort_keys=True, default=str))
        body = str(attrs.get("body", ""))
        if key in seen or (not thebe and ("THEBE_JS_URL" in body or "thebe" in str(js))):
            continue
        seen.add(key)
        kept.append(js)
    if "script_files" in context:
        context["script_files"][:] = kept
    if not thebe and "css_files" in context:
        context["css_files"][:] = [c for c in context["css_files"] if "thebe" not in str(c)]


def _builder_inited(app) -> None:
    domain = app.env.get_domain("cite")
    citations.suffix_years(domain.bibdata.data)


# Search snippets are cut from the pages' HTML, where math is still TeX source: replace each
# math element by an ellipsis before the snippet is made.
_SNIPPET_ANCHOR = 'for (const removalQuery of [".headerlink", "script", "style"]) {'
_SNIPPET_PATCH = (
    'htmlElement.querySelectorAll(".math").forEach((el) => { el.replaceWith("…") });\n    '
)


def _patch_search_snippets(app) -> None:
    path = Path(app.outdir, "_static", "searchtools.js")
    text = path.read_text(encoding="utf-8")
    if _SNIPPET_PATCH in text:
        return
    if _SNIPPET_ANCHOR not in text:
        logger.warning("searchtools.js changed: search snippets will show raw TeX")
        return
    path.write_text(text.replace(_SNIPPET_ANCHOR, _SNIPPET_PATCH + _SNIPPET_ANCHOR), "utf-8")


def _build_finished(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    _patch_search_snippets(app)
    for docname in sorted(app.env.found_docs):
        if not _is_notebook(app, docname):
            continue
        target = Path(app.outdir, "_sources", *f"{docname}.ipynb".split("/"))
        if not target.exists():
            continue
        nb = json.loads(Path(app.env.doc2path(docname)).read_text(encoding="utf-8"))
        student = exercises.student_edition(nb)
        target.write_text(json.dumps(student, ensure_ascii=False, indent=1) + "\n", "utf-8")


def setup(app):
    citations.register()
    app.add_config_value("course_exercise_solutions", "toggle", "env", [str])
    app.connect("config-inited", _config_inited)
    app.connect("builder-inited", _builder_inited, priority=600)  # after sphinxcontrib-bibtex
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _static_widgets)
    app.connect("html-page-context", _page_context, priority=900)  # after MyST-NB's scripts
    app.connect("build-finished", _build_finished)
    app.add_css_file("course_book.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
