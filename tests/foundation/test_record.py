"""kfp_ci._record: the dataclass-like records every result and settings class is built on."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

import pytest

from kfp_ci._record import FrozenInstanceError, Record, asdict, field, fields, replace

T = TypeVar("T")


class Version(Record):
    id: str
    name: str = "v1"
    spec: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.id})"


class Steps(Record, frozen=False):
    steps: list[str] = field(default_factory=list)


class Page(Record, Generic[T]):
    items: tuple[T, ...]
    token: str = ""


class VersionPage(Page[Version]):
    @property
    def versions(self) -> tuple[Version, ...]:
        return self.items


class Child(Version):
    extra: int = 0


def test_construction_defaults_and_factories() -> None:
    v = Version("a", spec={"root": {}})
    assert (v.id, v.name, v.spec, v.label) == ("a", "v1", {"root": {}}, "v1 (a)")
    assert Version(id="a", name="n").name == "n"
    assert Steps().steps == [] and Steps().steps is not Steps().steps  # a fresh list each time
    assert Child("c", extra=2).extra == 2 and [f.name for f in fields(Child)] == ["id", "name", "spec", "extra"]


@pytest.mark.parametrize(("args", "kwargs", "message"), [
    ((), {}, "missing required argument: 'id'"),
    (("a",), {"id": "b"}, "multiple values for argument 'id'"),
    (("a",), {"nope": 1}, "unexpected keyword argument 'nope'"),
    (("a", "b", {}, 4), {}, "takes 3 positional arguments but 4 were given"),
])
def test_bad_construction_is_a_type_error(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError, match=message):
        Version(*args, **kwargs)


def test_frozen_by_default_mutable_on_request() -> None:
    v = Version("a")
    with pytest.raises(FrozenInstanceError, match="frozen Version"):
        v.name = "b"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del v.name  # type: ignore[misc]
    s = Steps()
    s.steps.append("x")
    s.steps = ["y"]
    assert s.steps == ["y"]
    assert not hasattr(v, "__dict__")  # slots: no stray attributes
    with pytest.raises(AttributeError):
        s.other = 1  # type: ignore[attr-defined]


def test_equality_hash_and_repr_follow_the_field_options() -> None:
    assert Version("a", spec={"x": 1}) == Version("a", spec={"y": 2})  # spec: compare=False
    assert Version("a") != Version("b") and Version("a") != Child("a")
    assert hash(Version("a", spec={"x": 1})) == hash(Version("a"))
    assert {Version("a"), Version("a")} == {Version("a")}
    with pytest.raises(TypeError):
        hash(Steps())  # mutable records are unhashable, like dataclasses
    assert repr(Version("a")) == "Version(id='a', name='v1')"  # spec: repr=False


def test_generic_pages_replace_asdict_pickle() -> None:
    page = VersionPage((Version("a"), Version("b", spec={"k": [1]})), "t")
    assert page.versions[1].id == "b"
    assert replace(page.items[0], name="n") == Version("a", "n")
    with pytest.raises(TypeError, match="no field 'bogus'"):
        replace(page.items[0], bogus=1)
    assert asdict(page) == {"items": ({"id": "a", "name": "v1", "spec": {}},
                                      {"id": "b", "name": "v1", "spec": {"k": [1]}}), "token": "t"}
    assert pickle.loads(pickle.dumps(page)) == page
    assert copy.deepcopy(page) == page and copy.copy(page.items[0]) == page.items[0]


def test_post_init_runs_and_default_order_is_checked() -> None:
    seen: list[str] = []

    class Checked(Record):
        n: int

        def __post_init__(self) -> None:
            seen.append("post")
            if self.n < 0:
                raise ValueError("n must be >= 0")

    Checked(1)
    with pytest.raises(ValueError, match="n must be"):
        Checked(-1)
    assert seen == ["post", "post"]
    with pytest.raises(TypeError, match="'b' without a default follows one with a default"):
        class Bad(Record):
            a: int = 0
            b: int
