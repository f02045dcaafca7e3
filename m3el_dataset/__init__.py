"""M3EL on the Hugging Face Hub: release reader, Hub export and `datasets` builder."""
