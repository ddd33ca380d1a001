//! Sign-in: passwords (Argon2 on bounded blocking threads), failed-sign-in delays per
//! account and client address, session tokens, applications.

use crate::{auth, ConnectionHolder, ConnectionPermit, Principal, Result, Service, ServiceError};
use sb_core::directory::parse_slug;
use sb_core::ratelimit::{Backoff, ClientKey};
use sb_core::store::{Application, AuthSession};
use sb_core::{Address, User, UserId};
use std::net::IpAddr;

/// Sign-in's own state: growing delays after failures per (account, client) and per
/// client, the connections each holder has open, and the Argon2 hashing slots.
pub(crate) struct SignIn {
    pub(crate) by_address: std::sync::Mutex<Backoff>,
    pub(crate) by_ip: std::sync::Mutex<Backoff>,
    pub(crate) connections: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<ConnectionHolder, usize>>>,
    pub(crate) argon2_slots: tokio::sync::Semaphore,
}

impl SignIn {
    pub(crate) fn new(s: &crate::Settings) -> Self {
        let backoff = |free| Backoff::new(free, s.login_delay_base_ms, s.login_delay_max_ms, s.login_window_ms);
        Self {
            by_address: std::sync::Mutex::new(backoff(s.login_failures_per_address)),
            by_ip: std::sync::Mutex::new(backoff(s.login_failures_per_ip)),
            connections: Default::default(),
            argon2_slots: tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())),
        }
    }
}

impl Service {
    /// Run Argon2 work (≈19 MiB and tens of ms each) at most one per core at a time: a
    /// burst of sign-ins queues instead of taking every core and a heap of memory.
    pub async fn argon2<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let _permit = self.signin.argon2_slots.acquire().await.ok()?;
        tokio::task::spawn_blocking(work).await.ok()
    }

    /// Sign in. Failures slow down who fails — the account from that client, and that
    /// client over all accounts — with growing delays; the account itself is never locked,
    /// so its owner signs in from elsewhere while an attacker waits.
    pub async fn login(&self, address: &str, password: &str, ip: IpAddr) -> Result<(String, AuthSession, User)> {
        let now = self.now();
        let ip_key = ClientKey::of(ip).to_string();
        let account = Address::parse(address).map(|a| a.to_string()).unwrap_or_else(|_| address.trim().to_lowercase());
        let key = format!("{account} {ip_key}");
        let limited = {
            let by_address = self.signin.by_address.lock().unwrap_or_else(|e| e.into_inner()).check(&key, now);
            let by_ip = self.signin.by_ip.lock().unwrap_or_else(|e| e.into_inner()).check(&ip_key, now);
            match (by_address, by_ip) {
                (Ok(()), Ok(())) => None,
                (a, b) => Some(a.err().unwrap_or(0).max(b.err().unwrap_or(0))),
            }
        };
        if let Some(retry_ms) = limited {
            self.metrics.logins_limited.inc();
            return Err(ServiceError::RateLimited((retry_ms as u64).div_ceil(1000)));
        }
        let user = match Address::parse(address) {
            Ok(a) => self.store.user_by_address(&a).await?,
            Err(_) => None,
        };
        let hash = match &user {
            Some(u) if !u.disabled => self.store.password_hash(u.id).await?,
            _ => None,
        };
        let password = password.to_string();
        let ok = self
            .argon2(move || {
                let phc = hash.as_deref().unwrap_or(auth::dummy_hash());
                auth::verify_password(&password, phc) && hash.is_some()
            })
            .await
            .unwrap_or(false);
        let Some(user) = user.filter(|_| ok) else {
            self.signin.by_address.lock().unwrap_or_else(|e| e.into_inner()).fail(&key, now);
            self.signin.by_ip.lock().unwrap_or_else(|e| e.into_inner()).fail(&ip_key, now);
            self.metrics.logins_failed.inc();
            return Err(ServiceError::BadCredentials);
        };
        self.signin.by_address.lock().unwrap_or_else(|e| e.into_inner()).clear(&key);
        self.metrics.logins_ok.inc();
        let (token, session) = self.issue_session(user.id).await?;
        Ok((token, session, user))
    }

    /// Create a session token for a user (sign-in, or an admin issuing one).
    pub async fn issue_session(&self, user: UserId) -> Result<(String, AuthSession)> {
        let now = self.now();
        let token = auth::new_token("sbs_");
        let session = AuthSession {
            token_hash: auth::token_hash(&token),
            user,
            csrf_token: auth::new_token(""),
            created_at: now,
            expires_at: now + self.settings.session_ttl_ms,
        };
        self.store.create_session(session.clone()).await?;
        Ok((token, session))
    }

    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let hash = auth::token_hash(token);
        if token.starts_with("sba_") {
            let app = self.store.application(&hash).await?.ok_or(ServiceError::Unauthenticated)?;
            return Ok(Principal::App(app));
        }
        let session = self.store.session(&hash, self.now()).await?.ok_or(ServiceError::Unauthenticated)?;
        // A retired guest (its chat is over) still reads its transcript and rates the chat
        // until its session ends; every door that writes or connects refuses it.
        let user = self
            .store
            .user(session.user)
            .await?
            .filter(|u| !u.disabled || u.is_guest())
            .ok_or(ServiceError::Unauthenticated)?;
        Ok(Principal::User { user, session })
    }

    pub async fn logout(&self, token: &str) -> Result<()> {
        Ok(self.store.delete_session(&auth::token_hash(token)).await?)
    }

    pub async fn create_application(&self, name: &str, scopes: &[String]) -> Result<(String, Application)> {
        let name = parse_slug(name)?;
        let token = auth::new_token("sba_");
        let app = self.store.create_application(&name, &auth::token_hash(&token), scopes, self.now()).await?;
        Ok((token, app))
    }

    /// Count a new connection from `ip` (an IPv6 client by its /64), refusing it over the
    /// per-address limit.
    pub fn admit_connection(&self, ip: IpAddr) -> Result<ConnectionPermit> {
        let limit = self.settings.max_connections_per_address;
        self.admit(ConnectionHolder::Client(ClientKey::of(ip)), limit).ok_or(ServiceError::TooManyConnections(limit))
    }

    /// One more connection of `holder`, unless it holds `limit` already.
    pub(crate) fn admit(&self, holder: ConnectionHolder, limit: usize) -> Option<ConnectionPermit> {
        let mut c = self.signin.connections.lock().unwrap_or_else(|e| e.into_inner());
        let n = c.entry(holder).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                c.remove(&holder);
            }
            self.metrics.ws_rejected.inc();
            return None;
        }
        *n += 1;
        Some(ConnectionPermit { holder, counts: self.signin.connections.clone() })
    }
}
