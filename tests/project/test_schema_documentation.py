"""The schema documents itself: a frontend developer reading only GraphiQL or generated types learns
what every type, field, argument, input field and enum value means."""

from __future__ import annotations

import enum

import strawberry
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    specified_scalar_types,
)

from project.schema import build_schema, schema


def undocumented(graphql_schema: GraphQLSchema) -> list[str]:
    """Every schema element without a description, as `Type`, `Type.field`, `Type.field(argument)`,
    `Input.field` or `Enum.VALUE`. Introspection types and GraphQL's built-in scalars are the spec's."""
    missing: list[str] = []
    for name, named_type in sorted(graphql_schema.type_map.items()):
        if name.startswith("__") or name in specified_scalar_types:
            continue
        missing.extend(_undocumented_in(named_type))
    return missing


def _undocumented_in(named_type: GraphQLNamedType) -> list[str]:
    name = named_type.name
    missing = [] if _described(named_type.description) else [name]
    if isinstance(named_type, (GraphQLObjectType, GraphQLInterfaceType)):
        for field_name, field in named_type.fields.items():
            if not _described(field.description):
                missing.append(f"{name}.{field_name}")
            missing.extend(
                f"{name}.{field_name}({argument_name})"
                for argument_name, argument in field.args.items()
                if not _described(argument.description)
            )
    elif isinstance(named_type, GraphQLInputObjectType):
        missing.extend(
            f"{name}.{field_name}"
            for field_name, field in named_type.fields.items()
            if not _described(field.description)
        )
    elif isinstance(named_type, GraphQLEnumType):
        missing.extend(
            f"{name}.{value_name}"
            for value_name, value in named_type.values.items()
            if not _described(value.description)
        )
    return missing


def _described(description: str | None) -> bool:
    return bool(description and description.strip())


def test_every_schema_element_has_a_description():
    missing = undocumented(schema._schema)
    assert not missing, f"{len(missing)} schema elements have no description:\n  " + "\n  ".join(missing)


def test_the_debug_schema_is_documented_alike():
    """GraphiQL is served by the DEBUG schema: it must read the same descriptions."""
    assert undocumented(build_schema(debug=True)._schema) == undocumented(schema._schema)


@strawberry.enum
class Colour(enum.Enum):
    RED = "RED"


@strawberry.input
class Paint:
    colour: Colour


@strawberry.type
class PaintQuery:
    @strawberry.field
    def mix(self, paint: Paint) -> Colour:
        return paint.colour


def test_the_walk_sees_every_kind_of_element():
    """The check above must not pass by looking at nothing: it reaches types, fields, arguments,
    input fields and enum values, as a schema with one undescribed element of each kind shows."""
    assert undocumented(strawberry.Schema(query=PaintQuery)._schema) == [
        "Colour",
        "Colour.RED",
        "Paint",
        "Paint.colour",
        "PaintQuery",
        "PaintQuery.mix",
        "PaintQuery.mix(paint)",
    ]


# Types with identity: a client cache (Apollo, Relay, urql) keys them by `id`; payloads need none.
ENTITY_IDS = {
    "Activation": "ID!",
    "Operator": "ID!",
    "Package": "ID!",
    "Payment": "UUID!",
    "PaymentCredential": "ID!",
    "Router": "ID!",
}


def test_entity_types_have_a_stable_id():
    ids = {}
    for name in ENTITY_IDS:
        field = schema._schema.get_type(name).fields.get("id")
        ids[name] = str(field.type) if field else None
    assert ids == ENTITY_IDS
