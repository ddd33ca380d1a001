//! Disclaimers: system notices shown in conversations, chosen by rules — by conversation
//! kind, by who takes part (anyone, guests and outsiders, or members of a group), and how
//! often (each new conversation, or once per pair of people per day) — in each
//! recipient's language, with a fallback.

use crate::clock::Millis;
use crate::directory::GroupId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every conversation of the kinds.
    All,
    /// Conversations with a guest or someone outside the organisation's domain.
    Guests,
    /// Conversations with a member of this group.
    Group(GroupId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frequency {
    /// When a conversation starts.
    Conversation,
    /// The first message between two people each (UTC) day.
    PairDay,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Conversation => "conversation",
            Frequency::PairDay => "pair_day",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "conversation" => Some(Frequency::Conversation),
            "pair_day" => Some(Frequency::PairDay),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disclaimer {
    pub id: i64,
    pub name: String,
    /// `direct`, `group`, `queue`.
    pub kinds: Vec<String>,
    pub audience: Audience,
    pub frequency: Frequency,
    /// Language (`en`, `de`, `pt-br`, …) → text. Placeholders: `{participants}`,
    /// `{sender}`, `{date}`.
    pub texts: BTreeMap<String, String>,
    pub fallback: String,
    pub enabled: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Someone in a conversation, as the rules see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    pub locale: String,
    /// A guest, or an address outside the organisation's domain.
    pub outsider: bool,
    pub groups: Vec<GroupId>,
}

impl Disclaimer {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return Err("a disclaimer's name has 1 to 100 characters".into());
        }
        if self.kinds.is_empty() || self.kinds.iter().any(|k| !matches!(k.as_str(), "direct" | "group" | "queue")) {
            return Err("kinds: one or more of direct, group, queue".into());
        }
        if self.texts.is_empty() || self.texts.values().any(|t| t.trim().is_empty() || t.chars().count() > 4000) {
            return Err("texts: at least one language, each text 1 to 4000 characters".into());
        }
        if self
            .texts
            .keys()
            .any(|l| l.is_empty() || l.len() > 16 || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err("texts are keyed by language tags such as en, de or pt-BR".into());
        }
        if !self.texts.contains_key(&self.fallback) {
            return Err("fallback must be one of the languages of texts".into());
        }
        Ok(())
    }

    /// Does the rule fire for a conversation of `kind` between `parties`?
    pub fn applies(&self, kind: &str, parties: &[Party]) -> bool {
        self.enabled
            && self.kinds.iter().any(|k| k == kind)
            && match &self.audience {
                Audience::All => true,
                Audience::Guests => parties.iter().any(|p| p.outsider),
                Audience::Group(g) => parties.iter().any(|p| p.groups.contains(g)),
            }
    }

    /// The text for one language: exact tag, then its primary language, then the fallback.
    pub fn text_for(&self, locale: &str) -> &str {
        let l = locale.to_ascii_lowercase();
        let primary = l.split(['-', '_']).next().unwrap_or("");
        self.texts
            .iter()
            .find(|(k, _)| k.to_ascii_lowercase() == l)
            .or_else(|| self.texts.iter().find(|(k, _)| k.to_ascii_lowercase() == primary))
            .map(|(_, t)| t.as_str())
            .or_else(|| self.texts.get(&self.fallback).map(String::as_str))
            .unwrap_or("")
    }

    /// The notice for these parties: each recipient's language once (the first party's
    /// first), placeholders filled in.
    pub fn render(&self, parties: &[Party], sender: &str, date: &str) -> String {
        let mut texts: Vec<&str> = Vec::new();
        for p in parties {
            let t = self.text_for(&p.locale);
            if !texts.contains(&t) {
                texts.push(t);
            }
        }
        if texts.is_empty() {
            texts.push(self.text_for(&self.fallback));
        }
        let names = parties.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ");
        texts
            .iter()
            .map(|t| t.replace("{participants}", &names).replace("{sender}", sender).replace("{date}", date))
            .collect::<Vec<_>>()
            .join("\n\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Disclaimer {
        Disclaimer {
            id: 1,
            name: "recorded".into(),
            kinds: vec!["direct".into(), "queue".into()],
            audience: Audience::All,
            frequency: Frequency::Conversation,
            texts: [
                ("en".to_string(), "Recorded for {participants} on {date}.".to_string()),
                ("de".to_string(), "Aufgezeichnet ({sender}).".to_string()),
            ]
            .into(),
            fallback: "en".into(),
            enabled: true,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn party(name: &str, locale: &str, outsider: bool, groups: &[i64]) -> Party {
        Party {
            name: name.into(),
            locale: locale.into(),
            outsider,
            groups: groups.iter().map(|g| GroupId(*g)).collect(),
        }
    }

    #[test]
    fn rules_choose_by_kind_audience_and_language() {
        let r = rule();
        r.validate().unwrap();
        let (alice, jonas, guest) = (
            party("Alice", "en", false, &[1]),
            party("Jonas", "de-AT", false, &[2]),
            party("Visitor", "fr", true, &[]),
        );
        assert!(r.applies("direct", &[alice.clone(), jonas.clone()]));
        assert!(!r.applies("group", std::slice::from_ref(&alice)));
        assert_eq!(
            r.render(&[alice.clone(), jonas.clone()], "Alice", "2026-11-26"),
            "Recorded for Alice, Jonas on 2026-11-26.\n\nAufgezeichnet (Alice)."
        );
        assert_eq!(r.render(std::slice::from_ref(&jonas), "Jonas", "d"), "Aufgezeichnet (Jonas).", "de-AT finds de");
        assert_eq!(r.text_for("fr"), "Recorded for {participants} on {date}.", "fallback");
        let guests = Disclaimer { audience: Audience::Guests, ..rule() };
        assert!(!guests.applies("queue", &[alice.clone(), jonas.clone()]));
        assert!(guests.applies("queue", &[alice.clone(), guest]));
        let group = Disclaimer { audience: Audience::Group(GroupId(2)), ..rule() };
        assert!(group.applies("direct", &[alice.clone(), jonas]) && !group.applies("direct", &[alice]));
        assert!(!Disclaimer { enabled: false, ..rule() }.applies("direct", &[]));
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(Disclaimer { kinds: vec!["email".into()], ..rule() }.validate().is_err());
        assert!(Disclaimer { fallback: "fr".into(), ..rule() }.validate().is_err());
        assert!(Disclaimer { texts: BTreeMap::new(), ..rule() }.validate().is_err());
        assert!(Disclaimer { name: " ".into(), ..rule() }.validate().is_err());
    }
}
