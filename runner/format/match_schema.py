"""The match language as JSON Schema, published in `runbook schema` for editors."""

from __future__ import annotations

from typing import Any

_SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}
_NUMBER: dict[str, Any] = {"type": "number"}

#: `$defs` entries: a mapping of path -> test, or all/any/not over such mappings.
CONDITION_DEFS: dict[str, Any] = {
    "Conditions": {
        "type": "object",
        "description": "every entry must hold; keys are dotted paths into the alert envelope "
        "(source, severity, labels.NAME, entities.hosts, raw.PATH; a bare name is a label), "
        "or all / any / not",
        "properties": {
            "all": {"type": "array", "items": {"$ref": "#/$defs/Conditions"}},
            "any": {"type": "array", "items": {"$ref": "#/$defs/Conditions"}},
            "not": {"$ref": "#/$defs/Conditions"},
        },
        "additionalProperties": {
            "anyOf": [
                {**_SCALAR, "description": "equals"},
                {"type": "array", "items": _SCALAR, "description": "one of"},
                {"$ref": "#/$defs/Test"},
            ]
        },
    },
    "Test": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "equals": _SCALAR,
            "in": {"type": "array", "items": _SCALAR, "minItems": 1},
            "regex": {"type": "string", "description": "re.search; anchor with ^ and $"},
            "glob": {"type": "string", "description": "shell-style, case-sensitive"},
            "gt": _NUMBER,
            "gte": _NUMBER,
            "lt": _NUMBER,
            "lte": _NUMBER,
            "cidr": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "description": "IP networks such as 10.0.0.0/8",
            },
            "exists": {"type": "boolean"},
        },
    },
}
