"""The registry of state sections: named parts of the state, each owned by one contract.

A contract registers its section when imported (`fedray.core` imports them all): a name, the type of
its value (the canonical form follows from it, see `codec`) and a default. The registry is a plain
map by name: the state root hashes the sections in name order and snapshots store them by name, so
the order in which contracts register cannot change a root.

A section whose value keeps a growing history may give the root a `hashed_form` instead of its whole
canonical value (the rounds section hashes its closed rounds as a hash chain, so a block's root costs
what the block changed, not the run's length), and a `check` that a decoded value (a snapshot) is
consistent with what that form leaves out.

Deliberately ignored: unregistering, and sections whose value has no canonical type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Any

from fedray.core.codec import Via, decode_as, encode_as
from fedray.core.encoding import Canonical, hash_value
from fedray.errors import ArityError, DefinitionError, FieldTypeError


@dataclass(frozen=True)
class SectionSpec:
    """A section: its name, the type of its value, and its value before anything is written."""

    name: str
    value_type: Any
    default: Callable[[], Any]
    hashed_form: Callable[[Any], Canonical] | None = None  # what the root hashes, if not all
    check: Callable[[Any], None] | None = None  # raises on a decoded value that is inconsistent

    def to_canonical(self, value: Any) -> Any:
        return encode_as(self.value_type, value)

    def from_canonical(self, value: object) -> Any:
        decoded = decode_as(self.value_type, value, f"section {self.name}")
        if self.check is not None:
            self.check(decoded)
        return decoded

    def digest(self, value: Any) -> bytes:
        """Digest of a section value (of its `hashed_form` when it has one), cached on the
        (immutable) value when it can hold attributes: most blocks leave most sections
        untouched."""
        cached: bytes | None = getattr(value, "__dict__", {}).get("_fedray_digest")
        if cached is None:
            form = self.hashed_form(value) if self.hashed_form else self.to_canonical(value)
            cached = hash_value(form)
            if hasattr(value, "__dict__"):
                object.__setattr__(value, "_fedray_digest", cached)
        return cached


_SECTIONS: dict[str, SectionSpec] = {}


def register_section(spec: SectionSpec) -> SectionSpec:
    if spec.name in _SECTIONS and _SECTIONS[spec.name] != spec:
        raise DefinitionError(f"state section {spec.name!r} is already registered")
    _SECTIONS[spec.name] = spec
    return spec


def section_specs() -> Mapping[str, SectionSpec]:
    return MappingProxyType(_SECTIONS)


def _sections_to_canonical(sections: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _SECTIONS[name].to_canonical(value) for name, value in sections.items()}


def _sections_from_canonical(value: object) -> Mapping[str, Any]:
    if type(value) is not dict:
        raise FieldTypeError("state sections are a map by name")
    unknown = set(value) - set(_SECTIONS)
    if unknown:
        raise ArityError(f"unknown state sections {sorted(map(str, unknown))}")
    return MappingProxyType({name: _SECTIONS[name].from_canonical(v) for name, v in value.items()})


Sections = Annotated[Mapping[str, Any], Via(_sections_to_canonical, _sections_from_canonical)]
"""A map of section values by name, each in its section's canonical form."""
