"""Validate a configuration once, fill in the schema's defaults, and return plain values.

The schema lives in ``workflow/schemas/config.schema.yaml``; package code never reads a
global config, it receives the values it needs as arguments.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEFAULT_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A configuration value is missing, unknown or of the wrong type."""


def _extend_with_defaults(validator_class):
    """A validator that writes each property's ``default`` into the instance first."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if isinstance(subschema, dict) and "default" in subschema:
                    instance.setdefault(name, copy.deepcopy(subschema["default"]))
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_DefaultFillingValidator = _extend_with_defaults(jsonschema.Draft202012Validator)


def load_schema(path: Path | str = DEFAULT_SCHEMA) -> dict:
    return yaml.safe_load(Path(path).read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        unknown = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = _key_path(error)
        keys = ", ".join(f"{where}.{k}" if where != "<top level>" else k for k in unknown)
        return f"unknown config key(s): {keys}"
    if error.validator == "required":
        return f"config key {_key_path(error)}: {error.message}"
    return f"config key {_key_path(error)}: {error.message}"


def validate_config(config: dict[str, Any], schema: dict | None = None) -> dict[str, Any]:
    """Return a validated deep copy of ``config`` with defaults filled in.

    Raises ConfigError naming every offending key (dotted path) at once.
    """
    schema = load_schema() if schema is None else schema
    filled = copy.deepcopy(dict(config))
    validator = _DefaultFillingValidator(schema)
    # Two passes: the first fills defaults (nested defaults appear only once their parent
    # exists), the second reports errors against the completed config.
    list(validator.iter_errors(filled))
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n  ".join(_describe(e) for e in errors)
        raise ConfigError(f"invalid configuration:\n  {lines}")
    return filled


def load_config(path: Path | str, overrides: dict | None = None) -> dict[str, Any]:
    """Read a YAML config file, apply overrides, validate."""
    config = yaml.safe_load(Path(path).read_text()) or {}
    if overrides:
        config = deep_update(config, overrides)
    return validate_config(config)


def deep_update(base: dict, updates: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in updates.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
