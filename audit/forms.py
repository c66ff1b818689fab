"""The export page's filter form."""

from __future__ import annotations

from typing import Any

from django import forms

from audit.actions import AuditCategory
from audit.export import ExportFilter

_LOCAL = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class ExportForm(forms.Form):
    since = forms.DateTimeField(required=False, label="From (UTC)", widget=_LOCAL,
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    until = forms.DateTimeField(required=False, label="Until (UTC, exclusive)", widget=_LOCAL,
                                input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
    actor = forms.CharField(required=False, max_length=255,
                            help_text="Exact user id, admin username or server name")
    target = forms.CharField(required=False, max_length=255,
                             help_text="Exact target, e.g. a room id or auth.user:42")
    categories = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(c.value, c.label) for c in AuditCategory],
        help_text="None selected: every category",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            raise forms.ValidationError("'From' must be before 'Until'.")
        return data

    def to_filter(self) -> ExportFilter:
        d = self.cleaned_data  # aware datetimes in TIME_ZONE, which is UTC (settings.py)
        return ExportFilter(since=d["since"], until=d["until"], actor=d["actor"],
                            target=d["target"],
                            categories=tuple(AuditCategory(c) for c in d["categories"]))
