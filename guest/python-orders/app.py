"""Ferry plugin entry point for componentize-py (world `mapper` of
`wit/mapping.wit`, contract ferry:mapping@0.1.0)."""

from wit_world import exports
from componentize_py_types import Err
from wit_world.imports import types

import mapping


class Mapping(exports.Mapping):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(mapping.NAME, mapping.VERSION, mapping.DESCRIPTION, mapping.CONTRACT)

    def check_options(self, options: str) -> None:
        _, error = mapping.options(options)
        if error is not None:
            raise Err(error)

    def map_batch(self, options: str, records: list[str]) -> list[types.Outcome]:
        opts, error = mapping.options(options)
        if error is not None:
            raise Err(error)
        return [_outcome(mapping.map_text(opts, r)) for r in records]


def _outcome(result):
    if result[0] == "mapped":
        return types.Outcome_Mapped(result[1])
    if result[0] == "skip":
        return types.Outcome_Skip(result[1])
    return types.Outcome_Error(types.RecordError(result[1], result[2]))
