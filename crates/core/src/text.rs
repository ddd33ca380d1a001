//! What text people may send: no control characters.
//!
//! A NUL cannot be stored by PostgreSQL and ends a C string; other control characters
//! forge log lines, break CSV and terminals, and mean nothing in chat. They are refused at
//! every door (the HTTP edge checks bodies, queries, paths and WebSocket frames with this
//! rule) instead of reaching storage, where they came back as "unavailable, try again".

/// Is `c` a control character text may not carry? C0 (U+0000–U+001F) but tab and line
/// breaks, DEL (U+007F) and C1 (U+0080–U+009F).
pub fn forbidden_control(c: char) -> bool {
    matches!(c, '\0'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The first forbidden control character in multi-line text (message bodies, notes).
pub fn control_char(text: &str) -> Option<char> {
    text.chars().find(|c| forbidden_control(*c))
}

/// The first control character in single-line text (names, titles, ids, search terms):
/// line breaks and tabs are refused too.
pub fn line_control_char(text: &str) -> Option<char> {
    text.chars().find(|c| c.is_control())
}

/// `text` without the control characters text may not carry (tab and line breaks stay).
/// For text from machines that cannot be asked to send again (Prometheus Alertmanager
/// does not retry a refused notification): cleaned rather than refused, so the alert is
/// not lost for an escape code in an annotation.
pub fn without_controls(text: &str) -> String {
    text.chars().filter(|c| !forbidden_control(*c)).collect()
}

/// How to name a refused character in an error message.
pub fn describe(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_found_and_ordinary_text_passes() {
        assert_eq!(control_char("a\u{0}b"), Some('\0'));
        assert_eq!(control_char("bell\u{7}"), Some('\u{7}'));
        assert_eq!(control_char("del\u{7f}"), Some('\u{7f}'));
        assert_eq!(control_char("c1\u{85}"), Some('\u{85}'));
        assert_eq!(control_char("two\nlines\r\n\tand a tab"), None);
        assert_eq!(control_char("émoji 🎉, RTL \u{202e}, ZWJ \u{200d}"), None);
        assert_eq!(line_control_char("a\nb"), Some('\n'));
        assert_eq!(line_control_char("Ana María"), None);
        assert_eq!(describe('\0'), "U+0000");
        assert_eq!(without_controls("\u{1b}[31mred\u{1b}[0m\tok\n\u{0}"), "[31mred[0m\tok\n");
    }
}
