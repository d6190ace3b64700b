"""IP intelligence: public sources compiled into an immutable, memory-mapped snapshot."""
