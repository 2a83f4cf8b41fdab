from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from portal.centers.models import Center
from portal.imaging.models import BirthYearBucket, ImageSession, Patient
from portal.imaging.selectors import writable_centers, writable_patients

NOTES_WARNING = _(
    "Technical notes only (max. 500 characters). Never enter names, dates of birth, record numbers or "
    "anything else that identifies a person."
)


class PatientForm(forms.Form):
    center = forms.ModelChoiceField(label=_("Center"), queryset=Center.objects.none())
    birth_year_bucket = forms.ChoiceField(label=_("Birth year (five-year bucket)"), choices=BirthYearBucket.choices,
                                          required=False, help_text=_("Five-year bucket only; leave empty when unknown."))

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = writable_centers(user)


class SessionForm(forms.ModelForm):
    patient = forms.ModelChoiceField(label=_("Patient"), queryset=Patient.objects.none())

    class Meta:
        model = ImageSession
        fields = ["patient", "acquisition_date", "microscope", "objective", "modality", "um_per_px",
                  "stage_flip_x", "stage_flip_y", "stage_rotation", "notes"]
        widgets = {
            "acquisition_date": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3, "maxlength": ImageSession.NOTES_MAX_LENGTH}),
            "um_per_px": forms.NumberInput(attrs={"step": "any", "min": 0.02, "max": 5}),
        }
        help_texts = {
            "notes": NOTES_WARNING,
            "um_per_px": _("Micrometres per pixel for images whose file does not state it."),
        }
        labels = {
            "acquisition_date": _("Acquisition date"),
            "microscope": _("Microscope"),
            "objective": _("Objective"),
            "modality": _("Modality"),
            "um_per_px": _("µm per pixel"),
            "stage_flip_x": _("Stage flipped in X"),
            "stage_flip_y": _("Stage flipped in Y"),
            "stage_rotation": _("Stage rotation (degrees)"),
            "notes": _("Notes"),
        }

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = writable_patients(user)


class UmPerPxForm(forms.Form):
    um_per_px = forms.FloatField(label=_("µm per pixel"), min_value=0.02, max_value=5.0)
