//! `pitchside tune`: compiles and autotunes the GPU kernels of every shape the deployment's
//! profile runs (each model × batch × input size × precision), into the kernel cache, so
//! that `run` and `serve` start warm. `serve` warms the same list before it is available.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Result;
use pitchside_engine::pipeline::WarmUpShape;
use pitchside_models::kernel_cache;

use crate::deployment::DeploymentArgs;

#[derive(clap::Args)]
pub struct TuneArgs {
    #[command(flatten)]
    pub deployment: DeploymentArgs,
    /// Source frame size to tune for, WIDTHxHEIGHT (repeatable); default: the service's
    /// `warm_up_frame`, else 1920x1080 (Score Vision's clips).
    #[arg(long = "frame", value_parser = parse_frame)]
    pub frames: Vec<[u32; 2]>,
}

/// `1920x1080` → `[1920, 1080]`, each side 1–8192 (as the service's `warm_up_frame`).
fn parse_frame(s: &str) -> Result<[u32; 2], String> {
    let bad = || format!("`{s}` is not WIDTHxHEIGHT (e.g. 1920x1080, sides 1-8192)");
    let (w, h) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let side = |v: &str| {
        v.trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=8192).contains(n))
            .ok_or_else(bad)
    };
    Ok([side(w)?, side(h)?])
}

/// The frame sizes to tune: `--frame`, else the service's warm-up frame, else 1080p.
fn frame_sizes(args: &TuneArgs, service_frame: Option<[u32; 2]>) -> Vec<[u32; 2]> {
    if args.frames.is_empty() {
        vec![service_frame.unwrap_or([1920, 1080])]
    } else {
        args.frames.clone()
    }
}

pub fn run(args: TuneArgs) -> Result<()> {
    let resolved = args.deployment.resolve()?;
    let service_frame = resolved
        .deployment
        .file
        .service
        .as_ref()
        .and_then(|s| s.warm_up_frame);
    let frames = frame_sizes(&args, service_frame);
    let pipeline_start = Instant::now();
    let mut pipeline = crate::deployment::load_pipeline(resolved)?;
    let load_s = pipeline_start.elapsed().as_secs_f64();
    let shapes = pipeline.warm_up_shapes(&frames);
    let cache = kernel_cache::current();
    let entries = || {
        cache
            .as_ref()
            .map(|c| kernel_cache::autotune_entries(&c.dir))
    };
    let before = entries();
    match &cache {
        Some(c) => eprintln!(
            "kernel cache for {}: {} ({} autotune entries); {} shapes to warm",
            c.gpu,
            c.dir.display(),
            before.unwrap_or(0),
            shapes.len()
        ),
        None => eprintln!(
            "device {}: no GPU kernels to compile or tune; running the {} shapes once",
            pipeline.effective().device,
            shapes.len()
        ),
    }
    let bar = indicatif::ProgressBar::new(shapes.len() as u64);
    if std::io::stderr().is_terminal() {
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} [{elapsed}] {msg}")
                .expect("template"),
        );
    } else {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut timed: Vec<(WarmUpShape, f64)> = Vec::new();
    for shape in &shapes {
        bar.set_message(shape.to_string());
        let took = pipeline.warm_up_shape(shape)?.as_secs_f64();
        let line = format!("{shape}: {took:.1} s");
        // A hidden bar prints nothing, its println included.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        bar.inc(1);
        timed.push((shape.clone(), took));
    }
    bar.finish_and_clear();
    let after = entries();
    let total: f64 = timed.iter().map(|t| t.1).sum();
    eprintln!(
        "tuned {} shapes in {total:.1} s (models loaded in {load_s:.1} s){}",
        timed.len(),
        match (before, after) {
            (Some(b), Some(a)) => format!("; autotune entries {b} -> {a}"),
            _ => String::new(),
        }
    );
    let json = serde_json::json!({
        "device": pipeline.effective().device,
        "profile": pipeline.effective().profile_name,
        "gpu": cache.as_ref().map(|c| c.gpu.clone()),
        "kernel_cache": cache.as_ref().map(|c| c.dir.display().to_string()),
        "autotune_entries_before": before,
        "autotune_entries_after": after,
        "load_s": load_s,
        "shapes": timed.iter().map(|(s, t)| {
            let mut v = serde_json::to_value(s).expect("a shape serialises");
            v["seconds"] = (*t).into();
            v
        }).collect::<Vec<_>>(),
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_are_bounded() {
        assert_eq!(parse_frame("1920x1080"), Ok([1920, 1080]));
        assert_eq!(parse_frame(" 64X48 "), Ok([64, 48]));
        for bad in ["1920", "0x10", "10x9000", "axb", "10x"] {
            assert!(parse_frame(bad).is_err(), "{bad}");
        }
    }
}
