"""pipe: map local generative-AI models over folders of files, resumably."""

__version__ = "0.1.0"
