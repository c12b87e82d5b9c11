"""Networks: the U-Net family (AttUnet, ε/x0-denoiser), the correction ResNet, presets, checkpoints."""
