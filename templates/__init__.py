"""mat2torch's templates: jinja2 files, and helpers/ as Python modules."""
