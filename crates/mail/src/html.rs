//! An HTML-only mail's body as text for an IM message.
//!
//! Written here rather than mail-parser's `html_to_text`: that one drops every tag alike, so
//! the blocks of a monitoring mail ran together ("Disk alertDisk /var at 98%") and links
//! lost their addresses — the one thing a person acting on an alert needs. This keeps what
//! the layout meant: block boundaries become line breaks (a blank line around paragraphs,
//! headings, lists and tables), list items start with "• ", table cells are separated by
//! " | ", `<pre>` keeps its lines, and a link is "text (url)". Scripts, styles and the
//! document head are dropped. It is not a full HTML parser: mail HTML only has to read well.

/// Elements whose boundaries are line breaks.
#[rustfmt::skip]
const LINE_BLOCKS: &[&str] = &[
    "address", "article", "aside", "body", "center", "dd", "details", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "header", "html", "li", "main", "nav", "section", "summary",
    "tbody", "tfoot", "thead", "tr",
];
/// Elements set apart by a blank line.
const PARAGRAPH_BLOCKS: &[&str] =
    &["blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"];
/// Elements whose content is not text for people.
const HIDDEN: &[&str] = &["head", "noscript", "script", "style", "template", "title"];

/// The text of an HTML document or fragment.
pub fn to_text(html: &str) -> String {
    let mut text = Text::default();
    let mut rest = html;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            text.chars(rest);
            break;
        };
        text.chars(&rest[..lt]);
        rest = markup(&mut text, &rest[lt..]);
    }
    text.finish()
}

/// Read one piece of markup at the start of `s` (which begins with `<`); the rest after it.
fn markup<'a>(text: &mut Text, s: &'a str) -> &'a str {
    if let Some(comment) = s.strip_prefix("<!--") {
        return comment.find("-->").map_or("", |end| &comment[end + 3..]);
    }
    if !starts_tag(s) {
        // A lone "<" (as in "a < b"): text.
        text.chars("<");
        return &s[1..];
    }
    let Some(tag) = Tag::parse(s) else {
        return ""; // a tag cut off at the end
    };
    let rest = &s[tag.len..];
    if tag.name == "script" || tag.name == "style" {
        // Raw text up to the closing tag, which may not be parsed as markup.
        return if tag.closing { rest } else { skip_raw(rest, tag.name) };
    }
    text.tag(&tag);
    rest
}

/// Past `</name` … `>`, case-insensitively (or the end). In one pass: a mail may hold
/// thousands of scripts.
fn skip_raw<'a>(s: &'a str, name: &str) -> &'a str {
    let mut from = 0;
    while let Some(at) = s[from..].find("</") {
        let start = from + at;
        let after = &s.as_bytes()[start + 2..];
        if after.len() >= name.len() && after[..name.len()].eq_ignore_ascii_case(name.as_bytes()) {
            return s[start..].find('>').map_or("", |end| &s[start + end + 1..]);
        }
        from = start + 2;
    }
    ""
}

/// A start or end tag, its lower-case name and the attributes Switchboard reads.
struct Tag {
    name: &'static str,
    closing: bool,
    href: Option<String>,
    /// Bytes, `<` to `>`.
    len: usize,
}

/// Does `s` (which begins with `<`) start a tag, a declaration (`<!DOCTYPE …>`) or a
/// processing instruction (`<?xml …?>`), rather than being a "<" in text?
fn starts_tag(s: &str) -> bool {
    let body = s[1..].strip_prefix('/').unwrap_or(&s[1..]);
    body.starts_with(|c: char| c.is_ascii_alphabetic() || c == '!' || c == '?')
}

impl Tag {
    /// The tag at the start of `s` (see `starts_tag`), or None when it has no end.
    /// Declarations and processing instructions are nameless tags (skipped).
    fn parse(s: &str) -> Option<Tag> {
        let len = tag_end(s)?;
        let inner = &s[1..len - 1];
        let closing = inner.starts_with('/');
        let inner = inner.strip_prefix('/').unwrap_or(inner);
        let name_end = inner.find(|c: char| c.is_ascii_whitespace() || c == '/').unwrap_or(inner.len());
        let name = if inner.starts_with(|c: char| c.is_ascii_alphabetic()) { &inner[..name_end] } else { "" };
        let href =
            (name.eq_ignore_ascii_case("a") && !closing).then(|| attribute(&inner[name_end..], "href")).flatten();
        Some(Tag { name: lower(name), closing, href, len })
    }
}

/// Tag names are matched lower-case; the few Switchboard knows are kept as `'static`.
fn lower(name: &str) -> &'static str {
    LINE_BLOCKS
        .iter()
        .chain(PARAGRAPH_BLOCKS)
        .chain(HIDDEN)
        .chain(&["a", "br", "td", "th"])
        .find(|known| known.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("")
}

/// The length of the tag at the start of `s` up to its `>`. A quoted attribute value may
/// hold `>`; a quote elsewhere (`title=it's`) is an ordinary character.
fn tag_end(s: &str) -> Option<usize> {
    let mut quote = None;
    let mut after_equals = false;
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') if after_equals => quote = Some(c),
            (None, '>') => return Some(i + 1),
            _ => {}
        }
        if !c.is_ascii_whitespace() {
            after_equals = quote.is_none() && c == '=';
        }
    }
    None
}

/// An attribute's value (entities decoded) from a tag's attribute text.
fn attribute(attrs: &str, wanted: &str) -> Option<String> {
    let mut rest = attrs;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '/');
        if rest.is_empty() {
            return None;
        }
        let name_end = rest.find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '/').unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = rest[name_end..].trim_start();
        let mut value = "";
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            let (v, next) = match after.chars().next() {
                Some(q @ ('"' | '\'')) => {
                    let end = after[1..].find(q).map_or(after.len(), |e| e + 1);
                    (&after[1..end], after.get(end + 1..).unwrap_or(""))
                }
                _ => {
                    let end = after.find(|c: char| c.is_ascii_whitespace()).unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            value = v;
            rest = next;
        }
        if name.eq_ignore_ascii_case(wanted) {
            return Some(decode_entities(value).trim().to_string());
        }
    }
}

/// `&amp;`, `&#38;`, `&#x26;` and the other named references, decoded (mail-parser knows
/// the HTML entity table); anything else is kept as written.
fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map(|e| e + 1)
            .filter(|&e| e > 1 && e <= 32 && rest[e..].starts_with(';'));
        match end {
            Some(e) => {
                mail_parser::decoders::html::add_html_token(&mut out, &rest.as_bytes()[..=e], false);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The text being written: whitespace collapsed as a browser would, line breaks asked for
/// by blocks written only once the next text comes (so they never pile up or trail).
#[derive(Default)]
struct Text {
    out: String,
    /// Line breaks owed before the next text (0 to 2).
    breaks: usize,
    space: bool,
    /// Depth of elements whose content is hidden, and of `<pre>`.
    hidden: usize,
    pre: usize,
    /// An open link: its address and where its text starts in `out`.
    link: Option<(String, usize)>,
    /// A cell closed on this line: the next cell's text is set apart.
    cell: bool,
}

impl Text {
    fn chars(&mut self, raw: &str) {
        if self.hidden > 0 || raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw).replace('\u{a0}', " ");
        if self.pre > 0 {
            let lines = decoded.replace("\r\n", "\n").replace('\r', "\n");
            // As in a browser: a line break right after <pre> is not content.
            let lines = lines.strip_prefix('\n').filter(|_| self.at_line_start()).unwrap_or(&lines).to_string();
            if !lines.is_empty() {
                self.word(&lines);
            }
            return;
        }
        for (i, word) in decoded.split(|c: char| c.is_ascii_whitespace()).enumerate() {
            if i > 0 {
                self.space = true;
            }
            if !word.is_empty() {
                self.word(word);
            }
        }
    }

    /// Text, after the breaks or the space owed before it.
    fn word(&mut self, w: &str) {
        if self.out.is_empty() {
            self.breaks = 0;
        } else if self.breaks > 0 {
            self.trim_line_end();
            // Text from <pre> may have ended its line already.
            let have = self.out.len() - self.out.trim_end_matches('\n').len();
            self.out.push_str(&"\n".repeat(self.breaks.saturating_sub(have)));
        } else if self.cell {
            self.trim_line_end();
            self.out.push_str(" | ");
        } else if self.space && !self.out.ends_with([' ', '\n']) {
            self.out.push(' ');
        }
        self.breaks = 0;
        self.space = false;
        self.cell = false;
        self.out.push_str(w);
    }

    fn tag(&mut self, t: &Tag) {
        if t.name == "body" && !t.closing {
            // The head ends here, even when its end tag is missing.
            self.hidden = 0;
        }
        if HIDDEN.contains(&t.name) {
            self.hidden = if t.closing { self.hidden.saturating_sub(1) } else { self.hidden + 1 };
            return;
        }
        match (t.name, t.closing) {
            ("br", _) => self.breaks = (self.breaks + 1).min(2),
            ("a", false) => self.open_link(t.href.clone()),
            ("a", true) => self.close_link(),
            ("li", false) => {
                self.block(1);
                self.word("• ");
            }
            ("td" | "th", true) => self.cell = !self.at_line_start(),
            ("pre", closing) => {
                self.pre = if closing { self.pre.saturating_sub(1) } else { self.pre + 1 };
                self.block(2);
            }
            (name, _) if PARAGRAPH_BLOCKS.contains(&name) => self.block(2),
            (name, _) if LINE_BLOCKS.contains(&name) => self.block(1),
            _ => {}
        }
    }

    /// A block boundary: `n` line breaks (1: a new line, 2: a blank line) before more text.
    fn block(&mut self, n: usize) {
        self.breaks = self.breaks.max(n);
        self.cell = false;
    }

    fn open_link(&mut self, href: Option<String>) {
        self.close_link();
        self.link = href.filter(|h| shown(h)).map(|h| (h, self.out.len()));
    }

    /// "text (url)"; just the url when the link has no text, and no repeat when the text
    /// is the address already.
    fn close_link(&mut self) {
        let Some((href, start)) = self.link.take() else { return };
        // A break before the link's text may have trimmed the line below where it began.
        let label = self.out.get(start..).unwrap_or("").trim();
        let bare = href.strip_prefix("mailto:").unwrap_or(&href);
        if label.is_empty() {
            self.word(&href);
        } else if label != href && label != bare {
            // Right after the text, even when a block inside the link ended there.
            let breaks = std::mem::take(&mut self.breaks);
            self.space = true;
            self.word(&format!("({href})"));
            self.breaks = breaks;
        }
    }

    fn at_line_start(&self) -> bool {
        self.breaks > 0 || self.out.is_empty() || self.out.ends_with('\n')
    }

    fn trim_line_end(&mut self) {
        let kept = self.out.trim_end_matches(' ').len();
        self.out.truncate(kept);
    }

    fn finish(mut self) -> String {
        self.close_link();
        self.out.trim().to_string()
    }
}

/// Addresses worth showing: absolute web, mail and phone links (not `javascript:`, not a
/// page anchor or a path relative to a page the mail does not have).
fn shown(href: &str) -> bool {
    let lower = href.to_ascii_lowercase();
    ["http://", "https://", "mailto:", "tel:", "ftp://"].iter().any(|s| lower.starts_with(s))
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn blocks_become_lines() {
        assert_eq!(
            to_text("<h1>Disk alert</h1><div>Disk /var at 98%</div><div>on db1</div>"),
            "Disk alert\n\nDisk /var at 98%\non db1"
        );
        assert_eq!(to_text("<p>one</p><p>two</p>"), "one\n\ntwo");
        assert_eq!(to_text("a<br>b<BR/>c<br><br>d"), "a\nb\nc\n\nd");
        assert_eq!(to_text("<ul><li>disk</li><li>memory</li></ul>after"), "• disk\n• memory\n\nafter");
        assert_eq!(
            to_text("<table><tr><th>host</th><th>use</th></tr><tr><td>db1</td><td>98%</td></tr></table>"),
            "host | use\ndb1 | 98%"
        );
        assert_eq!(to_text("<DIV\n class=\"x\">upper</DIV >case"), "upper\ncase");
    }

    #[test]
    fn whitespace_collapses_but_pre_keeps_its_lines() {
        assert_eq!(to_text("  Disk\r\n   <b>full</b>\t now  "), "Disk full now");
        assert_eq!(to_text("<p>log:</p><pre>\nline 1\r\n  line 2\n</pre>done"), "log:\n\nline 1\n  line 2\n\ndone");
    }

    #[test]
    fn links_keep_their_address() {
        assert_eq!(
            to_text("See <a href=\"https://grafana.example.com/d/1?a=1&amp;b=2\">the dashboard</a>."),
            "See the dashboard (https://grafana.example.com/d/1?a=1&b=2)."
        );
        assert_eq!(to_text("<a href='https://x.example'>https://x.example</a>"), "https://x.example", "no repeat");
        assert_eq!(to_text("<a href=https://x.example><img src=logo.png></a>"), "https://x.example");
        assert_eq!(to_text("<a href=\"mailto:ops@example.com\">ops@example.com</a>"), "ops@example.com");
        assert_eq!(to_text("<a href=\"javascript:run()\">run</a> <a href=\"#top\">top</a>"), "run top");
        assert_eq!(to_text("<a href=\"https://x.example\">unclosed"), "unclosed (https://x.example)");
        assert_eq!(
            to_text("<ul><li><a href=\"https://x.example\"><div>in a block</div></a></li></ul>"),
            "•\nin a block (https://x.example)"
        );
    }

    #[test]
    fn scripts_styles_comments_and_entities() {
        let html = "<!DOCTYPE html><html><head><title>T</title><style>p { x: '<b>' }</style></head>\
                    <body><!-- <p>hidden</p> --><p>Disk <b>full</b> &amp; &lt;hot&gt;&nbsp;&#8212; &#x263A; &bogus; a < b\
                    <script>if (a < b) { document.write('</p>') }</script></p></body></html>";
        assert_eq!(to_text(html), "Disk full & <hot> — ☺ &bogus; a < b");
        assert_eq!(to_text("<SCRIPT>x</SCRIPT>after"), "after");
        assert_eq!(to_text("<p>cut <b"), "cut");
    }

    /// A hostile mail (many scripts, unclosed tags and quotes) costs one pass, not one per
    /// element.
    #[test]
    fn hostile_markup_is_read_in_linear_time() {
        let started = std::time::Instant::now();
        let scripts = "<script>x</script>a".repeat(50_000);
        assert_eq!(to_text(&scripts).len(), 50_000);
        assert_eq!(to_text(&format!("ok<p title=\"{}", "<b>".repeat(100_000))), "ok");
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
