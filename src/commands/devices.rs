//! `pitchside devices`: the backends compiled in, the devices they find, what `auto` picks.

use anyhow::Result;
use pitchside_engine::device::{
    Backend, CompiledBackends, DeviceProbe, DeviceRequest, ProbeResult, SystemProbe, select_device,
};

pub fn run() -> Result<()> {
    let compiled = CompiledBackends::this_build();
    println!("backends compiled in: {}", join(&compiled.list()));
    for b in Backend::ALL {
        if !b.compiled() {
            println!(
                "{b:10} not compiled in (build with --features {})",
                b.feature()
            );
            continue;
        }
        match SystemProbe.probe(b) {
            ProbeResult::Found(names) => println!("{b:10} {}", names.join(", ")),
            ProbeResult::Missing(why) => println!("{b:10} unavailable: {why}"),
        }
    }
    // A report of what `auto` would pick, not a choice to run on: printed, not logged.
    let auto = select_device(DeviceRequest::Auto, compiled, &SystemProbe)?;
    println!("{:10} -> {} ({})", "auto", auto.backend, auto.reason);
    Ok(())
}

fn join(b: &[Backend]) -> String {
    b.iter().map(|b| b.as_str()).collect::<Vec<_>>().join(", ")
}
