//! The Syncplay front door, spoken to the way Syncplay 1.6's client speaks (JSON lines over TCP),
//! beside a WebSocket viewer in the same room.

use crate::helpers::spawn_with;
use lockstep_client::Api;
use lockstep_core::playback::START_LEAD_SECS;
use lockstep_core::protocol::{ClientFrame, ServerFrame};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};
use tokio::net::TcpStream;

/// A connection in the clear or over TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A free loopback port (bound, then released for the server to take).
fn free_port() -> std::net::SocketAddr {
    ([127, 0, 0, 1], lockstep_testkit::free_port()).into()
}

/// A connection to the Syncplay door, which opens a moment after the server's HTTP side.
async fn tcp(address: std::net::SocketAddr) -> TcpStream {
    for _ in 0..100 {
        match TcpStream::connect(address).await {
            Ok(stream) => return stream,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot connect to the Syncplay door: {e}"),
        }
    }
    panic!("the Syncplay door never opened on {address}")
}

struct Desktop {
    read: BufReader<ReadHalf<Box<dyn Io>>>,
    write: WriteHalf<Box<dyn Io>>,
}

impl Desktop {
    async fn connect(address: std::net::SocketAddr) -> Desktop {
        Desktop::over(Box::new(tcp(address).await))
    }

    /// A connection from another loopback address than 127.0.0.1, as a second client would.
    async fn connect_from(address: std::net::SocketAddr, from: [u8; 4]) -> Desktop {
        tcp(address).await; // the door is open
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((std::net::Ipv4Addr::from(from), 0).into())
            .unwrap();
        Desktop::over(Box::new(socket.connect(address).await.unwrap()))
    }

    fn over(io: Box<dyn Io>) -> Desktop {
        let (read, write) = tokio::io::split(io);
        Desktop {
            read: BufReader::new(read),
            write,
        }
    }

    /// Asks for TLS as Syncplay's client does and, when the server says yes, upgrades trusting
    /// the test CA. `None` when the server said no (the connection goes on in the clear).
    async fn connect_tls(address: std::net::SocketAddr) -> Result<Desktop, Desktop> {
        use tokio::io::AsyncReadExt;
        let mut tcp = tcp(address).await;
        tcp.write_all(b"{\"TLS\": {\"startTLS\": \"send\"}}\r\n")
            .await
            .unwrap();
        // The answer, byte by byte: nothing past its line may be read before the handshake.
        let mut answer = Vec::new();
        while answer.last() != Some(&b'\n') {
            let mut byte = [0u8];
            tcp.read_exact(&mut byte).await.unwrap();
            answer.push(byte[0]);
        }
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        if answer["TLS"]["startTLS"] != "true" {
            assert_eq!(answer["TLS"]["startTLS"], "false", "{answer}");
            return Err(Desktop::over(Box::new(tcp)));
        }
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            rustls::pki_types::CertificateDer::pem_file_iter(fixtures().join("ca.pem")).unwrap()
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.expect("a TLS handshake");
        Ok(Desktop::over(Box::new(tls)))
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push_str("\r\n");
        self.write.write_all(line.as_bytes()).await.unwrap();
    }

    /// The next message, or `None` when the server closed the connection.
    async fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(10), self.read.read_line(&mut line))
            .await
            .expect("a line within 10 s")
            .unwrap();
        (n > 0).then(|| serde_json::from_str(&line).unwrap())
    }

    /// Reads until a message named `name` that passes `pred`.
    async fn wait(&mut self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let m = self.next().await.expect("the connection is open");
            if let Some(v) = m.get(name)
                && pred(v)
            {
                return v.clone();
            }
        }
    }

    /// The next chat message from "Lockstep" (the door's own notes) containing `text`.
    async fn note(&mut self, text: &str) -> String {
        let chat = self
            .wait("Chat", |c| {
                c["username"] == "Lockstep" && c["message"].as_str().unwrap().contains(text)
            })
            .await;
        chat["message"].as_str().unwrap().to_owned()
    }

    async fn hello(&mut self, user: &str, room: &str, password: Option<&str>) {
        let mut hello = json!({"username": user, "room": {"name": room}, "version": "1.2.255", "realversion": "1.6.9", "features": {"chat": true, "readiness": true}});
        if let Some(p) = password {
            hello["password"] = json!(p);
        }
        self.send(json!({ "Hello": hello })).await;
    }
}

/// The id of the member called `name`, from a page of the member list.
async fn member_named(v: &mut lockstep_client::Viewer, name: &str) -> lockstep_core::ids::UserId {
    let page = v
        .command(|id| ClientFrame::Members {
            id,
            offset: 0,
            limit: 10,
        })
        .await
        .unwrap();
    let Ok(ServerFrame::MembersPage { members, .. }) = page else {
        panic!("{page:?}")
    };
    members
        .into_iter()
        .find(|m| m.name.as_str() == name)
        .expect("the desktop member is listed")
        .user_id
}

async fn room_with_key(api: &Api, body: Value) -> (lockstep_core::ids::RoomId, String) {
    let r = api.post("/api/rooms", &body).await.unwrap();
    let id = serde_json::from_value(r.body["id"].clone()).unwrap();
    (id, r.body["invite_key"].as_str().unwrap().to_owned())
}

/// A server with its Syncplay door open, a room named `name` with something queued (so it plays),
/// and its owner watching through a WebSocket.
struct Setup {
    /// The server: it stops when this is dropped, so tests keep it bound.
    _app: crate::helpers::TestApp,
    address: std::net::SocketAddr,
    ann: Api,
    key: String,
    v: lockstep_client::Viewer,
}

async fn setup(name: &str) -> Setup {
    setup_with(name, |_| {}).await
}

/// The test CA's certificate for `localhost`, and its key.
fn fixtures() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls")
}

async fn setup_with(name: &str, tweak: impl FnOnce(&mut lockstep::Config)) -> Setup {
    let address = free_port();
    let app = spawn_with(|c| {
        c.syncplay_listen = Some(address);
        tweak(c);
    })
    .await;
    let ann = app.api();
    let (room, key) = room_with_key(&ann, json!({ "name": name })).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    v.ok(|id| ClientFrame::QueueAdd {
        id,
        url: "http://127.0.0.1:9/film.mp4".into(),
    })
    .await
    .unwrap();
    Setup {
        _app: app,
        address,
        ann,
        key,
        v,
    }
}

#[tokio::test]
async fn a_syncplay_client_and_a_browser_viewer_follow_each_other_and_chat() {
    let Setup {
        _app,
        address,
        key,
        mut v,
        ..
    } = setup("Desktop night").await;

    let mut mpv = Desktop::connect(address).await;
    mpv.hello("mpv user", &key, None).await;
    let hello = mpv.wait("Hello", |_| true).await;
    assert_eq!(hello["room"]["name"], key.as_str());
    assert_eq!(hello["username"], "mpv user");
    // Its player opened a file (Syncplay holds back chat until then).
    mpv.send(json!({"Set": {"file": {"name": "film.mkv", "duration": 0.0, "size": 0}}}))
        .await;
    // A member like any other: the browser sees them arrive.
    v.wait_for(|f| matches!(f, ServerFrame::Presence { joined, .. } if joined.iter().any(|m| m.name.as_str() == "mpv user")))
        .await
        .unwrap();

    // The browser seeks: the desktop is told to jump there, by whom.
    v.ok(|id| ClientFrame::Seek { id, position: 42.0 })
        .await
        .unwrap();
    let state = mpv
        .wait("State", |s| {
            s["playstate"]["doSeek"] == true && s["playstate"]["position"].as_f64().unwrap() >= 42.0
        })
        .await;
    assert!(state["playstate"]["position"].as_f64().unwrap() < 43.0);
    assert!(state["playstate"]["setBy"].is_string());
    let forced = state["ignoringOnTheFly"]["server"].as_u64().unwrap();

    // The desktop pauses (acknowledging the forced state): the browser's room pauses.
    mpv.send(json!({"State": {
        "playstate": {"position": 42.5, "paused": true, "doSeek": false},
        "ping": {"latencyCalculation": state["ping"]["latencyCalculation"], "clientLatencyCalculation": 1.0, "clientRtt": 0.0},
        "ignoringOnTheFly": {"server": forced},
    }}))
    .await;
    v.wait_for(|f| matches!(f, ServerFrame::Playback { state, .. } if state.paused))
        .await
        .unwrap();
    // The pause comes back to it too, forced, set by itself (the client leaves its player be);
    // it acknowledges in its next state, as Syncplay's client does.
    let paused = mpv
        .wait("State", |s| {
            s["playstate"]["paused"] == true && s.get("ignoringOnTheFly").is_some()
        })
        .await;
    assert_eq!(paused["playstate"]["setBy"], "mpv user");
    assert_eq!(paused["playstate"]["doSeek"], false);
    let forced = paused["ignoringOnTheFly"]["server"].as_u64().unwrap();
    // And seeks: the room follows.
    mpv.send(json!({"State": {
        "playstate": {"position": 100.0, "paused": true, "doSeek": true},
        "ping": {"clientRtt": 0.0},
        "ignoringOnTheFly": {"server": forced},
    }}))
    .await;
    v.wait_for(|f| matches!(f, ServerFrame::Playback { state, .. } if state.position == 100.0))
        .await
        .unwrap();

    // The browser plays: the room starts moving START_LEAD_SECS later, and the client is told
    // it plays only then, forced (a Syncplay player starts when it hears).
    let sent = std::time::Instant::now();
    v.ok(|id| ClientFrame::Play { id }).await.unwrap();
    let playing = mpv
        .wait("State", |s| s["playstate"]["paused"] == false)
        .await;
    let after = sent.elapsed().as_secs_f64();
    assert!(
        after >= START_LEAD_SECS - 0.01,
        "told it plays {after} s after the command"
    );
    assert!(playing.get("ignoringOnTheFly").is_some(), "{playing}");
    assert!((playing["playstate"]["position"].as_f64().unwrap() - 100.0).abs() < 0.1);

    // Chat both ways.
    mpv.send(json!({"Chat": "hello from mpv"})).await;
    v.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "hello from mpv" && line.name.as_deref() == Some("mpv user")))
        .await
        .unwrap();
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "hello from the browser".into(),
    })
    .await
    .unwrap();
    let chat = mpv
        .wait("Chat", |c| c["message"] == "hello from the browser")
        .await;
    assert!(chat["username"].is_string());

    // Its readiness holds the room like a browser's.
    mpv.send(json!({"Set": {"ready": {"isReady": false, "manuallyInitiated": true}}}))
        .await;
    v.wait_for(|f| {
        matches!(
            f,
            ServerFrame::MemberUpdated { .. } | ServerFrame::Presence { .. }
        )
    })
    .await
    .unwrap();

    // A rate change cannot cross (Syncplay has no rate): the desktop is told in the chat.
    v.ok(|id| ClientFrame::Rate { id, rate: 1.5 })
        .await
        .unwrap();
    let note = mpv.note("1.5x").await;
    assert!(note.contains("speed"), "{note}");

    // The owner kicks the desktop member: Syncplay's Error says so, and the socket closes.
    let desk = member_named(&mut v, "mpv user").await;
    v.ok(|id| ClientFrame::Kick { id, user_id: desk })
        .await
        .unwrap();
    let error = mpv.wait("Error", |_| true).await;
    assert!(
        error["message"].as_str().unwrap().contains("removed"),
        "{error}"
    );
    assert!(mpv.next().await.is_none(), "closed after the kick");
}

#[tokio::test]
async fn bad_syncplay_input_gets_an_error_and_a_closed_socket() {
    let address = free_port();
    let app = spawn_with(|c| c.syncplay_listen = Some(address)).await;
    let ann = app.api();
    let (_room, key) =
        room_with_key(&ann, json!({"name": "Locked", "password": "open sesame"})).await;

    let refused = async |lines: Vec<Value>, raw: Option<Vec<u8>>| {
        let mut d = Desktop::connect(address).await;
        for l in lines {
            d.send(l).await;
        }
        if let Some(raw) = raw {
            d.write.write_all(&raw).await.unwrap();
        }
        let error = d.wait("Error", |_| true).await;
        assert!(d.next().await.is_none(), "closed after the error");
        error["message"].as_str().unwrap().to_owned()
    };
    // Not JSON, an unknown message, something before Hello, a line too long.
    assert!(
        refused(vec![], Some(b"{nope\n".to_vec()))
            .await
            .contains("not JSON")
    );
    assert!(
        refused(vec![json!({"Launch": {}})], None)
            .await
            .contains("unknown")
    );
    assert!(
        refused(vec![json!({"Chat": "hi"})], None)
            .await
            .contains("Hello")
    );
    let mut long = vec![b'x'; 20_000];
    long.push(b'\n');
    assert!(refused(vec![], Some(long)).await.contains("too long"));
    // No such room; a room with a password, without it and with a wrong one.
    let hello = |room: &str, password: Option<&str>| {
        let mut h = json!({"username": "u", "room": {"name": room}, "version": "1.6.9"});
        if let Some(p) = password {
            h["password"] = json!(p);
        }
        json!({ "Hello": h })
    };
    assert!(
        refused(vec![hello("nosuchroom", None)], None)
            .await
            .contains("no such room")
    );
    assert!(
        refused(vec![hello(&key, None)], None)
            .await
            .contains("password")
    );
    assert!(
        refused(vec![hello(&key, Some("guess"))], None)
            .await
            .contains("wrong password")
    );
    // The right password lets it in; a name too long for a display name is cut to fit, and the
    // answer tells the client the name it has.
    let mut d = Desktop::connect(address).await;
    let mut long = hello(&key, Some("open sesame"));
    long["Hello"]["username"] = json!("x".repeat(100));
    d.send(long).await;
    let answer = d.wait("Hello", |_| true).await;
    assert_eq!(answer["username"], "x".repeat(32));
    d.wait("State", |_| true).await;
}

/// `program` on PATH, or a clear failure: ./scripts/test installs it.
fn installed(program: &str, package: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{program} is missing: install Debian's {package} package (./scripts/test does)")
        })
}

#[tokio::test]
async fn debians_syncplay_client_driving_mpv_and_a_browser_viewer_follow_each_other() {
    let syncplay = installed("syncplay", "syncplay");
    let mpv = installed("mpv", "mpv");
    // Over TLS, as Syncplay's client asks first: the server has the test CA's certificate.
    let Setup {
        _app,
        address,
        ann,
        key,
        mut v,
    } = setup_with("Desktop and browser", |c| {
        c.syncplay_tls_cert = Some(fixtures().join("cert.pem"));
        c.syncplay_tls_key = Some(fixtures().join("key.pem"));
    })
    .await;

    // The desktop viewer's own copy: 30 s made with the real ffmpeg.
    let dir = tempfile::tempdir().unwrap();
    let film = dir.path().join("film.mp4");
    let ipc = dir.path().join("mpv.sock");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc=duration=30:size=160x90:rate=10")
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "10"])
        .arg(&film)
        .status()
        .unwrap();
    assert!(made.success());
    // The client trusts what `certifi.where()` names (Debian's: the system's CAs). A stand-in
    // `certifi` first on its path names a copy of the test CA instead, leaving the system as it
    // is. A copy: a machine whose tooling adds its own CA to the bundle certifi names wrote it
    // into the repository's fixture.
    let ca = dir.path().join("ca.pem");
    std::fs::copy(fixtures().join("ca.pem"), &ca).unwrap();
    let shim = dir.path().join("shim/certifi");
    std::fs::create_dir_all(&shim).unwrap();
    std::fs::write(
        shim.join("__init__.py"),
        format!("def where():\n    return {:?}\n", ca.display().to_string()),
    )
    .unwrap();
    // Debian's Syncplay client, no GUI, driving mpv with no video or audio output; `-d` prints
    // every protocol line it sends and receives.
    let mut client = tokio::process::Command::new(syncplay)
        .args(["-d", "--no-gui", "--no-store", "-a"])
        // By name: the certificate is for localhost.
        .arg(format!("localhost:{}", address.port()))
        // `--room=`: an invite key may start with '-', which argparse would take for an option.
        .args(["-n", "desk", &format!("--room={key}"), "--player-path"])
        .arg(mpv)
        .arg(&film)
        .args(["--", "--vo=null", "--ao=null"])
        // Syncplay talks to mpv on this socket; the test opens a second connection to it to
        // work mpv as a user would.
        .arg(format!("--input-ipc-server={}", ipc.display()))
        .env("HOME", dir.path())
        // The stand-in certifi, and a sitecustomize that has mpv's socket tried again when it
        // is there but not yet listening (see the file).
        .env(
            "PYTHONPATH",
            std::env::join_paths([
                dir.path().join("shim"),
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syncplay"),
            ])
            .unwrap(),
        )
        // Python buffers a pipe: each line as it is printed.
        .env("PYTHONUNBUFFERED", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so that mpv, which it starts, goes with it (killing the
        // client alone left an mpv behind after every run).
        .process_group(0)
        .spawn()
        .unwrap();
    let _group = ProcessGroup(client.id().expect("the client is running"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    // It prints its messages on stdout and its debug lines (the protocol) on stderr.
    tokio::spawn(forward(client.stdout.take().unwrap(), tx.clone()));
    tokio::spawn(forward(client.stderr.take().unwrap(), tx));
    // Waits for a line of the client's output that passes `pred`.
    let mut seen: Vec<String> = Vec::new();
    let mut expect = async |what: &str, pred: &dyn Fn(&str) -> bool| {
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = rx.recv().await {
                seen.push(line.clone());
                if pred(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => {
                let _ = std::fs::write("/tmp/syncplay-client.log", seen.join("\n"));
                let tail = seen[seen.len().saturating_sub(25)..].join("\n");
                panic!("the Syncplay client never showed {what}; its last lines:\n{tail}")
            }
        }
    };
    // The desktop's reported play state, from a `client/server >> {"State": ...}` line.
    fn reported(line: &str) -> Option<(f64, bool)> {
        let json = line.split_once("client/server >> ")?.1;
        let v: Value = serde_json::from_str(json).ok()?;
        let play = v.get("State")?.get("playstate")?;
        Some((
            play.get("position")?.as_f64()?,
            play.get("paused")?.as_bool()?,
        ))
    }

    expect("a secure connection", &|l| {
        l.contains("Secure connection established")
    })
    .await;
    expect("its connection", &|l| {
        l.contains("Successfully connected to server")
    })
    .await;
    v.wait_for(|f| matches!(f, ServerFrame::Presence { joined, .. } if joined.iter().any(|m| m.name.as_str() == "desk")))
        .await
        .unwrap();

    // mpv has opened the desktop's own file (Syncplay waits for the room's playlist first);
    // from here on the positions it reports are mpv's, not its own estimate.
    expect("mpv with its file loaded", &|l| l.contains("File update")).await;

    // The browser seeks and plays: mpv goes there and plays, and is told by whom.
    let me = ann.get("/api/me").await.unwrap().body["name"]
        .as_str()
        .unwrap()
        .to_owned();
    // Paused first: on a loaded machine the room may already be playing by now (it stops
    // waiting for its viewers' readiness), and a play would then change nothing to show.
    v.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    v.ok(|id| ClientFrame::Seek { id, position: 12.0 })
        .await
        .unwrap();
    v.ok(|id| ClientFrame::Play { id }).await.unwrap();
    expect("who unpaused", &|l| l.contains(&format!("{me} unpaused"))).await;
    let line = expect("mpv playing from 12 s", &|l| {
        reported(l).is_some_and(|(at, paused)| !paused && (12.0..20.0).contains(&at))
    })
    .await;
    let (at, _) = reported(&line).unwrap();
    assert!(at >= 12.0, "{line}");
    // The browser pauses: mpv pauses.
    v.ok(|id| ClientFrame::Pause { id }).await.unwrap();
    expect("mpv paused", &|l| {
        reported(l).is_some_and(|(_, paused)| paused)
    })
    .await;
    // The browser's chat reaches the desktop.
    v.ok(|id| ClientFrame::Chat {
        id,
        text: "hello desk".into(),
    })
    .await
    .unwrap();
    expect("the browser's chat line", &|l| l.contains("hello desk")).await;

    // The other way: the desktop user seeks and plays in mpv; the browser's room follows.
    // Syncplay drops a change that crosses one from the server in flight (its reference server
    // too: a client's states are ignored until it has acknowledged the server's last forced
    // one), and its client then puts mpv back where the room is. A user whose seek was undone
    // does it again: so does the test, three times at most, each waited for 10 s.
    let mut mpv_ipc = tokio::net::UnixStream::connect(&ipc).await.unwrap();
    let steps: [(&str, &[u8]); 2] = [
        (
            "mpv's seek",
            b"{\"command\": [\"seek\", 25, \"absolute\"]}\n",
        ),
        (
            "mpv's play",
            b"{\"command\": [\"set_property\", \"pause\", false]}\n",
        ),
    ];
    for (what, command) in steps {
        let followed = |f: &ServerFrame| match f {
            ServerFrame::Playback { state, .. } if what == "mpv's seek" => {
                (24.5..27.0).contains(&state.position)
            }
            ServerFrame::Playback { state, .. } => !state.paused,
            _ => false,
        };
        // The client's lines up to the first try, to show what led to it on a failure.
        while let Ok(line) = rx.try_recv() {
            seen.push(line);
        }
        let first_try = seen.len();
        let mut errors = Vec::new();
        for _ in 0..3 {
            mpv_ipc.write_all(command).await.unwrap();
            match v.wait_for(followed).await {
                Ok(_) => break,
                Err(err) => errors.push(format!("{err:#}")),
            }
        }
        if errors.len() == 3 {
            // The client's lines, the protocol both ways, are what a room that never followed
            // mpv needs to be read: from 20 before the first try to 100 after it, without mpv's
            // position polls (ten a second) and the client's pauses between its commands.
            while let Ok(line) = rx.try_recv() {
                seen.push(line);
            }
            let _ = std::fs::write("/tmp/syncplay-client.log", seen.join("\n"));
            let told = |lines: &[String]| -> Vec<String> {
                lines
                    .iter()
                    .filter(|l| {
                        ![
                            "get_paused_and_position",
                            "<paused=",
                            "Throttling message send",
                        ]
                        .iter()
                        .any(|noise| l.contains(noise))
                    })
                    .cloned()
                    .collect()
            };
            let before = told(&seen[..first_try]);
            let mut lines = before[before.len().saturating_sub(20)..].to_vec();
            lines.push("---- the first try".into());
            lines.extend(told(&seen[first_try..]).into_iter().take(100));
            panic!(
                "the room never showed {what} in 3 tries ({}); the client's lines:\n{}",
                errors.join("; "),
                lines.join("\n")
            )
        }
    }
    let _ = client.kill().await;
}

/// Kills a process group when dropped, the test passed or not.
struct ProcessGroup(u32);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // Gone already is fine: nothing to report from a drop.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Sends each line `from` prints to `to`.
async fn forward(
    from: impl tokio::io::AsyncRead + Unpin,
    to: tokio::sync::mpsc::UnboundedSender<String>,
) {
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if to.send(line).is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn a_desktop_viewer_that_reconnects_is_put_back_where_the_room_is() {
    let Setup {
        _app,
        address,
        key,
        mut v,
        ..
    } = setup("Flaky wifi").await;
    let mut mpv = Desktop::connect(address).await;
    mpv.hello("desk", &key, None).await;
    mpv.wait("State", |_| true).await;
    // The connection drops; meanwhile the room moves on.
    drop(mpv);
    v.ok(|id| ClientFrame::Seek { id, position: 80.0 })
        .await
        .unwrap();
    // Back: its first state tells it to jump to where the room is now.
    let mut mpv = Desktop::connect(address).await;
    mpv.hello("desk", &key, None).await;
    let state = mpv.wait("State", |_| true).await;
    assert_eq!(state["playstate"]["doSeek"], true, "{state}");
    let at = state["playstate"]["position"].as_f64().unwrap();
    assert!((80.0..85.0).contains(&at), "{state}");
}

/// A short Syncplay name can be tried where an invite key cannot. Each Hello counts against the
/// address's request rate before the room is looked up: past it, even the right name is refused,
/// so further tries tell nothing; another address is let in.
#[tokio::test]
async fn syncplay_hellos_count_against_the_address_request_rate() {
    let Setup {
        _app, address, key, ..
    } = setup_with("Probed", |c| c.limit_requests = "3/h".parse().unwrap()).await;
    let prober = [127, 0, 0, 2];
    for guess in ["movies", "friday", "films"] {
        let mut d = Desktop::connect_from(address, prober).await;
        d.hello("prober", guess, None).await;
        let error = d.wait("Error", |_| true).await;
        assert!(
            error["message"].as_str().unwrap().contains("no such room"),
            "{error}"
        );
    }
    let mut d = Desktop::connect_from(address, prober).await;
    d.hello("prober", &key, None).await;
    let answer = d.next().await.expect("an answer");
    assert!(
        answer["Error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("too many requests")),
        "{answer}"
    );
    let mut other = Desktop::connect_from(address, [127, 0, 0, 3]).await;
    other.hello("friend", &key, None).await;
    other.wait("Hello", |_| true).await;
}

#[tokio::test]
async fn syncplay_connections_are_capped_per_address_and_a_ban_bars_the_address() {
    let Setup {
        _app,
        address,
        key,
        mut v,
        ..
    } = setup("Bounded").await;
    // Eight silent connections from this address are held; the ninth is closed at once.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(Desktop::connect(address).await);
    }
    let mut ninth = Desktop::connect(address).await;
    assert!(ninth.next().await.is_none(), "the ninth is closed");
    // One goes: there is room again.
    held.pop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut desk = Desktop::connect(address).await;
    desk.hello("desk", &key, None).await;
    desk.wait("Hello", |_| true).await;
    drop(held);

    // The owner bans the desktop member: it is told, and its address may not come back as a
    // new Syncplay user (each connection is one).
    let id = member_named(&mut v, "desk").await;
    v.ok(|cid| ClientFrame::Ban {
        id: cid,
        user_id: id,
    })
    .await
    .unwrap();
    let error = desk.wait("Error", |_| true).await;
    assert!(
        error["message"].as_str().unwrap().contains("banned"),
        "{error}"
    );
    let mut again = Desktop::connect(address).await;
    again.hello("desk again", &key, None).await;
    let error = again.wait("Error", |_| true).await;
    assert!(
        error["message"].as_str().unwrap().contains("banned"),
        "{error}"
    );
}

#[tokio::test]
async fn a_desktop_viewer_is_marked_with_its_file_and_told_the_rooms_item() {
    let address = free_port();
    let app = spawn_with(|c| c.syncplay_listen = Some(address)).await;
    let ann = app.api();
    let (room, key) = room_with_key(&ann, json!({ "name": "Files" })).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    let added = v
        .command(|id| ClientFrame::QueueAdd {
            id,
            url: "http://127.0.0.1:9/film.mp4".into(),
        })
        .await
        .unwrap();
    let Ok(ServerFrame::Ack {
        item_id: Some(item),
        ..
    }) = added
    else {
        panic!("{added:?}")
    };

    let mut mpv = Desktop::connect(address).await;
    mpv.hello("mpv user", &key, None).await;
    // The member list marks it as a desktop player.
    v.wait_for(|f| match f {
        ServerFrame::Presence { joined, .. } => joined.iter().any(|m| {
            m.desktop
                .as_ref()
                .is_some_and(|d| d.client == "Syncplay 1.6.9")
        }),
        _ => false,
    })
    .await
    .unwrap();
    // Its file follows once its player has one open.
    mpv.send(json!({"Set": {"file": {"name": "film.mkv", "duration": 50.0, "size": 1000}}}))
        .await;
    // Then (chat waits for its player) it is told what the room plays, with a link its player
    // can open.
    let note = mpv.wait("Chat", |c| c["username"] == "Lockstep").await;
    assert!(
        note["message"]
            .as_str()
            .unwrap()
            .contains("Open it: http://127.0.0.1:9/film.mp4"),
        "{note}"
    );
    v.wait_for(|f| match f {
        ServerFrame::MemberUpdated { member, .. } => member
            .desktop
            .as_ref()
            .and_then(|d| d.file.as_ref())
            .is_some_and(|file| file.name == "film.mkv" && file.duration == Some(50.0)),
        _ => false,
    })
    .await
    .unwrap();
    // The room's item turns out to be 100 s long: the desktop is told its file is not the same.
    v.ok(|id| ClientFrame::Duration {
        id,
        item_id: item,
        duration: 100.0,
    })
    .await
    .unwrap();
    let warned = mpv.note("another file").await;
    assert!(warned.contains("0:50"), "{warned}");

    // Another desktop viewer: the first one's player hears of it, and both are listed with
    // their files, as Syncplay's own server lists them.
    let mut vlc = Desktop::connect(address).await;
    vlc.hello("vlc user", &key, None).await;
    mpv.wait("Set", |s| s["user"]["vlc user"]["event"]["joined"] == true)
        .await;
    vlc.send(json!({"List": null})).await;
    let list = vlc.wait("List", |_| true).await;
    let users = &list[key.as_str()];
    assert_eq!(users["mpv user"]["file"]["name"], "film.mkv");
    assert_eq!(users["mpv user"]["file"]["duration"], 50.0);
    assert_eq!(users["vlc user"]["file"], json!({}));
    drop(vlc);
    mpv.wait("Set", |s| s["user"]["vlc user"]["event"]["left"] == true)
        .await;
}

#[tokio::test]
async fn a_room_can_have_a_short_syncplay_name_which_only_its_owner_chooses() {
    let address = free_port();
    let app = spawn_with(|c| c.syncplay_listen = Some(address)).await;
    let ann = app.api();
    let bob = app.api();
    let (room, key) = room_with_key(&ann, json!({ "name": "Movie night" })).await;
    let path = format!("/api/rooms/{room}/syncplay");
    let put = async |api: &Api, body: Value| {
        api.send(reqwest::Method::PUT, &path, Some(&body))
            .await
            .unwrap()
    };

    // How to join, for members: the port, the invite key, no short name yet.
    let view = ann.get(&path).await.unwrap();
    assert_eq!(view.status, 200);
    assert_eq!(view.body["enabled"], true);
    assert_eq!(view.body["port"], address.port());
    assert_eq!(view.body["room"], key.as_str());
    assert_eq!(view.body["short_name"], Value::Null);

    // Bad names, and anyone but the owner, are refused with a clear error.
    for bad in [
        json!({"short_name": "a b"}),
        json!({"short_name": "x"}),
        json!({"name": "movies"}),
        json!({"short_name": 5}),
    ] {
        let r = put(&ann, bad.clone()).await;
        assert_eq!(r.status, 422, "{bad} {}", r.body);
    }
    assert_eq!(
        put(&ann, json!({"short_name": "a b"})).await.error_code(),
        Some("invalid_syncplay_name")
    );
    bob.post(&format!("/api/rooms/{room}/join"), &json!({}))
        .await
        .unwrap();
    let r = put(&bob, json!({"short_name": "bobs"})).await;
    assert_eq!(r.status, 403, "{}", r.body);

    // The owner names it; the name is one room's only; it is case-insensitive.
    let r = put(&ann, json!({"short_name": "MovieNight"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["short_name"], "movienight");
    let (other, _) = room_with_key(&bob, json!({ "name": "Other" })).await;
    let r = bob
        .send(
            reqwest::Method::PUT,
            &format!("/api/rooms/{other}/syncplay"),
            Some(&json!({"short_name": "movienight"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, Some("syncplay_name_taken"))
    );

    // A Syncplay client joins by it, as it would by the invite key.
    let (mut v, _) = ann.join(room).await.unwrap();
    let mut mpv = Desktop::connect(address).await;
    mpv.hello("mpv user", "movienight", None).await;
    let hello = mpv.wait("Hello", |_| true).await;
    assert_eq!(hello["room"]["name"], "movienight");
    v.wait_for(|f| matches!(f, ServerFrame::Presence { joined, .. } if joined.iter().any(|m| m.name.as_str() == "mpv user")))
        .await
        .unwrap();

    // A private room's name could be guessed: it needs a password first, and without one (the
    // password removed later) the name leads nowhere.
    let (private, _) =
        room_with_key(&bob, json!({ "name": "Secret", "visibility": "private" })).await;
    let private_path = format!("/api/rooms/{private}/syncplay");
    let r = bob
        .send(
            reqwest::Method::PUT,
            &private_path,
            Some(&json!({"short_name": "secret"})),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.status.as_u16(), r.error_code()),
        (409, Some("password_required"))
    );
    bob.patch(
        &format!("/api/rooms/{private}"),
        &json!({"password": "hunter22"}),
    )
    .await
    .unwrap();
    let r = bob
        .send(
            reqwest::Method::PUT,
            &private_path,
            Some(&json!({"short_name": "secret"})),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let refused = async |room: &str, password: Option<&str>| {
        let mut d = Desktop::connect(address).await;
        d.hello("guesser", room, password).await;
        let first = d.next().await.unwrap();
        first
            .get("Error")
            .map(|e| e["message"].as_str().unwrap().to_owned())
    };
    assert!(refused("secret", None).await.unwrap().contains("password"));
    assert_eq!(
        refused("secret", Some("hunter22")).await,
        None,
        "let in with the password"
    );
    bob.patch(&format!("/api/rooms/{private}"), &json!({"password": null}))
        .await
        .unwrap();
    assert!(
        refused("secret", Some("hunter22"))
            .await
            .unwrap()
            .contains("no such room")
    );

    // Given up, the name is free again.
    let r = put(&ann, json!({"short_name": null})).await;
    assert_eq!(
        (r.status.as_u16(), r.body["short_name"].clone()),
        (200, Value::Null)
    );
    assert!(
        refused("movienight", None)
            .await
            .unwrap()
            .contains("no such room")
    );
}

#[tokio::test]
async fn syncplay_clients_that_ask_for_tls_get_it_when_the_server_has_a_certificate() {
    let address = free_port();
    let app = spawn_with(|c| {
        c.syncplay_listen = Some(address);
        c.syncplay_tls_cert = Some(fixtures().join("cert.pem"));
        c.syncplay_tls_key = Some(fixtures().join("key.pem"));
    })
    .await;
    let ann = app.api();
    let (room, key) = room_with_key(&ann, json!({ "name": "Encrypted" })).await;
    let (mut v, _) = ann.join(room).await.unwrap();
    let Ok(mut mpv) = Desktop::connect_tls(address).await else {
        panic!("the server has a certificate: it upgrades")
    };
    mpv.hello("mpv user", &key, None).await;
    mpv.wait("Hello", |_| true).await;
    mpv.send(json!({"Chat": "over TLS"})).await;
    v.wait_for(|f| matches!(f, ServerFrame::Chat { line, .. } if line.text == "over TLS"))
        .await
        .unwrap();
    // Garbage instead of a TLS handshake ends the connection, and the server goes on.
    let mut raw = TcpStream::connect(address).await.unwrap();
    raw.write_all(b"{\"TLS\": {\"startTLS\": \"send\"}}\r\nnot a handshake\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    use tokio::io::AsyncReadExt;
    let _ = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut rest))
        .await
        .expect("closed");
    assert!(Desktop::connect_tls(address).await.is_ok(), "still serving");

    // A server without a certificate says no, and the client goes on in the clear.
    let plain = free_port();
    let _app2 = spawn_with(|c| c.syncplay_listen = Some(plain)).await;
    let Err(mut clear) = Desktop::connect_tls(plain).await else {
        panic!("no certificate: no TLS")
    };
    clear.hello("mpv user", "nosuchroom", None).await;
    let error = clear.wait("Error", |_| true).await;
    assert!(error["message"].as_str().unwrap().contains("no such room"));
}
