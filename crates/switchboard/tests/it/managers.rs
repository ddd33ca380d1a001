//! A queue manager manages the queues they are named for, not every queue.

use crate::backend_tests;
use reqwest::{Method, StatusCode};
use serde_json::json;

backend_tests! {
    async fn a_manager_of_one_queue_has_no_rights_over_another(app) {
        let olivia = app.login("olivia").await; // manages support
        let heidi = app.login("heidi").await; // manages sales
        let admin = app.login("admin").await;
        let (_, support) = admin.get("/api/v1/queues/support").await;
        assert_eq!(support["managers"], json!(["olivia@example.com"]));
        let same = json!({"display_name": "Demo Support", "members": support["members"], "welcome": "Hi!"});

        // Settings and members: Heidi may not, Olivia may; naming managers is for admins.
        let (s, _) = heidi.send_json(Method::PUT, "/api/v1/queues/support", same.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = olivia.send_json(Method::PUT, "/api/v1/queues/support", same.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["managers"], json!(["olivia@example.com"]), "kept when not given");
        let mut more = same.clone();
        more["managers"] = json!(["olivia@example.com", "heidi@example.com"]);
        let (s, _) = olivia.send_json(Method::PUT, "/api/v1/queues/support", more.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "a manager does not name managers");
        let (s, _) = olivia.send_json(Method::PUT, "/api/v1/queues/brand-new", json!({"display_name": "New"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "only administrators create queues");

        // Statistics, waiting list, offline messages.
        for path in ["/api/v1/queues/support/stats", "/api/v1/queues/support/waiting", "/api/v1/queues/support/offline"] {
            assert_eq!(heidi.get(path).await.0, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(olivia.get(path).await.0, StatusCode::OK, "{path}");
        }

        // Webhooks: each manager sees and changes their queue's; all-queue ones are admins'.
        let (s, all) = admin.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/all"})).await;
        assert_eq!(s, StatusCode::CREATED, "{all}");
        let (s, mine) = olivia.post("/api/v1/webhooks", json!({"url": "http://127.0.0.1:9/s", "queue": "support"})).await;
        assert_eq!(s, StatusCode::CREATED, "{mine}");
        let (_, list) = heidi.get("/api/v1/webhooks").await;
        assert_eq!(list["webhooks"], json!([]), "Heidi sees neither");
        let (_, list) = olivia.get("/api/v1/webhooks").await;
        let ids: Vec<i64> = list["webhooks"].as_array().unwrap().iter().map(|h| h["id"].as_i64().unwrap()).collect();
        assert_eq!(ids, vec![mine["id"].as_i64().unwrap()], "Olivia sees support's only");
        let theirs = format!("/api/v1/webhooks/{}", mine["id"]);
        assert_eq!(heidi.get(&format!("{theirs}/deliveries")).await.0, StatusCode::NOT_FOUND);
        assert_eq!(heidi.send_json(Method::DELETE, &theirs, json!({})).await.0, StatusCode::NOT_FOUND);
        let all_path = format!("/api/v1/webhooks/{}", all["id"]);
        assert_eq!(olivia.send_json(Method::DELETE, &all_path, json!({})).await.0, StatusCode::NOT_FOUND);

        // A disabled queue is listed to its managers only.
        let mut off = same.clone();
        off["enabled"] = json!(false);
        assert_eq!(olivia.send_json(Method::PUT, "/api/v1/queues/support", off).await.0, StatusCode::OK);
        let listed = |v: &serde_json::Value| v["queues"].as_array().unwrap().iter().any(|q| q["id"] == "support");
        assert!(listed(&olivia.get("/api/v1/queues").await.1));
        assert!(!listed(&heidi.get("/api/v1/queues").await.1));
        assert_eq!(heidi.get("/api/v1/queues/support").await.0, StatusCode::NOT_FOUND);

        // The administrator names Heidi too: now she may.
        let (s, v) = admin.send_json(Method::PUT, "/api/v1/queues/support", more).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(heidi.get("/api/v1/queues/support/stats").await.0, StatusCode::OK);
    }

    async fn the_archive_is_for_compliance_officers_alone(app) {
        let admin = app.login("admin").await;
        let trent = app.login("trent").await;
        let (s, hold) = trent.post("/api/v1/holds", json!({"custodian": "alice@example.com", "reason": "matter 7"})).await;
        assert_eq!(s, StatusCode::CREATED, "{hold}");
        let release = format!("/api/v1/holds/{}/release", hold["id"]);
        assert_eq!(admin.post(&release, json!({})).await.0, StatusCode::FORBIDDEN, "an admin cannot release it");
        for path in ["/api/v1/archive/search?q=x", "/api/v1/holds", "/api/v1/retention", "/api/v1/archive/export?q=x"] {
            assert_eq!(admin.get(path).await.0, StatusCode::FORBIDDEN, "{path}");
            assert_eq!(trent.get(path).await.0, StatusCode::OK, "{path}");
        }
        assert_eq!(admin.post("/api/v1/archive/purge", json!({})).await.0, StatusCode::FORBIDDEN);
        // Nor around the door: no compliance officer made over the API, no token of one.
        let (s, _) = admin
            .post(
                "/api/v1/admin/users",
                json!({"address": "mole@example.com", "display_name": "Mole", "password": "pw-123456", "roles": ["compliance_officer"]}),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = admin.post("/api/v1/admin/sessions", json!({"address": "trent@example.com"})).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _) = admin.post("/api/v1/admin/sessions", json!({"address": "bob@example.com"})).await;
        assert_eq!(s, StatusCode::CREATED, "other people's tokens still work (load tests, service accounts)");
        // Walls and disclaimers stay with administrators too.
        assert_eq!(admin.get("/api/v1/walls").await.0, StatusCode::OK);
        assert!(trent.post(&release, json!({})).await.0.is_success());
    }
}
