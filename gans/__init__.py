"""gan-study: GAN training (plain PyTorch): data, models, augmentation, training loop, metrics."""
