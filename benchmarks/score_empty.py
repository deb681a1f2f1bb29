"""Benchmark variant (d): the server's own floor, a scoring script that does nothing."""

from azureml_inference_server_http.api.aml_request import rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    request.get_data(cache=False)
    return AMLResponse("{}", 200, {"Content-Type": "application/json"})
