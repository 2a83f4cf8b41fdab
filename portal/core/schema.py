"""What the OpenAPI schema says beyond each view's own ``extend_schema``, so it matches what the API does.

* Every operation documents the error answers of ``portal.core.api.exception_handler`` (``ErrorOutput``):
  401 (no or a bad token) 403 (role, CSRF) 404 (absent or another center's) 429 (throttled) always,
  400 and 415 where input is read (a body or query parameters), 409 for writes (state conflicts).
* Strings a DRF ``CharField`` reads are declared as DRF checks them: no NUL character, and (unless
  blank is allowed) at least one character that is not white space.
* List views declare ``pagination_class = portal.core.pagination.Pagination``; their 200 is then
  documented as a page (``count``, ``next``, ``previous``, ``results``) with ``page``/``page_size``.
"""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

NO_NUL = r"^[^\x00]+$"  # with allow_blank, drf-spectacular adds the empty string as a oneOf branch
NOT_BLANK_NO_NUL = r"^[^\x00]*[^\s\x00][^\x00]*$"

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `extra.fields` names each refused field, or a business rule refused it.",
    "401": "No credentials, or an invalid token (`WWW-Authenticate: Token`).",
    "403": "Signed in, but your role does not allow this (or a session request without CSRF token).",
    "404": "No such object in your centers (another center's objects are never revealed).",
    "409": "The object's state does not allow this (e.g. a frozen session, a study that is not a draft).",
    "415": "The request body's media type is not accepted by this operation.",
    "429": "Too many requests: retry later.",
}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ErrorOutput(serializers.Serializer):
    """Every error answer: a sentence for people and details for programs."""

    message = serializers.CharField()
    extra = serializers.DictField(help_text="Details: `fields` (per-field messages) or rule-specific data.")


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the portal's error answers and DRF's string rules."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        has_body = "requestBody" in operation
        has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
        codes = {"401", "403", "404", "429"}
        if has_body or has_query or method in WRITE_METHODS:
            codes.add("400")
        if method in WRITE_METHODS:
            codes.add("409")
        if has_body:
            codes.add("415")
        responses = operation.setdefault("responses", {})
        for code in sorted(codes - set(responses)):
            responses[code] = self._get_response_for_code(ErrorOutput, code)
            responses[code]["description"] = ERROR_DESCRIPTIONS[code]
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (direction == "request" and type(field) is serializers.CharField and isinstance(schema, dict)
                and schema.get("type") == "string" and not ({"pattern", "format", "enum"} & set(schema))):
            blank_ok = field.allow_blank or not field.trim_whitespace
            schema["pattern"] = NO_NUL if blank_ok else NOT_BLANK_NO_NUL
        return schema
