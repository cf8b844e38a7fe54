"""A project-local module the pipeline imports: changing it must recompile the pipeline."""

GREETING = "hello"
