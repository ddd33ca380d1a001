//! The one policy door.
//!
//! Every act that lets one person reach or observe another — a message, typing, a read
//! marker, starting a conversation, inviting, a queue offer, accept, transfer or take, a
//! conference, seeing someone in the directory, their presence, a waiting list or an
//! offline message, an alert — is an [`Act`], and [`Snapshot::judge`] decides it, whatever
//! door it came through. The snapshot is everything the decision needs (ethical walls and
//! who is in which walled group), taken at one moment; the runtime swaps in a new one when
//! walls or memberships change and re-judges what is open.
//!
//! The verdict is a type: [`Snapshot::admit`] is the only way to get an [`Admission`], and
//! the runtime's single writer, its signal fan-out and the queue router take one (or the
//! snapshot itself). A monitoring wall's [`Crossing`]s travel inside the admission so they
//! are stored in the same transaction as the act; a blocking wall's [`Refusal`] names the
//! crossing so the refusal is recorded.

use crate::archive::ArchiveEntry;
use crate::clock::Millis;
use crate::conversation::{Conversation, ConversationId};
use crate::directory::UserId;
use crate::walls::{blocked_notice, Violation, Wall, WallIndex, WallMode};

/// An act one person does that lets them reach or observe another.
#[derive(Debug, Clone, Copy)]
pub enum Act<'a> {
    /// A message (or an alert, which is a message) into a conversation: judged against
    /// every other member.
    Message { sender: UserId, conversation: &'a Conversation },
    /// Typing or a read marker, shown to one other person.
    Signal { actor: UserId, to: UserId },
    /// People brought together by `actor`: `subject` meets each of `others` (starting a
    /// conversation, inviting, a conference, a transfer to a named expert).
    Gather {
        actor: UserId,
        subject: UserId,
        others: &'a [UserId],
        conversation: Option<ConversationId>,
        what: &'static str,
    },
    /// Every pair among `people` meets (a new group chat): `actor` brings them together.
    GatherAll { actor: UserId, people: &'a [UserId], what: &'static str },
    /// A queue chat's seeker and an expert: an offer, an accept, a transfer, a take.
    Meet { seeker: UserId, expert: UserId },
    /// `viewer` sees `subject`: the directory, presence, a waiting list, an offline message.
    Observe { viewer: UserId, subject: UserId },
}

/// A wall crossed by an act: who did it, who is on the other side, which wall.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub wall: i64,
    pub wall_name: String,
    pub mode: WallMode,
    pub actor: UserId,
    pub actor_address: String,
    pub other: UserId,
    pub other_address: String,
    pub conversation: Option<ConversationId>,
    pub what: &'static str,
}

impl Crossing {
    /// The violation to store, and its archive record (`wall.blocked` / `wall.flagged`).
    pub fn record(&self, ts: Millis) -> (Violation, ArchiveEntry) {
        let action = if self.mode == WallMode::Block { "blocked" } else { "flagged" };
        let violation = Violation {
            id: 0,
            ts,
            wall: self.wall,
            mode: self.mode,
            action: action.into(),
            actor: self.actor,
            other: self.other,
            conversation: self.conversation.map(|c| c.0),
            detail: self.what.into(),
        };
        let meta = format!(
            "{{\"wall\":{},\"wall_name\":{},\"mode\":\"{}\",\"other\":{},\"what\":{}}}",
            self.wall,
            json_string(&self.wall_name),
            self.mode.as_str(),
            json_string(&self.other_address),
            json_string(self.what)
        );
        let entry = ArchiveEntry {
            ts,
            kind: format!("wall.{action}"),
            conversation: self.conversation.map(|c| c.0),
            conversation_kind: None,
            event: None,
            actor: Some(self.actor_address.clone()),
            body: String::new(),
            meta,
        };
        (violation, entry)
    }
}

/// A JSON string literal (the core has no JSON crate; archive metadata is JSON text).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Go ahead, and record these crossings (monitoring walls).
    Flag(Vec<Crossing>),
    /// Refuse.
    Block(Refusal),
}

/// An act refused: the notice for the person who tried, and the wall it met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub notice: String,
    pub crossing: Box<Crossing>,
}

/// Proof that the policy let an act go ahead, with the crossings to record in the same
/// transaction. Only [`Snapshot::admit`] (and [`Snapshot::record_only`], for events no
/// person does) makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an admitted act is carried out by handing the admission to the writer"]
pub struct Admission {
    flags: Vec<Crossing>,
    version: u64,
}

impl Admission {
    pub fn flags(&self) -> &[Crossing] {
        &self.flags
    }
    pub fn into_flags(self) -> Vec<Crossing> {
        self.flags
    }
    /// The snapshot that decided.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Two admitted acts carried out together (one write).
    pub fn and(mut self, other: Admission) -> Admission {
        self.flags.extend(other.flags);
        self.version = self.version.max(other.version);
        self
    }
}

/// What the policy decides over, at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    walls: WallIndex,
    version: u64,
}

impl Snapshot {
    pub fn new(walls: WallIndex, version: u64) -> Self {
        Self { walls, version }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// No wall stands anywhere: every act is allowed (a fast path for fan-out).
    pub fn is_open(&self) -> bool {
        self.walls.is_empty()
    }

    pub fn name_of(&self, u: UserId) -> String {
        self.walls.name_of(u)
    }

    fn crossing(
        &self,
        wall: &Wall,
        actor: UserId,
        other: UserId,
        conversation: Option<ConversationId>,
        what: &'static str,
    ) -> Crossing {
        Crossing {
            wall: wall.id,
            wall_name: wall.name.clone(),
            mode: wall.mode,
            actor,
            actor_address: self.walls.address_of(actor),
            other,
            other_address: self.walls.address_of(other),
            conversation,
            what,
        }
    }

    /// Decide an act.
    pub fn judge(&self, act: &Act<'_>) -> Verdict {
        if self.walls.is_empty() {
            return Verdict::Allow;
        }
        match *act {
            Act::Message { sender, conversation } => {
                let others = conversation.members.iter().map(|m| m.id);
                self.verdict(sender, sender, others, Some(conversation.id), "message", true)
            }
            Act::Gather { actor, subject, others, conversation, what } => {
                self.verdict(actor, subject, others.iter().copied(), conversation, what, true)
            }
            Act::GatherAll { actor, people, what } => {
                let mut flags = Vec::new();
                for (i, a) in people.iter().enumerate() {
                    match self.verdict(actor, *a, people[i + 1..].iter().copied(), None, what, true) {
                        Verdict::Allow => {}
                        Verdict::Flag(f) => flags.extend(f),
                        Verdict::Block(r) => return Verdict::Block(r),
                    }
                }
                if flags.is_empty() {
                    Verdict::Allow
                } else {
                    Verdict::Flag(flags)
                }
            }
            // Meeting in a queue chat, a signal, seeing someone: only a blocking wall stops
            // them; what they then write is judged (and flagged) message by message.
            Act::Meet { seeker, expert } => self.verdict(seeker, seeker, [expert], None, "queue chat", false),
            Act::Signal { actor, to } => self.verdict(actor, actor, [to], None, "signal", false),
            Act::Observe { viewer, subject } => self.verdict(viewer, viewer, [subject], None, "look-up", false),
        }
    }

    /// `subject` meeting each of `others`, on `actor`'s doing.
    fn verdict(
        &self,
        actor: UserId,
        subject: UserId,
        others: impl IntoIterator<Item = UserId>,
        conversation: Option<ConversationId>,
        what: &'static str,
        flag: bool,
    ) -> Verdict {
        let crossings = self.walls.among(subject, others);
        let Some((other, strictest)) = crossings.first() else { return Verdict::Allow };
        if strictest.mode == WallMode::Block {
            let notice = if subject == actor {
                blocked_notice(&self.walls.name_of(*other))
            } else {
                format!(
                    "Chats between {} and {} have been prohibited by your administrator.",
                    self.walls.name_of(subject),
                    self.walls.name_of(*other)
                )
            };
            let crossing = Box::new(self.crossing(strictest, actor, *other, conversation, what));
            return Verdict::Block(Refusal { notice, crossing });
        }
        if !flag {
            return Verdict::Allow;
        }
        Verdict::Flag(crossings.iter().map(|(o, w)| self.crossing(w, actor, *o, conversation, what)).collect())
    }

    /// Decide an act; an admission to carry it out, or the refusal.
    pub fn admit(&self, act: &Act<'_>) -> Result<Admission, Refusal> {
        match self.judge(act) {
            Verdict::Allow => Ok(Admission { flags: Vec::new(), version: self.version }),
            Verdict::Flag(flags) => Ok(Admission { flags, version: self.version }),
            Verdict::Block(r) => Err(r),
        }
    }

    /// An admission for events no person does (a conversation's `created` note after an
    /// admitted start, queue notices, a walled member removed): nobody reaches anybody.
    pub fn record_only(&self) -> Admission {
        Admission { flags: Vec::new(), version: self.version }
    }

    /// Shorthand: is the act allowed at all?
    pub fn allows(&self, act: &Act<'_>) -> bool {
        !matches!(self.judge(act), Verdict::Block(_))
    }

    /// May `viewer` see `subject` (directory, presence, waiting lists)?
    pub fn may_see(&self, viewer: UserId, subject: UserId) -> bool {
        self.allows(&Act::Observe { viewer, subject })
    }

    /// May a queue chat bring `seeker` and `expert` together?
    pub fn may_meet(&self, seeker: UserId, expert: UserId) -> bool {
        self.allows(&Act::Meet { seeker, expert })
    }

    /// People whose view of each other this snapshot and `before` judge differently — who
    /// must be re-judged when the snapshot replaces `before`. Only people in walled groups
    /// (in either) can be affected.
    pub fn changed_pairs(&self, before: &Snapshot, people: &[UserId]) -> Vec<(UserId, UserId)> {
        let touched: Vec<UserId> =
            people.iter().copied().filter(|u| self.walls.is_walled(*u) || before.walls.is_walled(*u)).collect();
        let mut out = Vec::new();
        for (i, a) in touched.iter().enumerate() {
            for b in &touched[i + 1..] {
                if self.may_see(*a, *b) != before.may_see(*a, *b) {
                    out.push((*a, *b));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::{ConversationKind, Member};
    use crate::directory::{Address, GroupId};

    const ENG: GroupId = GroupId(1);
    const FIN: GroupId = GroupId(2);
    const ALICE: UserId = UserId(1); // engineering
    const PEGGY: UserId = UserId(2); // finance
    const TRENT: UserId = UserId(3); // nowhere walled

    fn snapshot(mode: WallMode) -> Snapshot {
        let wall = Wall {
            id: 7,
            name: "Chinese wall".into(),
            group_a: ENG,
            group_b: FIN,
            mode,
            enabled: true,
            created_at: 0,
            updated_at: 0,
        };
        let people = [(ALICE, "Alice", "alice@example.com"), (PEGGY, "Peggy", "peggy@example.com")];
        Snapshot::new(
            WallIndex::new(
                [wall],
                [(ENG, ALICE), (FIN, PEGGY)],
                people.iter().map(|(u, n, a)| (*u, n.to_string(), a.to_string())),
            ),
            3,
        )
    }

    fn conversation(members: &[UserId]) -> Conversation {
        Conversation {
            id: ConversationId(9),
            kind: ConversationKind::Group,
            title: String::new(),
            created_at: 0,
            members: members
                .iter()
                .map(|u| Member { id: *u, address: Address::parse(&format!("u{}@example.com", u.0)).unwrap() })
                .collect(),
        }
    }

    #[test]
    fn a_blocking_wall_refuses_every_act_between_the_two_and_names_the_crossing() {
        let s = snapshot(WallMode::Block);
        let conv = conversation(&[ALICE, PEGGY, TRENT]);
        let acts = [
            Act::Message { sender: ALICE, conversation: &conv },
            Act::Signal { actor: PEGGY, to: ALICE },
            Act::Gather { actor: TRENT, subject: ALICE, others: &[TRENT, PEGGY], conversation: None, what: "invite" },
            Act::GatherAll { actor: TRENT, people: &[TRENT, ALICE, PEGGY], what: "start" },
            Act::Meet { seeker: PEGGY, expert: ALICE },
            Act::Observe { viewer: ALICE, subject: PEGGY },
        ];
        for act in acts {
            match s.admit(&act) {
                Err(r) => {
                    assert_eq!(r.crossing.wall, 7);
                    assert_eq!(r.crossing.mode, WallMode::Block);
                }
                Ok(_) => panic!("{act:?} was admitted across a blocking wall"),
            }
        }
        let r = s.admit(&Act::Message { sender: ALICE, conversation: &conv }).unwrap_err();
        assert_eq!(r.notice, "Chats with Peggy have been prohibited by your administrator.");
        assert_eq!(
            (r.crossing.actor_address.as_str(), r.crossing.other_address.as_str()),
            ("alice@example.com", "peggy@example.com")
        );
        let r = s
            .admit(&Act::Gather { actor: TRENT, subject: ALICE, others: &[PEGGY], conversation: None, what: "invite" })
            .unwrap_err();
        assert_eq!(r.notice, "Chats between Alice and Peggy have been prohibited by your administrator.");
        // Anyone else passes, and an admission carries no flags.
        let a = s.admit(&Act::Message { sender: TRENT, conversation: &conversation(&[TRENT, ALICE]) }).unwrap();
        assert!(a.flags().is_empty() && a.version() == 3);
    }

    #[test]
    fn a_monitoring_wall_flags_what_is_written_and_lets_the_rest_pass() {
        let s = snapshot(WallMode::Monitor);
        let conv = conversation(&[ALICE, PEGGY]);
        let a = s.admit(&Act::Message { sender: ALICE, conversation: &conv }).unwrap();
        assert_eq!(a.flags().len(), 1);
        let (v, entry) = a.flags()[0].record(42);
        assert_eq!((v.action.as_str(), v.wall, v.conversation), ("flagged", 7, Some(9)));
        assert_eq!(entry.kind, "wall.flagged");
        assert!(entry.meta.contains("\"other\":\"peggy@example.com\""), "{}", entry.meta);
        for act in [Act::Signal { actor: ALICE, to: PEGGY }, Act::Meet { seeker: ALICE, expert: PEGGY }] {
            assert!(s.admit(&act).unwrap().flags().is_empty());
        }
        assert!(s.may_see(ALICE, PEGGY));
    }

    #[test]
    fn changed_pairs_names_who_must_be_re_judged() {
        let (open, walled) = (Snapshot::default(), snapshot(WallMode::Block));
        assert_eq!(walled.changed_pairs(&open, &[ALICE, PEGGY, TRENT]), vec![(ALICE, PEGGY)]);
        assert!(open.changed_pairs(&open, &[ALICE, PEGGY]).is_empty());
        assert_eq!(open.changed_pairs(&walled, &[ALICE, PEGGY]), vec![(ALICE, PEGGY)]);
    }

    #[test]
    fn archive_metadata_is_valid_json_whatever_the_names() {
        assert_eq!(json_string("a\"b\\c\nd"), "\"a\\\"b\\\\c\\u000ad\"");
    }
}
