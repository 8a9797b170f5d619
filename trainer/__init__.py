"""edgegan trainer: GAN and DCGAN generators in PyTorch. Knows nothing of ONNX."""
