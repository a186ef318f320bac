"""Small helpers every stage uses: console output, atomic files and locks, code digests."""
