"""The PDF of an export bundle (see audit/report.py).

PDF is written with fpdf2: pure Python (no Cairo/Pango or browser at run time), maintained, and
able to embed a TrueType font so names in any script render. DejaVu Sans is used when the
system has it (Debian: fonts-dejavu-core), else the core Helvetica font with unmappable
characters replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fpdf import FPDF

from audit.report import REPORT_ROW_LIMIT

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


class _ReportPDF(FPDF):
    def __init__(self) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
        self.unicode = regular.exists() and bold.exists()
        if self.unicode:
            self.add_font("Body", "", str(regular))
            self.add_font("Body", "B", str(bold))
        self.family = "Body" if self.unicode else "Helvetica"
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title("Palisade audit export")
        self.set_creator("Palisade")

    def text_of(self, value: Any) -> str:
        text = str(value)
        return text if self.unicode else text.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font(self.family, "", 8)
        self.set_text_color(120)
        self.cell(0, 8, f"Palisade audit export  -  page {self.page_no()}/{{nb}}", align="C")

    def heading(self, text: str, size: int = 13) -> None:
        self.ln(3)
        self.set_font(self.family, "B", size)
        self.set_text_color(23, 37, 84)
        self.cell(0, 8, self.text_of(text), new_x="LMARGIN", new_y="NEXT")
        self.set_text_color(0)

    def table_rows(self, header: tuple[str, ...], rows: list[tuple[Any, ...]],
                   widths: tuple[int, ...], size: int = 9) -> None:
        self.set_font(self.family, "", size)
        with self.table(col_widths=widths, line_height=1.6 * size / 2.8,
                        headings_style=_HEADINGS, borders_layout="HORIZONTAL_LINES",
                        text_align="LEFT",
                        first_row_as_headings=True) as table:
            row = table.row()
            for h in header:
                row.cell(h)
            for values in rows:
                row = table.row()
                for v in values:
                    row.cell(self.text_of(v))


def _headings_style() -> Any:
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", color=(255, 255, 255), fill_color=(30, 58, 138))


_HEADINGS = _headings_style()


def render_pdf(meta: dict[str, Any], summary: dict[str, Any],
               records: list[dict[str, Any]]) -> bytes:
    pdf = _ReportPDF()
    pdf.alias_nb_pages()
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 18)
    pdf.cell(0, 10, "Audit export report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(pdf.family, "", 10)
    filters = "; ".join(f"{k}: {', '.join(v) if isinstance(v, list) else v}"
                        for k, v in meta["filters"].items() if v) or "none"
    facts = [
        ("Server", meta["server_name"]), ("Bundle", meta["bundle_id"]),
        ("Created", meta["created"]), ("Exported by", meta["exported_by"]),
        ("Filters", filters), ("Records selected", summary["total"]),
        ("Period covered", f"{summary['first'] or '-'}  to  {summary['last'] or '-'}"),
        ("Chain segment", f"{meta['segment']['first']} .. {meta['segment']['last']}"),
        ("Anchoring checkpoint", f"seq {meta['checkpoint']['seq']}, head "
                                 f"{meta['checkpoint']['head_hash']}"),
    ]
    pdf.table_rows(("Item", "Value"), facts, (45, 135), size=9)
    pdf.heading("Summary per category")
    rows = [(c["label"], c["count"], ", ".join(f"{a['name']} ({a['count']})"
                                               for a in c["actions"]) or "-")
            for c in summary["categories"]]
    pdf.table_rows(("Category", "Records", "Actions"), rows, (45, 20, 115))
    if summary["actors"]:
        pdf.heading("Most frequent actors")
        pdf.table_rows(("Actor", "Records"), summary["actors"], (150, 30))
    pdf.heading("How to verify")
    pdf.set_font(pdf.family, "", 9)
    pdf.multi_cell(0, 5, align="L", text=pdf.text_of(
        "Run: python3 verify_bundle.py <bundle.zip> --trusted-key <key id>=<public key> . "
        "It checks the manifest signature, the hash of every file, every record hash and link "
        "in chain.jsonl, and the signed checkpoint that anchors the segment (docs/audit.md)."))
    pdf.heading(f"Records (first {min(len(records), REPORT_ROW_LIMIT)} of {len(records)})")
    listing = [(r["seq"], r["time"][:19].replace("T", " "), r["action_name"], r["actor"],
                r["target"]) for r in records[:REPORT_ROW_LIMIT]]
    pdf.table_rows(("Seq", "Time (UTC)", "Action", "Actor", "Target"), listing,
                   (14, 34, 40, 50, 42), size=7)
    return bytes(pdf.output())
