//! One mail → one alert (or a refusal with its reason).
//!
//! A plain mail: the subject is the title, the text is the body (an HTML-only mail is
//! converted to text), and the mailbox's defaults give audience, priority and TTL. A mail
//! whose text is an `<alert>` document sets those itself — the same fields as the alert
//! API's JSON (see `docs/alerts-mail.md`):
//!
//! ```xml
//! <alert>
//!   <title>Disk full on db1</title>
//!   <body>/var is at 98 %</body>
//!   <priority>urgent</priority>
//!   <audience presence="online"><group>ops</group><user>ann@example.com</user></audience>
//!   <ttl_s>1800</ttl_s>
//!   <ack_required>true</ack_required>
//!   <escalation after_minutes="10"><audience><group>managers</group></audience></escalation>
//! </alert>
//! ```

use crate::config::MailboxConfig;
use sb_core::alerts::{Audience, Escalation, MailIntake, NewAlert, Priority};
use sb_core::Millis;
use sha2::{Digest, Sha256};

/// The mail's identity, sender and subject, and its alert or why it is refused.
pub struct Read {
    pub intake: MailIntake,
    pub alert: Result<NewAlert, String>,
}

/// Read a mail taken from `mailbox`. `truncated`: it is larger than `max_mail_bytes` and
/// `raw` is only its beginning (which holds the header the record needs).
pub fn read_mail(raw: &[u8], mailbox: &MailboxConfig, truncated: bool, now: Millis) -> Read {
    let parsed = mail_parser::MessageParser::default().parse(raw);
    let message_id = parsed.as_ref().and_then(|m| m.message_id()).map(|id| id.trim().to_string());
    let sender = parsed
        .as_ref()
        .and_then(|m| m.from())
        .and_then(|f| f.first())
        .and_then(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .unwrap_or_default();
    // The Message-ID is chosen by whoever sends the mail: keyed with the sender, a refused
    // sender cannot claim the id of a mail still to come from an allowed one.
    let key = match message_id.filter(|id| !id.is_empty()) {
        Some(id) => format!("id:{} {}", one_line(&sender, 320), one_line(&id, 300)),
        None => format!("sha256:{}", hex::encode(Sha256::digest(raw))),
    };
    // Exactly one From header with one address: with several, which one a DMARC check
    // judged and which one the allow-list sees could differ.
    let from_headers = parsed
        .as_ref()
        .map_or(0, |m| m.headers().iter().filter(|h| matches!(h.name, mail_parser::HeaderName::From)).count());
    let from_addresses = parsed.as_ref().and_then(|m| m.from()).map_or(0, |f| f.iter().count());
    let subject = parsed.as_ref().and_then(|m| m.subject()).map(|s| one_line(s.trim(), 300)).unwrap_or_default();
    let intake = MailIntake {
        mailbox: mailbox.name.clone(),
        key,
        sender: one_line(&sender, 320),
        subject: subject.clone(),
        outcome: String::new(),
        alert: None,
        detail: String::new(),
        at: now,
    };
    let alert = (|| {
        let Some(m) = &parsed else { return Err("not a mail message (cannot parse it)".to_string()) };
        if sender.is_empty() {
            return Err("the mail has no From address".into());
        }
        if from_headers != 1 || from_addresses != 1 {
            return Err("the mail has several From headers or addresses".into());
        }
        if !mailbox.allows(&sender) {
            return Err(format!("sender {sender} is not on the mailbox's allow-list"));
        }
        if truncated {
            return Err(format!("the mail is larger than max_mail_bytes ({})", mailbox.max_mail_bytes));
        }
        to_alert(mailbox, &subject, &body_text(m))
    })();
    Read { intake, alert }
}

/// The mail's text: its first text part, or its HTML part as text when it has only HTML.
/// Line endings are `\n`: mail carries CRLF, IM messages and clients use LF (a CR left in
/// would show as a stray character or a double break).
fn body_text(m: &mail_parser::Message) -> String {
    let text = match m.text_part(0).map(|p| &p.body) {
        Some(mail_parser::PartType::Html(html)) => crate::html::to_text(html),
        Some(_) => m.body_text(0).unwrap_or_default().into_owned(),
        None => String::new(),
    };
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The alert a mail's subject and text ask for.
pub fn to_alert(mailbox: &MailboxConfig, subject: &str, text: &str) -> Result<NewAlert, String> {
    let mut alert = NewAlert {
        source: mailbox.source(),
        title: if subject.is_empty() { "(no subject)".into() } else { subject.to_string() },
        body: text.trim().to_string(),
        priority: Priority::parse(&mailbox.priority).unwrap_or(Priority::Normal),
        audience: mailbox.audience.clone(),
        ttl_ms: mailbox.ttl_s.saturating_mul(1000),
        hold_offline: mailbox.offline != "drop",
        ack_required: mailbox.ack_required,
        escalation: None,
        dedup_key: None,
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with("<?xml") || trimmed.starts_with("<alert") {
        apply_xml(&mut alert, trimmed)?;
    }
    if alert.audience.is_empty() {
        return Err("no audience: the mailbox has no default audience and the mail names none".into());
    }
    // Long plain-text mails are cut (a monitoring mail's tail is rarely what matters) rather
    // than refused; the title is the subject, which people write short.
    alert.body = clip(&alert.body, sb_core::alerts::MAX_BODY);
    alert.title = clip(&alert.title, sb_core::alerts::MAX_TITLE);
    alert.validate()?;
    Ok(alert)
}

/// An `<alert>` document (optionally in the namespace `urn:switchboard:alert`): its
/// elements override the mailbox's defaults. Unknown elements are refused, so a typo does
/// not quietly send an alert to the default audience.
fn apply_xml(alert: &mut NewAlert, xml: &str) -> Result<(), String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("the XML body is not well-formed: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "alert" {
        return Err(format!("the XML body's root is <{}>, not <alert>", root.tag_name().name()));
    }
    let mut audience: Option<Audience> = None;
    for el in root.children().filter(|n| n.is_element()) {
        let text = el.text().unwrap_or_default().trim().to_string();
        match el.tag_name().name() {
            "title" => alert.title = text,
            "body" => alert.body = text,
            "priority" => {
                alert.priority =
                    Priority::parse(&text).ok_or("<priority> is low, normal, high or urgent".to_string())?
            }
            "ttl_s" => {
                let s: i64 = text.parse().map_err(|_| format!("<ttl_s> is a number of seconds, not {text:?}"))?;
                alert.ttl_ms = s.saturating_mul(1000);
            }
            "offline" => {
                alert.hold_offline = match text.as_str() {
                    "hold" => true,
                    "drop" => false,
                    _ => return Err("<offline> is hold or drop".into()),
                }
            }
            "ack_required" => alert.ack_required = boolean(&text, "ack_required")?,
            "dedup_key" => alert.dedup_key = Some(text),
            "audience" => audience = Some(read_audience(el)?),
            "escalation" => {
                let number = |name: &str| -> Result<Option<u32>, String> {
                    el.attribute(name)
                        .map(|v| v.trim().parse::<u32>().map_err(|_| format!("<escalation {name}> is a number")))
                        .transpose()
                };
                let mut e = Escalation {
                    after_minutes: number("after_minutes")?,
                    after_seconds: number("after_seconds")?,
                    audience: None,
                };
                for child in el.children().filter(|n| n.is_element()) {
                    match child.tag_name().name() {
                        "audience" => e.audience = Some(read_audience(child)?),
                        other => return Err(format!("unknown element <{other}> in <escalation>")),
                    }
                }
                alert.escalation = Some(e);
            }
            other => return Err(format!("unknown element <{other}> in <alert>")),
        }
    }
    if let Some(a) = audience {
        alert.audience = a;
    }
    Ok(())
}

fn read_audience(el: roxmltree::Node) -> Result<Audience, String> {
    let mut a = Audience { presence: el.attribute("presence").map(str::to_string), ..Audience::default() };
    for child in el.children().filter(|n| n.is_element()) {
        let text = child.text().unwrap_or_default().trim().to_string();
        match child.tag_name().name() {
            "user" => a.users.push(text),
            "group" => a.groups.push(text),
            "queue" => a.queues.push(text),
            "everyone" => a.everyone = text.is_empty() || boolean(&text, "everyone")?,
            other => return Err(format!("unknown element <{other}> in <audience>")),
        }
    }
    a.presence_filter()?;
    Ok(a)
}

fn boolean(text: &str, name: &str) -> Result<bool, String> {
    match text {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!("<{name}> is true or false")),
    }
}

/// At most `max` characters, cut on a character boundary.
fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// A header value for one line (logs, the admin page): control characters (a decoded
/// subject may hold line breaks) become spaces.
fn one_line(s: &str, max: usize) -> String {
    clip(&s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>(), max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox() -> MailboxConfig {
        MailboxConfig {
            name: "ops".into(),
            allowed_senders: vec!["@monitor.example.com".into()],
            audience: Audience { groups: vec!["ops".into()], ..Audience::default() },
            ..MailboxConfig::default()
        }
    }

    fn mail(from: &str, subject: &str, extra_headers: &str, body: &str) -> Vec<u8> {
        format!(
            "From: Monitor <{from}>\r\nTo: alerts@example.com\r\nSubject: {subject}\r\nMessage-ID: <m1@monitor.example.com>\r\n{extra_headers}\r\n{body}"
        )
        .into_bytes()
    }

    #[test]
    fn a_plain_mail_takes_the_mailbox_defaults() {
        let raw = mail("nagios@monitor.example.com", "Disk full", "", "db1: /var at 98%\r\n");
        let r = read_mail(&raw, &mailbox(), false, 5);
        assert_eq!(r.intake.key, "id:nagios@monitor.example.com m1@monitor.example.com");
        assert_eq!(r.intake.sender, "nagios@monitor.example.com");
        let a = r.alert.unwrap();
        assert_eq!((a.title.as_str(), a.body.as_str()), ("Disk full", "db1: /var at 98%"));
        assert_eq!(a.audience.groups, vec!["ops".to_string()]);
        assert_eq!((a.priority, a.ttl_ms, a.source.as_str()), (Priority::Normal, 3_600_000, "mail:ops"));
    }

    #[test]
    fn an_html_mail_becomes_text() {
        let raw = mail(
            "nagios@monitor.example.com",
            "Disk",
            "Content-Type: text/html; charset=utf-8\r\n",
            "<html><body><p>Disk <b>full</b> &amp; <script>alert(1)</script>hot</p></body></html>",
        );
        let body = read_mail(&raw, &mailbox(), false, 0).alert.unwrap().body;
        assert_eq!(body, "Disk full & hot");
    }

    /// Blocks stay apart and links keep their address (an HTML-only mail, as monitoring
    /// tools send them: quoted-printable, CRLF).
    #[test]
    fn an_html_mail_keeps_its_lines_and_links() {
        let html = "<html><head><style>h2 { color: red }</style></head><body>\r\n\
                    <h2>Disk alert</h2><div>Disk /var on db1 at 98%</div>\r\n\
                    <ul><li>used: 98 GB</li><li>free: 2 GB</li></ul>\r\n\
                    <p>See <a href=3D\"https://grafana.example.com/d/disk?host=3Ddb1&amp;range=3D1h\">the=\r\n dashboard</a>.<br>\r\n\
                    -- <br>Nagios</p></body></html>\r\n";
        let raw = mail(
            "nagios@monitor.example.com",
            "Disk",
            "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n",
            html,
        );
        let body = read_mail(&raw, &mailbox(), false, 0).alert.unwrap().body;
        assert_eq!(
            body,
            "Disk alert\n\nDisk /var on db1 at 98%\n\n• used: 98 GB\n• free: 2 GB\n\n\
             See the dashboard (https://grafana.example.com/d/disk?host=db1&range=1h).\n--\nNagios"
        );
    }

    /// A multipart/alternative mail: its text part is the body, not the HTML.
    #[test]
    fn the_text_part_wins_over_html() {
        let parts = "--b\r\nContent-Type: text/plain\r\n\r\nplain\r\nline\r\n--b\r\n\
                     Content-Type: text/html\r\n\r\n<p>html</p>\r\n--b--\r\n";
        let raw = mail(
            "nagios@monitor.example.com",
            "Disk",
            "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n",
            parts,
        );
        assert_eq!(read_mail(&raw, &mailbox(), false, 0).alert.unwrap().body, "plain\nline");
    }

    #[test]
    fn plain_text_line_endings_become_lf() {
        let raw =
            mail("nagios@monitor.example.com", "Disk", "", "db1: /var at 98%\r\n\r\nused: 98 GB\r\nfree: 2 GB\r\n");
        let body = read_mail(&raw, &mailbox(), false, 0).alert.unwrap().body;
        assert_eq!(body, "db1: /var at 98%\n\nused: 98 GB\nfree: 2 GB");
        // The XML body's text too (roxmltree normalises what is inside the document).
        let xml = "<alert>\r\n<body>line 1\r\nline 2</body>\r\n</alert>\r\n";
        let a = read_mail(&mail("nagios@monitor.example.com", "x", "", xml), &mailbox(), false, 0).alert.unwrap();
        assert_eq!(a.body, "line 1\nline 2");
    }

    #[test]
    fn an_xml_body_sets_audience_priority_ttl_and_escalation() {
        let xml = r#"<?xml version="1.0"?>
<alert xmlns="urn:switchboard:alert">
  <title>DB down</title><body>primary unreachable</body><priority>urgent</priority>
  <audience presence="online"><user>ann@example.com</user><group>dba</group><queue>support</queue></audience>
  <ttl_s>600</ttl_s><offline>drop</offline><ack_required>true</ack_required>
  <escalation after_minutes="5"><audience><everyone/></audience></escalation>
  <dedup_key>db1-down</dedup_key>
</alert>"#;
        let a = read_mail(&mail("x@monitor.example.com", "ignored", "", xml), &mailbox(), false, 0).alert.unwrap();
        assert_eq!(
            (a.title.as_str(), a.body.as_str(), a.priority),
            ("DB down", "primary unreachable", Priority::Urgent)
        );
        assert_eq!(a.audience.users, vec!["ann@example.com".to_string()]);
        assert_eq!(a.audience.groups, vec!["dba".to_string()]);
        assert_eq!(a.audience.queues, vec!["support".to_string()]);
        assert_eq!(a.audience.presence.as_deref(), Some("online"));
        assert_eq!((a.ttl_ms, a.hold_offline, a.ack_required), (600_000, false, true));
        let e = a.escalation.unwrap();
        assert_eq!(e.after_minutes, Some(5));
        assert!(e.audience.unwrap().everyone);
        assert_eq!(a.dedup_key.as_deref(), Some("db1-down"));
    }

    #[test]
    fn bad_mail_is_refused_with_a_reason() {
        let m = mailbox();
        let refused = |raw: Vec<u8>| read_mail(&raw, &m, false, 0).alert.unwrap_err();
        assert!(refused(mail("mallory@evil.example", "x", "", "hi")).contains("not on the mailbox's allow-list"));
        assert!(refused(mail("a@monitor.example.com", "x", "", "<alert><title>t</title>")).contains("not well-formed"));
        assert!(refused(mail("a@monitor.example.com", "x", "", "<alert><prio>urgent</prio></alert>"))
            .contains("unknown element <prio>"));
        assert!(refused(mail("a@monitor.example.com", "x", "", "<alert><priority>meh</priority></alert>"))
            .contains("<priority>"));
        assert!(refused(mail(
            "a@monitor.example.com",
            "x",
            "",
            "<alert><audience presence=\"sometimes\"><group>g</group></audience></alert>"
        ))
        .contains("presence"));
        // An entity-expansion ("billion laughs") body is refused, not expanded without bound.
        let bomb = "<?xml version=\"1.0\"?><!DOCTYPE alert [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\"><!ENTITY e \"&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;\"><!ENTITY f \"&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;\"><!ENTITY g \"&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;\"><!ENTITY h \"&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;\"><!ENTITY i \"&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;\">]><alert><body>&i;</body></alert>";
        // Expanded, &i; would be 10^10 bytes: finishing at all is the test.
        let r = read_mail(&mail("a@monitor.example.com", "x", "", bomb), &m, false, 0);
        assert!(r.alert.is_err(), "the parser refuses runaway entities");
        let no_default = MailboxConfig { audience: Audience::default(), ..m.clone() };
        assert!(read_mail(&mail("a@monitor.example.com", "x", "", "hi"), &no_default, false, 0)
            .alert
            .unwrap_err()
            .contains("no audience"));
        assert!(read_mail(&mail("a@monitor.example.com", "x", "", "hi"), &m, true, 0)
            .alert
            .unwrap_err()
            .contains("larger than max_mail_bytes"));
        let two_from = format!(
            "From: a@monitor.example.com\r\n{}",
            String::from_utf8(mail("mallory@evil.example", "x", "", "hi")).unwrap()
        );
        assert!(refused(two_from.into_bytes()).contains("several From"));
        let two_addresses = mail("a@monitor.example.com>, <mallory@evil.example", "x", "", "hi");
        assert!(refused(two_addresses).contains("several From"));
        // A refused sender's Message-ID does not shadow the same id from an allowed sender.
        let evil = read_mail(&mail("mallory@evil.example", "x", "", "hi"), &m, false, 0).intake.key;
        let good = read_mail(&mail("a@monitor.example.com", "x", "", "hi"), &m, false, 0).intake.key;
        assert_ne!(evil, good);
        let r = read_mail(b"\x00\x01 not a mail", &m, false, 0);
        assert!(r.alert.is_err() && r.intake.key.starts_with("sha256:"));
    }

    #[test]
    fn header_values_are_kept_on_one_line() {
        let raw = b"From: a@monitor.example.com\r\nSubject: =?utf-8?q?two=0Alines=0D=0Aforged_log_line?=\r\nMessage-ID: <x@y>\r\n\r\nbody".to_vec();
        let r = read_mail(&raw, &mailbox(), false, 0);
        assert_eq!(r.intake.subject, "two lines  forged log line");
        assert_eq!(r.alert.unwrap().title, "two lines  forged log line");
    }

    #[test]
    fn a_mail_without_message_id_is_keyed_by_its_content() {
        let raw = b"From: a@monitor.example.com\r\nSubject: s\r\n\r\nbody".to_vec();
        let one = read_mail(&raw, &mailbox(), false, 0).intake.key;
        assert!(one.starts_with("sha256:"));
        assert_eq!(one, read_mail(&raw, &mailbox(), false, 9).intake.key);
    }
}
