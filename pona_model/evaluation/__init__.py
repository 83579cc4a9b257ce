"""Scoring generated person images against their targets, one concern a module: ``pairs`` (which pairs,
PATN strips), ``selection`` (seeded subsets), ``loading`` (images at the compared size), ``networks``
(Inception / LPIPS / pose estimator from local files; FID's real statistics), ``scoring`` (the pass over
the pairs and the metric entries), ``folder`` (``evaluate_folder``: score images already generated) and
``from_checkpoint`` (``evaluate_generator``: generate the pairs with a checkpoint, then score them), ``pictures``
and ``report`` (what is written and printed). ``__main__`` is the command line,
``python -m pona_model.evaluation``.
"""
