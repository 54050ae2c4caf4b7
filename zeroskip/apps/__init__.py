"""User-facing programs built on the API: the digits demo, the sparsity benchmark, the formats
table and the randomized RTL regression."""
