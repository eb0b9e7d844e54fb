"""sftmix: post-training data sets with Spark and Delta."""

__version__ = "0.1.0"
