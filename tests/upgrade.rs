//! Binary upgrades by socket hand-over (`run -u`, then SIGQUIT to the old process)
//! under keep-alive load: once the old process drains, its responses say
//! `Connection: close`, so clients move to the new process between requests and
//! none of their requests fails.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{Origin, Tollgate};

/// Keep-alive clients sending requests one after another until `stop`.
fn load(
    url: String,
    clients: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(usize, Vec<String>)>> {
    (0..clients)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .no_proxy()
                    .pool_max_idle_per_host(1)
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("client");
                let (mut ok, mut errors) = (0, Vec::new());
                while !stop.load(Relaxed) {
                    match client.get(&url).send().await {
                        Ok(r) if r.status() == 200 => match r.bytes().await {
                            Ok(_) => ok += 1,
                            Err(e) => errors.push(format!("body: {e:?}")),
                        },
                        Ok(r) => errors.push(format!("status {}", r.status())),
                        Err(e) => errors.push(format!("{e:?}")),
                    }
                }
                (ok, errors)
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrades_under_keep_alive_load_lose_no_request() {
    let origin = Origin::start("o").await;
    let mut tg = Tollgate::start(&format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origin.target()
    ))
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicUsize::new(0));
    let clients = load(tg.url("/x"), 8, stop.clone());
    let origin = &origin;
    let until = |n: usize| async move {
        let start = origin.count();
        let reached = crate::support::eventually(Duration::from_secs(10), || async {
            origin.count() >= start + n
        })
        .await;
        assert!(reached, "the load stalled");
    };
    until(200).await;
    for _ in 0..2 {
        let old = tg.pid();
        let status = tg.upgrade().await;
        assert!(status.success(), "the old process exited with {status}");
        assert_ne!(tg.pid(), old);
        until(200).await;
    }
    stop.store(true, Relaxed);
    let mut errors = Vec::new();
    for client in clients {
        let (ok, errs) = client.await.expect("client task");
        served.fetch_add(ok, Relaxed);
        errors.extend(errs);
    }
    assert!(
        errors.is_empty(),
        "{} failed requests: {:?}\n{}",
        errors.len(),
        &errors[..errors.len().min(5)],
        tg.log()
    );
    assert!(
        served.load(Relaxed) >= 600,
        "{} requests served",
        served.load(Relaxed)
    );
    let pid: u32 = std::fs::read_to_string(tg.path("tollgate.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(pid, tg.pid(), "the pid file names the serving process");
}

/// Runs `tollgate upgrade` on `tg`'s config with `extra` arguments and reads its
/// output from pipes to their end, as `out=$(tollgate upgrade ...)` does: its exit
/// code, its output, and how long until both came (at most 40 s).
fn upgrade_command(tg: &Tollgate, extra: &[&str]) -> (Option<i32>, String, Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(crate::support::tollgate::BIN)
        .args(["upgrade", "-c"])
        .arg(tg.config_path())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tollgate upgrade");
    let (mut stdout, mut stderr) = (child.stdout.take(), child.stderr.take());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        for pipe in [
            stdout.as_mut().map(|p| p as &mut dyn Read),
            stderr.as_mut().map(|p| p as &mut dyn Read),
        ]
        .into_iter()
        .flatten()
        {
            let _ = pipe.read_to_string(&mut out);
        }
        let _ = tx.send(out);
    });
    let out = rx
        .recv_timeout(Duration::from_secs(40))
        .unwrap_or_else(|_| {
            let _ = child.kill();
            "(the output did not end within 40 s)".into()
        });
    let status = child.wait().ok().and_then(|s| s.code());
    (status, out, started.elapsed())
}

fn pid_in(tg: &Tollgate) -> u32 {
    std::fs::read_to_string(tg.path("tollgate.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_command_hands_over_or_leaves_the_old_process_untouched() {
    let origin = Origin::start("o").await;
    let body = format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origin.target()
    );
    let tg = Tollgate::start(&body).await;
    let old = tg.pid();
    assert_eq!(crate::support::get(&tg.url("/x")).await.status, 200);

    // A binary that fails: the old process is never signalled.
    let (code, out, _) =
        tokio::task::block_in_place(|| upgrade_command(&tg, &["--binary", "/bin/false"]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("exited"), "{out}");
    // A file that does not check: nothing is started.
    tg.write_config("[[routes]]\nname = \"x\"\nupstream = \"nowhere\"\n");
    let (code, out, _) = tokio::task::block_in_place(|| upgrade_command(&tg, &[]));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not upgrading"), "{out}");
    assert_eq!(pid_in(&tg), old, "the old process still serves");
    assert_eq!(crate::support::get(&tg.url("/x")).await.status, 200);

    tg.write_config(&body);
    let starts = || tg.log().matches("tollgate starting with").count();
    let started_before = starts();
    let (code, out, took) =
        tokio::task::block_in_place(|| upgrade_command(&tg, &["--timeout", "20s"]));
    let new = pid_in(&tg);
    let _stop_new = crate::support::Stops(new as i32);
    assert_eq!(code, Some(0), "{out}\n{}", tg.log());
    assert_ne!(new, old);
    assert!(out.contains(&format!("pid {new} serves now")), "{out}");
    assert!(
        took < Duration::from_secs(10),
        "its output ended after {took:?}: the new process held the command's pipes"
    );
    assert_eq!(
        starts(),
        started_before + 1,
        "the new process writes where the old one did\n{}",
        tg.log()
    );
    assert_eq!(crate::support::get(&tg.url("/x")).await.status, 200);
    let old_gone = crate::support::eventually(Duration::from_secs(15), || async {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(old as i32), None).is_err()
            || std::fs::read_to_string(format!("/proc/{old}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    })
    .await;
    assert!(old_gone, "the old process still runs");
}

/// The next datagram on `socket` (systemd's side of the notify protocol), within 15 s.
fn next_notification(socket: &std::os::unix::net::UnixDatagram) -> String {
    socket
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut buf = [0u8; 512];
    let n = socket.recv(&mut buf).expect("a notification within 15 s");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn systemd_is_told_the_main_pid_and_follows_an_upgrade_on_sigusr2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    let origin = Origin::start("o").await;
    let body = format!(
        "[upstreams.app]\ntargets = [{}]\n\n[[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        origin.target()
    );
    let env = [("NOTIFY_SOCKET", path.to_str().expect("path"))];
    let tg = Tollgate::start_full(&body, "", &env, |_| ()).await;
    let old = tg.pid();
    let first = tokio::task::block_in_place(|| next_notification(&socket));
    assert_eq!(first, format!("READY=1\nMAINPID={old}"));

    let pid = nix::unistd::Pid::from_raw(old as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR2).expect("sigusr2");
    let second = tokio::task::block_in_place(|| next_notification(&socket));
    let new: u32 = second
        .strip_prefix("READY=1\nMAINPID=")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{second:?}\n{}", tg.log()));
    let _stop_new = crate::support::Stops(new as i32);
    assert_ne!(new, old);
    let named =
        crate::support::eventually(Duration::from_secs(10), || async { pid_in(&tg) == new }).await;
    assert!(named, "the pid file does not name {new}:\n{}", tg.log());
    assert_eq!(crate::support::get(&tg.url("/x")).await.status, 200);
    let logged = crate::support::eventually(Duration::from_secs(10), || async {
        tg.log()
            .contains(&format!("upgraded on SIGUSR2: pid {new} serves now"))
    })
    .await;
    assert!(logged, "{}", tg.log());
}

/// Whether `pid` has exited (gone, or a zombie its parent has not reaped yet).
fn exited(pid: u32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_err()
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stop_command_returns_once_the_process_has_exited() {
    let tg = Tollgate::start("[[routes]]\nname = \"ok\"\nrespond = { status = 200 }\n").await;
    let pid = tg.pid();
    let stop = |extra: &[&str]| {
        let mut args = vec!["stop"];
        args.extend_from_slice(extra);
        args.push("-c");
        tokio::task::block_in_place(|| {
            crate::support::tollgate::cli(&args, Some(&tg.config_path()))
        })
    };
    // A file being edited: without a pid, nothing to go by; with --pid (systemd's
    // $MAINPID), the stop goes on.
    tg.write_config("[[routes]]\nname = 1\n");
    let out = stop(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!exited(pid), "stopped without knowing which process");
    let pid_arg = pid.to_string();
    let out = stop(&["--pid", &pid_arg]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("pid {pid} has exited")),
        "{stdout}"
    );
    assert!(
        exited(pid),
        "the command returned before the process exited"
    );
    assert!(tg.log().contains("SIGTERM received"), "{}", tg.log());

    // Nothing left to stop: a clear error.
    let out = stop(&["--pid", &pid_arg]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"));
}
