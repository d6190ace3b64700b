"""IP intelligence: public sources compiled into immutable, memory-mapped snapshots, and the lookups over them."""
