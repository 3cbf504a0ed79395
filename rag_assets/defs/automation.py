"""Declarative automation: a new snapshot flows down to the collections that already exist.

Only existing (source, model) partitions refresh; a model is never built for a source just because it
is in the registry (first builds are requested by sensors.first_index_sensor, migrations by a user).
"""

from dagster import AutomationCondition

refresh_existing = (
    # since_last_handled: an upstream update that this asset already consumed (same run) requests nothing
    AutomationCondition.any_deps_updated().since_last_handled()
    & ~AutomationCondition.missing()
    & ~AutomationCondition.any_deps_missing()
    & ~AutomationCondition.any_deps_in_progress()
    & ~AutomationCondition.in_progress()
).with_label("refresh existing partitions when an upstream partition updates")
