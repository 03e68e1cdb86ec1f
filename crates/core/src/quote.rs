//! Quoting a user's value inside an error message, at most a short prefix of it.
//!
//! A message that echoes a value whole can be as large as the input (a 50 MB `name` once
//! made 52 MB of stderr). Every message that quotes a value goes through [`quote`].

/// The most characters of a value a message shows.
pub const MAX_QUOTED_CHARS: usize = 64;

/// `text` in double quotes, control characters escaped, cut to [`MAX_QUOTED_CHARS`]
/// characters; a cut value ends in `…` and says how long it was.
pub fn quote(text: &str) -> String {
    let mut shown = String::new();
    let mut chars = text.chars();
    for c in chars.by_ref().take(MAX_QUOTED_CHARS) {
        shown.extend(c.escape_debug());
    }
    if chars.next().is_none() {
        format!("\"{shown}\"")
    } else {
        format!("\"{shown}…\" ({} bytes)", text.len())
    }
}

/// A number as a message shows it: as written when short, in scientific notation when its
/// digits would run long (`1e300`, not three hundred digits).
pub fn number(x: f64) -> String {
    let plain = x.to_string();
    if plain.len() <= 24 {
        plain
    } else {
        format!("{x:e}")
    }
}

/// A message from another library, cut to a length that cannot flood a terminal; such
/// messages may quote a value whole.
pub fn clip_message(message: &str) -> String {
    const MAX: usize = 4 * MAX_QUOTED_CHARS;
    match message.char_indices().nth(MAX) {
        None => message.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &message[..end], message.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_value_is_quoted_whole() {
        assert_eq!(quote("hello"), "\"hello\"");
        assert_eq!(quote("a\nb\"c"), r#""a\nb\"c""#);
    }

    #[test]
    fn a_long_value_is_cut_and_its_size_given() {
        let long = "é".repeat(1_000_000);
        let shown = quote(&long);
        assert!(shown.starts_with(&format!("\"{}…\"", "é".repeat(MAX_QUOTED_CHARS))));
        assert!(shown.ends_with("(2000000 bytes)"), "{shown}");
        assert!(shown.len() < 200);
    }

    #[test]
    fn a_huge_number_is_shown_in_scientific_notation() {
        assert_eq!(number(1e300), "1e300");
        assert_eq!(number(-2.5), "-2.5");
        assert_eq!(number(0.001), "0.001");
    }

    #[test]
    fn a_long_message_is_clipped() {
        let long = format!("invalid type: string \"{}\"", "x".repeat(10_000));
        let clipped = clip_message(&long);
        assert!(
            clipped.len() < 400 && clipped.starts_with("invalid type"),
            "{clipped}"
        );
        assert_eq!(clip_message("short"), "short");
    }
}
