//! How deep a definition may nest lists and maps, checked before the YAML parser reads it.
//!
//! libyaml (under serde_yaml) keeps a possible key for every open flow collection (`[`, `{`)
//! and looks at all of them for every token, so text nested 100,000 deep takes minutes to
//! read, even when the definition's first error comes before it. serde_yaml and serde_json
//! refuse more than [`MAX_DEPTH`] levels, but only once the whole text is read (serde_json
//! reads as it goes, so JSON fails at once); YAML is checked here first, in one linear pass.

use yaml_rust2::scanner::{Scanner, Token, TokenType};

/// The most levels of lists and maps in a definition: the recursion limit of serde_json and
/// serde_yaml, so no definition they accept is refused.
pub(crate) const MAX_DEPTH: usize = 128;

/// What is wrong with text nested deeper than [`MAX_DEPTH`].
pub(crate) fn too_deep() -> String {
    format!("nested deeper than {MAX_DEPTH} levels")
}

/// Refuses YAML text with flow collections nested deeper than [`MAX_DEPTH`], with the message
/// and the line and column (from 1) where it goes too deep.
pub(crate) fn check_yaml(text: &str) -> Result<(), (String, usize, usize)> {
    // Text with few brackets cannot nest deeply (most definitions): nothing to scan.
    let brackets = |text: &str| text.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
    if brackets(text) <= MAX_DEPTH {
        return Ok(());
    }
    // yaml-rust2 keeps at most 255 possible keys, so its scanner stays linear.
    let mut scanner = Scanner::new(text.chars());
    let mut depth = 0usize;
    loop {
        match scanner.next_token() {
            Ok(None | Some(Token(_, TokenType::StreamEnd))) => return Ok(()),
            Ok(Some(Token(at, TokenType::FlowSequenceStart | TokenType::FlowMappingStart))) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err((too_deep(), at.line(), at.col() + 1));
                }
            }
            Ok(Some(Token(_, TokenType::FlowSequenceEnd | TokenType::FlowMappingEnd))) => {
                depth = depth.saturating_sub(1);
            }
            Ok(Some(_)) => {}
            Err(e) => {
                let at = e.marker();
                // Its own limit, 255 levels, met while it reads ahead for a key.
                if e.info() == "recursion limit exceeded" {
                    return Err((too_deep(), at.line(), at.col() + 1));
                }
                // Text yaml-rust2 cannot read is left to serde_yaml (its error is the one
                // users know) unless what follows has brackets enough to nest too deep.
                let rest = text.char_indices().nth(at.index()).map_or("", |(i, _)| &text[i..]);
                if depth + brackets(rest) <= MAX_DEPTH {
                    return Ok(());
                }
                let message = format!("cannot check nesting: {}", e.info());
                return Err((message, at.line(), at.col() + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, depth: usize) -> String {
        format!("{}1{}", open.repeat(depth), close.repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_limit_is_left_to_the_parser() {
        assert_eq!(check_yaml(&format!("x: {}", nested("[", "]", MAX_DEPTH))), Ok(()));
        assert_eq!(check_yaml(&format!("x: {}", nested("{a: ", "}", MAX_DEPTH))), Ok(()));
        // Brackets in scalars and comments do not nest.
        let text = format!("a: '{0}'\nb: \"{0}\"\nc: |\n  {0}\n# {0}\nd: x{0}\n", "[".repeat(200));
        assert_eq!(check_yaml(&text), Ok(()));
    }

    #[test]
    fn deeper_nesting_is_refused_where_it_goes_too_deep() {
        let (message, line, column) =
            check_yaml(&format!("id: w\nx: {}", nested("[", "]", 200))).unwrap_err();
        assert_eq!((message.as_str(), line, column), ("nested deeper than 128 levels", 2, 132));
        let (message, line, _) =
            check_yaml(&format!("id: w\nx: {}", nested("[", "]", 100_000))).unwrap_err();
        assert_eq!((message.as_str(), line), ("nested deeper than 128 levels", 2));
        let (message, ..) = check_yaml(&nested("{a: ", "}", 100_000)).unwrap_err();
        assert_eq!(message, "nested deeper than 128 levels");
        // Many shallow collections are fine.
        assert_eq!(check_yaml(&"- [1, {a: 2}]\n".repeat(1000)), Ok(()));
    }

    #[test]
    fn unreadable_text_is_refused_only_if_it_could_nest_too_deep() {
        // A tab where yaml-rust2 expects indentation, and 200 brackets in all.
        assert_eq!(check_yaml(&format!("a:\n\t- {}", "[]".repeat(100))), Ok(()));
        let text = format!("a:\n\t- {}", nested("[", "]", 200));
        assert!(check_yaml(&text).unwrap_err().0.starts_with("cannot check nesting"));
    }
}
