//! The threads probes run on.
//!
//! A check's latency is measured inside the task that runs it. On the web server's runtime that
//! task can sit ready behind a page render or a compressed download for hundreds of milliseconds
//! before it sees its response, and that wait would be recorded as the target's latency. Under
//! load the usual level climbs and a real slowdown no longer stands out against it (measured:
//! a loopback connect of 60–90 ms on average while browsers loaded pages, 1 ms once they
//! stopped). Probes get a runtime of their own: when a response arrives the OS wakes a probe
//! thread, whatever the web side is doing.

use tokio::runtime::{Builder, Handle, Runtime};

/// Owns the probe runtime; dropping it stops every task on it without waiting.
pub struct ProbeRuntime {
    /// Taken out only by `drop`.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl ProbeRuntime {
    /// Worker threads: as many as there are cores, up to four (probes mostly wait on the network).
    pub fn start() -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4);
        let runtime =
            Builder::new_multi_thread().worker_threads(threads).thread_name("triage-probe").enable_all().build()?;
        let handle = runtime.handle().clone();
        Ok(Self { runtime: Some(runtime), handle })
    }

    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl Drop for ProbeRuntime {
    fn drop(&mut self) {
        // A runtime dropped inside another one's task must not block: shut it down in the background.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_probe_threads_and_stop_with_the_runtime() {
        let rt = ProbeRuntime::start().expect("runtime");
        let name = rt.handle().spawn(async { std::thread::current().name().map(str::to_owned) }).await.expect("join");
        assert_eq!(name.as_deref(), Some("triage-probe"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let pending = rt.handle().spawn(async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        drop(rt);
        // The task was dropped with the runtime: its sender is gone, and it never finishes.
        assert!(rx.await.is_err());
        assert!(pending.await.is_err_and(|e| e.is_cancelled()));
    }
}
