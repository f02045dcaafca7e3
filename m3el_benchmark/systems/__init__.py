"""Published MEL systems rebuilt over the benchmark's adapters (one subpackage per system, e.g. `gan21`)."""
