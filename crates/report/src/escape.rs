//! Escaping of strings that come from the result document (names, URLs, reasons), one
//! function per output language.

/// For a terminal: control characters (an escape sequence in an experiment name could
/// rewrite the screen) become U+FFFD, and line breaks become spaces so one value stays on one
/// line of a table.
pub(crate) fn text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// For html: handlebars' escaping of `<>&"'` and friends, after control characters other
/// than line breaks and tabs (which html forbids in text) become U+FFFD.
pub(crate) fn html(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    handlebars::html_escape(&clean)
}

/// For GitHub-flavoured markdown, inline and inside table cells: every character that could
/// start markup here (emphasis, code, html, a link, an entity, a table pipe) is
/// backslash-escaped, so a name or a reason always reads as the literal text it is. Characters
/// that cannot start markup in that position stay as they are, so the raw pull request body
/// stays readable (`<= 50`, `[1.2, 3.4]`). Line breaks become spaces: one would end a table
/// row or start a new block.
pub(crate) fn markdown(s: &str) -> String {
    let chars: Vec<char> = text(s).chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let next = chars.get(i + 1).copied();
        let starts_markup = match c {
            '\\' | '`' | '*' | '_' | '~' | '|' => true,
            // An html tag, comment or autolink needs a letter, `/`, `!` or `?` right after `<`.
            '<' => next.is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?')),
            // `](` or `][` is what turns brackets into a link or an image.
            ']' => matches!(next, Some('(' | '[')),
            // An entity or character reference.
            '&' => next.is_some_and(|n| n.is_ascii_alphanumeric() || n == '#'),
            _ => false,
        };
        if starts_markup {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A markdown code fence longer than any run of backticks in `content`, so the content can
/// never close it early.
pub(crate) fn fence_for(content: &str) -> String {
    let longest = content.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_removes_terminal_control() {
        assert_eq!(text("a\x1b[2Jb\nc"), "a\u{FFFD}[2Jb c");
    }

    #[test]
    fn html_escapes_markup_and_control_characters() {
        assert_eq!(
            html("<b a='1'>\x1b\n"),
            "&lt;b a&#x3D;&#x27;1&#x27;&gt;\u{FFFD}\n"
        );
    }

    #[test]
    fn markdown_neutralises_markup() {
        assert_eq!(markdown("a|b"), "a\\|b");
        assert_eq!(
            markdown("<script>*x*</script>"),
            "\\<script>\\*x\\*\\</script>"
        );
        assert_eq!(
            markdown("[a](javascript:x) &amp;"),
            "[a\\](javascript:x) \\&amp;"
        );
        assert_eq!(markdown("<= 50 [1.2, 3.4] a & b"), "<= 50 [1.2, 3.4] a & b");
        assert_eq!(markdown("line\nbreak"), "line break");
        assert_eq!(markdown("http/latency-p95"), "http/latency-p95");
    }

    #[test]
    fn fence_outlasts_backticks() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("a ```` b"), "`````");
    }
}
