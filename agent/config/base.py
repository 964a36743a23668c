"""Base class of every config model: unknown keys are errors, values are immutable once loaded."""

from __future__ import annotations

import json
from typing import Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)

    @classmethod
    def from_document(cls, data: Any) -> Self:
        """Validate a parsed YAML document the way its JSON Schema reads it (``agent/data/*.schema.json``): types
        as written, so ``true`` is not the number 1 and ``"502"`` is text, not a port; an editor showing the schema
        and ``validate`` agree. Raises ValidationError as model_validate does."""
        return cls.from_json(document_json(data))

    @classmethod
    def from_json(cls, text: str) -> Self:
        """``from_document`` for a document already turned into JSON by ``document_json``."""
        return cls.model_validate_json(text, strict=True)


def document_json(data: Any) -> str:
    """A parsed YAML document as the JSON text ``from_json`` validates."""
    return json.dumps(data, allow_nan=True)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be a number, not {value}", {"value": value})
    return value


# For Literal[0, 1]-like fields: pydantic takes true for 1 there even in strict mode, JSON Schema does not.
NOT_BOOL = BeforeValidator(_not_bool)


def exactly_one(*keys: str) -> dict[str, Any]:
    """JSON Schema clause for a model validator's "give either a or b": exactly one of ``keys`` given, not null."""
    return {"oneOf": [given(key) for key in keys]}


def given(key: str) -> dict[str, Any]:
    """JSON Schema clause: ``key`` is present and not null."""
    return {"required": [key], "properties": {key: {"not": {"type": "null"}}}}
