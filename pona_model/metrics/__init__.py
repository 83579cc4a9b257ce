"""Generator quality metrics: the paper's Table I protocol (SSIM, mask-SSIM, IS, mask-IS, PSNR and the
papers' legacy wrap-around PSNR, PCKh) and today's standard additions (FID, KID, LPIPS), plus L1; by
scikit-image, torch-fidelity and lpips where the field's libraries compute them (docs/evaluation.md).

Every function takes uint8 RGB images (H, W, 3) or batches (B, H, W, 3), the form in which generated
images are stored and scored by PATN's scripts; ``python -m pona_model.evaluation`` runs them over a
folder. Network-based metrics need weights that cannot be downloaded here: they are loaded from a
local file or the torch hub cache, and are reported as skipped (with the reason) when absent.
"""
