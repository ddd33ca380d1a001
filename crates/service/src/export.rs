//! E-discovery exports of archived conversations.
//!
//! Pure functions, no I/O: the caller loads each conversation's archive records (oldest
//! first) and writes the text these return wherever it wants. The formats:
//!
//! - [`to_eml`]: one RFC 5322 message per conversation whose body is a plain-text transcript
//!   (UTF-8, quoted-printable, CRLF line endings, no line longer than 76 characters).
//! - [`to_mbox`]: those messages as one mboxrd mailbox.
//! - [`to_jsonl`]: one JSON object per record.
//! - [`to_csv`]: RFC 4180, one row per record, guarded against spreadsheet formula injection.
//! - [`to_actiance_xml`]: the Actiance (Smarsh) IM archive XML that review platforms import.
//!
//! Text typed by users is never trusted: header fields get no control characters (so no
//! header injection), non-ASCII header text is carried in RFC 2047 encoded-words, XML text
//! is escaped and stripped of what XML 1.0 cannot carry.

use base64::Engine;
use sb_core::Millis;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;

/// One archived record of a conversation, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    /// Archive record id.
    pub id: i64,
    pub ts: Millis,
    /// `message`, `created`, `joined`, `left`, `disclaimer`, `wall.blocked`, `queue.assigned`, …
    pub kind: String,
    /// Sender address, `None` for system records.
    pub actor: Option<String>,
    /// Display name when known.
    pub actor_name: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConversation {
    pub id: i64,
    /// `direct`, `group`, `queue`.
    pub kind: String,
    /// May be empty.
    pub title: String,
    /// (address, display name)
    pub participants: Vec<(String, String)>,
    pub records: Vec<ExportRecord>,
}

/// The longest line a message may have (RFC 2045 for quoted-printable; headers follow suit).
const MAX_LINE: usize = 76;
/// UTF-8 bytes per RFC 2047 encoded-word: 36 bytes make 48 base64 characters, so a word is
/// 60 characters long, well under the 75 allowed, and fits a header line with its name.
const ENCODED_WORD_BYTES: usize = 36;
/// Continuation lines of a multi-line record in the transcript are indented, so no line a
/// user typed can pass for a record of its own (or for an mbox `From ` line).
const CONTINUATION: &str = "    ";
/// `LoginName` of records without an actor in the Actiance XML.
const SYSTEM_LOGIN: &str = "system";

/// One RFC 5322 message for one conversation: From (the first participant, else the first
/// sender), To (the other participants), Date (the first record), Subject, Message-ID
/// `<conversation-<id>@<domain>>`, and a quoted-printable UTF-8 transcript with one line
/// per record (continuation lines of multi-line records indented by four spaces):
///
/// ```text
/// [2026-11-26 14:03:05 UTC] Alice Anderson <alice@example.com>: text
/// [2026-11-26 14:03:06 UTC] (disclaimer) text
/// [2026-11-26 14:03:07 UTC] bob@example.com joined
/// ```
pub fn to_eml(c: &ExportConversation, domain: &str) -> String {
    let domain = clean_domain(domain);
    let transcript = transcript(c);
    let mut out = String::with_capacity(1024 + transcript.len() * 3 / 2);

    let mut participants = c.participants.iter().map(|(address, name)| (address.clone(), name.clone()));
    let from = participants
        .next()
        .or_else(|| {
            c.records
                .iter()
                .find_map(|r| r.actor.as_ref().map(|a| (a.clone(), r.actor_name.clone().unwrap_or_default())))
        })
        .unwrap_or_else(|| (format!("switchboard@{domain}"), "Switchboard".to_string()));
    let to: Vec<(String, String)> = participants.collect();

    push_header(&mut out, "From", &mailbox_tokens(&from.0, &from.1));
    if to.is_empty() {
        push_header(&mut out, "To", &["undisclosed-recipients:;".to_string()]);
    } else {
        let mut tokens = Vec::new();
        for (i, (address, name)) in to.iter().enumerate() {
            let mut mailbox = mailbox_tokens(address, name);
            if i + 1 < to.len() {
                if let Some(last) = mailbox.last_mut() {
                    last.push(',');
                }
            }
            tokens.append(&mut mailbox);
        }
        push_header(&mut out, "To", &tokens);
    }
    push_header(&mut out, "Subject", &unstructured_tokens(&subject(c)));
    push_header(&mut out, "Date", &[rfc5322_date(first_ts(c))]);
    push_header(&mut out, "Message-ID", &[format!("<conversation-{}@{domain}>", c.id)]);
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
    let _ = write!(out, "X-Switchboard-Conversation: {}\r\n", c.id);
    out.push_str("\r\n");
    out.push_str(&quoted_printable(&transcript));
    out
}

/// Several conversations as one mboxrd mailbox, one message ([`to_eml`]) per conversation,
/// each after a `From switchboard@<domain> <asctime date>` line and followed by a blank
/// line. Lines starting with `>*From ` get one more `>`.
pub fn to_mbox(cs: &[ExportConversation], domain: &str) -> String {
    let domain = clean_domain(domain);
    let mut out = String::new();
    for c in cs {
        let _ = write!(out, "From switchboard@{domain} {}\r\n", asctime(first_ts(c)));
        push_mboxrd(&mut out, &to_eml(c, &domain));
    }
    out
}

/// JSON lines: one object per record, with its conversation's id, kind, title and
/// participants' addresses, and the time both as `ts` (ms) and `time` (RFC 3339, UTC).
pub fn to_jsonl(cs: &[ExportConversation]) -> String {
    let mut out = String::new();
    for c in cs {
        let participants: Vec<&str> = c.participants.iter().map(|(address, _)| address.as_str()).collect();
        for r in &c.records {
            let line = JsonLine {
                conversation: c.id,
                conversation_kind: &c.kind,
                title: &c.title,
                id: r.id,
                ts: r.ts,
                time: rfc3339(r.ts),
                kind: &r.kind,
                actor: r.actor.as_deref(),
                actor_name: r.actor_name.as_deref(),
                body: &r.body,
                participants: &participants,
            };
            out.push_str(&serde_json::to_string(&line).expect("strings and numbers always serialise"));
            out.push('\n');
        }
    }
    out
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    conversation: i64,
    conversation_kind: &'a str,
    title: &'a str,
    id: i64,
    ts: Millis,
    time: String,
    kind: &'a str,
    actor: Option<&'a str>,
    actor_name: Option<&'a str>,
    body: &'a str,
    participants: &'a [&'a str],
}

/// CSV (RFC 4180: CRLF, a header row, fields holding a comma, quote, CR or LF quoted, quotes
/// doubled), one row per record. A text field starting with `=`, `+`, `-`, `@`, tab or CR
/// gets a leading apostrophe so spreadsheets show it rather than run it as a formula.
pub fn to_csv(cs: &[ExportConversation]) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(Vec::new());
    let header =
        ["conversation", "conversation_kind", "title", "record", "time", "kind", "actor", "actor_name", "body"];
    // Writing to memory fails only on a bug in the csv crate; an empty export says so loudly.
    let mut write = |row: &[std::borrow::Cow<'_, str>]| {
        if let Err(e) = w.write_record(row.iter().map(|f| f.as_bytes())) {
            tracing::error!(error = %e, "cannot write a CSV row");
        }
    };
    write(&header.map(std::borrow::Cow::Borrowed));
    for c in cs {
        let conversation = c.id.to_string();
        for r in &c.records {
            // Text a user or an operator could have chosen is guarded; ids and times are ours.
            write(&[
                conversation.as_str().into(),
                guard(&c.kind),
                guard(&c.title),
                r.id.to_string().into(),
                rfc3339(r.ts).into(),
                guard(&r.kind),
                guard(r.actor.as_deref().unwrap_or("")),
                guard(r.actor_name.as_deref().unwrap_or("")),
                guard(&r.body),
            ]);
        }
    }
    let bytes = w.into_inner().unwrap_or_default();
    String::from_utf8(bytes).unwrap_or_default()
}

/// A text field starting with `=`, `+`, `-`, `@`, tab or CR gets a leading apostrophe, so
/// spreadsheets show it rather than run it as a formula.
fn guard(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}").into()
    } else {
        value.into()
    }
}

/// Actiance-style XML, as Actiance Vantage and Smarsh import IM archives:
///
/// ```text
/// <FileDump>
///   <Conversation Perspective="Switchboard">
///     <RoomID>group-42</RoomID>
///     <StartTimeUTC>unix seconds</StartTimeUTC>
///     <ParticipantEntered>LoginName, DateTimeUTC, InternalFlag, ConversationID, CorporateEmailID</ParticipantEntered>
///     <Message><LoginName/><DateTimeUTC/><Content/></Message>
///     <ParticipantLeft>…</ParticipantLeft>
///     <EndTimeUTC>unix seconds</EndTimeUTC>
///   </Conversation>
/// </FileDump>
/// ```
///
/// Everyone present from the start (participants and senders whose first record is not
/// their `joined`) enters at the start time; `joined` and `left` records enter and leave
/// people as they happen; whoever is still present leaves at the end time, as the format
/// wants. Every other record is a `Message`: a user's message is its body, anything else is
/// `(kind) body`, and records without an actor have the `LoginName` `system`.
pub fn to_actiance_xml(cs: &[ExportConversation]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<FileDump>\n");
    for c in cs {
        let start = first_ts(c).div_euclid(1000);
        let end = last_ts(c).div_euclid(1000);
        out.push_str("  <Conversation Perspective=\"Switchboard\">\n    <RoomID>");
        push_xml_text(&mut out, &format!("{}-{}", c.kind, c.id));
        out.push_str("</RoomID>\n");
        let _ = writeln!(out, "    <StartTimeUTC>{start}</StartTimeUTC>");

        let mut first_kind: HashMap<&str, &str> = HashMap::new();
        for r in &c.records {
            if let Some(actor) = r.actor.as_deref() {
                first_kind.entry(actor).or_insert(r.kind.as_str());
            }
        }
        let mut present: Vec<&str> = Vec::new();
        let mut seen: HashSet<&str> = HashSet::new();
        let everyone = c
            .participants
            .iter()
            .map(|(address, _)| address.as_str())
            .chain(c.records.iter().filter_map(|r| r.actor.as_deref()));
        for address in everyone {
            if seen.insert(address) && first_kind.get(address).copied() != Some("joined") {
                present.push(address);
            }
        }
        for &address in &present {
            push_participant(&mut out, "ParticipantEntered", address, start, c.id);
        }

        for r in &c.records {
            let secs = r.ts.div_euclid(1000);
            match (r.kind.as_str(), r.actor.as_deref()) {
                ("joined", Some(actor)) => {
                    push_participant(&mut out, "ParticipantEntered", actor, secs, c.id);
                    if !present.contains(&actor) {
                        present.push(actor);
                    }
                }
                ("left", Some(actor)) => {
                    push_participant(&mut out, "ParticipantLeft", actor, secs, c.id);
                    present.retain(|p| *p != actor);
                }
                (kind, actor) => {
                    let content = if kind == "message" && actor.is_some() {
                        r.body.clone()
                    } else if r.body.is_empty() {
                        format!("({kind})")
                    } else {
                        format!("({kind}) {}", r.body)
                    };
                    out.push_str("    <Message>\n      <LoginName>");
                    push_xml_text(&mut out, actor.unwrap_or(SYSTEM_LOGIN));
                    let _ = write!(out, "</LoginName>\n      <DateTimeUTC>{secs}</DateTimeUTC>\n      <Content>");
                    push_xml_text(&mut out, &content);
                    out.push_str("</Content>\n    </Message>\n");
                }
            }
        }

        for &address in &present {
            push_participant(&mut out, "ParticipantLeft", address, end, c.id);
        }
        let _ = writeln!(out, "    <EndTimeUTC>{end}</EndTimeUTC>");
        out.push_str("  </Conversation>\n");
    }
    out.push_str("</FileDump>\n");
    out
}

// ---------------------------------------------------------------------------------------
// The transcript

fn transcript(c: &ExportConversation) -> String {
    let mut out = String::new();
    for (i, r) in c.records.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        push_transcript_entry(&mut out, r);
    }
    out
}

/// `[time] who: body` for messages, `[time] who joined` / `left`, `[time] (kind) who: body`
/// for other records with an actor, `[time] (kind) body` for system records. Further lines
/// of the body are indented by [`CONTINUATION`].
fn push_transcript_entry(out: &mut String, r: &ExportRecord) {
    let kind = one_line(&r.kind);
    let (head, separator) = match (r.kind.as_str(), who(r)) {
        ("message", Some(who)) => (format!("{who}:"), " "),
        ("joined" | "left", Some(who)) => (format!("{who} {kind}"), ": "),
        (_, Some(who)) => (format!("({kind}) {who}"), ": "),
        (_, None) => (format!("({kind})"), " "),
    };
    let _ = write!(out, "[{}] {head}", transcript_time(r.ts));
    if r.body.is_empty() {
        return;
    }
    let body = r.body.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = body.split('\n');
    if let Some(first) = lines.next() {
        out.push_str(separator);
        out.push_str(first);
    }
    for line in lines {
        out.push('\n');
        out.push_str(CONTINUATION);
        out.push_str(line);
    }
}

/// `Name <address>`, the address, or the name, whichever is known.
fn who(r: &ExportRecord) -> Option<String> {
    let name = r.actor_name.as_deref().map(one_line);
    let name = name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    match (r.actor.as_deref(), name) {
        (Some(address), Some(name)) => Some(format!("{name} <{}>", one_line(address))),
        (Some(address), None) => Some(one_line(address)),
        (None, Some(name)) => Some(name.to_string()),
        (None, None) => None,
    }
}

/// Control characters (CR, LF and tab included) become spaces.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

// ---------------------------------------------------------------------------------------
// RFC 5322 / 2045 / 2047

/// `Name: token token …`, folded (CRLF and a space) before a token that would take the line
/// past [`MAX_LINE`]. A single token longer than that is left whole.
fn push_header(out: &mut String, name: &str, tokens: &[String]) {
    out.push_str(name);
    out.push(':');
    let mut line = name.len() + 1;
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 && line + 1 + token.len() > MAX_LINE {
            out.push_str("\r\n");
            line = 0;
        }
        out.push(' ');
        out.push_str(token);
        line += 1 + token.len();
    }
    out.push_str("\r\n");
}

/// `"Display Name" <address>` as header tokens. Names that are not plain ASCII (or hold a
/// backslash, an `=?` that a parser could take for an encoded-word, or are very long) are
/// carried in RFC 2047 encoded-words instead of a quoted string.
fn mailbox_tokens(address: &str, name: &str) -> Vec<String> {
    let name = one_line(name);
    let name = name.trim();
    let mut tokens = if name.is_empty() {
        Vec::new()
    } else if !name.is_ascii() || name.contains("=?") || name.contains('\\') || name.len() > 60 {
        encoded_words(name)
    } else {
        vec![format!("\"{}\"", name.replace('"', "\\\""))]
    };
    tokens.push(format!("<{}>", clean_address(address)));
    tokens
}

/// Unstructured header text (Subject) as tokens: plain words when the text is plain ASCII
/// that survives folding and unfolding unchanged, encoded-words otherwise.
fn unstructured_tokens(text: &str) -> Vec<String> {
    let plain = text.is_ascii()
        && !text.contains("=?")
        && !text.contains("  ")
        && text.trim() == text
        && text.split(' ').all(|word| word.len() <= 60);
    if plain {
        text.split(' ').filter(|word| !word.is_empty()).map(str::to_string).collect()
    } else {
        encoded_words(text)
    }
}

/// RFC 2047 `=?UTF-8?B?…?=` words, each holding whole characters and at most
/// [`ENCODED_WORD_BYTES`] bytes of text. Whitespace between adjacent encoded-words is not
/// part of the text, so the words may be folded freely.
fn encoded_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let next = i + c.len_utf8();
        if next - start > ENCODED_WORD_BYTES {
            words.push(encoded_word(&text[start..end]));
            start = end;
        }
        end = next;
    }
    if end > start {
        words.push(encoded_word(&text[start..end]));
    }
    words
}

fn encoded_word(text: &str) -> String {
    format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
}

/// The Subject: `Switchboard <kind> conversation <id>: <title or participants>`.
fn subject(c: &ExportConversation) -> String {
    let about = if c.title.trim().is_empty() {
        c.participants.iter().map(|(address, _)| address.as_str()).collect::<Vec<_>>().join(", ")
    } else {
        c.title.clone()
    };
    let head = format!("Switchboard {} conversation {}", c.kind, c.id);
    let subject = if about.is_empty() { head } else { format!("{head}: {about}") };
    one_line(&subject)
}

/// What may stand in a header's `<address>`: Switchboard addresses are letters, digits and
/// `. _ - + @`, so anything else (brackets, quotes, spaces, line breaks) is dropped.
fn clean_address(address: &str) -> String {
    let cleaned: String =
        address.chars().filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '@')).collect();
    if cleaned.is_empty() {
        "unknown@invalid".to_string()
    } else {
        cleaned
    }
}

fn clean_domain(domain: &str) -> String {
    let cleaned: String = domain.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')).collect();
    if cleaned.is_empty() {
        "localhost".to_string()
    } else {
        cleaned
    }
}

/// Quoted-printable (RFC 2045 §6.7) of text whose lines are separated by LF: printable ASCII
/// other than `=` stays as it is, a space stays unless it ends a line, everything else
/// (tabs, control characters, every byte of non-ASCII characters) becomes `=XX`. Lines end
/// in CRLF; longer lines are broken with soft line breaks (`=` CRLF) so that no line passes
/// [`MAX_LINE`] characters.
fn quoted_printable(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::with_capacity(text.len() * 3 / 2);
    for line in text.split('\n') {
        let bytes = line.as_bytes();
        let mut width = 0;
        for (i, &b) in bytes.iter().enumerate() {
            let literal = matches!(b, b'!'..=b'<' | b'>'..=b'~') || (b == b' ' && i + 1 < bytes.len());
            let len = if literal { 1 } else { 3 };
            // Leave room for the `=` of a soft line break.
            if width + len > MAX_LINE - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            if literal {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "={b:02X}");
            }
            width += len;
        }
        out.push_str("\r\n");
    }
    out
}

/// One message of an mboxrd mailbox, after its `From ` line: a line starting with `From `,
/// `>From `, `>>From `, … gets one more `>`, and a blank line ends the message.
fn push_mboxrd(out: &mut String, message: &str) {
    for line in message.split_inclusive('\n') {
        if line.trim_start_matches('>').starts_with("From ") {
            out.push('>');
        }
        out.push_str(line);
    }
    if !message.ends_with('\n') {
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
}

// ---------------------------------------------------------------------------------------
// XML

/// Escapes `& < > " '`, writes CR as a character reference (a literal one would be read
/// back as LF), and drops what XML 1.0 cannot carry: control characters other than tab,
/// LF and CR, and U+FFFE and U+FFFF.
fn push_xml_text(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
}

fn push_participant(out: &mut String, tag: &str, login: &str, secs: i64, conversation: i64) {
    let _ = write!(out, "    <{tag}>\n      <LoginName>");
    push_xml_text(out, login);
    let _ = write!(
        out,
        "</LoginName>\n      <DateTimeUTC>{secs}</DateTimeUTC>\n      <InternalFlag>true</InternalFlag>\n      \
         <ConversationID>{conversation}</ConversationID>\n      <CorporateEmailID>"
    );
    push_xml_text(out, login);
    let _ = write!(out, "</CorporateEmailID>\n    </{tag}>\n");
}

// ---------------------------------------------------------------------------------------
// Time

fn first_ts(c: &ExportConversation) -> Millis {
    c.records.iter().map(|r| r.ts).min().unwrap_or(0)
}

fn last_ts(c: &ExportConversation) -> Millis {
    c.records.iter().map(|r| r.ts).max().unwrap_or(0)
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// A moment as a UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    /// 1 to 12.
    month: u32,
    /// 1 to 31.
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    milli: u32,
    /// 0 is Sunday.
    weekday: usize,
}

impl Civil {
    fn from_millis(ms: Millis) -> Self {
        let secs = ms.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (of_day / 3600) as u32,
            minute: (of_day % 3600 / 60) as u32,
            second: (of_day % 60) as u32,
            milli: ms.rem_euclid(1000) as u32,
            // 1970-01-01 was a Thursday.
            weekday: (days + 4).rem_euclid(7) as usize,
        }
    }

    fn month_name(&self) -> &'static str {
        MONTHS[(self.month as usize).clamp(1, 12) - 1]
    }

    fn weekday_name(&self) -> &'static str {
        WEEKDAYS[self.weekday % 7]
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = (if z >= 0 { z } else { z - 146_096 }) / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March first
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-11-26 14:03:05 UTC`, the transcript's clock.
fn transcript_time(ms: Millis) -> String {
    let t = Civil::from_millis(ms);
    format!("{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC", t.year, t.month, t.day, t.hour, t.minute, t.second)
}

/// RFC 3339 in UTC, with milliseconds: `2026-11-26T14:03:05.000Z`.
fn rfc3339(ms: Millis) -> String {
    let t = Civil::from_millis(ms);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", t.year, t.month, t.day, t.hour, t.minute, t.second, t.milli)
}

/// An RFC 5322 (RFC 2822) date in UTC: `Thu, 26 Nov 2026 14:03:05 +0000`.
fn rfc5322_date(ms: Millis) -> String {
    let t = Civil::from_millis(ms);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        t.weekday_name(),
        t.day,
        t.month_name(),
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

/// The date of an mbox `From ` line, as C's `asctime`: `Thu Nov 26 14:03:05 2026`.
fn asctime(ms: Millis) -> String {
    let t = Civil::from_millis(ms);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        t.weekday_name(),
        t.month_name(),
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.year
    )
}

#[cfg(test)]
mod tests;
