"""The human-readable part of an export bundle: a summary per category, in HTML and PDF (the
PDF writer is audit/report_pdf.py, imported only when a PDF is made: fpdf2 and fontTools
would otherwise add tens of MiB to every server process)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.template.loader import render_to_string

from audit.actions import AuditCategory, action_label

# Reports list at most this many records; the full set is in records.jsonl / records.csv.
REPORT_ROW_LIMIT = 500


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    by_action = Counter(r["action"] for r in records)
    categories = []
    for cat in AuditCategory:
        low, high = cat.action_range
        actions = sorted((a, n) for a, n in by_action.items() if low <= a < high)
        categories.append({
            "label": cat.label, "slug": cat.value, "count": sum(n for _, n in actions),
            "actions": [{"name": action_label(a), "number": a, "count": n} for a, n in actions],
        })
    return {
        "total": len(records),
        "categories": categories,
        "actors": Counter(r["actor"] for r in records).most_common(10),
        "first": records[0]["time"] if records else None,
        "last": records[-1]["time"] if records else None,
    }


def render_html(meta: dict[str, Any], summary: dict[str, Any],
                records: list[dict[str, Any]]) -> str:
    return render_to_string("audit/report.html", {
        "meta": meta, "summary": summary, "records": records[:REPORT_ROW_LIMIT],
        "truncated": len(records) > REPORT_ROW_LIMIT, "limit": REPORT_ROW_LIMIT,
    })


def render_pdf(meta: dict[str, Any], summary: dict[str, Any],
               records: list[dict[str, Any]]) -> bytes:
    from audit.report_pdf import render_pdf as render

    return render(meta, summary, records)
