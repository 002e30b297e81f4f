"""pyinit: a container init that forwards signals, reaps zombies and tears down what is left."""

__version__ = "0.1.0"
