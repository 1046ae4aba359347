"""One vendored OpenAPI contract as the schema tests use it: its operations, its (adjusted)
components, a validator for an operation's 200 answer, and a recorder of answers to validate.

``test_schema.py`` (the v1 contract) and ``test_schema_vector_stores.py`` (today's API) both check
the emulator this way; each says which adjustments it makes to its YAML and why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import yaml

__all__ = ["SPEC_DIR", "AnswerRecorder", "SpecSchemas"]

SPEC_DIR = Path(__file__).resolve().parents[1] / "spec"


class SpecSchemas:
    """The contract at ``path``; ``adjust`` edits a private copy of its ``components`` in place."""

    def __init__(
        self,
        path: Path,
        validator: type[jsonschema.protocols.Validator],
        adjust: Callable[[dict[str, Any]], None],
    ) -> None:
        self._path = path
        self._validator = validator
        self._adjust = adjust

    @cached_property
    def spec(self) -> dict[str, Any]:
        return yaml.safe_load(self._path.read_text(encoding="utf-8"))

    @cached_property
    def components(self) -> dict[str, Any]:
        components = copy.deepcopy(self.spec["components"])
        self._adjust(components)
        return components

    @cached_property
    def operations(self) -> dict[str, tuple[str, str, dict[str, Any]]]:
        """operationId -> (method, path, schema of the 200 answer)."""
        operations = {}
        for path, methods in self.spec["paths"].items():
            for method, operation in methods.items():
                schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
                operations[operation["operationId"]] = (method.upper(), path, schema)
        return operations

    def validate(self, operation_id: str, body: Any) -> None:
        """Raise ``jsonschema.ValidationError`` unless ``body`` fits the operation's 200 answer."""
        _, _, schema = self.operations[operation_id]
        self._validator({**schema, "components": self.components}).validate(body)


class AnswerRecorder:
    """Collects the 200 answers of a walk through the API, then validates them all at once."""

    def __init__(self, schemas: SpecSchemas) -> None:
        self._schemas = schemas
        self.answers: dict[str, list[Any]] = {}

    def __call__(
        self, operation_id: str, response: httpx2.Response, *, json_body: bool = True
    ) -> Any:
        """Keep the answer of ``operation_id`` (checked to be a 200 to its method) and return it."""
        assert response.status_code == 200, (operation_id, response.text)
        method, _, _ = self._schemas.operations[operation_id]
        assert response.request.method == method
        body = response.json() if json_body else response.text
        self.answers.setdefault(operation_id, []).append(body)
        return body

    def validate_all(self) -> None:
        """Every operation of the contract was exercised, and every answer fits its schema."""
        assert sorted(self.answers) == sorted(self._schemas.operations), (
            "every operation of the spec is exercised"
        )
        for operation_id, bodies in self.answers.items():
            for body in bodies:
                self._schemas.validate(operation_id, body)
