"""The formats person images and their poses come in, below every model: the generator (``pona_model``),
re-ID (``reid``), the augmentation (``augment``) and the SynthMarket renderer (``synthmarket``) all read
and write them, and this package imports none of those (only ``runtime``; a test checks it).

- ``keypoints``: OpenPose's COCO-18 joints, the skeleton, keypoint geometry (scale, flip), Gaussian pose
  maps and skeleton drawings.
- ``annotations``: PATN's annotation CSV (one pose per image) and pairs CSV (condition, target), strict
  readers, atomic writers and PATN's training-pair rule.
- ``market_names``: Market-1501 image names (identity, camera, sequence, frame, box), the keys of both
  files.
- ``estimate``: keypoints of photographs by the offline BlazePose estimator, written as an annotation CSV
  (``python -m poseformats.estimate images=DIR out=ANNOTATIONS.csv``).
"""
