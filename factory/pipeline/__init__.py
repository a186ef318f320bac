"""The whole job, stage after stage: stamps, fingerprints and the run."""
