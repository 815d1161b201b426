"""The assessments app's pages, by who uses them.

- ``partner``: the pages a partner reaches through their personal link (answering, results, the
  released summary, stopping reminders).
- ``counselor``: the caseload, a couple's administrations, the comparison and its PDF, and the
  actions on an administration (assign, cancel, links, reminders, release).
- ``reports``: the practice admin's statistics, exports, codebook and a couple's full record.
"""
