"""JSON form of states for the conformance vectors: readable accounts and parameters, hex for bytes.

Sections (contract-owned state) are written as their canonical value with byte strings tagged as
{"$bytes": hex}, so any section round-trips without a section-specific JSON codec.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from fedray.core.sections import section_specs
from fedray.core.state import (
    Account,
    AccountsTree,
    Params,
    State,
    ValidatorSet,
)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {"$map": [[to_jsonable(k), to_jsonable(v)] for k, v in value.items()]}
    return value


def from_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if "$bytes" in value:
            return bytes.fromhex(value["$bytes"])
        return {from_jsonable(k): from_jsonable(v) for k, v in value["$map"]}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value


def state_to_json(state: State) -> dict[str, Any]:
    accounts = [
        {"key": k.hex(), **{f: getattr(a, f) for f in Account.__dataclass_fields__}}
        for k, a in sorted(state.accounts.accounts.items())
    ]
    return {
        "chain_id": state.chain_id,
        "height": state.height,
        "last_block_hash": state.last_block_hash.hex(),
        "last_block_time": state.last_block_time,
        "accounts": accounts,
        "validators": [[k.hex(), p] for k, p in state.validators.members],
        "last_validators": [[k.hex(), p] for k, p in state.last_validators.members],
        "params": state.params.to_canonical(),
        "sections": {
            name: to_jsonable(spec.to_canonical(state.section(name)))
            for name, spec in sorted(section_specs().items())
        },
        "root": state.root().hex(),
    }


def state_from_json(data: dict[str, Any]) -> State:
    accounts = {
        bytes.fromhex(a["key"]): Account(**{k: v for k, v in a.items() if k != "key"})
        for a in data["accounts"]
    }
    specs = section_specs()
    sections = {
        name: specs[name].from_canonical(from_jsonable(v))
        for name, v in data.get("sections", {}).items()
    }
    return State(
        chain_id=data["chain_id"],
        height=data["height"],
        last_block_hash=bytes.fromhex(data["last_block_hash"]),
        last_block_time=data["last_block_time"],
        accounts=AccountsTree.build(accounts),
        validators=ValidatorSet(tuple((bytes.fromhex(k), p) for k, p in data["validators"])),
        last_validators=ValidatorSet(
            tuple((bytes.fromhex(k), p) for k, p in data["last_validators"])
        ),
        params=Params.from_canonical(data["params"]),
        sections=MappingProxyType(sections),
    )
