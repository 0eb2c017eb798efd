"""Pages of the API's lists, numbered as the schema says: a whole number from 1, refused with 400 otherwise,
and 404 past the last page."""

from rest_framework.pagination import PageNumberPagination

from .inputs import QueryError, positive_int


class PageNumbers(PageNumberPagination):
    # DRF would also read page=last; the schema says integer, so "last" is refused like any other word.
    last_page_strings = ()
    invalid_page_message = "There is no page {page_number}: it is past the last page."

    def get_page_number(self, request, paginator):
        if self.page_query_param not in request.query_params:
            return 1
        number = positive_int(request.query_params[self.page_query_param])
        if number is None:
            raise QueryError("invalid_page", "page must be a whole number from 1.")
        return number

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
