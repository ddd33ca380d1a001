//! The exports, parsed back by real parsers.

use super::*;
use mail_parser::mailbox::mbox::MessageIterator;
use mail_parser::MessageParser;

/// 2026-11-26 14:03:05 UTC, a Thursday.
const T0: Millis = 1_795_701_785_000;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const ZOE: &str = "zoe@example.com";
const ALICE_NAME: &str = "Alice Anderson";
const BOB_NAME: &str = "O'Brien, \"Bob\" Jr.";
const ZOE_NAME: &str = "Zoë Ünal";
const TITLE: &str = "Zoë's <deal>, \"Q4\" =?utf-8?q?x?=";
const HELLO: &str = "Hello, \"world\"; 1,2,3 <script>alert('x')</script> & more";
const HOSTILE: &str = "=cmd()|' calc'!A1\nFrom the desk of Zoë\r\n>From quoted\rlast line 😀";
const DISCLAIMER: &str = "This chat is recorded.\u{7}bell";
const BOB_SAYS: &str = "-2+3 @mention\ttab";
const BLOCKED: &str = "blocked: bob@example.com -> zoe@example.com";
const CAROL_SAYS: &str = "+1 555 0100";

fn long_body() -> String {
    format!("{} {} =end", "é".repeat(40), "x".repeat(100))
}

fn record(
    id: i64,
    offset_secs: i64,
    kind: &str,
    actor: Option<&str>,
    actor_name: Option<&str>,
    body: &str,
) -> ExportRecord {
    ExportRecord {
        id,
        ts: T0 + offset_secs * 1000,
        kind: kind.to_string(),
        actor: actor.map(str::to_string),
        actor_name: actor_name.map(str::to_string),
        body: body.to_string(),
    }
}

fn conversations() -> Vec<ExportConversation> {
    vec![
        ExportConversation {
            id: 7,
            kind: "group".to_string(),
            title: TITLE.to_string(),
            participants: vec![
                (ALICE.to_string(), ALICE_NAME.to_string()),
                (ZOE.to_string(), ZOE_NAME.to_string()),
                (BOB.to_string(), BOB_NAME.to_string()),
            ],
            records: vec![
                record(101, 0, "created", Some(ALICE), Some(ALICE_NAME), ""),
                record(102, 1, "joined", Some(ZOE), Some(ZOE_NAME), ALICE),
                record(103, 2, "message", Some(ALICE), Some(ALICE_NAME), HELLO),
                record(104, 3, "message", Some(ZOE), Some(ZOE_NAME), HOSTILE),
                record(105, 4, "disclaimer", None, None, DISCLAIMER),
                record(106, 5, "message", Some(BOB), Some(BOB_NAME), BOB_SAYS),
                record(107, 6, "left", Some(ZOE), Some(ZOE_NAME), ""),
                record(108, 7, "wall.blocked", None, None, BLOCKED),
            ],
        },
        ExportConversation {
            id: 8,
            kind: "direct".to_string(),
            title: String::new(),
            participants: vec![(ALICE.to_string(), ALICE_NAME.to_string()), (CAROL.to_string(), String::new())],
            records: vec![
                record(201, 60, "created", Some(ALICE), Some(ALICE_NAME), ""),
                record(202, 61, "message", Some(CAROL), None, CAROL_SAYS),
                record(203, 62, "message", Some(ALICE), Some(ALICE_NAME), &long_body()),
                record(204, 63, "queue.assigned", None, None, ""),
            ],
        },
    ]
}

/// The transcripts, written out by hand.
fn transcripts() -> [String; 2] {
    [
        [
            "[2026-11-26 14:03:05 UTC] (created) Alice Anderson <alice@example.com>",
            "[2026-11-26 14:03:06 UTC] Zoë Ünal <zoe@example.com> joined: alice@example.com",
            "[2026-11-26 14:03:07 UTC] Alice Anderson <alice@example.com>: Hello, \"world\"; 1,2,3 \
             <script>alert('x')</script> & more",
            "[2026-11-26 14:03:08 UTC] Zoë Ünal <zoe@example.com>: =cmd()|' calc'!A1",
            "    From the desk of Zoë",
            "    >From quoted",
            "    last line 😀",
            "[2026-11-26 14:03:09 UTC] (disclaimer) This chat is recorded.\u{7}bell",
            "[2026-11-26 14:03:10 UTC] O'Brien, \"Bob\" Jr. <bob@example.com>: -2+3 @mention\ttab",
            "[2026-11-26 14:03:11 UTC] Zoë Ünal <zoe@example.com> left",
            "[2026-11-26 14:03:12 UTC] (wall.blocked) blocked: bob@example.com -> zoe@example.com",
        ]
        .join("\n"),
        [
            "[2026-11-26 14:04:05 UTC] (created) Alice Anderson <alice@example.com>".to_string(),
            "[2026-11-26 14:04:06 UTC] carol@example.com: +1 555 0100".to_string(),
            format!("[2026-11-26 14:04:07 UTC] Alice Anderson <alice@example.com>: {}", long_body()),
            "[2026-11-26 14:04:08 UTC] (queue.assigned)".to_string(),
        ]
        .join("\n"),
    ]
}

/// CRLF after every line, no bare CR, no line longer than 76 characters.
fn assert_wire_format(text: &str) {
    assert!(text.ends_with("\r\n"), "the message ends without CRLF");
    for line in text.split_inclusive('\n') {
        assert!(line.ends_with("\r\n"), "a line without CRLF: {line:?}");
        let content = &line[..line.len() - 2];
        assert!(!content.contains('\r'), "a bare CR: {line:?}");
        assert!(content.len() <= 76, "a line longer than 76 characters: {line:?}");
    }
}

#[test]
fn dates_are_utc_civil_dates() {
    assert_eq!(transcript_time(T0), "2026-11-26 14:03:05 UTC");
    assert_eq!(rfc5322_date(T0), "Thu, 26 Nov 2026 14:03:05 +0000");
    assert_eq!(asctime(T0), "Thu Nov 26 14:03:05 2026");
    assert_eq!(rfc3339(T0 + 7), "2026-11-26T14:03:05.007Z");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    assert_eq!(rfc5322_date(-1), "Wed, 31 Dec 1969 23:59:59 +0000");
    assert_eq!(asctime(951_782_400_000), "Tue Feb 29 00:00:00 2000");
    assert_eq!(asctime(4_107_542_399_000), "Sun Feb 28 23:59:59 2100");
    assert_eq!(asctime(T0 - 25 * 86_400_000), "Sun Nov  1 14:03:05 2026");
    // A spread of instants over a thousand years, checked against jiff.
    for i in -5_000i64..5_000 {
        let secs = i * 3_209_145;
        let ms = secs * 1000;
        let expected = jiff::Timestamp::from_second(secs).expect("in jiff's range").to_string();
        assert_eq!(rfc3339(ms).replace(".000Z", "Z"), expected, "at {secs} s");
    }
}

#[test]
fn encoded_words_hold_whole_characters() {
    let text = "Zoë Ünal 😀 ".repeat(20);
    let words = encoded_words(&text);
    assert!(words.len() > 1);
    let mut decoded = Vec::new();
    for word in &words {
        assert!(word.len() <= 75, "{word}");
        let b64 = word.strip_prefix("=?UTF-8?B?").and_then(|w| w.strip_suffix("?=")).expect("an encoded-word");
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
        assert!(String::from_utf8(bytes.clone()).is_ok(), "a character split across words");
        decoded.extend(bytes);
    }
    assert_eq!(String::from_utf8(decoded).expect("UTF-8"), text);
}

#[test]
fn eml_parses_back_with_mail_parser() {
    let cs = conversations();
    let transcripts = transcripts();
    let expected_to: [Vec<(Option<&str>, &str)>; 2] =
        [vec![(Some(ZOE_NAME), ZOE), (Some(BOB_NAME), BOB)], vec![(None, CAROL)]];
    let subjects = [
        format!("Switchboard group conversation 7: {TITLE}"),
        "Switchboard direct conversation 8: alice@example.com, carol@example.com".to_string(),
    ];
    for (i, c) in cs.iter().enumerate() {
        let eml = to_eml(c, "example.com");
        assert!(eml.is_ascii(), "8-bit text in {eml}");
        assert_wire_format(&eml);
        assert!(eml.contains(&format!("\r\nDate: {}\r\n", rfc5322_date(first_ts(c)))));
        assert!(eml.contains("\r\nContent-Transfer-Encoding: quoted-printable\r\n"));

        let msg = MessageParser::default().parse(eml.as_bytes()).expect("the message parses");
        let from = msg.from().expect("a From header").first().expect("a sender");
        assert_eq!(from.name(), Some(ALICE_NAME));
        assert_eq!(from.address(), Some(ALICE));
        let to: Vec<(Option<&str>, &str)> =
            msg.to().expect("a To header").iter().map(|a| (a.name(), a.address().expect("an address"))).collect();
        assert_eq!(to, expected_to[i]);
        assert_eq!(msg.subject(), Some(subjects[i].as_str()));
        assert_eq!(msg.date().expect("a Date header").to_timestamp(), first_ts(c) / 1000);
        let message_id = format!("conversation-{}@example.com", c.id);
        assert_eq!(msg.message_id(), Some(message_id.as_str()));
        assert!(msg
            .headers_raw()
            .any(|(name, value)| name.eq_ignore_ascii_case("X-Switchboard-Conversation")
                && value.trim() == c.id.to_string()));
        let body = msg.body_text(0).expect("a text body").replace("\r\n", "\n");
        assert_eq!(body.trim_end_matches('\n'), transcripts[i]);
    }
}

#[test]
fn eml_headers_cannot_be_injected() {
    let c = ExportConversation {
        id: 9,
        kind: "group\r\nBcc: mallory@example.com".to_string(),
        title: "hi\r\nX-Injected: yes".to_string(),
        participants: vec![
            ("eve@example.com>\r\nBcc: <mallory@example.com".to_string(), "Eve\r\nX-Injected: yes".to_string()),
            (ALICE.to_string(), "\"quoted\\\" name".to_string()),
        ],
        records: vec![record(1, 0, "message", Some(ALICE), None, "hello")],
    };
    let eml = to_eml(&c, "example.com\r\nX-Injected: yes");
    assert_wire_format(&eml);
    let head = eml.split("\r\n\r\n").next().expect("a header block");
    for line in head.split("\r\n") {
        assert!(!line.starts_with("Bcc") && !line.starts_with("X-Injected"), "injected: {line:?}");
    }
    let msg = MessageParser::default().parse(eml.as_bytes()).expect("the message parses");
    assert_eq!(msg.subject(), Some("Switchboard group  Bcc: mallory@example.com conversation 9: hi  X-Injected: yes"));
    let to = msg.to().expect("a To header").first().expect("a recipient");
    assert_eq!(to.name(), Some("\"quoted\\\" name"));
    assert_eq!(to.address(), Some(ALICE));
}

#[test]
fn mbox_splits_back_into_the_messages() {
    let cs = conversations();
    let transcripts = transcripts();
    let mbox = to_mbox(&cs, "example.com");
    assert!(mbox.starts_with("From switchboard@example.com Thu Nov 26 14:03:05 2026\r\n"));
    let messages: Vec<_> = MessageIterator::new(mbox.as_bytes()).map(|m| m.expect("an mbox message")).collect();
    assert_eq!(messages.len(), cs.len());
    for (i, (m, c)) in messages.iter().zip(&cs).enumerate() {
        assert_eq!(m.from(), "switchboard@example.com");
        assert_eq!(m.internal_date(), (first_ts(c) / 1000) as u64);
        let msg = MessageParser::default().parse(m.contents()).expect("the message parses");
        let message_id = format!("conversation-{}@example.com", c.id);
        assert_eq!(msg.message_id(), Some(message_id.as_str()));
        let body = msg.body_text(0).expect("a text body").replace("\r\n", "\n");
        assert_eq!(body.trim_end_matches('\n'), transcripts[i]);
    }
}

#[test]
fn mboxrd_quoting_round_trips() {
    let message =
        "Subject: quoting\r\n\r\nFrom the start\r\n>From once\r\n>>From twice\r\nFromage\r\n> From spaced\r\n";
    let mut mbox = String::new();
    for _ in 0..2 {
        mbox.push_str("From switchboard@example.com Thu Nov 26 14:03:05 2026\r\n");
        push_mboxrd(&mut mbox, message);
    }
    assert!(mbox.contains("\r\n>From the start\r\n>>From once\r\n>>>From twice\r\nFromage\r\n> From spaced\r\n"));
    let contents: Vec<Vec<u8>> =
        MessageIterator::new(mbox.as_bytes()).map(|m| m.expect("an mbox message").contents().to_vec()).collect();
    assert_eq!(contents.len(), 2);
    for c in contents {
        assert_eq!(String::from_utf8(c).expect("UTF-8"), format!("{message}\r\n"));
    }
}

#[test]
fn csv_parses_back_with_the_csv_crate() {
    let cs = conversations();
    let text = to_csv(&cs);
    assert!(text.starts_with("conversation,conversation_kind,title,record,time,kind,actor,actor_name,body\r\n"));
    assert!(text.ends_with("\r\n"));
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers: Vec<String> = reader.headers().expect("a header row").iter().map(str::to_string).collect();
    assert_eq!(
        headers,
        ["conversation", "conversation_kind", "title", "record", "time", "kind", "actor", "actor_name", "body"]
    );
    let rows: Vec<Vec<String>> =
        reader.records().map(|row| row.expect("a row").iter().map(str::to_string).collect()).collect();
    let mut expected = Vec::new();
    for c in &cs {
        for r in &c.records {
            let body = match r.id {
                104 => format!("'{HOSTILE}"),
                106 => format!("'{BOB_SAYS}"),
                202 => format!("'{CAROL_SAYS}"),
                _ => r.body.clone(),
            };
            expected.push(vec![
                c.id.to_string(),
                c.kind.clone(),
                c.title.clone(),
                r.id.to_string(),
                rfc3339(r.ts),
                r.kind.clone(),
                r.actor.clone().unwrap_or_default(),
                r.actor_name.clone().unwrap_or_default(),
                body,
            ]);
        }
    }
    assert_eq!(rows, expected);
    assert_eq!(rows[0][4], "2026-11-26T14:03:05.000Z");
}

#[test]
fn jsonl_parses_back_with_serde_json() {
    let cs = conversations();
    let text = to_jsonl(&cs);
    assert!(text.ends_with('\n'));
    let lines: Vec<serde_json::Value> =
        text.split_terminator('\n').map(|line| serde_json::from_str(line).expect("a JSON object")).collect();
    let records: Vec<(&ExportConversation, &ExportRecord)> =
        cs.iter().flat_map(|c| c.records.iter().map(move |r| (c, r))).collect();
    assert_eq!(lines.len(), records.len());
    for (v, (c, r)) in lines.iter().zip(&records) {
        assert_eq!(v["conversation"], c.id);
        assert_eq!(v["conversation_kind"], c.kind.as_str());
        assert_eq!(v["title"], c.title.as_str());
        assert_eq!(v["id"], r.id);
        assert_eq!(v["ts"], r.ts);
        assert_eq!(v["time"], rfc3339(r.ts).as_str());
        assert_eq!(v["kind"], r.kind.as_str());
        assert_eq!(v["actor"].as_str(), r.actor.as_deref());
        assert_eq!(v["actor_name"].as_str(), r.actor_name.as_deref());
        assert_eq!(v["body"], r.body.as_str());
        let participants: Vec<&str> =
            v["participants"].as_array().expect("an array").iter().map(|p| p.as_str().expect("an address")).collect();
        let expected: Vec<&str> = c.participants.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(participants, expected);
    }
    assert_eq!(lines[0]["time"], "2026-11-26T14:03:05.000Z");
    assert!(lines[4]["actor"].is_null());
    assert!(lines[4]["actor_name"].is_null());
    assert_eq!(lines[3]["body"], HOSTILE);
}

/// The text of the `tag` children of `node`, concatenated.
fn child_text(node: roxmltree::Node<'_, '_>, tag: &str) -> String {
    node.children()
        .filter(|n| n.has_tag_name(tag))
        .flat_map(|n| n.children())
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

#[test]
fn actiance_xml_parses_back_with_roxmltree() {
    let cs = conversations();
    let xml = to_actiance_xml(&cs);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let root = doc.root_element();
    assert!(root.has_tag_name("FileDump"));
    let convs: Vec<roxmltree::Node<'_, '_>> = root.children().filter(|n| n.has_tag_name("Conversation")).collect();
    assert_eq!(convs.len(), 2);

    let logins = |node: roxmltree::Node<'_, '_>, tag: &str| -> Vec<String> {
        node.children().filter(|n| n.has_tag_name(tag)).map(|n| child_text(n, "LoginName")).collect()
    };
    let contents = |node: roxmltree::Node<'_, '_>| -> Vec<String> {
        node.children().filter(|n| n.has_tag_name("Message")).map(|n| child_text(n, "Content")).collect()
    };

    let first = convs[0];
    assert_eq!(first.attribute("Perspective"), Some("Switchboard"));
    assert_eq!(child_text(first, "RoomID"), "group-7");
    assert_eq!(child_text(first, "StartTimeUTC"), (T0 / 1000).to_string());
    assert_eq!(child_text(first, "EndTimeUTC"), (T0 / 1000 + 7).to_string());
    assert_eq!(
        contents(first),
        [
            "(created)".to_string(),
            HELLO.to_string(),
            HOSTILE.to_string(),
            "(disclaimer) This chat is recorded.bell".to_string(),
            BOB_SAYS.to_string(),
            format!("(wall.blocked) {BLOCKED}"),
        ]
    );
    assert_eq!(logins(first, "Message"), [ALICE, ALICE, ZOE, "system", BOB, "system"]);
    assert_eq!(logins(first, "ParticipantEntered"), [ALICE, BOB, ZOE]);
    assert_eq!(logins(first, "ParticipantLeft"), [ZOE, ALICE, BOB]);
    let entered: Vec<roxmltree::Node<'_, '_>> =
        first.children().filter(|n| n.has_tag_name("ParticipantEntered")).collect();
    assert_eq!(child_text(entered[0], "DateTimeUTC"), (T0 / 1000).to_string());
    assert_eq!(child_text(entered[2], "DateTimeUTC"), (T0 / 1000 + 1).to_string());
    assert_eq!(child_text(entered[2], "InternalFlag"), "true");
    assert_eq!(child_text(entered[2], "ConversationID"), "7");
    assert_eq!(child_text(entered[2], "CorporateEmailID"), ZOE);

    let second = convs[1];
    assert_eq!(child_text(second, "RoomID"), "direct-8");
    assert_eq!(
        contents(second),
        ["(created)".to_string(), CAROL_SAYS.to_string(), long_body(), "(queue.assigned)".to_string()]
    );
    assert_eq!(logins(second, "Message"), [ALICE, CAROL, ALICE, "system"]);
    assert_eq!(logins(second, "ParticipantEntered"), [ALICE, CAROL]);
    assert_eq!(logins(second, "ParticipantLeft"), [ALICE, CAROL]);
}
