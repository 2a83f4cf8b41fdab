"""The API's one pagination: pages of 50, ``page_size`` up to 200, bad values refused with 400.

A list view that paginates by hand declares ``pagination_class = Pagination`` so that the OpenAPI
schema documents its 200 as a page (``count``, ``next``, ``previous``, ``results``).
"""
from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """Pages of 50 (``page_size`` up to 200); an invalid ``page_size`` is a 400, not the default."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if not (1 <= value <= self.max_page_size):
            raise ValidationError({"page_size": [f"A whole number from 1 to {self.max_page_size}."]})
        return value

    def get_schema_operation_parameters(self, view) -> list[dict]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
            elif parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
        return parameters
