//! Real faults against a real `triage serve` process and its embedded PostgreSQL (durable, fsync
//! on). The short versions run in the test command; `docs/reliability.md` has the long runs.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Proc, triage};

/// A size-limited tmpfs mounted for one test (needs root, as the test machines have), unmounted
/// when dropped: the smallest real disk that fills up.
struct SmallDisk {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl SmallDisk {
    fn mount(size_mib: u32) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("triage-disk-").tempdir().expect("tempdir");
        // PostgreSQL runs as `postgres` under root and must reach the data directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).expect("mount point");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mib}m,mode=0755"), "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "mounting a tmpfs needs root: {status}");
        Self { _dir: dir, mount }
    }

    /// Writes a file until the disk refuses more; returns its path (remove it to free the space).
    fn fill(&self) -> PathBuf {
        let path = self.mount.join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let chunk = vec![0u8; 1 << 20];
        loop {
            match file.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // The last partial megabyte too: leave nothing.
        let mut byte = [0u8; 4096];
        while file.write_all(&byte).is_ok() {
            byte[0] = byte[0].wrapping_add(1);
        }
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn token(data: &Path) -> String {
    let out = triage()
        .args(["token", "create", "--scope", "admin", "--name", "faults", "--data-dir"])
        .arg(data)
        .output()
        .expect("token create");
    assert!(out.status.success(), "token create: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// R3, short: PostgreSQL's data on a 192 MiB disk that fills up while an agent pushes. No push
/// is acknowledged (2xx) unless it was stored; `/readyz` is 503 naming the disk while it is full;
/// once space returns Triage is ready again within 10 s, by itself, in the same process; and the
/// agent's retries then store every result exactly once.
#[test]
fn a_full_disk_gets_503_never_a_false_2xx_and_triage_recovers_by_itself() {
    let disk = SmallDisk::mount(192);
    let data = disk.mount.join("data");
    let server = Proc::start(&data, &["--self-watch", "false", "--readiness-cache", "0s"]);
    let pid = server.child.id();
    let admin = token(&data);
    let url = server.url.clone();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        let post = |path: &str, body: Value| client.post(format!("{url}{path}")).bearer_auth(&admin).json(&body).send();
        let res = post("/api/v1/services", json!({"name": "disk"})).await.expect("service");
        assert_eq!(res.status(), StatusCode::CREATED);
        let probe = json!({"name": "agent", "service": "disk", "kind": "push", "interval_secs": 3600});
        let created: Value = post("/api/v1/probes", probe).await.expect("probe").json().await.expect("json");
        let (id, push_token) = (created["id"].as_str().expect("id").to_string(), created["push_token"].clone());
        let push_token = push_token.as_str().expect("push token").to_string();
        let push = |seq: u64| {
            client
                .post(format!("{url}/api/v1/push/{id}"))
                .bearer_auth(&push_token)
                .json(&json!({"agent_id": "r3", "seq": seq, "outcome": "up", "detail": "x".repeat(1000)}))
                .send()
        };
        let ready = || async { client.get(format!("{url}/readyz")).send().await.map(|r| r.status()).ok() };
        assert_eq!(ready().await, Some(StatusCode::OK));
        for seq in 0..20 {
            assert_eq!(push(seq).await.expect("push").status(), StatusCode::CREATED);
        }

        let filler = disk.fill();
        // The agent keeps pushing into the full disk: each answer is 201 (stored) or a 503 with
        // Retry-After (not stored, try again); nothing else.
        let mut acknowledged: Vec<u64> = (0..20).collect();
        let mut refused = Vec::new();
        // At most 900 in all, so one page of the results API (1,000) holds them.
        for seq in 20..900 {
            let res = push(seq).await.expect("push answered");
            match res.status() {
                StatusCode::CREATED => acknowledged.push(seq),
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(res.headers().get("retry-after").is_some(), "503 says when to retry");
                    refused.push(seq);
                }
                other => panic!("push {seq}: {other} {}", res.text().await.unwrap_or_default()),
            }
            if refused.len() >= 20 {
                break;
            }
        }
        assert!(refused.len() >= 20, "a full disk refuses writes ({} acknowledged)", acknowledged.len());
        let res = client.get(format!("{url}/readyz")).send().await.expect("readyz");
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = res.json().await.expect("json");
        assert!(body["failing"].as_array().expect("failing").contains(&json!("disk")), "{body}");

        std::fs::remove_file(&filler).expect("space returns");
        let freed = Instant::now();
        while ready().await != Some(StatusCode::OK) {
            assert!(freed.elapsed() < Duration::from_secs(10), "ready again within 10 s of space returning");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "R3: {} acknowledged, {} refused while full; ready {:?} after space returned",
            acknowledged.len(),
            refused.len(),
            freed.elapsed()
        );

        // The agent retries what was refused (a 200 "duplicate" would mean an earlier attempt had
        // been stored after all, which is allowed; a 5xx now is not).
        for seq in &refused {
            let status = push(*seq).await.expect("retry").status();
            assert!(status == StatusCode::CREATED || status == StatusCode::OK, "retry of {seq}: {status}");
        }
        let hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
        let stored: Vec<Value> = client
            .get(format!("{url}/api/v1/probes/{id}/results"))
            .query(&[("limit", "1000"), ("from", hour_ago.as_str())])
            .bearer_auth(&admin)
            .send()
            .await
            .expect("results")
            .json()
            .await
            .expect("json");
        let mut ids: Vec<String> = stored.iter().filter_map(|r| r["request_id"].as_str().map(str::to_string)).collect();
        ids.sort();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "no result stored twice");
        for seq in acknowledged.iter().chain(&refused) {
            assert!(ids.contains(&format!("r3-{seq}")), "push {seq} stored");
        }
        assert_eq!(ids.len(), acknowledged.len() + refused.len());
    });
    let mut server = server;
    assert_eq!(server.child.id(), pid, "the same process");
    assert!(server.child.try_wait().expect("wait").is_none(), "Triage kept running through it");
}
