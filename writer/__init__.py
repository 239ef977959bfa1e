"""The write machinery of `serve`: one writer owns the database's writes (docs/architecture.md,
"The writer process"); each module's name says which side of the pipe it runs on."""
