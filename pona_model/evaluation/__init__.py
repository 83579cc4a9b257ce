"""Scoring generated person images against their targets, one concern a module: ``pairs`` (which pairs,
PATN strips), ``selection`` (seeded subsets), ``loading`` (images at the compared size), ``networks``
(Inception / LPIPS / pose estimator from local files; FID's real statistics), ``scoring`` (the pass over
the pairs and the metric entries), ``folder`` / ``from_checkpoint`` (the entry points), ``pictures`` and
``report`` (what is written and printed). ``python -m pona_model.evaluate`` is the command line.
"""
