"""Published MEL systems rebuilt on the benchmark's data, adapters and metric, one subpackage per system
(`gan21`: Gan et al. 2021's joint linking; `dwe_plus`: DWE+)."""
