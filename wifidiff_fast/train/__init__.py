"""Training: ``python -m wifidiff_fast.train`` (resumable; boost + denoiser, then the correction ResNet)."""
