"""The Docker engine: the client wrapper, the builder image, bootstrap, binfmt, the local
registry, clean-up and doctor."""
