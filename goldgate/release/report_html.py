"""A golden report as one self-contained HTML page: summary, an inline SVG latency chart (one bar per
case, the per-case and mean thresholds drawn across), and each case's checks. No external assets,
no scripts; every value from the report is escaped."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from goldgate.release.perceptual import PREVIEW_PREFIX
from goldgate.release.report import atomic_write, latency_words

# An --update-references run passes by construction: a reader of its PASSED must see why it proves nothing.
# It says what the run may have done, not that it did: one may have written none (a render CHANGED beyond its case's
# limits is left for the operator to accept by name), and the terminal summary counts them.
REWRITTEN = ("an --update-references run: each render it wrote as a reference was compared with itself; this report "
             "cannot open the gate")

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d232a;max-width:70rem}
h1{font-size:1.4rem}.pass{color:#17803d}.fail{color:#b42318}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border-bottom:1px solid #e4e7ec;
padding:.3rem .5rem;text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-size:12px}
.kv td:first-child{color:#555;width:14rem}td{overflow-wrap:anywhere}
"""


def _suite(report: dict[str, Any]) -> Any:
    """The suite row: a run of the cases `golden --case` named says so (its `suite` is the one they were taken from),
    as "full" alone read as the run the promotion gate asks for."""
    only = report.get("only_cases")
    if not isinstance(only, list) or not only:
        return report.get("suite")
    return (f"{len(only)} case{'' if len(only) == 1 else 's'} of the {report.get('suite')} suite named with --case "
            f"({', '.join(str(c) for c in only[:10])}{', ...' if len(only) > 10 else ''}): not the suite")


def render(report: dict[str, Any]) -> str:
    ok = report.get("passed") is True
    lat = report.get("latency_s") or {}
    thr = report.get("thresholds") or {}
    rows = [("stack", report.get("stack")), ("target", report.get("target")), ("api_url", report.get("api_url")),
            ("image", report.get("image")), ("worker_image_tag", report.get("worker_image_tag")),
            ("workflow_version", report.get("workflow_version")), ("suite", _suite(report)),
            ("started_at", report.get("started_at")), ("finished_at", report.get("finished_at")),
            ("latency", latency_words(lat, len(report.get("cases") or []), report.get("wall_time_s"),
                                      report.get("sum_latency_s"))),
            ("thresholds", ", ".join(f"{k}={v}" for k, v in sorted(thr.items()))),
            ("references", _references(report.get("references"))),
            ("references_updated", report.get("references_updated"))]
    kv = "".join(f"<tr><td>{escape(str(k))}</td><td><code>{escape(_shown(v))}</code></td></tr>" for k, v in rows)
    failures = "".join(f"<li>{escape(str(f))}</li>" for f in report.get("failures") or [])
    cases = "".join(_case_row(c) for c in report.get("cases") or [])
    verdict = '<span class="pass">PASSED</span>' if ok else '<span class="fail">FAILED</span>'
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>golden report {escape(str(report.get('stack')))}</title><style>{_CSS}</style></head><body>"
            f"<h1>Golden report: {escape(str(report.get('stack')))} {verdict}</h1>"
            + (f"<p class=fail><strong>{REWRITTEN}</strong></p>" if report.get("references_updated") is True else "")
            + f"<table class=kv>{kv}</table>"
            + (f"<h2>Failures</h2><ul class=fail>{failures}</ul>" if failures else "")
            + f"<h2>Latency per case</h2>{latency_chart(report)}"
            f"<h2>Cases</h2><table><tr><th>case</th><th>result</th><th>latency</th><th>job</th>"
            f"<th>checks</th></tr>{cases}</table></body></html>\n")


def _shown(value: Any) -> str:
    """A report's value as the page shows it: one it does not have (no job was made, no job named its image) is a
    dash, not Python's "None"."""
    return "-" if value is None else str(value)


def _references(refs: Any) -> str:
    """Which reference images the renders were compared with (their sha256 are in the JSON report)."""
    if not isinstance(refs, dict):
        return "not recorded"
    files = refs.get("sha256")
    count = len(files) if isinstance(files, dict) else 0
    return f"{refs.get('dir')} ({count} file{'' if count == 1 else 's'} compared; sha256 of each in the JSON report)"


def latency_chart(report: dict[str, Any]) -> str:
    cases = report.get("cases") or []
    thr = report.get("thresholds") or {}
    # A case that failed before its job's final status has no latency: no bar, rather than one of 0.00 s.
    timed = [isinstance(c.get("latency_s"), int | float) and not isinstance(c.get("latency_s"), bool) for c in cases]
    values = [float(c["latency_s"]) if t else 0.0 for c, t in zip(cases, timed, strict=True)]
    mean_limit = float(thr.get("golden_mean_latency_s") or 0.0)
    case_limit = float(thr.get("golden_case_latency_s") or 0.0)
    top = max(values + [0.001])
    # Draw a threshold line only when it is within sight of the data; otherwise name it in the caption.
    show_mean = mean_limit and mean_limit <= top * 1.5
    scale_top = max(top, mean_limit if show_mean else 0) * 1.1
    bar_h, gap, left, width = 22, 8, 170, 520
    height = max(1, len(cases)) * (bar_h + gap) + 30
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{height}" '
             f'role="img" aria-label="latency per case">')]
    for i, (case, value, has) in enumerate(zip(cases, values, timed, strict=True)):
        y = i * (bar_h + gap) + 10
        color = "#17803d" if case.get("passed") else "#b42318"
        parts.append(f'<text x="{left - 8}" y="{y + 16}" text-anchor="end" font-size="12">'
                     f'{escape(str(case.get("id")))}</text>')
        if not has:
            parts.append(f'<text x="{left}" y="{y + 16}" font-size="12" fill="{color}">no latency: its job reached '
                         "no final status</text>")
            continue
        w = max(1.0, value / scale_top * width)
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 16}" font-size="12">{value:.2f} s</text>')
    if show_mean:
        x = left + mean_limit / scale_top * width
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" stroke="#b54708" '
                     f'stroke-dasharray="4 3"/><text x="{x:.1f}" y="{height - 4}" font-size="11" '
                     f'text-anchor="middle">mean limit {mean_limit:g} s</text>')
    else:
        parts.append(f'<text x="{left}" y="{height - 4}" font-size="11">mean limit {mean_limit:g} s, '
                     f'per-case limit {case_limit:g} s (off scale)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _case_row(case: dict[str, Any]) -> str:
    ok = case.get("passed") is True
    checks = "<br>".join(
        f'<span class="{"pass" if c.get("passed") else "fail"}">{"✓" if c.get("passed") else "✗"}</span> '
        f'{escape(str(c.get("name")))}: {escape(str(c.get("detail")))}' for c in case.get("checks") or [])
    checks += "".join(_previews(image) for image in case.get("images") or [] if isinstance(image, dict))
    return (f"<tr><td>{escape(str(case.get('id')))}<br><small>{escape(str(case.get('workflow_id')))}"
            f"{' · smoke' if case.get('smoke') else ''}</small></td>"
            f"<td class={'pass' if ok else 'fail'}>{'pass' if ok else 'FAIL'}</td>"
            f"<td>{'-' if case.get('latency_s') is None else escape(str(case.get('latency_s'))) + ' s'}</td><td><code>{escape(_shown(case.get('job_id')))}</code></td>"
            f"<td>{checks}</td></tr>")


_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _previews(image: dict[str, Any]) -> str:
    """The render and its reference side by side, where the run kept previews of them (a render unlike its
    reference). Only a data: URI of base64 JPEG is shown: a report file is read from disk, and anything else in an
    <img src> could point the page elsewhere."""
    shown = []
    for key, caption in (("render_preview", "this render"), ("reference_preview", f"reference {image.get('reference')}")):
        src = image.get(key)
        if isinstance(src, str) and src.startswith(PREVIEW_PREFIX) and set(src[len(PREVIEW_PREFIX):]) <= _BASE64:
            shown.append(f'<figure style="display:inline-block;margin:.5rem 1rem 0 0"><img src="{src}" '
                         f'alt="{escape(caption)}"><figcaption><small>{escape(caption)}</small></figcaption></figure>')
    return "<br>" + "".join(shown) if shown else ""


def write_html(report: dict[str, Any], json_path: Path) -> Path:
    """Write `<report>.html` next to the JSON report (whole or not at all, as the JSON)."""
    out = json_path.with_suffix(".html")
    atomic_write(out, render(report).encode("utf-8"))
    return out
