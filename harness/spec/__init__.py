"""What the harness reads from files: matrices, schemas, expectations, user models."""
