from __future__ import annotations

from django import forms

from portal.centers.models import Center
from portal.imaging.models import BirthYearBucket, ImageSession, Patient
from portal.imaging.selectors import writable_centers, writable_patients

NOTES_WARNING = (
    "Technical notes only (max. 500 characters). Never enter names, dates of birth, record numbers or "
    "anything else that identifies a person."
)


class PatientForm(forms.Form):
    center = forms.ModelChoiceField(queryset=Center.objects.none())
    birth_year_bucket = forms.ChoiceField(choices=BirthYearBucket.choices, required=False,
                                          help_text="Five-year bucket only; leave empty when unknown.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["center"].queryset = writable_centers(user)


class SessionForm(forms.ModelForm):
    patient = forms.ModelChoiceField(queryset=Patient.objects.none())

    class Meta:
        model = ImageSession
        fields = ["patient", "acquisition_date", "microscope", "objective", "modality", "um_per_px",
                  "stage_flip_x", "stage_flip_y", "stage_rotation", "notes"]
        widgets = {
            "acquisition_date": forms.DateInput(attrs={"type": "date"}),
            "notes": forms.Textarea(attrs={"rows": 3, "maxlength": ImageSession.NOTES_MAX_LENGTH}),
            "um_per_px": forms.NumberInput(attrs={"step": "any", "min": 0.02, "max": 5}),
        }
        help_texts = {"notes": NOTES_WARNING}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["patient"].queryset = writable_patients(user)


class UmPerPxForm(forms.Form):
    um_per_px = forms.FloatField(min_value=0.02, max_value=5.0)
