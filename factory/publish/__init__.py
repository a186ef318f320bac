"""Where images go after assembly: docker load, the registry push with SBOM and signatures."""
