"""Read-only questions: lookups the handlers need (`lookup`) and the lists people read (`home`)."""
