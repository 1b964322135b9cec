//! Media bombs: small files that claim enormous durations, pictures or frame rates, refused from
//! their headers before any job runs; jobs bounded in output, counted against the quota, run
//! under memory and CPU limits, and cleaned up when they fail.

use crate::helpers::{media, spawn_with};
use crate::uploads::{clip, create, settled, upload};
use serde_json::Value;

/// A file made by ffmpeg in the shared test media folder (once).
pub(crate) fn made(name: &str, args: &[&str]) -> Vec<u8> {
    let path = media().dir.join(name);
    if !path.exists() {
        let ok = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args)
            .arg(&path)
            .status()
            .expect("ffmpeg runs")
            .success();
        assert!(ok, "ffmpeg made {name}");
    }
    std::fs::read(path).unwrap()
}

fn rejected_because(v: &Value, why: &str) {
    assert_eq!(v["state"], "rejected", "{v}");
    assert!(v["error"].as_str().unwrap().contains(why), "{}", v["error"]);
    assert!(v["jobs"].as_array().unwrap().is_empty(), "no job ran: {v}");
}

/// The outside test's 1.3 KB MKV: two frames ten million seconds apart. Its storyboard wrote
/// 10,732 sheets (225 MB) in 40 s. Now it is refused from its duration.
#[tokio::test]
async fn two_frames_ten_million_seconds_apart_are_refused() {
    let bomb = made(
        "two-frames-far-apart.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=1",
            "-frames:v",
            "2",
            "-vf",
            "setpts=N*10000000/TB",
            "-fps_mode",
            "passthrough",
            "-c:v",
            "mjpeg",
        ],
    );
    assert!(bomb.len() < 64 * 1024, "{} bytes", bomb.len());
    let app = spawn_with(|_| {}).await;
    let api = app.api();
    let id = upload(&api, bomb, "bomb.mkv").await;
    let v = settled(&app, &api, &id).await;
    rejected_because(&v, "the most this server accepts is 43200 s");
    assert!(!app.dir.path().join("uploads").join(&id).exists());
}

/// 16000x16000 frames took 1.16 GiB in jobs. Pictures, frame rates and stream counts over the
/// limits are refused before any job (limits lowered here so a small clip shows it).
#[tokio::test]
async fn pictures_frame_rates_and_streams_over_the_limits_are_refused() {
    for (tweak, why) in [
        (
            (|c: &mut lockstep::Config| c.upload_max_pixels = 100 * 100)
                as fn(&mut lockstep::Config),
            "the most this server accepts is 10000 pixels",
        ),
        (|c| c.upload_max_fps = 10, "25 frames a second"),
        (|c| c.upload_max_streams = 1, "the file has 2 streams"),
        (|c| c.upload_max_duration_secs = 1, "the video is 2 s long"),
    ] {
        let app = spawn_with(tweak).await;
        let api = app.api();
        let id = upload(&api, clip(), "clip.mp4").await;
        let v = settled(&app, &api, &id).await;
        rejected_because(&v, why);
    }
}

/// What jobs make counts against the owner's quota: after a clip's poster and storyboard, a
/// quota that the clip alone fitted is full.
#[tokio::test]
async fn what_jobs_make_counts_against_the_quota() {
    let size = clip().len() as u64;
    let app = spawn_with(move |c| c.upload_quota_bytes = size + 2_000).await;
    let api = app.api();
    let id = upload(&api, clip(), "clip.mp4").await;
    let v = settled(&app, &api, &id).await;
    assert_eq!(v["state"], "ready", "{v}");
    let r = create(&api, 1000, "more.mp4").await;
    assert_eq!(r.status().as_u16(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
}

/// A transcode whose output would not fit what is left of the quota is stopped by the kernel
/// (file size limit), fails for good with a clear error, and leaves no half-written file.
#[tokio::test]
async fn a_job_whose_output_outgrows_its_limit_fails_and_leaves_nothing() {
    let avi = made(
        "clip.avi",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=duration=2:size=320x240:rate=25",
            "-c:v",
            "mpeg4",
            "-q:v",
            "2",
        ],
    );
    // The AVI needs a transcode; leave the playable copy 2 KB.
    let quota = avi.len() as u64 + 2_000;
    let app = spawn_with(move |c| {
        c.upload_quota_bytes = quota;
        c.job_max_attempts = 1;
    })
    .await;
    let api = app.api();
    let id = upload(&api, avi, "clip.avi").await;
    let v = settled(&app, &api, &id).await;
    let playable = crate::uploads::job_of(&v, "playable").clone();
    assert_eq!(playable["state"], "failed", "{playable}");
    let error = playable["error"].as_str().unwrap();
    assert!(
        error.contains("size limit") || error.contains("quota"),
        "{error}"
    );
    let dir = app.dir.path().join("uploads").join(&id);
    assert!(!dir.join("playable.tmp.mp4").exists());
    assert!(!dir.join("playable.mp4").exists());
}
