"""Modality-augmented contrastive training of CLIP-ND (the library behind ``benchmark/train.py``)."""
