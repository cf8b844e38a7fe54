"""Typed records without the start-up cost of :mod:`dataclasses`.

``@dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__`` (and for frozen classes
``__setattr__``/``__delattr__``) as source text and compiles it with ``exec``: about 1 ms per class. kfp-ci
declares some thirty result and settings classes on the path every ``kfp-ci deploy`` walks, so that was ~35 ms
of a ~250 ms command. A :class:`Record` subclass gets the same behaviour from shared, already-compiled
methods; the class statement costs tens of microseconds.

    class Version(Record):                      # frozen by default
        id: str
        name: str
        tags: tuple[str, ...] = ()
        spec: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    class Plan(Record, frozen=False):            # mutable
        steps: list[str] = field(default_factory=list)

Semantics follow dataclasses where kfp-ci uses them: fields in annotation order (base classes first), positional
or keyword construction, defaults and ``default_factory``, ``__post_init__``, ``repr``/``compare`` per field,
equality between instances of the same class, hashing of frozen records, ``replace``, ``fields``, ``asdict``.
Records use ``__slots__`` and pickle by their field values. Type checkers see them as dataclasses
(``dataclass_transform``). Modules declaring records must use ``from __future__ import annotations`` (the
annotations are read as strings, never evaluated).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

__all__ = ["FrozenInstanceError", "Record", "asdict", "field", "fields", "replace"]

R = TypeVar("R", bound="Record")

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda obj: obj


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """One field's declaration; what :func:`field` returns and ``_fields_`` holds."""

    __slots__ = ("compare", "default", "default_factory", "name", "repr")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None, repr: bool, compare: bool) -> None:
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare

    def __repr__(self) -> str:
        return f"Field({self.name!r})"


def field(
    *, default: Any = MISSING, default_factory: Callable[[], Any] | None = None, repr: bool = True, compare: bool = True
) -> Any:
    """A field with options: ``default`` or ``default_factory``, and whether repr and ==/hash use it."""
    if default is not MISSING and default_factory is not None:
        raise TypeError("field() takes default or default_factory, not both")
    return Field(default, default_factory, repr, compare)


def _is_classvar(annotation: object) -> bool:
    return isinstance(annotation, str) and annotation.replace("typing.", "").startswith("ClassVar")


class _RecordMeta(type):
    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        *,
        frozen: bool | None = None,
        **kwargs: Any,
    ) -> _RecordMeta:
        inherited: dict[str, Field] = {}
        for base in reversed(bases):
            for f in getattr(base, "_fields_", ()):
                inherited[f.name] = f
        annotations = namespace.get("__annotations__", {})
        if "__annotate__" in namespace and not annotations:
            raise TypeError(f"record {name}: declare it in a module with 'from __future__ import annotations'")
        own: dict[str, Field] = {}
        for attr, annotation in annotations.items():
            if _is_classvar(annotation):
                continue
            value = namespace.pop(attr, MISSING)
            decl = value if isinstance(value, Field) else Field(value, None, True, True)
            decl.name = attr
            own[attr] = decl
        all_fields = {**inherited, **own}
        seen_default = False
        for f in all_fields.values():
            if f.default is not MISSING or f.default_factory is not None:
                seen_default = True
            elif seen_default:
                raise TypeError(f"record {name}: field {f.name!r} without a default follows one with a default")
        namespace["__slots__"] = tuple(a for a in own if a not in inherited)
        namespace["_fields_"] = tuple(all_fields.values())
        if frozen is None:
            frozen = next((getattr(b, "_frozen_", True) for b in bases if hasattr(b, "_frozen_")), True)
        namespace["_frozen_"] = frozen
        if not frozen:
            namespace.setdefault("__hash__", None)
        return super().__new__(mcls, name, bases, namespace, **kwargs)


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
class Record(metaclass=_RecordMeta):
    """Base of kfp-ci's typed records (frozen unless declared ``frozen=False``)."""

    __slots__ = ()
    _fields_: ClassVar[tuple[Field, ...]] = ()
    _frozen_: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        specs = cls._fields_
        if len(args) > len(specs):
            raise TypeError(f"{cls.__name__}() takes {len(specs)} positional arguments but {len(args)} were given")
        for index, spec in enumerate(specs):
            if index < len(args):
                if spec.name in kwargs:
                    raise TypeError(f"{cls.__name__}() got multiple values for argument {spec.name!r}")
                value = args[index]
            elif spec.name in kwargs:
                value = kwargs.pop(spec.name)
            elif spec.default is not MISSING:
                value = spec.default
            elif spec.default_factory is not None:
                value = spec.default_factory()
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: {spec.name!r}")
            object.__setattr__(self, spec.name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}")
        post_init = getattr(self, "__post_init__", None)
        if post_init is not None:
            post_init()

    def __setattr__(self, name: str, value: Any) -> None:
        if self._frozen_:
            raise FrozenInstanceError(f"cannot assign to field {name!r} of frozen {type(self).__name__}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._frozen_:
            raise FrozenInstanceError(f"cannot delete field {name!r} of frozen {type(self).__name__}")
        object.__delattr__(self, name)

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in self._fields_ if f.repr)
        return f"{type(self).__qualname__}({shown})"

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f.name) for f in self._fields_ if f.compare)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self._key()))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), tuple(getattr(self, f.name) for f in self._fields_))


def fields(record: Record | type[Record]) -> tuple[Field, ...]:
    """The fields of a record (class or instance), in order."""
    return record._fields_


def replace(record: R, /, **changes: Any) -> R:
    """A copy of ``record`` with some fields changed (``__post_init__`` runs again)."""
    known = {f.name for f in record._fields_}
    unknown = set(changes) - known
    if unknown:
        raise TypeError(f"{type(record).__name__} has no field {sorted(unknown)[0]!r}")
    values = {f.name: getattr(record, f.name) for f in record._fields_}
    values.update(changes)
    return type(record)(**values)


def asdict(record: Record) -> dict[str, Any]:
    """The record as plain data: nested records, lists, tuples and mappings converted recursively."""
    return {f.name: _plain(getattr(record, f.name)) for f in record._fields_}


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return asdict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if type(value) in (list, tuple) else [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value
