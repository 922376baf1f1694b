//! The `devices:` key: which devices a deployment loads a pipeline on (see
//! [`crate::pool`]). Absent, one pipeline runs on the selected device; `auto` takes every
//! device of the selected backend; a list names them (`[cuda:0, cuda:1]`, `[cpu]`).

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

use crate::device::Backend;

/// At most this many devices in a list: more GPUs than one host holds.
pub const MAX_DEVICES: usize = 64;

/// One device: a backend and its index (`cuda:1`; `cpu` is `cpu:0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId {
    pub backend: Backend,
    pub index: usize,
}

impl DeviceId {
    pub fn new(backend: Backend, index: usize) -> DeviceId {
        DeviceId { backend, index }
    }

    /// Parses `cuda:0`, `cuda` (= `cuda:0`), `wgpu`, `cpu`.
    pub fn parse(s: &str) -> Result<DeviceId, String> {
        let s = s.trim().to_ascii_lowercase();
        let (name, index) = match s.split_once(':') {
            Some((n, i)) => {
                let index = i.parse::<usize>().map_err(|_| {
                    format!("`{s}`: the index after `:` must be a number, e.g. cuda:0")
                })?;
                (n.to_string(), index)
            }
            None => (s.clone(), 0),
        };
        let backend = match name.as_str() {
            "cuda" => Backend::Cuda,
            "wgpu" => Backend::Wgpu,
            "cpu" => Backend::Cpu,
            _ => {
                return Err(format!(
                    "`{s}` is not a device: write cuda:N, wgpu or cpu (or `devices: auto`)"
                ));
            }
        };
        if backend == Backend::Cpu && index != 0 {
            return Err(format!(
                "`{s}`: there is one CPU device, `cpu`; for several CPU pipelines set \
                 pipelines_per_device in the profile"
            ));
        }
        Ok(DeviceId { backend, index })
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Cpu => f.write_str("cpu"),
            b => write!(f, "{b}:{}", self.index),
        }
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The `devices:` value, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceList {
    /// Every device of the selected backend that the probe finds.
    Auto,
    /// These devices, in this order (distinct, all of one backend).
    Listed(Vec<DeviceId>),
}

impl Serialize for DeviceList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            DeviceList::Auto => s.serialize_str("auto"),
            DeviceList::Listed(v) => v.serialize(s),
        }
    }
}

/// `devices:` as the YAML parser reads it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDevices {
    One(String),
    Many(Vec<String>),
}

impl RawDevices {
    pub(super) fn parse(self) -> Result<DeviceList, String> {
        let names = match self {
            RawDevices::One(s) if s.trim().eq_ignore_ascii_case("auto") => {
                return Ok(DeviceList::Auto);
            }
            RawDevices::One(s) => vec![s],
            RawDevices::Many(v) => v,
        };
        if names.is_empty() {
            return Err("the list is empty: name a device, or remove the key".into());
        }
        if names.len() > MAX_DEVICES {
            return Err(format!(
                "{} devices listed; the maximum is {MAX_DEVICES}",
                names.len()
            ));
        }
        let mut out: Vec<DeviceId> = Vec::with_capacity(names.len());
        for n in &names {
            let id = DeviceId::parse(n)?;
            if out.contains(&id) {
                return Err(format!("{id} is listed twice"));
            }
            if let Some(first) = out.first()
                && first.backend != id.backend
            {
                return Err(format!(
                    "{first} and {id} are on different backends; one deployment runs one"
                ));
            }
            out.push(id);
        }
        Ok(DeviceList::Listed(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<DeviceList, String> {
        serde_yaml_ng::from_str::<RawDevices>(v).unwrap().parse()
    }

    #[test]
    fn lists_auto_and_single_names_parse() {
        assert_eq!(parse("auto").unwrap(), DeviceList::Auto);
        assert_eq!(
            parse("[cuda:0, CUDA:1]").unwrap(),
            DeviceList::Listed(vec![
                DeviceId::new(Backend::Cuda, 0),
                DeviceId::new(Backend::Cuda, 1)
            ])
        );
        assert_eq!(
            parse("cpu").unwrap(),
            DeviceList::Listed(vec![DeviceId::new(Backend::Cpu, 0)])
        );
        assert_eq!(DeviceId::parse("cuda").unwrap().to_string(), "cuda:0");
    }

    #[test]
    fn a_deployment_names_the_line_of_a_bad_list() {
        use crate::config::{ConfigSource, Deployment};
        let yaml = |devices: &str| {
            format!(
                "device: cuda\ndevices: {devices}\npipeline:\n  detectors:\n    - {{ role: players, \
                 library: x.so }}\n  tracker: {{ plugin: bytetrack }}\n"
            )
        };
        let parse = |text: &str| Deployment::parse(text, ConfigSource::Embedded, ".".into());
        let d = parse(&yaml("[cuda:0, cuda:1]")).unwrap();
        assert_eq!(
            d.file.devices,
            Some(DeviceList::Listed(vec![
                DeviceId::new(Backend::Cuda, 0),
                DeviceId::new(Backend::Cuda, 1)
            ]))
        );
        assert_eq!(
            parse(&yaml("auto")).unwrap().file.devices,
            Some(DeviceList::Auto)
        );
        let e = parse(&yaml("[cuda:0, cpu]")).unwrap_err().to_string();
        assert!(
            e.contains(":2:1") && e.contains("different backends"),
            "{e}"
        );
    }

    #[test]
    fn bad_lists_say_what_is_wrong() {
        for (v, needle) in [
            ("[]", "empty"),
            ("[cuda:0, cuda:0]", "twice"),
            ("[cuda:0, cpu]", "different backends"),
            ("[gpu:0]", "not a device"),
            ("[cuda:x]", "must be a number"),
            ("[cpu:1]", "pipelines_per_device"),
        ] {
            let e = parse(v).unwrap_err();
            assert!(e.contains(needle), "{v}: {e}");
        }
    }
}
