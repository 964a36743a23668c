"""Config: YAML with file:line:col kept, pydantic models (unknown keys rejected), compiled to a checked plan."""
