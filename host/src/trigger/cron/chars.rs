//! The characters a cron expression is made of, and a named refusal for
//! any other.
//!
//! Cron syntax is ASCII: digits, month and weekday names, `*`, `,`, `-`,
//! `/`, `@`, and only the ASCII space and tab between fields (cronie splits
//! on those two). Expressions copied from a web page or a chat often carry a
//! no-break space, an em space, an en dash or an invisible zero-width
//! character; Rust's `split_whitespace` would treat the Unicode spaces as
//! separators and the rest would surface as a baffling "not a number" on
//! text that looks right. Every such character is refused here, by code
//! point, name and position, with what to type instead.

use super::CronError;

/// What ends may be trimmed: ASCII blanks and a line ending (a shell's
/// `$(cat file)` or a YAML block leaves one). Unicode spaces are not
/// trimmed: a pasted one at either end is refused like one inside.
const TRIMMED: [char; 4] = [' ', '\t', '\n', '\r'];

/// `expr` without leading and trailing ASCII blanks and line endings.
pub(super) fn trim(expr: &str) -> &str {
    expr.trim_matches(TRIMMED)
}

/// Whether `c` separates fields: the ASCII space and tab only.
pub(super) fn is_separator(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Refuses the first character of `expr` that is not cron syntax.
///
/// # Errors
/// [`CronError::BadCharacter`] with its 1-based character position in
/// `expr` as given (before trimming), its code point and name, and a hint.
pub(super) fn check(expr: &str) -> Result<(), CronError> {
    let body = trim(expr);
    // Positions count from the start of the text as the user gave it.
    let lead = expr.len() - expr.trim_start_matches(TRIMMED).len();
    let before = expr.get(..lead).map_or(0, |s| s.chars().count());
    for (i, c) in body.chars().enumerate() {
        if c.is_ascii_graphic() || is_separator(c) {
            continue;
        }
        let (name, hint) = describe(c);
        let character = match name {
            Some(name) => format!("U+{:04X} {name}", u32::from(c)),
            None => format!("U+{:04X}", u32::from(c)),
        };
        return Err(CronError::BadCharacter {
            position: before + i + 1,
            character,
            hint,
        });
    }
    Ok(())
}

/// The name of `c` where it is one people paste by accident, and what to
/// write instead.
fn describe(c: char) -> (Option<&'static str>, String) {
    const SPACE: &str = "only a plain space or tab separates fields: replace it with a plain space";
    const INVISIBLE: &str = "it is invisible (usually pasted from a web page or chat): delete it and retype the expression around it";
    let named = |name: &'static str, hint: &str| (Some(name), hint.to_owned());
    match c {
        '\n' => named(
            "LINE FEED",
            "an expression is one line: replace it with a plain space",
        ),
        '\r' => named(
            "CARRIAGE RETURN",
            "an expression is one line: replace it with a plain space",
        ),
        '\u{0B}' => named("LINE TABULATION", SPACE),
        '\u{0C}' => named("FORM FEED", SPACE),
        '\u{85}' => named("NEXT LINE", SPACE),
        '\u{A0}' => named("NO-BREAK SPACE", SPACE),
        '\u{1680}' => named("OGHAM SPACE MARK", SPACE),
        '\u{2000}' => named("EN QUAD", SPACE),
        '\u{2001}' => named("EM QUAD", SPACE),
        '\u{2002}' => named("EN SPACE", SPACE),
        '\u{2003}' => named("EM SPACE", SPACE),
        '\u{2004}' => named("THREE-PER-EM SPACE", SPACE),
        '\u{2005}' => named("FOUR-PER-EM SPACE", SPACE),
        '\u{2006}' => named("SIX-PER-EM SPACE", SPACE),
        '\u{2007}' => named("FIGURE SPACE", SPACE),
        '\u{2008}' => named("PUNCTUATION SPACE", SPACE),
        '\u{2009}' => named("THIN SPACE", SPACE),
        '\u{200A}' => named("HAIR SPACE", SPACE),
        '\u{2028}' => named("LINE SEPARATOR", SPACE),
        '\u{2029}' => named("PARAGRAPH SEPARATOR", SPACE),
        '\u{202F}' => named("NARROW NO-BREAK SPACE", SPACE),
        '\u{205F}' => named("MEDIUM MATHEMATICAL SPACE", SPACE),
        '\u{3000}' => named("IDEOGRAPHIC SPACE", SPACE),
        '\u{AD}' => named("SOFT HYPHEN", INVISIBLE),
        '\u{180E}' => named("MONGOLIAN VOWEL SEPARATOR", INVISIBLE),
        '\u{200B}' => named("ZERO WIDTH SPACE", INVISIBLE),
        '\u{200C}' => named("ZERO WIDTH NON-JOINER", INVISIBLE),
        '\u{200D}' => named("ZERO WIDTH JOINER", INVISIBLE),
        '\u{2060}' => named("WORD JOINER", INVISIBLE),
        '\u{FEFF}' => named("ZERO WIDTH NO-BREAK SPACE", INVISIBLE),
        '\u{2010}' => named("HYPHEN", "write the ASCII hyphen-minus '-' for a range"),
        '\u{2011}' => named(
            "NON-BREAKING HYPHEN",
            "write the ASCII hyphen-minus '-' for a range",
        ),
        '\u{2012}' => named(
            "FIGURE DASH",
            "write the ASCII hyphen-minus '-' for a range",
        ),
        '\u{2013}' => named("EN DASH", "write the ASCII hyphen-minus '-' for a range"),
        '\u{2014}' => named("EM DASH", "write the ASCII hyphen-minus '-' for a range"),
        '\u{2015}' => named(
            "HORIZONTAL BAR",
            "write the ASCII hyphen-minus '-' for a range",
        ),
        '\u{2212}' => named("MINUS SIGN", "write the ASCII hyphen-minus '-' for a range"),
        '\u{2217}' => named("ASTERISK OPERATOR", "write the ASCII '*'"),
        '\u{2044}' => named("FRACTION SLASH", "write the ASCII '/' for a step"),
        '\u{2215}' => named("DIVISION SLASH", "write the ASCII '/' for a step"),
        '\u{3001}' => named("IDEOGRAPHIC COMMA", "write the ASCII ',' for a list"),
        // Full-width forms of ASCII (what an East Asian input method types)
        // sit at a fixed offset from the character they look like.
        '\u{FF01}'..='\u{FF5E}' => {
            let ascii = char::from_u32(u32::from(c) - 0xFEE0).unwrap_or('?');
            (
                Some("FULLWIDTH FORM"),
                format!("it is a full-width '{ascii}': write the ASCII '{ascii}'"),
            )
        }
        c if c.is_whitespace() => (None, SPACE.to_owned()),
        c if c.is_control() => (
            None,
            "a control character has no place in an expression: delete it".to_owned(),
        ),
        _ => (
            None,
            "cron expressions are ASCII (digits, month and weekday names, '*', ',', '-', '/'): \
             retype it"
                .to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;

    fn refusal(expr: &str) -> String {
        parse(expr).expect_err(expr).to_string()
    }

    #[test]
    fn unicode_spaces_are_refused_by_name_and_position() {
        let cases = [
            ("0\u{A0}9 * * *", "character 2 is U+00A0 NO-BREAK SPACE"),
            ("0 9\u{2003}* * *", "character 4 is U+2003 EM SPACE"),
            (
                "0 9 * *\u{3000}1",
                "character 8 is U+3000 IDEOGRAPHIC SPACE",
            ),
            (
                "0 9 *\u{202F}* *",
                "character 6 is U+202F NARROW NO-BREAK SPACE",
            ),
            ("0 9 *\u{2009}* *", "character 6 is U+2009 THIN SPACE"),
            ("0 9 * * *\u{A0}", "character 10 is U+00A0 NO-BREAK SPACE"),
            ("\u{A0}0 9 * * *", "character 1 is U+00A0 NO-BREAK SPACE"),
            ("0 9\n* * *", "character 4 is U+000A LINE FEED"),
            (
                "0 9 * * *\u{1680}",
                "character 10 is U+1680 OGHAM SPACE MARK",
            ),
        ];
        for (expr, expected) in cases {
            let err = refusal(expr);
            assert!(err.contains(expected), "{expr:?}: {err}");
            assert!(
                err.contains("replace it with a plain space"),
                "{expr:?}: {err}"
            );
        }
    }

    #[test]
    fn positions_count_characters_from_the_text_as_given() {
        // Leading ASCII blanks are trimmed but still counted; a multi-byte
        // character before the bad one counts once.
        let err = refusal("  0 9 * *\u{A0}mon");
        assert!(err.contains("character 10 is U+00A0"), "{err}");
        let err = refusal("0 9 * * mon\u{2013}fri\u{A0}");
        assert!(err.contains("character 12 is U+2013 EN DASH"), "{err}");
    }

    #[test]
    fn lookalikes_and_invisibles_say_what_to_type() {
        let cases = [
            ("0 9 * * 1\u{2013}5", "U+2013 EN DASH", "hyphen-minus '-'"),
            ("0\u{200B} 9 * * *", "U+200B ZERO WIDTH SPACE", "invisible"),
            (
                "\u{FEFF}0 9 * * *",
                "U+FEFF ZERO WIDTH NO-BREAK SPACE",
                "delete it",
            ),
            (
                "\u{FF0A}/5 * * * *",
                "U+FF0A FULLWIDTH FORM",
                "write the ASCII '*'",
            ),
            ("0 9 * * l\u{FC}n", "character 10 is U+00FC", "ASCII"),
            ("0 9 * * 1\u{1B}", "U+001B", "control character"),
        ];
        for (expr, character, hint) in cases {
            let err = refusal(expr);
            assert!(err.contains(character), "{expr:?}: {err}");
            assert!(err.contains(hint), "{expr:?}: {err}");
        }
    }

    #[test]
    fn ascii_blanks_still_separate_and_line_endings_trim() {
        let plain = parse("0 9 * * mon").unwrap();
        for expr in [
            "0\t9 * * mon",
            "0  9\t\t* *   mon",
            "  0 9 * * mon\n",
            "0 9 * * mon\r\n",
        ] {
            assert_eq!(parse(expr).unwrap(), plain, "{expr:?}");
        }
    }
}
