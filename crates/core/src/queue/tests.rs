use super::*;
use QueueEvent as E;

const A: UserId = UserId(1);
const B: UserId = UserId(2);
const C: UserId = UserId(3);
/// Whoever asks, unless a test needs two seekers.
const SEEKER: UserId = UserId(100);

fn queue(method: RoutingMethod, members: &[(UserId, i32)]) -> QueueConfig {
    QueueConfig { members: members.to_vec(), ..QueueConfig::new("support", method) }
}

fn router(method: RoutingMethod, members: &[(UserId, i32)]) -> Router {
    let mut r = Router::new();
    r.configure(queue(method, members), 0);
    r
}

fn offers(events: &[QueueEvent]) -> Vec<(ChatId, UserId)> {
    events
        .iter()
        .filter_map(|e| if let E::Offered { chat, expert, .. } = e { Some((*chat, *expert)) } else { None })
        .collect()
}

/// A policy with a blocking wall between `a` and `b`.
fn walled(a: UserId, b: UserId) -> Arc<Snapshot> {
    use crate::directory::GroupId;
    use crate::walls::{Wall, WallIndex, WallMode};
    let wall = Wall {
        id: 1,
        name: "w".into(),
        group_a: GroupId(1),
        group_b: GroupId(2),
        mode: WallMode::Block,
        enabled: true,
        created_at: 0,
        updated_at: 0,
    };
    Arc::new(Snapshot::new(WallIndex::new([wall], [(GroupId(1), a), (GroupId(2), b)], []), 1))
}

/// A policy with a blocking wall between each pair (each pair its own two groups).
fn walls(pairs: &[(UserId, UserId)]) -> Arc<Snapshot> {
    use crate::directory::GroupId;
    use crate::walls::{Wall, WallIndex, WallMode};
    let mut walls = Vec::new();
    let mut memberships = Vec::new();
    for (i, (a, b)) in pairs.iter().enumerate() {
        let (ga, gb) = (GroupId(2 * i as i64 + 1), GroupId(2 * i as i64 + 2));
        let (created_at, updated_at) = (0, 0);
        walls.push(Wall {
            id: i as i64 + 1,
            name: format!("w{i}"),
            group_a: ga,
            group_b: gb,
            mode: WallMode::Block,
            enabled: true,
            created_at,
            updated_at,
        });
        memberships.extend([(ga, *a), (gb, *b)]);
    }
    Arc::new(Snapshot::new(WallIndex::new(walls, memberships, []), pairs.len() as u64))
}

fn online(r: &mut Router, experts: &[UserId], now: Millis) {
    for e in experts {
        r.set_presence(*e, true, true, now);
        r.check_invariants().unwrap();
    }
}

#[test]
fn broadcast_offers_everyone_and_the_first_accept_wins() {
    let mut r = router(RoutingMethod::Broadcast, &[(A, 0), (B, 0), (C, 0)]);
    online(&mut r, &[A, B, C], 0);
    let ev = r.request("support", ChatId(1), SEEKER, 10).unwrap();
    assert_eq!(offers(&ev).len(), 3);
    let ev = r.accept(ChatId(1), B, 20).unwrap();
    let withdrawn: Vec<UserId> = ev
        .iter()
        .filter_map(|e| {
            if let E::OfferWithdrawn { expert, reason: WithdrawReason::TakenByOther, .. } = e {
                Some(*expert)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(withdrawn, vec![A, C]);
    assert!(ev.contains(&E::Assigned { chat: ChatId(1), expert: B, waited_ms: 10 }));
    assert_eq!(r.accept(ChatId(1), A, 21), Err(RouteError::NotOffered), "a chat is assigned once");
    r.check_invariants().unwrap();
}

#[test]
fn longest_idle_picks_who_waited_longest() {
    let mut r = router(RoutingMethod::LongestIdle, &[(A, 0), (B, 0)]);
    r.set_presence(B, true, true, 0);
    r.set_presence(A, true, true, 5);
    let ev = r.request("support", ChatId(1), SEEKER, 10).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    r.accept(ChatId(1), B, 11).unwrap();
    r.end(ChatId(1), 30).unwrap(); // no wrap-up time: closed at once; B idle since 30, A since 5
    let ev = r.request("support", ChatId(2), SEEKER, 40).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(2), A)]);
}

#[test]
fn round_robin_rotates_through_members() {
    let mut r = router(RoutingMethod::RoundRobin, &[(A, 0), (B, 0), (C, 0)]);
    for q in r.queues.values_mut() {
        q.capacity = 5;
    }
    online(&mut r, &[A, B, C], 0);
    let mut got = Vec::new();
    for i in 1..=6 {
        let ev = r.request("support", ChatId(i), SEEKER, i as Millis).unwrap();
        let (_, who) = offers(&ev)[0];
        r.accept(ChatId(i), who, i as Millis).unwrap();
        got.push(who);
    }
    assert_eq!(got, vec![A, B, C, A, B, C]);
}

#[test]
fn least_busy_prefers_fewest_open_chats() {
    let mut r = router(RoutingMethod::LeastBusy, &[(A, 0), (B, 0)]);
    for q in r.queues.values_mut() {
        q.capacity = 3;
    }
    r.set_presence(A, true, true, 0);
    r.set_presence(B, true, true, 1);
    let first = offers(&r.request("support", ChatId(1), SEEKER, 2).unwrap());
    assert_eq!(first, vec![(ChatId(1), A)], "tie on load: longest idle");
    r.accept(ChatId(1), A, 3).unwrap();
    let second = offers(&r.request("support", ChatId(2), SEEKER, 4).unwrap());
    assert_eq!(second, vec![(ChatId(2), B)]);
    r.accept(ChatId(2), B, 5).unwrap();
    r.close(ChatId(2), 6).unwrap();
    let third = offers(&r.request("support", ChatId(3), SEEKER, 7).unwrap());
    assert_eq!(third, vec![(ChatId(3), B)], "B has 0 open, A has 1");
}

#[test]
fn serial_follows_priority_and_falls_through_on_decline() {
    let mut r = router(RoutingMethod::Serial, &[(A, 2), (B, 1), (C, 3)]);
    online(&mut r, &[A, B, C], 0);
    let ev = r.request("support", ChatId(1), SEEKER, 1).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    let ev = r.decline(ChatId(1), B, 2).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(1), A)]);
    let ev = r.decline(ChatId(1), A, 3).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(1), C)]);
    // Everyone declined: a new round starts with the first again — never only once.
    let ev = r.decline(ChatId(1), C, 4).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    r.check_invariants().unwrap();
}

#[test]
fn manual_queues_offer_nothing_and_experts_pick_oldest_or_any() {
    let mut r = router(RoutingMethod::Manual, &[(A, 0), (B, 0)]);
    online(&mut r, &[A, B], 0);
    assert!(offers(&r.request("support", ChatId(1), SEEKER, 1).unwrap()).is_empty());
    r.request("support", ChatId(2), SEEKER, 2).unwrap();
    assert_eq!(r.waiting("support"), vec![ChatId(1), ChatId(2)]);
    assert_eq!(r.accept(ChatId(2), UserId(99), 3), Err(RouteError::NotAMember));
    r.accept(ChatId(2), A, 3).unwrap();
    assert_eq!(r.accept(ChatId(1), A, 4), Err(RouteError::OverCapacity), "capacity 1");
    r.accept(ChatId(1), B, 4).unwrap();
    r.check_invariants().unwrap();
}

#[test]
fn timed_out_offers_move_on_as_often_as_needed() {
    let mut r = router(RoutingMethod::LongestIdle, &[(A, 0), (B, 0)]);
    online(&mut r, &[A, B], 0);
    let ev = r.request("support", ChatId(1), SEEKER, 0).unwrap();
    let mut who = offers(&ev)[0].1;
    let mut seen = Vec::new();
    let mut now = 0;
    for _ in 0..10 {
        now += 30_000;
        assert_eq!(r.next_deadline(), Some(now));
        let ev = r.tick(now);
        assert!(ev.contains(&E::OfferTimedOut { chat: ChatId(1), expert: who }));
        who = offers(&ev)[0].1;
        seen.push(who);
        r.check_invariants().unwrap();
    }
    assert!(seen.contains(&A) && seen.contains(&B), "alternates: {seen:?}");
    r.accept(ChatId(1), who, now + 1).unwrap();
}

#[test]
fn going_away_withdraws_offers_at_once_and_reoffers() {
    let mut r = router(RoutingMethod::Serial, &[(A, 0), (B, 1)]);
    online(&mut r, &[A, B], 0);
    r.request("support", ChatId(1), SEEKER, 1).unwrap();
    assert_eq!(r.offers_of(A), vec![ChatId(1)]);
    let ev = r.set_presence(A, true, false, 2); // away
    assert_eq!(ev[0], E::OfferWithdrawn { chat: ChatId(1), expert: A, reason: WithdrawReason::ExpertUnavailable });
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    let ev = r.set_presence(B, false, false, 3); // offline
    assert!(offers(&ev).is_empty());
    assert_eq!(r.state(ChatId(1)), Some(ChatState::Queued));
    let ev = r.set_presence(A, true, true, 4);
    assert_eq!(offers(&ev), vec![(ChatId(1), A)], "back and ready: offered again");
}

#[test]
fn walls_no_experts_and_max_wait_overflow() {
    let mut r = router(RoutingMethod::Broadcast, &[(A, 0), (B, 0)]);
    let ev = r.request("support", ChatId(1), SEEKER, 0).unwrap();
    assert_eq!(
        ev.last(),
        Some(&E::Overflowed { chat: ChatId(1), queue: "support".into(), reason: OverflowReason::NoExpertSignedIn })
    );
    online(&mut r, &[A, B], 0);
    r.set_policy(walled(SEEKER, A), 1);
    let ev = r.request("support", ChatId(2), SEEKER, 1).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(2), B)], "walled expert skipped");
    for q in r.queues.values_mut() {
        q.max_wait_ms = Some(60_000);
    }
    r.decline(ChatId(2), B, 2).unwrap();
    let ev = r.tick(60_001);
    assert!(ev.contains(&E::Overflowed { chat: ChatId(2), queue: "support".into(), reason: OverflowReason::MaxWait }));
    assert_eq!(r.state(ChatId(2)), None);
    assert_eq!(r.request("nope", ChatId(3), SEEKER, 0), Err(RouteError::NoSuchQueue));
}

#[test]
fn oldest_waiting_chat_is_served_first_with_positions() {
    let mut r = router(RoutingMethod::LongestIdle, &[(A, 0)]);
    r.set_presence(A, true, true, 0);
    r.request("support", ChatId(1), SEEKER, 1).unwrap();
    r.request("support", ChatId(2), SEEKER, 2).unwrap();
    r.request("support", ChatId(3), SEEKER, 3).unwrap();
    assert_eq!((r.position(ChatId(2)), r.position(ChatId(3))), (Some(2), Some(3)));
    r.accept(ChatId(1), A, 4).unwrap();
    assert_eq!(r.position(ChatId(2)), Some(1));
    let s = r.stats("support", 10).unwrap();
    assert_eq!((s.experts_total, s.signed_in, s.ready, s.busy, s.waiting, s.active_chats), (1, 1, 0, 1, 2, 1));
    assert_eq!(s.longest_wait_ms, 8);
    let ev = r.end(ChatId(1), 12).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(2), A)], "the older of the two");
}

#[test]
fn seekers_who_left_leave_the_line_after_the_grace() {
    // A is signed in but not available: three chats wait.
    let mut r = router(RoutingMethod::LongestIdle, &[(A, 0)]);
    r.set_presence(A, true, false, 0);
    for c in 1..=3 {
        r.request("support", ChatId(c), SEEKER, c as Millis).unwrap();
    }
    assert_eq!(r.seeker_away(ChatId(9), 100), Err(RouteError::NoSuchChat));
    // The second seeker goes at 10 (a grace of 1 s); the first goes and comes back (a reload).
    r.seeker_away(ChatId(2), 1010).unwrap();
    r.seeker_away(ChatId(1), 1500).unwrap();
    r.seeker_back(ChatId(1)).unwrap();
    assert_eq!(r.next_deadline(), Some(1010));
    assert!(r.tick(1009).is_empty(), "within the grace it keeps its place");
    assert_eq!(r.position(ChatId(3)), Some(3));
    assert_eq!(r.stats("support", 1009).unwrap().waiting, 3);
    assert_eq!(r.tick(1010), vec![E::Abandoned { chat: ChatId(2) }]);
    r.check_invariants().unwrap();
    assert_eq!(r.state(ChatId(2)), None);
    assert_eq!((r.position(ChatId(1)), r.position(ChatId(3))), (Some(1), Some(2)), "counted nowhere");
    assert_eq!(r.stats("support", 1010).unwrap().waiting, 2);
    assert_eq!(r.seeker_away_until(ChatId(1)), None);

    // Away again keeps the first deadline.
    r.seeker_away(ChatId(3), 2000).unwrap();
    r.seeker_away(ChatId(3), 9000).unwrap();
    assert_eq!(r.seeker_away_until(ChatId(3)), Some(2000));
    // A ghost's open offer is withdrawn when it leaves; the next chat is offered.
    r.seeker_away(ChatId(1), 3000).unwrap();
    let ev = r.set_presence(A, true, true, 1500);
    assert_eq!(offers(&ev), vec![(ChatId(1), A)]);
    assert_eq!(r.tick(2000), vec![E::Abandoned { chat: ChatId(3) }], "never offered: nobody was free");
    let ev = r.tick(3000);
    assert_eq!(
        ev,
        vec![
            E::OfferWithdrawn { chat: ChatId(1), expert: A, reason: WithdrawReason::ChatGone },
            E::Abandoned { chat: ChatId(1) },
        ]
    );
    r.check_invariants().unwrap();
    assert!(r.waiting("support").is_empty());
    assert_eq!(r.next_deadline(), None);

    // An assigned chat is the expert's to end: the seeker being away does not.
    let ev = r.request("support", ChatId(4), SEEKER, 3100).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(4), A)]);
    r.accept(ChatId(4), A, 3150).unwrap();
    r.seeker_away(ChatId(4), 3200).unwrap();
    assert!(r.tick(4000).is_empty());
    assert_eq!(r.state(ChatId(4)), Some(ChatState::Assigned(A)));
}

#[test]
fn transfer_to_queue_and_to_expert() {
    let mut r = router(RoutingMethod::Serial, &[(A, 0), (B, 1)]);
    let mut sales = queue(RoutingMethod::Serial, &[(C, 0)]);
    sales.id = "sales".into();
    r.configure(sales, 0);
    online(&mut r, &[A, B, C], 0);
    r.request("support", ChatId(1), SEEKER, 0).unwrap();
    r.accept(ChatId(1), A, 1).unwrap();
    let ev = r.transfer(ChatId(1), None, Some(B), 2).unwrap();
    assert!(ev.contains(&E::Transferred { chat: ChatId(1), from: Some(A), to_queue: None, to_expert: Some(B) }));
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    assert!(r.open_chats_of(A).is_empty(), "A's capacity is free");
    r.accept(ChatId(1), B, 3).unwrap();
    let ev = r.transfer(ChatId(1), Some("sales"), None, 4).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(1), C)]);
    assert_eq!(r.transfer(ChatId(1), Some("nope"), None, 5), Err(RouteError::NoSuchQueue));
    r.check_invariants().unwrap();
}

#[test]
fn capacity_is_shared_across_queues_and_daily_caps_hold() {
    let mut r = router(RoutingMethod::Broadcast, &[(A, 0)]);
    let mut sales = queue(RoutingMethod::Broadcast, &[(A, 0)]);
    sales.id = "sales".into();
    sales.daily_cap = Some(2);
    r.configure(sales, 0);
    r.set_presence(A, true, true, 0);
    r.request("support", ChatId(1), SEEKER, 1).unwrap();
    let ev = r.request("sales", ChatId(2), SEEKER, 2).unwrap();
    assert!(offers(&ev).is_empty(), "A's one slot is taken by the support offer");
    r.accept(ChatId(1), A, 3).unwrap();
    r.close(ChatId(1), 4).unwrap();
    assert_eq!(r.offers_of(A), vec![ChatId(2)]);
    r.accept(ChatId(2), A, 5).unwrap();
    r.close(ChatId(2), 6).unwrap();
    // Two chats today (one per queue): the sales cap of 2 counts them both.
    let ev = r.request("sales", ChatId(3), SEEKER, 7).unwrap();
    assert!(offers(&ev).is_empty(), "daily cap of 2 reached in sales");
    let ev = r.request("support", ChatId(4), SEEKER, 8).unwrap();
    assert_eq!(offers(&ev), vec![(ChatId(4), A)], "support has no daily cap");
    r.accept(ChatId(4), A, 9).unwrap();
    r.close(ChatId(4), 10).unwrap();
    let ev = r.tick(DAY_MS + 1);
    assert_eq!(offers(&ev), vec![(ChatId(3), A)], "a new day");
}

#[test]
fn restored_chats_keep_their_place_and_their_expert() {
    let mut r = router(RoutingMethod::LongestIdle, &[(A, 0), (B, 0)]);
    online(&mut r, &[A, B], 100);
    assert!(offers(&r.restore("support", ChatId(7), SEEKER, 5, Some(A), false, 100)).is_empty());
    assert_eq!(r.open_chats_of(A), vec![ChatId(7)]);
    r.request("support", ChatId(8), SEEKER, 110).unwrap();
    let ev = r.restore("support", ChatId(6), SEEKER, 1, None, false, 120);
    assert!(offers(&ev).is_empty(), "B holds an offer for 8 already");
    assert_eq!(r.position(ChatId(6)), Some(1), "requested earlier than 8: first in line");
    r.check_invariants().unwrap();
    assert!(r.restore("nope", ChatId(9), SEEKER, 0, None, false, 0).is_empty());
}

#[test]
fn totals_compute_waits_handle_times_and_service_level() {
    let counts = vec![
        ("requested".to_string(), 4),
        ("offered".to_string(), 6),
        ("assigned".to_string(), 3),
        ("abandoned".to_string(), 1),
    ];
    let chats = [
        ChatTimes { requested_at: 0, assigned_at: Some(10_000), closed_at: Some(70_000), survey_rating: Some(5) },
        ChatTimes { requested_at: 0, assigned_at: Some(20_000), closed_at: Some(140_000), survey_rating: Some(2) },
        ChatTimes { requested_at: 0, assigned_at: Some(45_000), closed_at: None, survey_rating: None },
        ChatTimes { requested_at: 0, assigned_at: None, closed_at: Some(5_000), survey_rating: None },
    ];
    let t = QueueTotals::compute(&counts, &chats, 30_000);
    assert_eq!((t.requested, t.offered, t.accepted, t.abandoned, t.overflowed), (4, 6, 3, 1, 0));
    assert_eq!(t.avg_wait_s, Some(25.0));
    assert_eq!(t.p90_wait_s, Some(45.0));
    assert_eq!(t.avg_handle_s, Some(90.0));
    assert_eq!(t.service_level, Some(0.5), "2 of 4 answered within 30 s");
    assert_eq!(t.survey_average, Some(3.5));
    let empty = QueueTotals::compute(&[], &[], 30_000);
    assert_eq!((empty.avg_wait_s, empty.service_level), (None, None));
}

#[test]
fn wrap_up_holds_capacity_until_done_or_timed_out() {
    let mut q = queue(RoutingMethod::Serial, &[(A, 0)]);
    q.wrap_up_ms = 60_000;
    let mut r = Router::new();
    r.configure(q, 0);
    r.set_presence(A, true, true, 0);
    r.request("support", ChatId(1), SEEKER, 1).unwrap();
    r.accept(ChatId(1), A, 2).unwrap();
    r.request("support", ChatId(2), SEEKER, 3).unwrap();
    assert_eq!(r.end(ChatId(1), 10).unwrap(), vec![E::WrapUp { chat: ChatId(1), expert: A }]);
    assert_eq!(r.wrap_up_until(ChatId(1)), Some(60_010));
    assert!(r.offers_of(A).is_empty(), "wrap-up holds the capacity");
    assert_eq!(r.next_deadline(), Some(60_010));
    assert_eq!(r.finish_wrap_up(ChatId(1), B, 20), Err(RouteError::WrongState("not in wrap-up")));
    let ev = r.finish_wrap_up(ChatId(1), A, 20).unwrap();
    assert_eq!(ev[0], E::Closed { chat: ChatId(1) });
    assert_eq!(offers(&ev), vec![(ChatId(2), A)], "free again: the next chat is offered");
    r.accept(ChatId(2), A, 21).unwrap();
    r.end(ChatId(2), 30).unwrap();
    assert!(r.tick(60_029).is_empty());
    assert_eq!(r.tick(60_030), vec![E::Closed { chat: ChatId(2) }], "wrap-up time over");
    r.check_invariants().unwrap();
}

/// Hours of simulated traffic with every method, checked after every step — walls made
/// and taken down among the way: no chat is ever offered to, or assigned to, an expert the
/// policy of that moment keeps from its seeker.
#[test]
fn hours_of_random_traffic_keep_every_invariant() {
    let mut seed: u64 = 0x5eed_cafe;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for method in RoutingMethod::ALL {
        let experts: Vec<UserId> = (1..=8).map(UserId).collect();
        let mut r = Router::new();
        let mut q = queue(method, &experts.iter().map(|u| (*u, (u.0 % 3) as i32)).collect::<Vec<_>>());
        q.capacity = 2;
        q.wrap_up_ms = 5_000;
        q.max_wait_ms = Some(15 * 60_000);
        r.configure(q, 0);
        let (mut now, mut next_chat, mut assigned) = (0, 1u64, 0u32);
        while now < 6 * 3_600_000 {
            now += 1 + rnd(20_000) as Millis;
            let events = match rnd(11) {
                0..=2 => {
                    next_chat += 1;
                    let seeker = UserId(100 + rnd(4) as i64);
                    r.request("support", ChatId(next_chat), seeker, now).unwrap()
                }
                10 => {
                    // A new policy: each of the four seekers walled from one expert, or none.
                    let mut pairs: Vec<(UserId, UserId)> = Vec::new();
                    for s in 0..4 {
                        if rnd(2) == 0 {
                            pairs.push((UserId(100 + s), experts[rnd(8) as usize]));
                        }
                    }
                    r.set_policy(walls(&pairs), now)
                }
                3 => {
                    let e = experts[rnd(8) as usize];
                    r.set_presence(e, rnd(5) != 0, rnd(3) != 0, now)
                }
                4 | 5 => {
                    // Racing accepts: every expert with an offer (and, on manual queues,
                    // anyone) tries the same chat; exactly one may win.
                    let waiting = r.waiting("support");
                    let mut evs = Vec::new();
                    if let Some(chat) = waiting.first() {
                        let winners = experts
                            .iter()
                            .filter(|e| r.accept(*chat, **e, now).map(|ev| evs.extend(ev)).is_ok())
                            .count();
                        assert!(winners <= 1, "{method:?}: {winners} experts won {chat:?}");
                    }
                    evs
                }
                6 => {
                    let e = experts[rnd(8) as usize];
                    match r.offers_of(e).first() {
                        Some(c) => r.decline(*c, e, now).unwrap(),
                        None => Vec::new(),
                    }
                }
                7 => {
                    let e = experts[rnd(8) as usize];
                    match r.open_chats_of(e).first() {
                        Some(c) if r.state(*c) == Some(ChatState::Assigned(e)) => r.end(*c, now).unwrap(),
                        Some(c) => r.finish_wrap_up(*c, e, now).unwrap(),
                        None => Vec::new(),
                    }
                }
                8 => {
                    let e = experts[rnd(8) as usize];
                    match r.open_chats_of(e).first() {
                        Some(c) => r.close(*c, now).unwrap(),
                        None => Vec::new(),
                    }
                }
                _ => {
                    // Seekers come and go; those away for a minute leave the line.
                    let waiting = r.waiting("support");
                    if let Some(c) = waiting.get(rnd(waiting.len().max(1) as u64) as usize) {
                        match rnd(2) {
                            0 => r.seeker_away(*c, now + 60_000).unwrap(),
                            _ => r.seeker_back(*c).unwrap(),
                        }
                    }
                    r.tick(now)
                }
            };
            assigned += events.iter().filter(|e| matches!(e, E::Assigned { .. })).count() as u32;
            for e in &events {
                if let E::Offered { chat, expert, .. } | E::Assigned { chat, expert, .. } = e {
                    let seeker = r.seeker_of(*chat).expect("a routed chat is held");
                    assert!(r.policy.may_meet(seeker, *expert), "{method:?} at {now}: {e:?} across a wall");
                }
            }
            r.check_invariants().unwrap_or_else(|e| panic!("{method:?} at {now}: {e}"));
        }
        assert!(assigned > 100, "{method:?}: only {assigned} chats assigned");
    }
}

#[test]
fn a_wall_made_while_a_chat_waits_withdraws_its_offers_and_keeps_it_from_the_walled() {
    // An offer out to A when the wall is made: withdrawn at once, and B gets it.
    let mut r = router(RoutingMethod::Serial, &[(A, 0), (B, 1)]);
    online(&mut r, &[A, B], 0);
    assert_eq!(offers(&r.request("support", ChatId(1), SEEKER, 1).unwrap()), vec![(ChatId(1), A)]);
    let ev = r.set_policy(walled(SEEKER, A), 2);
    assert!(ev.contains(&E::OfferWithdrawn { chat: ChatId(1), expert: A, reason: WithdrawReason::Walled }));
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    assert_eq!(r.accept(ChatId(1), A, 3), Err(RouteError::Walled));
    r.check_invariants().unwrap();
    // B passes on it: a new round never comes back to A.
    let ev = r.decline(ChatId(1), B, 4).unwrap();
    assert!(offers(&ev).iter().all(|(_, e)| *e != A), "{ev:?}");
    r.check_invariants().unwrap();
}

#[test]
fn transfers_and_manual_takes_ask_the_policy_too() {
    let mut r = router(RoutingMethod::Broadcast, &[(A, 0)]);
    r.configure(QueueConfig { members: vec![(B, 0)], ..QueueConfig::new("billing", RoutingMethod::Broadcast) }, 0);
    r.configure(QueueConfig { members: vec![(C, 0)], ..QueueConfig::new("desk", RoutingMethod::Manual) }, 0);
    online(&mut r, &[A, B, C], 0);
    r.set_policy(walled(SEEKER, B), 0);
    r.request("support", ChatId(1), SEEKER, 1).unwrap();
    r.accept(ChatId(1), A, 2).unwrap();
    // To a queue whose only ready expert is walled from the seeker: it waits, offered to nobody.
    let ev = r.transfer(ChatId(1), Some("billing"), None, 3).unwrap();
    assert!(offers(&ev).is_empty(), "{ev:?}");
    // To that expert by name: moved, but not offered.
    let ev = r.transfer(ChatId(1), None, Some(B), 4).unwrap();
    assert!(offers(&ev).is_empty(), "{ev:?}");
    assert_eq!(r.accept(ChatId(1), B, 5), Err(RouteError::Walled));
    // A manual queue: a walled expert cannot pick the chat from the list.
    // The new policy walls another pair: the seeker-B wall is gone, so B is offered the
    // waiting chat at once.
    r.request("desk", ChatId(2), UserId(101), 6).unwrap();
    let ev = r.set_policy(walled(UserId(101), C), 7);
    assert_eq!(offers(&ev), vec![(ChatId(1), B)]);
    assert_eq!(r.accept(ChatId(2), C, 8), Err(RouteError::Walled));
    r.set_policy(Arc::new(Snapshot::default()), 9);
    r.accept(ChatId(2), C, 10).unwrap();
    r.check_invariants().unwrap();
}
