//! `vessel-oci`, the OCI runtime: invoked directly as containerd's shim
//! invokes runc (lifecycle, bad input, the fallback's command line), then
//! driven by a private containerd with `ctr run --runc-binary`.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vessel_tests::{app, kvm_or_skip, skip, vessel_dir};

fn oci() -> PathBuf {
    let p = vessel_dir().join("vessel-oci");
    assert!(
        p.exists(),
        "{} is missing: run `cargo xtask build`",
        p.display()
    );
    p
}

/// A directory removed at the end of the test.
struct Tmp(PathBuf);

impl Tmp {
    fn new(name: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("vessel-oci-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bundle at `dir` whose rootfs holds the packed `app`, running `args`;
/// `linux` and `mounts` go into config.json as given.
fn bundle(dir: &Path, app_name: &str, args: &[&str], linux: Value, mounts: Value) -> PathBuf {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::copy(app(app_name), rootfs.join(app_name)).unwrap();
    let config = json!({
        "ociVersion": "1.0.2",
        "root": { "path": "rootfs" },
        "process": { "args": args, "env": ["PATH=/", "GREETING=hi"], "cwd": "/", "user": { "uid": 0, "gid": 0 } },
        "mounts": mounts,
        "linux": linux,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    dir.to_path_buf()
}

/// Containers of a test, force-deleted at its end even when it fails
/// half-way (their processes would otherwise wait for `start` forever).
struct Containers<'a>(&'a Path, &'a [&'a str]);

impl Drop for Containers<'_> {
    fn drop(&mut self) {
        for id in self.1 {
            let _ = rt(self.0, &["delete", "--force", id]);
        }
    }
}

fn rt(root: &Path, args: &[&str]) -> Output {
    Command::new(oci())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// `create` with the app's stdout and stderr going to `out`.
fn create(root: &Path, bundle: &Path, id: &str, out: &Path) -> Output {
    let f = File::create(out).unwrap();
    Command::new(oci())
        .arg("--root")
        .arg(root)
        .args(["create", "--bundle"])
        .arg(bundle)
        .arg("--pid-file")
        .arg(bundle.join("init.pid"))
        .arg(id)
        .stdout(Stdio::from(f.try_clone().unwrap()))
        .stderr(Stdio::from(f))
        .output()
        .unwrap()
}

fn state(root: &Path, id: &str) -> Value {
    let o = rt(root, &["state", id]);
    assert!(
        o.status.success(),
        "state {id}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The container processes `create` leaves are re-parented to this test
/// process, which can then wait for them like the shim does.
fn become_subreaper() {
    // SAFETY: prctl with integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0);
}

/// Wait for `pid` (re-parented here); its exit code, or 128 + signal.
fn wait_pid(pid: i32) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a valid place for waitpid to write.
    let r = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(
        r,
        pid,
        "waitpid({pid}): {}",
        std::io::Error::last_os_error()
    );
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// The memory-limit file of the cgroup `rel` (v1 or v2), if it exists.
fn memory_limit_file(rel: &str) -> Option<PathBuf> {
    [
        format!("/sys/fs/cgroup/memory/{rel}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/{rel}/memory.max"),
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

#[test]
fn create_start_state_delete_runs_the_app_in_its_cgroup() {
    if !kvm_or_skip() {
        return;
    }
    become_subreaper();
    let t = Tmp::new("life");
    let root = t.0.join("root");
    let data = t.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("in.txt"), "from the host\n").unwrap();
    let cg = format!("vessel-tests/oci-life-{}", std::process::id());
    let b = bundle(
        &t.0.join("b"),
        "fsprobe",
        &["/fsprobe", "read", "/data/in.txt"],
        json!({ "cgroupsPath": format!("/{cg}"), "resources": { "memory": { "limit": 256 << 20 }, "cpu": { "quota": 200000, "period": 100000 } } }),
        json!([{ "destination": "/proc", "type": "proc", "source": "proc" },
               { "destination": "/data", "type": "bind", "source": data, "options": ["rbind", "ro"] }]),
    );
    let out = t.0.join("out");
    let _cleanup = Containers(&root, &["life"]);
    let o = create(&root, &b, "life", &out);
    assert!(
        o.status.success(),
        "create: {}",
        std::fs::read_to_string(&out).unwrap()
    );
    let s = state(&root, "life");
    assert_eq!(s["status"], "created");
    let pid = s["pid"].as_i64().unwrap() as i32;
    assert_eq!(
        std::fs::read_to_string(b.join("init.pid")).unwrap(),
        pid.to_string()
    );
    let limit = memory_limit_file(&cg).expect("the container's memory cgroup exists");
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        (256u64 << 20).to_string()
    );
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    for flag in [
        "--mem 218103808",
        "--cpus 2",
        ":/data:ro",
        "-e GREETING=hi",
        "GREETING=hi read /data/in.txt",
    ] {
        assert!(cmdline.contains(flag), "{flag:?} not in {cmdline}");
    }
    let o = rt(&root, &["start", "life"]);
    assert!(
        o.status.success(),
        "start: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        wait_pid(pid),
        0,
        "{}",
        std::fs::read_to_string(&out).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "read /data/in.txt: ok from the host\n\n"
    );
    assert_eq!(state(&root, "life")["status"], "stopped");
    let o = rt(&root, &["start", "life"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "vessel-oci: cannot start a container that has stopped\n"
    );
    let o = rt(&root, &["delete", "life"]);
    assert!(
        o.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!root.join("life").exists(), "the state directory is gone");
    assert!(memory_limit_file(&cg).is_none(), "the cgroup is gone");
}

/// One line on stderr, exit code 1, and no state directory for `id`.
fn refused(root: &Path, o: &Output, id: &str, words: &str) {
    refused_with(root, o, &String::from_utf8_lossy(&o.stderr), id, words);
}

/// [`refused`] for `create`, whose stderr went to `out`.
fn refused_create(root: &Path, bundle: &Path, out: &Path, words: &str) {
    let o = create(root, bundle, "c", out);
    refused_with(root, &o, &std::fs::read_to_string(out).unwrap(), "c", words);
}

fn refused_with(root: &Path, o: &Output, err: &str, id: &str, words: &str) {
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("vessel-oci: ") && err.contains(words),
        "{words:?} not in {err}"
    );
    assert!(!root.join(id).exists(), "{id} left a state directory");
}

#[test]
fn bad_bundles_are_one_line_errors_that_leave_nothing() {
    if !kvm_or_skip() {
        return;
    }
    let t = Tmp::new("bad");
    let root = t.0.join("root");
    let out = t.0.join("out");
    let none = json!([]);
    let linux = json!({});
    let b = bundle(
        &t.0.join("missing"),
        "hello",
        &["/nope"],
        linux.clone(),
        none.clone(),
    );
    refused_create(
        &root,
        &b,
        &out,
        "exec: \"/nope\": no such file in the container's rootfs",
    );
    let b = bundle(
        &t.0.join("mount"),
        "hello",
        &["/hello"],
        linux.clone(),
        json!([{ "destination": "/d", "type": "bind", "source": t.0.join("absent"), "options": ["rbind"] }]),
    );
    refused_create(&root, &b, &out, "source");
    let b = bundle(
        &t.0.join("mem"),
        "hello",
        &["/hello"],
        json!({ "resources": { "memory": { "limit": 30_000_000 } } }),
        none.clone(),
    );
    refused_create(
        &root,
        &b,
        &out,
        "memory limit 30000000 bytes is below what the app needs",
    );
    let b = t.0.join("malformed");
    std::fs::create_dir_all(b.join("rootfs")).unwrap();
    std::fs::write(b.join("config.json"), "{\"process\": [").unwrap();
    refused_create(&root, &b, &out, "malformed config.json");
    refused(
        &root,
        &rt(&root, &["state", "nosuch"]),
        "nosuch",
        "container nosuch does not exist",
    );
    refused(
        &root,
        &rt(&root, &["create", "--bundle", "/", "../x"]),
        "../x",
        "invalid container id",
    );
}

#[test]
fn a_reused_id_and_deleting_a_running_container_are_refused() {
    if !kvm_or_skip() {
        return;
    }
    become_subreaper();
    let t = Tmp::new("busy");
    let root = t.0.join("root");
    let out = t.0.join("out");
    let b = bundle(
        &t.0.join("b"),
        "selftest",
        &["/selftest", "spin"],
        json!({}),
        json!([]),
    );
    let _cleanup = Containers(&root, &["spin", "idle"]);
    assert!(create(&root, &b, "spin", &out).status.success());
    let pid = state(&root, "spin")["pid"].as_i64().unwrap() as i32;
    let again = create(&root, &b, "spin", &out);
    assert_eq!(String::from_utf8_lossy(&again.stderr), "");
    assert_eq!(again.status.code(), Some(1));
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .contains("container with id spin already exists"));
    assert_eq!(
        state(&root, "spin")["status"],
        "created",
        "the first one is untouched"
    );
    assert!(rt(&root, &["start", "spin"]).status.success());
    assert_eq!(state(&root, "spin")["status"], "running");
    let o = rt(&root, &["delete", "spin"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "vessel-oci: cannot delete container spin that is not stopped: running\n"
    );
    assert_eq!(state(&root, "spin")["status"], "running");
    assert!(rt(&root, &["kill", "spin", "SIGTERM"]).status.success());
    assert_eq!(wait_pid(pid), 143, "SIGTERM ends the VM cleanly");
    assert!(rt(&root, &["delete", "spin"]).status.success());
    assert!(!root.join("spin").exists());
    // A container created but never started: delete kills its process.
    assert!(create(&root, &b, "idle", &out).status.success());
    let pid = state(&root, "idle")["pid"].as_i64().unwrap() as i32;
    assert!(rt(&root, &["delete", "idle"]).status.success());
    assert_eq!(wait_pid(pid), 128 + libc::SIGKILL);
    assert!(!root.join("idle").exists());
}

#[test]
fn other_bundles_and_commands_go_to_the_fallback_unchanged() {
    let t = Tmp::new("fallback");
    let root = t.0.join("root");
    let argv = t.0.join("argv");
    let fake = t.0.join("fake-runc");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\nexit 3\n", argv.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let b = t.0.join("b");
    std::fs::create_dir_all(b.join("rootfs/bin")).unwrap();
    std::fs::copy("/bin/sh", b.join("rootfs/bin/sh")).unwrap();
    let config = json!({ "ociVersion": "1.0.2", "root": { "path": "rootfs" },
        "process": { "args": ["sh", "-c", "true"], "cwd": "/", "user": { "uid": 0, "gid": 0 }, "env": ["PATH=/bin"] } });
    std::fs::write(b.join("config.json"), config.to_string()).unwrap();
    let run = |args: &[&str]| {
        Command::new(oci())
            .args(args)
            .env("VESSEL_OCI_FALLBACK", &fake)
            .status()
            .unwrap()
            .code()
    };
    let root_s = root.to_str().unwrap();
    let bundle_s = b.to_str().unwrap();
    assert_eq!(
        run(&[
            "--root",
            root_s,
            "--log-format",
            "json",
            "create",
            "--bundle",
            bundle_s,
            "c1"
        ]),
        Some(3)
    );
    std::fs::create_dir_all(root.join("c1")).unwrap(); // as runc would leave it
    assert_eq!(run(&["--root", root_s, "state", "c1"]), Some(3));
    assert_eq!(run(&["--root", root_s, "ps", "c1"]), Some(3));
    assert_eq!(
        run(&["state", "c2"]),
        Some(1),
        "nothing of that id under the default root"
    );
    assert_eq!(
        std::fs::read_to_string(&argv).unwrap(),
        format!("--root {root_s} --log-format json create --bundle {bundle_s} c1\n--root {root_s} state c1\n--root {root_s} ps c1\n")
    );
}

/// A private containerd (own root, state and socket) for one test.
struct Containerd {
    child: std::process::Child,
    sock: PathBuf,
    ns: String,
    _dir: Tmp,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = Tmp::new("containerd");
        let d = dir.0.display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/sock\"\n[ttrpc]\n  address = \"{d}/sock.ttrpc\"\n"
        );
        std::fs::write(dir.0.join("config.toml"), config).unwrap();
        let log = File::create(dir.0.join("log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.0.join("config.toml"))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let sock = dir.0.join("sock");
        let began = Instant::now();
        while !sock.exists() {
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "containerd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Containerd {
            child,
            sock,
            ns: format!("vessel-test-{}", std::process::id()),
            _dir: dir,
        }
    }

    fn ctr(&self) -> Command {
        let mut c = Command::new("ctr");
        c.arg("-a").arg(&self.sock).arg("-n").arg(&self.ns);
        c
    }

    /// `ctr run --rm --runc-binary vessel-oci [FLAGS] IMAGE ID ARGS...`.
    fn run(&self, flags: &[&str], image: &str, id: &str, args: &[&str]) -> Output {
        self.ctr()
            .args(["run", "--rm", "--runc-binary"])
            .arg(oci())
            .args(flags)
            .arg(image)
            .arg(id)
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Tasks a failed test left running (their VMs, their shims).
        if let Ok(ls) = self.ctr().args(["task", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&ls.stdout).split_whitespace() {
                let _ = self.ctr().args(["task", "rm", "-f", id]).output();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn containerd_runs_vessel_images_through_vessel_oci() {
    if !kvm_or_skip() {
        return;
    }
    let busybox = Path::new("/bin/busybox");
    let missing = ["containerd", "ctr", "runc"].into_iter().find(|t| {
        !Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success()
    });
    if let Some(t) = missing.or((!busybox.exists()).then_some("busybox")) {
        skip(&format!("{t} is not installed (`cargo xtask test` installs containerd, runc and busybox-static)"));
        return;
    }
    let t = Tmp::new("images");
    let ctd = Containerd::start();
    for a in ["hello", "selftest", "fsprobe"] {
        let tar = t.0.join(format!("{a}.tar"));
        let o = Command::new(vessel_tests::vessel_bin())
            .arg("image")
            .arg(app(a))
            .arg("-o")
            .arg(&tar)
            .output()
            .unwrap();
        assert!(o.status.success(), "vessel image {a}: {}", text(&o));
        let o = ctd
            .ctr()
            .args(["image", "import"])
            .arg(&tar)
            .output()
            .unwrap();
        assert!(o.status.success(), "ctr image import {a}: {}", text(&o));
    }
    let hello = "localhost/vessel/hello:latest";
    let selftest = "localhost/vessel/selftest:latest";
    // The image's entrypoint, the app's output and exit code.
    let o = ctd.run(&[], hello, "hello", &[]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "Hello from a Vessel VM on x86_64!\nargs: []\n",
        "{}",
        text(&o)
    );
    assert_eq!(o.status.code(), Some(0));
    let o = ctd.run(&[], selftest, "exit", &["/selftest", "exit", "7"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    // A bind mount is a pre-opened directory.
    let data = t.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("x.txt"), "mounted\n").unwrap();
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:ro",
        data.display()
    );
    let o = ctd.run(
        &["--mount", &mount],
        "localhost/vessel/fsprobe:latest",
        "mount",
        &["/fsprobe", "read", "/data/x.txt"],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("read /data/x.txt: ok mounted"),
        "{}",
        text(&o)
    );
    // The memory limit is the guest's RAM (less the launcher's headroom).
    let o = ctd.run(
        &["--memory-limit", "100000000"],
        selftest,
        "small",
        &["/selftest", "heap", "60"],
    );
    assert!(
        text(&o).contains("memory allocation of 62914560 bytes failed"),
        "{}",
        text(&o)
    );
    let o = ctd.run(
        &["--memory-limit", "200000000"],
        selftest,
        "big",
        &["/selftest", "heap", "60"],
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("heap ok 60 MiB"),
        "{}",
        text(&o)
    );
    let o = ctd.run(
        &["--memory-limit", "30000000"],
        selftest,
        "tiny",
        &["/selftest", "heap", "1"],
    );
    assert!(
        !o.status.success() && text(&o).contains("below what the app needs"),
        "{}",
        text(&o)
    );
    // `ctr task kill` (SIGTERM) stops the VM: exit code 143.
    let mut spin = ctd
        .ctr()
        .args(["run", "--rm", "--runc-binary"])
        .arg(oci())
        .args([selftest, "spin", "/selftest", "spin"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    loop {
        let ls = ctd.ctr().args(["task", "ls"]).output().unwrap();
        if String::from_utf8_lossy(&ls.stdout)
            .lines()
            .any(|l| l.starts_with("spin ") && l.contains("RUNNING"))
        {
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the task did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(ctd
        .ctr()
        .args(["task", "kill", "spin"])
        .status()
        .unwrap()
        .success());
    assert_eq!(spin.wait().unwrap().code(), Some(143));
    // A plain busybox rootfs goes to runc through the same runtime.
    let rootfs = t.0.join("busybox");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    let o = ctd
        .ctr()
        .args(["run", "--rm", "--runc-binary"])
        .arg(oci())
        .arg("--rootfs")
        .arg(&rootfs)
        .args([
            "busybox",
            "/bin/busybox",
            "sh",
            "-c",
            "echo from busybox; exit 5",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "from busybox\n",
        "{}",
        text(&o)
    );
    assert_eq!(o.status.code(), Some(5));
}

#[test]
fn kubernetes_manifests_validate_against_the_schemas() {
    let validate = |files: &[PathBuf]| {
        Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
            .args(files)
            .output()
            .unwrap()
    };
    let t = Tmp::new("k8s");
    let typo = t.0.join("typo.yaml");
    std::fs::write(
        &typo,
        "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: { name: x }\nhandlr: vessel\n",
    )
    .unwrap();
    let o = validate(std::slice::from_ref(&typo));
    if String::from_utf8_lossy(&o.stderr).contains("No module named") {
        skip("kubernetes-validate is not installed (`cargo xtask test` installs it with pip)");
        return;
    }
    assert!(
        !o.status.success(),
        "a typo must not validate: {}",
        text(&o)
    );
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vmm/deploy");
    let files: Vec<PathBuf> = ["vessel-oci.yaml", "kubernetes.yaml"]
        .iter()
        .map(|f| deploy.join(f))
        .collect();
    let o = validate(&files);
    assert!(o.status.success(), "{}", text(&o));
    let all = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    for kind in [
        "kind: RuntimeClass",
        "kind: DaemonSet",
        "kind: Job",
        "kind: Deployment",
        "runtimeClassName: vessel",
        "kubernetes.io/arch: arm64",
    ] {
        assert!(all.contains(kind), "{kind} is missing from vmm/deploy");
    }
}
