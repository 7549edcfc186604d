"""hfmat: generative models for crystals, native to the Hugging Face ecosystem."""

__version__ = "0.1.0"
