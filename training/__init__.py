"""Training, data and ONNX export for the CIFAR-10 classifier."""
