"""The object types of DRS's progress-data API, its ``{type}`` path parameter.

At the bottom because every layer needs the list: the configuration validates ``object_types``
against it, the client asks by it, and the simulator serves it.
"""

OBJECT_TYPES = (
    "table",
    "event",
    "table_structure",
    "procedure",
    "view",
    "function",
    "database",
    "trigger",
    "table_indexs",
)
