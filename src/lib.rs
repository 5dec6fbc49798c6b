//! fetchall: a hand-written thread pool with Python's `concurrent.futures` model, and a CLI that
//! fetches many URLs with it.
