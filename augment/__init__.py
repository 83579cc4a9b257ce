"""Pose-guided re-ID data augmentation, usable from any training code:

    from augment import subsample, select_conditions, plan_synthesis, synthesize, merge_training_set

1. ``subsample`` keeps a portion of each identity's training images (the rest are missing),
2. ``select_conditions`` picks a kept image of the same identity for each missing one,
3. ``plan_synthesis`` + ``synthesize`` regenerate the missing images with a PoNA checkpoint,
   (``copy_control`` copies the condition images instead: the control that shows what generation adds;
   ``oracle_control`` has a renderer draw them: the ceiling of what pose transfer could give),
4. ``merge_training_set`` writes kept + generated as a Market-layout dataset with a manifest.
"""

from augment.conditions import POLICIES, select_conditions
from augment.merge import merge_training_set
from augment.oracle import oracle_control
from augment.subsample import check_portion, kept_count, subsample
from augment.synthesis import UNUSABLE_POLICIES, copy_control, plan_synthesis, synthesize

__all__ = ["POLICIES", "UNUSABLE_POLICIES", "check_portion", "copy_control", "kept_count", "merge_training_set",
           "oracle_control", "plan_synthesis", "select_conditions", "subsample", "synthesize"]
