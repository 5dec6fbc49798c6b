//! Python's `repr()` of a string, which the Python example's output uses for every URL
//! (`'%r' % url`), so that fetchall's lines match Python's byte for byte.

use std::fmt::Write as _;

/// Python's `repr()` of a `str`, as `'%r' % url` prints it: the CLI quotes URLs this way, and
/// it keeps a line that holds a newline or a terminal escape on one harmless line.
///
/// Single quotes, unless the text contains `'` and no `"`. Backslash, the quote in use, `\n`,
/// `\r` and `\t` are escaped; other characters Python counts as not printable become `\xNN`,
/// `\uNNNN` or `\UNNNNNNNN`; the rest, non-ASCII included, is kept as it is.
///
/// Python's "not printable" is the Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs (except
/// the space). All of them are covered except unassigned code points (Cn), which would need
/// Unicode's whole table and change with every Unicode version; only the noncharacters among
/// them are escaped. A URL never holds one, and a control character can never reach the
/// terminal unescaped.
///
/// # Examples
///
/// ```
/// use fetchall::repr;
///
/// assert_eq!(repr("http://example.com/"), "'http://example.com/'");
/// assert_eq!(repr("it's"), "\"it's\"");
/// assert_eq!(repr("a\nb\x1b"), r"'a\nb\x1b'");
/// ```
pub fn repr(text: &str) -> String {
    // The usual URL: printable ASCII with nothing to escape. Checking bytes instead of
    // characters saved 4,000 instructions for a URL of 40 (`BENCHMARKS.md`, "Where the time
    // goes").
    if text
        .bytes()
        .all(|b| (b' '..=b'~').contains(&b) && b != b'\'' && b != b'\\')
    {
        let mut out = String::with_capacity(text.len() + 2);
        out.push('\'');
        out.push_str(text);
        out.push('\'');
        return out;
    }
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let n = u32::from(c);
                // Writing to a String cannot fail.
                let _ = match n {
                    0..=0xff => write!(out, r"\x{n:02x}"),
                    0x100..=0xffff => write!(out, r"\u{n:04x}"),
                    _ => write!(out, r"\U{n:08x}"),
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isprintable` for one character (see [`repr`] for the one gap).
fn is_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    // Cc: C0, DEL and C1 controls.
    if c.is_control() {
        return false;
    }
    let n = u32::from(c);
    // Noncharacters (Cn in every Unicode version): U+FDD0..U+FDEF, and the last two of each plane.
    if (0xfdd0..=0xfdef).contains(&n) || n & 0xfffe == 0xfffe {
        return false;
    }
    !NOT_PRINTABLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&n))
}

/// The categories Zs (less the space), Zl, Zp, Cf and Co, as inclusive ranges. Cs (surrogates)
/// cannot occur in a Rust `str`.
const NOT_PRINTABLE: &[(u32, u32)] = &[
    // Zs: spaces other than U+0020.
    (0xa0, 0xa0),
    (0x1680, 0x1680),
    (0x2000, 0x200a),
    (0x202f, 0x202f),
    (0x205f, 0x205f),
    (0x3000, 0x3000),
    // Zl, Zp: line and paragraph separators.
    (0x2028, 0x2029),
    // Cf: format characters (soft hyphen, zero-width and bidi controls, BOM, tags...).
    (0xad, 0xad),
    (0x600, 0x605),
    (0x61c, 0x61c),
    (0x6dd, 0x6dd),
    (0x70f, 0x70f),
    (0x890, 0x891),
    (0x8e2, 0x8e2),
    (0x180e, 0x180e),
    (0x200b, 0x200f),
    (0x202a, 0x202e),
    (0x2060, 0x2064),
    (0x2066, 0x206f),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x110bd, 0x110bd),
    (0x110cd, 0x110cd),
    (0x13430, 0x1343f),
    (0x1bca0, 0x1bca3),
    (0x1d173, 0x1d17a),
    (0xe0001, 0xe0001),
    (0xe0020, 0xe007f),
    // Co: private use.
    (0xe000, 0xf8ff),
    (0xf0000, 0xffffd),
    (0x100000, 0x10fffd),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of Python 3.11's `repr()`, written down by hand.
    #[test]
    fn repr_matches_known_python_outputs() {
        let cases = [
            ("http://a/", "'http://a/'"),
            ("", "''"),
            ("it's", "\"it's\""),
            ("say \"hi\"", "'say \"hi\"'"),
            ("both ' and \"", r#"'both \' and "'"#),
            (r"back\slash", r"'back\\slash'"),
            ("tab\there\r\n", r"'tab\there\r\n'"),
            ("\x00\x1b[31m\x7f", r"'\x00\x1b[31m\x7f'"),
            ("\u{85}\u{9f}", r"'\x85\x9f'"),
            (
                "caf\u{e9} \u{4e2d}\u{6587} \u{1f600}",
                "'caf\u{e9} \u{4e2d}\u{6587} \u{1f600}'",
            ),
            ("nb\u{a0}sp", r"'nb\xa0sp'"),
            ("soft\u{ad}hyphen", r"'soft\xadhyphen'"),
            ("zw\u{200b}sp \u{202e}rtl", r"'zw\u200bsp \u202ertl'"),
            ("\u{2028}\u{3000}\u{feff}", r"'\u2028\u3000\ufeff'"),
            (
                "private \u{e000} \u{10fffd}",
                r"'private \ue000 \U0010fffd'",
            ),
            ("tag \u{e0041}", r"'tag \U000e0041'"),
            (
                "nonchar \u{fdd0} \u{ffff} \u{1fffe}",
                r"'nonchar \ufdd0 \uffff \U0001fffe'",
            ),
        ];
        for (input, python) in cases {
            assert_eq!(repr(input), python, "repr({input:?})");
        }
    }

    /// Asks `python3` for the `repr` of characters from every range the table names and of
    /// their neighbours, and compares. Fails, saying so, when python3 is not installed.
    #[test]
    #[ignore = "needs python3"]
    fn repr_matches_python3() {
        let mut samples: Vec<String> = vec!["plain".into(), "'\"\\".into(), "a'b".into()];
        let mut chars: Vec<u32> = (0..0x300).collect();
        for &(lo, hi) in NOT_PRINTABLE {
            chars.extend([lo.saturating_sub(1), lo, hi, hi + 1]);
        }
        chars.extend([
            0xfdcf, 0xfdd0, 0xfdef, 0xfdf0, 0xfffd, 0xfffe, 0xffff, 0x10fffe,
        ]);
        samples.extend(
            chars
                .iter()
                .filter_map(|&n| char::from_u32(n))
                .map(String::from),
        );
        let script = "import json, sys\n\
                      unicodedata = __import__('unicodedata')\n\
                      for s in json.load(sys.stdin):\n\
                      \x20   assigned = all(unicodedata.category(c) != 'Cn' or (ord(c) & 0xfffe) == 0xfffe \
                                 or 0xfdd0 <= ord(c) <= 0xfdef for c in s)\n\
                      \x20   print(json.dumps(repr(s) if assigned else None))\n";
        let python =
            fetchall_serve::testing::python3(script, &serde_json::to_string(&samples).unwrap());
        let answers: Vec<Option<String>> = python
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(answers.len(), samples.len());
        let mut compared = 0;
        for (sample, answer) in samples.iter().zip(answers) {
            // Unassigned code points (Cn) are the documented gap: Python escapes them, we cannot
            // know which they are without Unicode's table.
            if let Some(expected) = answer {
                assert_eq!(repr(sample), expected, "repr({sample:?})");
                compared += 1;
            }
        }
        assert!(compared > samples.len() / 2, "too few samples compared");
    }
}
