//! The property: random acts and wall/membership changes; nothing crosses a wall.

use super::*;

// ------------------------------------------------------------------ 10. the property

const PEOPLE: [&str; 4] = ["alice", "bob", "carol", "dave"];

#[derive(Debug, Clone)]
enum Target {
    /// The 1:1 with the person this many places on (1..=3).
    Direct(usize),
    Group,
}

#[derive(Debug, Clone)]
enum Step {
    /// Enable or disable the block wall red / blue.
    Wall(bool),
    /// Add the person to the group (red or blue), or take them out if they are in it.
    Flip {
        who: usize,
        red: bool,
    },
    Direct {
        from: usize,
        to: usize,
        ws: bool,
    },
    Group {
        from: usize,
        ws: bool,
    },
    Typing {
        from: usize,
        to: Target,
    },
    Read {
        from: usize,
        to: Target,
        ws: bool,
    },
    Invite {
        from: usize,
        who: usize,
    },
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let pair = (0..4usize, 1..4usize).prop_map(|(a, k)| (a, (a + k) % 4));
    let target = prop_oneof![(1..4usize).prop_map(Target::Direct), Just(Target::Group)];
    let step = prop_oneof![
        3 => prop_oneof![3 => Just(true), 1 => Just(false)].prop_map(Step::Wall),
        3 => (0..4usize, any::<bool>()).prop_map(|(who, red)| Step::Flip { who, red }),
        3 => (pair.clone(), any::<bool>()).prop_map(|((from, to), ws)| Step::Direct { from, to, ws }),
        2 => (0..4usize, any::<bool>()).prop_map(|(from, ws)| Step::Group { from, ws }),
        2 => (0..4usize, target.clone()).prop_map(|(from, to)| Step::Typing { from, to }),
        2 => (0..4usize, target, any::<bool>()).prop_map(|(from, to, ws)| Step::Read { from, to, ws }),
        1 => pair.prop_map(|(from, who)| Step::Invite { from, who }),
    ];
    let len = std::env::var("SWITCHBOARD_BYPASS_STEPS").ok().and_then(|v| v.parse().ok()).unwrap_or(25usize);
    prop::collection::vec(step, 1..=len)
}

/// Who is walled from whom, as the test keeps it.
#[derive(Debug, Clone)]
struct Model {
    wall: bool,
    red: [bool; 4],
    blue: [bool; 4],
}

impl Model {
    fn initial() -> Model {
        Model { wall: false, red: [true, true, false, false], blue: [false, false, true, true] }
    }
    fn walled(&self, a: usize, b: usize) -> bool {
        self.wall && a != b && ((self.red[a] && self.blue[b]) || (self.blue[a] && self.red[b]))
    }
}

struct World {
    app: TestApp,
    officer: Client,
    wall: i64,
    groups: [sb_core::GroupId; 2], // red, blue
    ids: Vec<sb_core::UserId>,
    clients: Vec<Client>,
    sockets: Vec<Ws>,
    marks: Vec<Mark>,
    direct: [[i64; 4]; 4],
    group: i64,
    /// Acts tried between people walled at the time, and acts that went through.
    walled_acts: usize,
    delivered: usize,
}

fn who_is(address: &str) -> Option<usize> {
    PEOPLE.iter().position(|p| at(p) == address)
}

impl World {
    async fn new(app: &TestApp) -> World {
        let officer = app.login("trent").await;
        let red = group_of(app, "red", &["alice", "bob"]).await;
        let blue = group_of(app, "blue", &["carol", "dave"]).await;
        let wall_id = wall(&officer, "red", "blue", "block").await;
        set_wall(&officer, wall_id, false).await.unwrap();
        let mut ids = Vec::new();
        let mut clients = Vec::new();
        let mut sockets = Vec::new();
        let mut marks = Vec::new();
        for p in PEOPLE {
            ids.push(user_id(app, p).await);
            let c = app.login(p).await;
            sockets.push(c.ws_with("presence=none").await);
            marks.push(Mark::new(&c, p).await);
            clients.push(c);
        }
        let mut direct = [[0i64; 4]; 4];
        for a in 0..4 {
            for b in a + 1..4 {
                let id = clients[a].direct_with(PEOPLE[b]).await;
                direct[a][b] = id;
                direct[b][a] = id;
            }
        }
        World {
            app: app.clone(),
            officer,
            wall: wall_id,
            groups: [red, blue],
            ids,
            clients,
            sockets,
            marks,
            direct,
            group: 0,
            walled_acts: 0,
            delivered: 0,
        }
    }

    /// Back to the start: the wall off, alice and bob red, carol and dave blue, a new group
    /// chat of all four, every socket's backlog read.
    async fn reset(&mut self) -> Result<(), String> {
        set_wall(&self.officer, self.wall, false).await?;
        let store = self.app.service.store().clone();
        let memberships = store.group_memberships().await.map_err(|e| e.to_string())?;
        let initial = Model::initial();
        for (i, id) in self.ids.iter().enumerate() {
            for (g, want) in [(self.groups[0], initial.red[i]), (self.groups[1], initial.blue[i])] {
                let has = memberships.contains(&(g, *id));
                if want && !has {
                    store.add_group_member(g, *id).await.map_err(|e| e.to_string())?;
                } else if !want && has {
                    store.remove_group_member(g, *id).await.map_err(|e| e.to_string())?;
                }
            }
        }
        self.app.service.reload_policy().await.map_err(|e| e.to_string())?;
        let (s, g) = self.clients[0]
            .post("/api/v1/conversations", json!({"kind": "group", "title": "four", "members": ["bob@example.com", "carol@example.com", "dave@example.com"]}))
            .await;
        if s != StatusCode::CREATED {
            return Err(format!("group chat: {s} {g}"));
        }
        self.group = g["id"].as_i64().unwrap();
        for i in 0..4 {
            self.marks[i].try_frames(&self.clients[i], &mut self.sockets[i]).await?;
        }
        Ok(())
    }

    /// The group chat's members now (of the four), as the store has them.
    async fn group_members(&self) -> Result<Vec<usize>, String> {
        let c = self
            .app
            .service
            .store()
            .conversation(sb_core::ConversationId(self.group))
            .await
            .map_err(|e| e.to_string())?;
        Ok(c.map(|c| c.members.iter().filter_map(|m| who_is(m.address.as_str())).collect()).unwrap_or_default())
    }

    /// The conversation an act aims at, and who else is in it.
    async fn target(&self, from: usize, to: &Target) -> Result<(i64, Vec<usize>, bool), String> {
        Ok(match to {
            Target::Direct(k) => {
                let other = (from + k) % 4;
                (self.direct[from][other], vec![other], true)
            }
            Target::Group => {
                let members = self.group_members().await?;
                let member = members.contains(&from);
                (self.group, members.into_iter().filter(|m| *m != from).collect(), member)
            }
        })
    }

    async fn last_event(&self, who: usize, conv: i64) -> Option<i64> {
        let (s, h) = self.clients[who].get(&format!("/api/v1/conversations/{conv}/messages?limit=1")).await;
        if s != StatusCode::OK {
            return None;
        }
        h["events"].as_array().and_then(|e| e.last()).and_then(|e| e["id"].as_i64())
    }

    /// A message from `from` into `conv`: Ok(true) stored, Ok(false) refused as blocked.
    async fn say(&mut self, from: usize, conv: i64, body: &str, ws: bool) -> Result<Option<bool>, String> {
        if ws {
            let r = ws_send(&mut self.sockets[from], conv, body, body).await;
            return Ok(match (r["type"].as_str(), r["code"].as_str()) {
                (Some("ack"), _) => Some(true),
                (_, Some("blocked")) => Some(false),
                (_, Some("not_found")) => None,
                _ => return Err(format!("unexpected answer to a send: {r}")),
            });
        }
        let (s, v) = post_message(&self.clients[from], conv, body).await;
        Ok(match (s, code(&v)) {
            (StatusCode::CREATED, _) => Some(true),
            (StatusCode::FORBIDDEN, Some("blocked")) => Some(false),
            (StatusCode::NOT_FOUND, _) => None,
            _ => return Err(format!("unexpected answer to a send: {s} {v}")),
        })
    }

    /// Run one case; Err says which step let what through.
    async fn run(&mut self, case: usize, steps: &[Step]) -> Result<(), String> {
        self.reset().await?;
        let mut m = Model::initial();
        for (i, step) in steps.iter().enumerate() {
            let tag = format!("c{case}-s{i}");
            let context = |m: &Model| format!("case {case} step {i} {step:?}; model {m:?}; steps {steps:?}");
            // What must reach whom (receiver, kind, from): checked after the markers.
            let mut must: Vec<(usize, &'static str, usize)> = Vec::new();
            match step {
                Step::Wall(on) => {
                    set_wall(&self.officer, self.wall, *on).await?;
                    m.wall = *on;
                }
                Step::Flip { who, red } => {
                    let (g, member) =
                        if *red { (self.groups[0], &mut m.red[*who]) } else { (self.groups[1], &mut m.blue[*who]) };
                    let store = self.app.service.store().clone();
                    if *member {
                        store.remove_group_member(g, self.ids[*who]).await.map_err(|e| e.to_string())?;
                    } else {
                        store.add_group_member(g, self.ids[*who]).await.map_err(|e| e.to_string())?;
                    }
                    *member = !*member;
                    self.app.service.reload_policy().await.map_err(|e| e.to_string())?;
                }
                Step::Direct { from, to, ws } => {
                    let walled = m.walled(*from, *to);
                    let stored = self.say(*from, self.direct[*from][*to], &tag, *ws).await?;
                    match (walled, stored) {
                        (true, Some(true)) => {
                            return Err(format!("a 1:1 message across the wall was stored: {}", context(&m)))
                        }
                        (false, Some(false)) | (_, None) => {
                            return Err(format!(
                                "a 1:1 message without a wall was refused ({stored:?}): {}",
                                context(&m)
                            ))
                        }
                        (false, Some(true)) => must.push((*to, "message", *from)),
                        (true, Some(false)) => {}
                    }
                    self.walled_acts += walled as usize;
                }
                Step::Group { from, ws } => {
                    let members = self.group_members().await?;
                    let walled = members.iter().any(|x| m.walled(*from, *x));
                    let stored = self.say(*from, self.group, &tag, *ws).await?;
                    if members.contains(from) {
                        match (walled, stored) {
                            (true, Some(true)) => {
                                return Err(format!(
                                    "a group message with a walled member was stored (members {members:?}): {}",
                                    context(&m)
                                ))
                            }
                            (false, Some(true)) => {
                                must.extend(members.iter().filter(|x| *x != from).map(|x| (*x, "message", *from)))
                            }
                            (false, _) => {
                                return Err(format!(
                                    "a group message without a wall was refused ({stored:?}): {}",
                                    context(&m)
                                ))
                            }
                            (true, _) => {}
                        }
                        self.walled_acts += walled as usize;
                    } else if stored == Some(true) {
                        return Err(format!("a non-member wrote into the group chat: {}", context(&m)));
                    }
                }
                Step::Typing { from, to } => {
                    let (conv, others, member) = self.target(*from, to).await?;
                    let walled = others.iter().any(|x| m.walled(*from, *x));
                    self.sockets[*from].send(json!({"type": "typing", "conversation": conv, "active": true})).await;
                    ws_sync(&mut self.sockets[*from]).await?;
                    if member && !walled {
                        must.extend(others.iter().map(|x| (*x, "typing", *from)));
                    }
                    self.walled_acts += (member && walled) as usize;
                }
                Step::Read { from, to, ws } => {
                    let (conv, others, member) = self.target(*from, to).await?;
                    let walled = others.iter().any(|x| m.walled(*from, *x));
                    if let Some(up_to) = self.last_event(*from, conv).await {
                        if *ws {
                            self.sockets[*from]
                                .send(json!({"type": "read", "conversation": conv, "up_to": up_to}))
                                .await;
                            ws_sync(&mut self.sockets[*from]).await?;
                        } else {
                            let (s, v) = self.clients[*from]
                                .post(&format!("/api/v1/conversations/{conv}/read"), json!({"up_to": up_to}))
                                .await;
                            if s.is_server_error() {
                                return Err(format!("read marker: {s} {v}"));
                            }
                        }
                        if member && !walled {
                            must.extend(others.iter().map(|x| (*x, "read", *from)));
                        }
                        self.walled_acts += (member && walled) as usize;
                    }
                }
                Step::Invite { from, who } => {
                    let members = self.group_members().await?;
                    if members.contains(from) && !members.contains(who) {
                        let walled = members.iter().any(|x| m.walled(*who, *x));
                        let (s, v) = self.clients[*from]
                            .post(
                                &format!("/api/v1/conversations/{}/members", self.group),
                                json!({"address": at(PEOPLE[*who])}),
                            )
                            .await;
                        match walled {
                            true if (s, code(&v)) != (StatusCode::FORBIDDEN, Some("blocked")) => {
                                return Err(format!("an invitation across the wall: {s} {v}: {}", context(&m)))
                            }
                            false if !s.is_success() => {
                                return Err(format!("an invitation without a wall refused: {s} {v}: {}", context(&m)))
                            }
                            _ => {}
                        }
                        self.walled_acts += walled as usize;
                    }
                }
            }
            // The group chat never holds two people walled from each other.
            let members = self.group_members().await?;
            for a in &members {
                for b in &members {
                    if m.walled(*a, *b) {
                        return Err(format!(
                            "{} and {} are both still in the group chat: {}",
                            PEOPLE[*a],
                            PEOPLE[*b],
                            context(&m)
                        ));
                    }
                }
            }
            // Nothing crossed; what should arrive did.
            #[allow(clippy::needless_range_loop)] // r indexes marks, clients and sockets alike
            for r in 0..PEOPLE.len() {
                let frames = self.marks[r].try_frames(&self.clients[r], &mut self.sockets[r]).await?;
                for f in &frames {
                    let (kind, sender) = match f["type"].as_str() {
                        Some("event") if f["event"]["kind"] == "message" => ("message", f["event"]["sender"].as_str()),
                        Some("typing") => ("typing", f["user"].as_str()),
                        Some("read") => ("read", f["user"].as_str()),
                        _ => continue,
                    };
                    let Some(s) = sender.and_then(who_is) else { continue };
                    if s != r && m.walled(s, r) {
                        return Err(format!(
                            "{kind} from {} reached {} across the wall: {f}; {}",
                            PEOPLE[s],
                            PEOPLE[r],
                            context(&m)
                        ));
                    }
                }
                for (to, kind, from) in must.iter().filter(|(to, _, _)| *to == r) {
                    let arrived = frames.iter().any(|f| match *kind {
                        "message" => f["type"] == "event" && f["event"]["body"] == tag.as_str(),
                        k => f["type"] == k && f["user"] == at(PEOPLE[*from]).as_str(),
                    });
                    if !arrived {
                        return Err(format!(
                            "{kind} from {} never reached {}: {frames:?}; {}",
                            PEOPLE[*from],
                            PEOPLE[*to],
                            context(&m)
                        ));
                    }
                    self.delivered += 1;
                }
            }
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_message_typing_or_read_marker_crosses_a_wall_whatever_happens_in_between() {
    let app = TestApp::start(Backend::Sqlite, Default::default()).await;
    let world = World::new(&app).await;
    let cases = std::env::var("SWITCHBOARD_BYPASS_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed = match std::env::var("PROPTEST_RNG_SEED").ok().as_deref() {
        Some("random") => rand::random(),
        Some(v) => v.parse().expect("PROPTEST_RNG_SEED is a number or `random`"),
        None => 0x5eed_b1a5_0000_0010,
    };
    let shrink = std::env::var("SWITCHBOARD_BYPASS_SHRINK").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    eprintln!("bypass property: {cases} cases, PROPTEST_RNG_SEED={seed}");
    let rt = tokio::runtime::Handle::current();
    let (result, world) = tokio::task::spawn_blocking(move || {
        let world = std::cell::RefCell::new(world);
        let case = std::cell::Cell::new(0usize);
        let mut runner = TestRunner::new(Config {
            cases,
            rng_seed: RngSeed::Fixed(seed),
            failure_persistence: None,
            max_shrink_iters: shrink,
            ..Config::default()
        });
        let result = runner
            .run(&steps(), |steps| {
                let n = case.get();
                case.set(n + 1);
                let mut w = world.borrow_mut();
                rt.block_on(w.run(n, &steps)).map_err(TestCaseError::fail)
            })
            .map_err(|e| e.to_string());
        (result, world.into_inner())
    })
    .await
    .unwrap();
    eprintln!(
        "bypass property: {} acts between walled people, {} deliveries checked",
        world.walled_acts, world.delivered
    );
    let walled_acts = world.walled_acts;
    drop(world);
    app.finish().await;
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(walled_acts > 0, "no case ever acted across a wall: the property proved nothing");
}
