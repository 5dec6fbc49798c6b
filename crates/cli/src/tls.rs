//! The TLS options of the command line (`--cacert`, `--cert`/`--key`, `--insecure`,
//! `--cert-expiry`) turned into [`FetchOptions`] settings, with their files read and checked
//! before anything is fetched, and `--insecure`'s warning in fetchall's own words.

use std::io::Write;
use std::path::Path;

use fetchall::fetch::{ClientIdentity, FetchOptions, Trust};
use tracing_subscriber::fmt::MakeWriter;

use crate::cli::Args;

/// The TLS settings the arguments ask for, ready to go into [`FetchOptions`].
#[derive(Debug)]
pub(crate) struct TlsOptions {
    trust: Trust,
    client_cert: Option<ClientIdentity>,
    insecure: bool,
    cert_expiry_days: Option<u32>,
}

impl TlsOptions {
    /// Reads the files the arguments name, and warns on `stderr` about `--insecure`.
    ///
    /// # Errors
    ///
    /// A usage error (exit 2) naming the option and the file: `cannot use --cacert ca.pem: no
    /// certificate in it`.
    pub(crate) fn from_args<W>(args: &Args, stderr: &W) -> Result<TlsOptions, String>
    where
        W: for<'a> MakeWriter<'a>,
    {
        let unusable = |option: &str, path: &Path, why: &dyn std::fmt::Display| {
            format!("cannot use {option} {}: {why}", path.display())
        };
        let trust = match &args.cacert {
            Some(path) => Trust::from_pem_file(path).map_err(|e| unusable("--cacert", path, &e))?,
            None => Trust::System,
        };
        let client_cert = match &args.cert {
            Some(cert) => Some(
                ClientIdentity::from_pem_files(cert, args.key.as_deref())
                    .map_err(|e| unusable("--cert", cert, &e))?,
            ),
            None => None,
        };
        if args.insecure {
            // A closed stderr is no reason to fail.
            let _ = writeln!(
                stderr.make_writer(),
                "fetchall: warning: --insecure: TLS certificates and host names are not verified"
            );
        }
        Ok(TlsOptions {
            trust,
            client_cert,
            insecure: args.insecure,
            cert_expiry_days: args.cert_expiry,
        })
    }

    /// `options` with these settings in.
    pub(crate) fn applied_to(self, mut options: FetchOptions) -> FetchOptions {
        options.trust = self.trust;
        options.client_cert = self.client_cert;
        options.insecure = self.insecure;
        options.cert_expiry_days = self.cert_expiry_days;
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::{Arc, Mutex};

    /// Collects what is written, for the warning.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    fn options(args: &[&str]) -> (Result<TlsOptions, String>, String) {
        let args = Args::try_parse_from(std::iter::once("fetchall").chain(args.iter().copied()))
            .expect("valid arguments");
        let stderr = Captured::default();
        let result = TlsOptions::from_args(&args, &stderr);
        let written = String::from_utf8(stderr.0.lock().unwrap().clone()).expect("UTF-8");
        (result, written)
    }

    #[test]
    fn insecure_warns_in_fetchalls_words() {
        let (result, stderr) = options(&["-", "--insecure"]);
        assert!(result.is_ok_and(|o| o.insecure));
        assert_eq!(
            stderr,
            "fetchall: warning: --insecure: TLS certificates and host names are not verified\n"
        );
        let (_, quiet) = options(&["-"]);
        assert_eq!(quiet, "");
    }

    #[test]
    fn unreadable_files_are_usage_errors_that_name_the_option() {
        let (result, _) = options(&["-", "--cacert", "/nonexistent/ca.pem"]);
        let e = result.expect_err("no such file");
        assert!(
            e.starts_with("cannot use --cacert /nonexistent/ca.pem: "),
            "{e}"
        );
        let (result, _) = options(&["-", "--cert", "/nonexistent/me.pem"]);
        let e = result.expect_err("no such file");
        assert!(
            e.starts_with("cannot use --cert /nonexistent/me.pem: "),
            "{e}"
        );
    }

    #[test]
    fn by_default_the_system_store_is_trusted() {
        let (result, _) = options(&["-", "--cert-expiry", "7"]);
        let tls = result.expect("no files to read");
        assert!(matches!(tls.trust, Trust::System));
        let fetch = tls.applied_to(FetchOptions::default());
        assert_eq!(fetch.cert_expiry_days, Some(7));
        assert!(!fetch.insecure && fetch.client_cert.is_none());
    }
}
