//! Queue statistics: real-time and cumulative figures, and the queue lines of `/metrics`.

use crate::queue_chats::SERVICE_LEVEL_MS;
use crate::{Result, Service};
use sb_core::{CoreError, Millis};

impl Service {
    /// Real-time and cumulative statistics of a queue over `[from, to)`.
    pub async fn queue_stats(
        &self,
        queue: &str,
        from: Millis,
        to: Millis,
    ) -> Result<(sb_core::queue::QueueDef, sb_core::queue::QueueStats, sb_core::queue::QueueTotals)> {
        let def =
            self.queues.defs().iter().find(|d| d.answers_to(queue)).cloned().ok_or(CoreError::NotFound("queue"))?;
        let realtime = self.queues.realtime(&def.id, self.now()).unwrap_or_default();
        let (counts, chats) = self.store.queue_history(&def.id, from, to).await?;
        Ok((def, realtime, sb_core::queue::QueueTotals::compute(&counts, &chats, SERVICE_LEVEL_MS)))
    }

    /// Queue lines for `/metrics`: bounded labels (queue, event kind).
    pub(crate) fn render_queue_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let now = self.now();
        let defs = self.queues.defs();
        type Gauge = (&'static str, &'static str, fn(&sb_core::queue::QueueStats) -> i64);
        let gauges: [Gauge; 6] = [
            ("switchboard_queue_experts_signed_in", "Queue experts signed in.", |s| s.signed_in.into()),
            ("switchboard_queue_experts_ready", "Queue experts ready for a chat.", |s| s.ready.into()),
            ("switchboard_queue_experts_busy", "Queue experts available but at capacity.", |s| s.busy.into()),
            ("switchboard_queue_seekers_waiting", "Seekers waiting in the queue.", |s| s.waiting.into()),
            ("switchboard_queue_longest_wait_seconds", "Longest current wait.", |s| s.longest_wait_ms / 1000),
            ("switchboard_queue_active_chats", "Queue chats assigned and not closed.", |s| s.active_chats.into()),
        ];
        let stats: Vec<(String, sb_core::queue::QueueStats)> = defs
            .iter()
            .filter(|d| d.enabled)
            .filter_map(|d| Some((d.id.clone(), self.queues.realtime(&d.id, now)?)))
            .collect();
        for (name, help, get) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            for (q, s) in &stats {
                let _ = writeln!(out, "{name}{{queue=\"{q}\"}} {}", get(s));
            }
        }
        let _ = writeln!(out, "# HELP switchboard_queue_events_total Queue chat lifecycle events.\n# TYPE switchboard_queue_events_total counter");
        for ((q, kind), n) in self.queues.counters.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "switchboard_queue_events_total{{queue=\"{q}\",event=\"{kind}\"}} {n}");
        }
    }
}
