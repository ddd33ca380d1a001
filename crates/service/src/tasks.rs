//! The service's background tasks, each owned by the component whose work it is and
//! composed here at the root. Each holds the service only while it works (a `Weak` in
//! between), so a dropped service ends them; `shut_down` aborts them.

use crate::writer::Subscriber;
use crate::Service;
use sb_core::policy::Crossing;
use sb_core::walls::Violation;
use sb_core::{Conversation, Event};
use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// Run `work` every `period`, the first time after `first`.
fn every<F, Fut>(service: &Weak<Service>, first: Duration, period: Duration, work: F) -> AbortHandle
where
    F: Fn(Arc<Service>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak = service.clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(service) = weak.upgrade() else { break };
            work(service).await;
        }
    })
    .abort_handle()
}

/// Start every component's tasks. `violations`: what the writer stored with admitted acts;
/// the queue desk's and alerts' subscription to stored messages is registered in `after`.
pub(crate) fn spawn(
    service: &Arc<Service>,
    mut violations: mpsc::UnboundedReceiver<(Violation, Crossing)>,
    after: &std::sync::OnceLock<Subscriber>,
) -> Vec<AbortHandle> {
    let weak = Arc::downgrade(service);
    let mut handles = Vec::new();

    // Compliance: violations stored with their acts, told to compliance officers after the
    // commit.
    let w = weak.clone();
    handles.push(
        tokio::spawn(async move {
            while let Some((violation, crossing)) = violations.recv().await {
                let Some(service) = w.upgrade() else { break };
                service.report_violation(violation, &crossing).await;
            }
        })
        .abort_handle(),
    );

    // Queues over plain IM and replies to alerts act on stored messages: the writer tells
    // them after each commit, in commit order, and one task handles them one at a time (a
    // queue's replies and relays keep their order).
    let (tx, mut rx) = mpsc::unbounded_channel::<(Event, Arc<Conversation>)>();
    let w = weak.clone();
    let _ = after.set(Subscriber {
        wants: Box::new(move |sender, conversation| {
            w.upgrade()
                .is_some_and(|s| s.concerns_queue_im(sender, conversation) || s.concerns_alerts(sender, conversation))
        }),
        tx,
    });
    let w = weak.clone();
    handles.push(
        tokio::spawn(async move {
            while let Some((event, conversation)) = rx.recv().await {
                let Some(service) = w.upgrade() else { break };
                let Some(author) = &event.actor else { continue };
                match service.store.user(author.id).await {
                    Ok(Some(sender)) => service.after_message(&sender, &conversation, &event.body).await,
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot load the author of a message for its queue or alert"),
                }
            }
        })
        .abort_handle(),
    );

    // The queue desk: queue time advances four times a second, or at once when presence
    // moved an offer.
    let w = weak.clone();
    handles.push(
        tokio::spawn(async move {
            loop {
                // Held across the short wait (the wake is the service's); `shut_down` aborts.
                let Some(service) = w.upgrade() else { break };
                let _ = tokio::time::timeout(Duration::from_millis(250), service.queues.wake.notified()).await;
                service.queue_tick().await;
            }
        })
        .abort_handle(),
    );

    // Webhooks: deliveries due go out on their own task, so a slow receiver holds up
    // nothing else.
    handles.push(every(&weak, Duration::from_millis(250), Duration::from_millis(250), |s| async move {
        s.deliver_webhooks().await;
    }));

    // Alerts: expiry and escalation.
    handles.push(every(&weak, Duration::from_secs(1), Duration::from_secs(1), |s| async move {
        if let Err(e) = s.alerts_tick().await {
            tracing::warn!(error = %e, "alert expiry/escalation failed");
        }
    }));

    // Storage housekeeping (checkpoints, the full-text index, the write-fault probe).
    handles.push(every(&weak, Duration::from_secs(1), Duration::from_secs(1), |s| async move {
        if let Err(e) = s.store.maintenance().await {
            tracing::warn!(error = %e, "storage maintenance failed");
        }
    }));

    // Retention and pruning: soon after start, then hourly.
    handles.push(every(&weak, Duration::from_secs(5), Duration::from_secs(3600), |s| async move {
        if let Err(e) = s.purge_expired(None).await {
            tracing::warn!(error = %e, "purge failed");
        }
        if let Err(e) = s.prune_mail_intake().await {
            tracing::warn!(error = %e, "cannot prune mail intake records");
        }
        if let Err(e) = s.prune_sessions_and_guests().await {
            tracing::warn!(error = %e, "cannot prune sessions and guests");
        }
    }));

    // The safety net: what administrators changed beside the server, every 2 s (the admin
    // command tells a server on its data folder at once through the control socket).
    handles.push(every(&weak, Duration::from_secs(2), Duration::from_secs(2), |s| async move {
        if let Err(e) = s.apply_changes().await {
            tracing::warn!(error = %e, "cannot reload what administrators changed");
        }
    }));
    handles
}
