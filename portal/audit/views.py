"""The auditor's pages: list and filter the trail, export it as CSV (site auditors and superusers)."""
from __future__ import annotations

import csv
import json

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from portal.audit.selectors import audit_event_list, user_can_read_audit
from portal.audit.services import audit_pending_fold, audit_record
from portal.centers.models import Center

# Machine export: ``occurred_at`` is UTC ISO-8601 (``+00:00``) whatever the reader's language or zone;
# ``center_time_zone`` names the zone the portal shows that center's times in.
CSV_COLUMNS = ["sequence", "occurred_at", "actor_username", "center", "action", "object_type", "object_id",
               "before", "after", "ip_address", "request_id", "hash", "center_time_zone"]


class FilterForm(forms.Form):
    center = forms.ModelChoiceField(label=_("Center"), queryset=Center.objects.all(), required=False)
    user = forms.CharField(required=False, max_length=150, label=_("User name"))
    action = forms.CharField(label=_("Action"), required=False, max_length=64, help_text=_("Prefix, e.g. image.read"))
    object_type = forms.CharField(label=_("Object type"), required=False, max_length=64)
    object_id = forms.CharField(label=_("Object id"), required=False, max_length=64)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))


def _events(request):
    if not user_can_read_audit(request.user):
        raise PermissionDenied
    audit_pending_fold()  # the auditor sees every read recorded so far, chained
    form = FilterForm(request.GET or None)
    data = form.cleaned_data if form.is_valid() else {}
    events = audit_event_list(
        user=request.user, center_id=getattr(data.get("center"), "pk", None), username=data.get("user", ""),
        action=data.get("action", ""), object_type=data.get("object_type", ""),
        object_id=data.get("object_id", ""), date_from=data.get("date_from"), date_to=data.get("date_to"),
    )
    return form, data, events


@login_required
def event_list(request):
    form, data, events = _events(request)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    audit_record(actor=request.user, action="audit.view", object_type="audit.auditevent",
                 after={"page": page.number, **{k: str(v) for k, v in data.items() if v}}, request=request)
    return render(request, "audit/event_list.html", {"form": form, "page": page,
                                                     "query": request.GET.urlencode()})


class _Echo:
    def write(self, value):
        return value


@login_required
def event_export(request):
    form, data, events = _events(request)
    audit_record(actor=request.user, action="audit.export", object_type="audit.auditevent",
                 after={k: str(v) for k, v in data.items() if v}, request=request)
    writer = csv.writer(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for e in events.iterator(chunk_size=2000):
            yield writer.writerow([
                e.sequence, e.occurred_at.isoformat(), e.actor_username, e.center.code if e.center else "",
                e.action, e.object_type, e.object_id,
                json.dumps(e.before) if e.before is not None else "",
                json.dumps(e.after) if e.after is not None else "", e.ip_address or "", e.request_id, e.hash,
                e.center.time_zone if e.center else "UTC",
            ])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-events.csv"'
    return response
