//! What the binary's tests share, in ripgrep's shape (its `tests/util.rs` `TestCommand`): one
//! runner for the binary ([`bin`]), the loopback servers the tests start besides
//! [`fetchall_serve::Server`] ([`gate`], [`hang`], [`proxy`]), a terminal ([`tmux`]), and
//! scratch files. A test that needs a tool checks for it with
//! [`fetchall_serve::testing::require`].

pub(crate) mod bin;
pub(crate) mod gate;
pub(crate) mod hang;
pub(crate) mod proxy;
pub(crate) mod tmux;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A file of our own under the target directory, removed when dropped. Created only when
/// written to ([`TempFile::holding`] writes at once).
pub(crate) struct TempFile(PathBuf);

impl TempFile {
    /// A fresh path ending in `name`; nothing is created yet.
    pub(crate) fn named(name: &str) -> TempFile {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        TempFile(dir.join(format!("cli-{}-{n}-{name}", std::process::id())))
    }

    /// A file holding `contents`.
    pub(crate) fn holding(contents: impl AsRef<[u8]>) -> TempFile {
        let file = TempFile::named("list.txt");
        std::fs::write(&file.0, contents).expect("write a scratch file");
        file
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// Its path as text, for a shell script or an argument list of `&str`.
    pub(crate) fn path_str(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs the binary on a file that holds `url` alone, with `args` after it and `env` added to
/// its environment.
pub(crate) fn fetch_one(url: &str, args: &[&str], env: &[(&str, &str)]) -> bin::Output {
    let file = TempFile::holding(format!("{url}\n"));
    bin::fetchall().envs(env).arg(file.path()).args(args).run()
}

/// The Python example's success line for `url`.
pub(crate) fn page(url: &str, bytes: usize) -> String {
    format!("'{url}' page is {bytes} bytes\n")
}

/// The Python example's failure line for `url`.
pub(crate) fn exception(url: &str, message: &str) -> String {
    format!("'{url}' generated an exception: {message}\n")
}

/// The one JSON line of a run.
pub(crate) fn json(run: &bin::Output) -> serde_json::Value {
    serde_json::from_str(run.stdout.trim_end()).expect("one JSON line")
}

/// `urls` one a line.
pub(crate) fn text(urls: &[String]) -> String {
    urls.iter().map(|u| format!("{u}\n")).collect()
}

/// The URL a result line is about: the text between its first two quotes.
pub(crate) fn url_of(line: &str) -> &str {
    line.split('\'').nth(1).unwrap_or_default()
}
