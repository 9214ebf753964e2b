"""Correlation rules -> incidents, as Keep's rules engine makes them
(docs/keep-compatibility.md#correlation).

    rules.py     the [[rule]] file: load, validate, reload on change
    matching.py  which rules an alert matches, its group keys and name values (CPU, per alert)
    decide.py    the atomic Redis decisions, one Lua call per batch chunk (state.lua, chunk.lua),
                 and the changes by hand (resolve.lua, acknowledge.lua, confirm.lua)
    stage.py     the pipeline step that ties them together, and control batches
    store.py     incident rows for the stores, and reading them back (CLI)
    commands.py  `farm incidents list|show|resolve|acknowledge|confirm`
"""
