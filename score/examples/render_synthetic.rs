//! Render the synthetic test clip and its answers into a directory:
//! `cargo run -p pitchside-score --example render_synthetic -- OUT_DIR`
//! writes OUT_DIR/synthetic.mkv and OUT_DIR/<answer>.json (exact, noisy, partial,
//! wrong_order, all_zero, integer_keypoints, extra_keypoint, unrounded, ties,
//! frames_dict). tools/score/golden.py turns them into the golden results.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: render_synthetic OUT_DIR")?,
    );
    std::fs::create_dir_all(&dir)?;
    let video = dir.join("synthetic.mkv");
    let truth = pitchside_score::synthetic::render(&video)?;
    println!("{}", video.display());
    for (name, answer) in pitchside_score::synthetic::answers(&truth) {
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec(&answer)?)?;
        println!("{}", path.display());
    }
    Ok(())
}
