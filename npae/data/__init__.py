"""Data that ships inside npae: the embedded MNIST sample (see README.md here)."""
