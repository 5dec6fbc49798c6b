//! `fetchall --generate WHAT`: shell completion scripts and the man page, made from the same
//! clap definition as `--help`, so they never drift from it (ripgrep's `--generate`, lychee's).

use std::io::{self, Write};

use clap::{CommandFactory, ValueEnum};
use clap_complete::Shell;

use crate::cli::Args;

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Generate {
    /// bash completions: `fetchall --generate complete-bash > /etc/bash_completion.d/fetchall`
    CompleteBash,
    /// zsh completions: save as `_fetchall` in a directory of `$fpath`
    CompleteZsh,
    /// fish completions: save as `~/.config/fish/completions/fetchall.fish`
    CompleteFish,
    /// PowerShell completions
    CompletePowershell,
    /// elvish completions
    CompleteElvish,
    /// The man page (roff): `fetchall --generate man > fetchall.1; man ./fetchall.1`
    Man,
}

/// Writes what `what` asks for to `out`.
///
/// # Errors
///
/// Writing to `out` failed.
pub(crate) fn generate(what: Generate, out: &mut dyn Write) -> io::Result<()> {
    let mut command = Args::command();
    let shell = match what {
        Generate::CompleteBash => Shell::Bash,
        Generate::CompleteZsh => Shell::Zsh,
        Generate::CompleteFish => Shell::Fish,
        Generate::CompletePowershell => Shell::PowerShell,
        Generate::CompleteElvish => Shell::Elvish,
        Generate::Man => return clap_mangen::Man::new(command).render(out),
    };
    clap_complete::generate(shell, &mut command, "fetchall", out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(what: Generate) -> String {
        let mut out = Vec::new();
        generate(what, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn completions_know_the_options() {
        for what in [
            Generate::CompleteBash,
            Generate::CompleteZsh,
            Generate::CompleteFish,
            Generate::CompletePowershell,
            Generate::CompleteElvish,
        ] {
            let script = text(what);
            for option in ["max-workers", "baseline", "per-host-rate", "report"] {
                assert!(script.contains(option), "{what:?} lacks {option}");
            }
        }
        assert!(text(Generate::CompleteBash).contains("complete -F"));
    }

    #[test]
    fn the_man_page_is_roff_with_every_option() {
        let page = text(Generate::Man);
        assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{}", &page[..80]);
        assert!(page.contains(".TH fetchall 1"), "{page}");
        for option in ["\\-\\-timeout", "\\-\\-fail\\-on", "\\-\\-summary\\-json"] {
            assert!(page.contains(option), "the man page lacks {option}");
        }
    }
}
