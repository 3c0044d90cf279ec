"""A widget's saved state drawn as static HTML, so a page needs no widget JavaScript.

The lessons' interactive widgets call Python when a control moves; a static page has no kernel,
so the controls could not do anything there. MyST-NB would load RequireJS and the widget
manager from a CDN to draw them anyway. Instead the book shows what the widget displayed when
the notebook ran (its output areas and HTML), and the controls' settings as one line of text.
"""

from __future__ import annotations

import html
from typing import Any

_PREFIX = "IPY_MODEL_"
_BOXES = {"VBoxModel", "HBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel"}
NOTE = "Saved view of an interactive widget; its controls respond when the notebook runs."


def _fmt(value: Any, spec: str | None) -> str:
    if isinstance(value, float) and spec:
        try:
            return format(value, spec)
        except ValueError:
            pass
    if isinstance(value, list | tuple):
        return "–".join(_fmt(v, spec) for v in value)
    return str(value)


def _output_html(output: dict) -> str:
    if output.get("output_type") == "stream":
        return f"<pre>{html.escape(''.join(output.get('text', '')))}</pre>"
    data = output.get("data", {})
    for mime in ("image/svg+xml", "image/png", "image/jpeg"):
        if mime in data:
            payload = "".join(data[mime]) if isinstance(data[mime], list) else data[mime]
            if mime == "image/svg+xml":
                return f"<div>{payload}</div>"
            meta = output.get("metadata", {}).get(mime, {})
            width = f' width="{int(meta["width"])}"' if "width" in meta else ""
            alt = html.escape(str(meta.get("alt", "figure drawn by the widget")))
            return f'<img src="data:{mime};base64,{payload.strip()}"{width} alt="{alt}">'
    if "text/html" in data:
        return "".join(data["text/html"])
    if "text/plain" in data:
        return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
    return ""


def _control(state: dict) -> str | None:
    label = state.get("description") or ""
    if "_options_labels" in state and "index" in state:
        index = state["index"]
        labels = state["_options_labels"]
        value = labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "–"
    elif "value" in state:
        value = _fmt(state["value"], state.get("readout_format"))
    else:
        return None
    return f"{html.escape(str(label))} = {html.escape(str(value))}" if label else str(value)


def render(model_id: str, models: dict[str, dict]) -> str:
    """Static HTML for the widget `model_id` given the notebook's widget-state `models`."""
    controls: list[str] = []
    body = _render(model_id, models, controls, depth=0)
    line = ""
    if controls:
        line = '<p class="widget-static-controls">' + " · ".join(controls) + "</p>"
    return (
        f'<div class="widget-static"><p class="widget-static-note">{NOTE}</p>'
        f"{line}{body}</div>"
    )


def _render(model_id: str, models: dict, controls: list[str], depth: int) -> str:
    model = models.get(model_id.removeprefix(_PREFIX))
    if model is None or depth > 50:
        return ""
    name, state = model.get("model_name", ""), model.get("state", {})
    if name in _BOXES:
        parts = [_render(c, models, controls, depth + 1) for c in state.get("children", [])]
        return "".join(parts)
    if name == "OutputModel":
        return "".join(_output_html(o) for o in state.get("outputs", []))
    if name in {"HTMLModel", "HTMLMathModel"}:
        return f"<div>{state.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<p>{html.escape(str(state.get('value', '')))}</p>"
    if name.endswith("StyleModel") or name == "LayoutModel":
        return ""
    control = _control(state)
    if control:
        controls.append(control)
    return ""
