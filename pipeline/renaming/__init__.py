"""Renaming people's files from model answers: safe names (names.py), the batch plan with
companions (plan.py), the journaled, no-clobber moves with reconcile and undo (moves.py),
the journal's SQL (journal.py) and the `rename` action (action.py)."""
