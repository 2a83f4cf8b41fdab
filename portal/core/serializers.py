"""The base of every JSON request body serializer: values must have the JSON type the schema states.

DRF converts quietly: ``5`` becomes ``"5"`` for a ``CharField``, ``"true"`` and ``1`` become ``True``
for a ``BooleanField``, ``"2"`` becomes ``2`` for an ``IntegerField``. The OpenAPI schema says
``string``, ``boolean``, ``integer``; a client that sends another type has a bug, and is told so with a
400 naming the field (``extra.fields``) instead of having its value reinterpreted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext as _
from rest_framework import serializers

_STRING_FIELDS = (serializers.CharField, serializers.UUIDField, serializers.DateField, serializers.DateTimeField,
                  serializers.TimeField, serializers.DurationField)


def _type_error(field: serializers.Field, value: Any) -> str | None:
    """Why ``value`` has the wrong JSON type for ``field`` (None when it is right)."""
    if value is None:
        return None  # DRF's allow_null decides
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else _("Expected true or false.")
    if isinstance(field, serializers.ChoiceField) and not isinstance(field, serializers.MultipleChoiceField):
        kinds = {type(key) for key in field.choices}
        if isinstance(value, bool) or not isinstance(value, tuple(kinds) or (str,)):
            return _("Expected one of the listed values, with its type.")
        return None
    if isinstance(field, serializers.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else _("Expected an integer.")
    if isinstance(field, serializers.FloatField | serializers.DecimalField):
        return None if isinstance(value, int | float) and not isinstance(value, bool) else _("Expected a number.")
    if isinstance(field, _STRING_FIELDS):
        return None if isinstance(value, str) else _("Expected a string.")
    if isinstance(field, serializers.ListField | serializers.ListSerializer):
        if not isinstance(value, list):
            return _("Expected a list.")
        child = field.child
        for item in value:
            problem = _type_error(child, item)
            if problem:
                return _("List item: %(problem)s") % {"problem": f"{problem[0].lower()}{problem[1:]}"}
        return None
    if isinstance(field, serializers.DictField):
        if not isinstance(value, Mapping):
            return _("Expected an object.")
        for item in value.values():
            problem = _type_error(field.child, item)
            if problem:
                return _("Object value: %(problem)s") % {"problem": f"{problem[0].lower()}{problem[1:]}"}
        return None
    if isinstance(field, serializers.Serializer):
        return None if isinstance(value, Mapping) else _("Expected an object.")
    return None  # JSONField and anything else: any JSON value


class JsonInputSerializer(serializers.Serializer):
    # No docstring on purpose: drf-spectacular would show it as every input schema's description.
    # Refuses JSON values of the wrong type before DRF's conversions (multipart forms are left alone).

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and not isinstance(data, QueryDict):
            errors = {}
            for name, field in self.fields.items():
                if field.read_only or field.source == "*" or name not in data:
                    continue
                problem = _type_error(field, data[name])
                if problem:
                    errors[name] = [problem]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
