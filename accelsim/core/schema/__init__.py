"""Schemas of the project's YAML files, written with pydantic v2.

- `base`: the `Schema` model every file schema builds on (strict types, unknown keys rejected),
  the value types several files share, and `validate`, which turns pydantic's report into one
  line naming the file and the key path, what was expected and what was found;
- `recipes`: the schedule recipe files (`schedules/*.yaml`) of the CPU/DSP lowering and of the
  accelerator.

Each file kind's schema is one module beside `recipes` (the target files of
`accelsim.core.target` are meant to follow).
"""
