"""cifar-bench: train CIFAR-10 classifiers, export them, and measure every inference backend."""

__version__ = "0.1.0"
