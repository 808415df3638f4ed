//! The ring against a fake guest memory: indices, room, checks, completions.
