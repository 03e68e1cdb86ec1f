//! The GitHub token: read once from a file (the mounted Secret's key `token`), never shown.
//!
//! [`Token`] has no `Display`, its `Debug` prints `Token(<redacted>)`, and every
//! [`TokenError`] names the file but never its content.

use std::path::{Path, PathBuf};

/// A GitHub token. Cloning is cheap enough; showing it is impossible short of
/// [`Token::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Reads the token from `path`, trimming surrounding whitespace (Secrets created with
    /// `echo` end with a newline).
    pub fn from_file(path: &Path) -> Result<Token, TokenError> {
        let bytes = std::fs::read(path).map_err(|source| TokenError::Read {
            path: path.to_owned(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| TokenError::Malformed {
            path: path.to_owned(),
        })?;
        Token::parse(text.trim()).map_err(|e| match e {
            ParseError::Empty => TokenError::Empty {
                path: path.to_owned(),
            },
            ParseError::Malformed => TokenError::Malformed {
                path: path.to_owned(),
            },
        })
    }

    /// A token from its text, for callers that hold it already; same rules as a file.
    pub fn new(text: &str) -> Result<Token, TokenError> {
        Token::parse(text.trim()).map_err(|e| match e {
            ParseError::Empty => TokenError::Empty {
                path: PathBuf::from("<given>"),
            },
            ParseError::Malformed => TokenError::Malformed {
                path: PathBuf::from("<given>"),
            },
        })
    }

    fn parse(text: &str) -> Result<Token, ParseError> {
        if text.is_empty() {
            return Err(ParseError::Empty);
        }
        // The token goes into an HTTP header; anything but visible ASCII (a space inside,
        // a control character, a second line) means the file is not a token.
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ParseError::Malformed);
        }
        Ok(Token(text.to_owned()))
    }

    /// The token's text, for the one place that puts it into the Authorization header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

enum ParseError {
    Empty,
    Malformed,
}

/// Why no token could be read. The messages name the file, never what is in it.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file could not be read (missing, a directory, no permission).
    #[error("cannot read the GitHub token file {}", path.display())]
    Read {
        /// The token file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file holds nothing but whitespace.
    #[error("the GitHub token file {} is empty", path.display())]
    Empty {
        /// The token file.
        path: PathBuf,
    },
    /// The file holds something that cannot be a token (not UTF-8, whitespace or control
    /// characters inside, more than one line).
    #[error("the GitHub token file {} does not hold a token: expected one line of visible ASCII characters", path.display())]
    Malformed {
        /// The token file.
        path: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_trimmed_and_never_shown_by_debug() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  ghp_sekrit123\n").unwrap();
        let token = Token::from_file(&path).unwrap();
        assert_eq!(token.expose(), "ghp_sekrit123");
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let err = Token::from_file(Path::new("/nonexistent/ghtoken/token")).unwrap_err();
        assert!(matches!(err, TokenError::Read { .. }));
        assert_eq!(
            err.to_string(),
            "cannot read the GitHub token file /nonexistent/ghtoken/token"
        );
    }

    #[test]
    fn empty_and_malformed_files_name_the_path_but_not_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, " \n\t").unwrap();
        let err = Token::from_file(&path).unwrap_err();
        assert!(matches!(err, TokenError::Empty { .. }), "{err:?}");
        assert!(err.to_string().contains(&path.display().to_string()));

        std::fs::write(&path, "ghp_first half\nsecond-line-sekrit\n").unwrap();
        let err = Token::from_file(&path).unwrap_err();
        assert!(matches!(err, TokenError::Malformed { .. }), "{err:?}");
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("sekrit") && !shown.contains("ghp_"),
            "{shown}"
        );
    }
}
