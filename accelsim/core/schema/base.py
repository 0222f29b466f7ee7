"""What every file schema shares: the `Schema` base model, small value types, and `validate`.

A schema is a tree of `Schema` models and pydantic types. Types are strict (YAML gives real
ints, bools and lists, so `"4"` is no int and `1` no bool) and a key a model does not declare is
an error naming the keys it does declare. Ranges a field must fall in are part of its type
(`Annotated[..., AfterValidator(...)]`), so the schema says everything a file may hold.

`validate` reports the first problem pydantic finds as the caller's `AccelsimError` subclass,
on one line: `<file>: <key path>: <what was expected>, found <what was found>`, the key path
written as in the file (`conv2d.w8a8.tile.oc`, `conv2d.default.dataflows[1].stage`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from accelsim.core.errors import AccelsimError
from accelsim.core.fsutil import read_yaml


def problem(kind: str, message: str, **ctx: Any) -> PydanticCustomError:
    """A schema error whose `message` (a format string over `ctx`) is what the user reads."""
    return PydanticCustomError(kind, message, ctx)


def _found(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Schema(BaseModel):
    """A mapping with the keys its fields declare, each optional unless it has no default."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    # for "expected <WHAT>, found ..." when the value is not a mapping
    WHAT: ClassVar[str] = "a mapping"
    # the error for a key the model does not declare ({keys}: the keys it declares)
    UNKNOWN: ClassVar[str] = "unknown key (expected one of {keys})"

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(cls, data: Any, handler: Callable) -> Any:
        if isinstance(data, cls):
            return handler(data)
        if not isinstance(data, Mapping):
            raise problem(
                "mapping", "expected {what}, found {found}", what=cls.WHAT, found=_found(data)
            )
        keys = [f.alias or name for name, f in cls.model_fields.items()]
        for k in data:
            if k not in keys:
                err = problem("unknown_key", cls.UNKNOWN, keys=", ".join(keys))
                raise ValidationError.from_exception_data(
                    cls.__name__, [{"type": err, "loc": (k,), "input": data[k]}]
                )
        return handler(data)


def mapping_of(what: str) -> BeforeValidator:
    """For a `dict[...]` field: a value that is no mapping is "expected <what>"."""

    def check(value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise problem(
                "mapping", "expected {what}, found {found}", what=what, found=_found(value)
            )
        return value

    return BeforeValidator(check)


def one_of(what: str, names: tuple[str, ...], detail: str = "") -> Any:
    """A string that must be one of `names` (`unknown <what> '<v>'` otherwise)."""

    def check(value: str) -> str:
        if value not in names:
            raise problem(
                "unknown_name",
                "unknown {what}{detail} (expected one of {names})",
                what=what,
                detail=detail,
                names=", ".join(names),
            )
        return value

    return Annotated[str, AfterValidator(check)]


def positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# what pydantic's own error types expect, in the project's words
_EXPECTED = {
    "dict_type": "a mapping",
    "list_type": "a list",
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a number",
    "too_short": "at least {min_length} item(s)",
    "literal_error": "one of {expected}",
}


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # the error is about the mapping key itself
            continue
        if isinstance(part, str) and part.startswith("<"):  # a union's tag, not a key
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `<key path>: <what was expected>, found <what was found>`."""
    kind = error["type"]
    if kind == "missing":
        text = "missing"
    elif kind in _EXPECTED:
        expected = _EXPECTED[kind].format(**(error.get("ctx") or {}))
        text = f"expected {expected}, found {_found(error.get('input'))}"
    else:  # the schema's own errors say what was expected and found
        text = error["msg"]
    where = _key_path(error["loc"])
    return f"{where}: {text}" if where else text


def validate(
    model: type[BaseModel],
    data: Any,
    path: str,
    error: type[AccelsimError],
    context: Mapping[str, Any] | None = None,
) -> BaseModel:
    """`data` (a file's parsed YAML) as `model`, or `error` naming `path` and the key path."""
    try:
        return model.model_validate(data, context=dict(context or {}))
    except ValidationError as exc:
        raise error(f"{path}: {describe(exc.errors()[0])}") from None


def load(
    path: str,
    model: type[BaseModel],
    error: type[AccelsimError],
    what: str,
    context: Mapping[str, Any] | None = None,
) -> BaseModel:
    """Read the YAML file `path` (`what` names it when missing) and validate it as `model`."""
    return validate(model, read_yaml(path, what, error), path, error, context)
