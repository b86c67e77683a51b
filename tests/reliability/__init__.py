"""The reliability suite (`make reliability`): hostile inputs, fuzzing, ordering, faults,
integrity, load and budgets. All marked slow."""
