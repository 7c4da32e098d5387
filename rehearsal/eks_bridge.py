"""Route every boto3 EKS call in this process to the EKS simulator.

moto's EKS has no add-ons, updates or version catalogue, so EKS calls never reach moto: botocore
still validates the parameters against the real API model, then the simulator answers, and its
errors come back as the same botocore exception classes AWS would produce. SSM's public
`/aws/service/...` parameters (the recommended EKS AMI releases) are answered by the simulator too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.validate import validate_parameters

from rehearsal.eks.simulator import EksApiError, EksSimulator


@contextlib.contextmanager
def eks_routed_to(simulator: EksSimulator) -> Iterator[None]:
    original = BaseClient._make_api_call

    def make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        if service == "ssm" and operation_name == "GetParameter":
            name = str(api_params.get("Name", ""))
            if name.startswith("/aws/service/"):
                return _public_parameter(self, simulator, name)
        if service != "eks":
            return original(self, operation_name, api_params)
        operation = self.meta.service_model.operation_model(operation_name)
        validate_parameters(api_params, operation.input_shape)
        try:
            return simulator.call(operation_name, dict(api_params))
        except EksApiError as exc:
            error = {
                "Error": {"Code": exc.code, "Message": exc.message},
                "ResponseMetadata": {"HTTPStatusCode": exc.status},
            }
            raise self.exceptions.from_code(exc.code)(error, operation_name) from None

    with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
        yield


def _public_parameter(client: BaseClient, simulator: EksSimulator, name: str) -> dict[str, Any]:
    """AWS's public parameters (moto has none and refuses to create them): the simulator's answer."""
    value = simulator.ssm_parameter(name)
    if value is None:
        error = {
            "Error": {"Code": "ParameterNotFound", "Message": ""},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        raise client.exceptions.from_code("ParameterNotFound")(error, "GetParameter")
    return {"Parameter": {"Name": name, "Type": "String", "Value": value, "Version": 1, "DataType": "text"}}
