//! Checks for names and hashes that come from outside this process: a remote's records, the
//! manifest left in `artifacts/`. Whatever they say, a name checked here stays below the folder it
//! is joined to, a hash names one file of the store, and text printed from them cannot move the
//! terminal's cursor.

/// Whether `text` is an object name of the store: a blake3 as 64 lowercase hex digits.
pub fn is_object_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why an output name cannot be used as a path below a folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    Empty,
    TooLong,
    /// Starts at a root (`/etc/x`), or names a drive or a Windows separator (`C:`, `\`).
    Absolute,
    /// A `..`, `.` or empty component, or one that starts with a dot (hidden, and the shape of
    /// this program's own temporaries).
    Component,
    /// A control character (a terminal escape, a newline, NUL).
    Control,
}

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadName::Empty => "it is empty",
            BadName::TooLong => "it is longer than 255 bytes",
            BadName::Absolute => "it is absolute",
            BadName::Component => "a component is empty, `.`, `..` or hidden",
            BadName::Control => "it holds a control character",
        })
    }
}

/// An output name that can be joined to a folder and stay below it: components split by `/`,
/// each a plain file or folder name.
pub fn check_relative_name(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name.len() > 255 {
        return Err(BadName::TooLong);
    }
    if name.chars().any(char::is_control) {
        return Err(BadName::Control);
    }
    if name.starts_with('/') || name.contains('\\') || name.contains(':') {
        return Err(BadName::Absolute);
    }
    if name.split('/').any(|part| part.is_empty() || part.starts_with('.')) {
        return Err(BadName::Component);
    }
    Ok(())
}

/// `text` as it may be printed: control characters escaped (`\u{1b}`), the rest as it is.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The first twelve characters of a hash (or of whatever claims to be one), printable.
pub fn short(hash: &str) -> String {
    printable(&hash.chars().take(12).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_lowercase_hex_digits_name_an_object() {
        let good = crate::engine::hash_bytes(b"x");
        assert!(is_object_hash(&good));
        assert!(!is_object_hash("a"));
        assert!(!is_object_hash(&good.to_uppercase()));
        assert!(!is_object_hash(&format!("{good}0")));
        assert!(!is_object_hash(&format!("../{}", &good[3..])));
        assert!(!is_object_hash(&"é".repeat(32)), "64 bytes, not hex");
    }

    #[test]
    fn names_that_leave_their_folder_are_refused() {
        for good in ["summary.csv", "sim_functions/loss_f1.png", "a b.txt", "données.csv"] {
            assert_eq!(check_relative_name(good), Ok(()), "{good}");
        }
        let bad = [
            ("", BadName::Empty),
            ("../../../escaped_evil.sh", BadName::Component),
            ("a/../../b", BadName::Component),
            ("a/./b", BadName::Component),
            ("a//b", BadName::Component),
            ("a/", BadName::Component),
            (".hidden", BadName::Component),
            ("/tmp/evil", BadName::Absolute),
            ("C:evil", BadName::Absolute),
            ("..\\evil", BadName::Absolute),
            ("report\u{1b}[2J.md", BadName::Control),
            ("a\nb", BadName::Control),
            ("a\0b", BadName::Control),
        ];
        for (name, why) in bad {
            assert_eq!(check_relative_name(name), Err(why), "{name:?}");
        }
        assert_eq!(check_relative_name(&"a".repeat(256)), Err(BadName::TooLong));
    }

    #[test]
    fn control_characters_are_escaped_for_printing() {
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable("données"), "données");
        // Twelve characters, never a byte index inside one.
        assert_eq!(short("ééééééééééééééé"), "éééééééééééé");
        assert_eq!(short("a"), "a");
    }
}
