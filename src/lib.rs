//! fetchall: a hand-written thread pool with Python's `concurrent.futures` model, and a CLI that
//! fetches many URLs with it.

mod fetch;
pub mod serve;

pub use fetch::{
    DEFAULT_MAX_REDIRECTS, DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, DNS_TTL, FetchError, FetchOptions,
    Fetcher, Method, Page, Phase, load_url, repr,
};
